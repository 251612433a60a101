//! Runs grid points with llama-bench's methodology and yields a record per point.

use super::params::{Grid, ParamError, Point, RunSettings, Test};
use super::record::{BenchRecord, Status};
use crate::batch::Batch;
use crate::context::{Context, ContextParams, FlashAttn};
use crate::model::{Model, ModelParams};
use crate::threadpool::{ThreadPool, ThreadPoolParams};
use crate::{Backend, BuildInfo, SystemInfo};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Why a grid point failed (recorded in its [`BenchRecord`]; the sweep goes on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::ModelError),
    /// The context could not be created.
    #[error(transparent)]
    Context(#[from] crate::ContextError),
    /// The threadpool could not be created.
    #[error(transparent)]
    ThreadPool(#[from] crate::ThreadPoolError),
    /// A decode failed.
    #[error(transparent)]
    Decode(#[from] crate::DecodeError),
    /// A batch could not be built.
    #[error(transparent)]
    Batch(#[from] crate::BatchError),
    /// Bad grid parameters.
    #[error(transparent)]
    Params(#[from] ParamError),
}

/// Progress events while a sweep runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// Point `index` (0-based) of `total` starts.
    Start {
        /// Index.
        index: usize,
        /// Total points.
        total: usize,
        /// Test name.
        test: String,
    },
    /// Repetition `rep` of the current point finished.
    Repetition {
        /// Index.
        index: usize,
        /// 1-based repetition.
        rep: u32,
        /// Of.
        of: u32,
    },
}

/// A running sweep over grid points: an iterator of records, one per point, produced as each
/// point finishes. Loaded models are reused across consecutive points with the same model
/// parameters, as llama-bench does.
pub struct Sweep<'a> {
    backend: Backend,
    points: Vec<Point>,
    next: usize,
    settings: RunSettings,
    model: Option<(PathBuf, ModelParams, Model)>,
    build: BuildInfo,
    system: SystemInfo,
    progress: Option<Box<dyn FnMut(&Progress) + 'a>>,
    depth_cache: Option<(u32, Vec<u8>)>,
}

impl<'a> Sweep<'a> {
    /// Plans a sweep over `grid`.
    ///
    /// # Errors
    /// [`ParamError`] for an invalid or empty grid.
    pub fn new(backend: &Backend, grid: &Grid, settings: RunSettings) -> Result<Self, ParamError> {
        Ok(Self::from_points(backend, grid.points()?, settings))
    }

    /// A sweep over explicit points.
    pub fn from_points(backend: &Backend, points: Vec<Point>, settings: RunSettings) -> Self {
        Sweep {
            backend: *backend,
            points,
            next: 0,
            settings,
            model: None,
            build: BuildInfo::current(),
            system: SystemInfo::collect(),
            progress: None,
            depth_cache: None,
        }
    }

    /// Calls `f` on progress events.
    pub fn on_progress(mut self, f: impl FnMut(&Progress) + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Records of the planned points before measurement (parameters filled, no results), e.g.
    /// to choose markdown columns up front.
    pub fn planned_records(&self) -> Vec<BenchRecord> {
        self.points.iter().map(|p| self.base_record(p)).collect()
    }

    /// The planned points.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    fn emit(&mut self, p: Progress) {
        if let Some(f) = self.progress.as_mut() {
            f(&p);
        }
    }

    fn model_for(&mut self, point: &Point) -> Result<(), BenchError> {
        let reuse = matches!(&self.model, Some((p, mp, _)) if *p == point.model && *mp == point.model_params);
        if !reuse {
            self.model = None; // free the previous model first (memory)
            self.depth_cache = None;
            let m = Model::load(&self.backend, &point.model, &point.model_params)?;
            self.model = Some((point.model.clone(), point.model_params.clone(), m));
        }
        Ok(())
    }

    fn run_point(&mut self, index: usize, point: &Point, record: &mut BenchRecord) -> Result<(), BenchError> {
        self.model_for(point)?;
        // Take the model out while measuring so progress callbacks can borrow `self`.
        let entry = self.model.take().expect("model loaded above");
        let result = self.measure(index, point, &entry.2, record);
        self.model = Some(entry);
        result
    }

    fn measure(&mut self, index: usize, point: &Point, model: &Model, record: &mut BenchRecord) -> Result<(), BenchError> {
        let settings = self.settings.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ index as u64);
        fill_model_fields(record, model);
        let params = ContextParams {
            n_ctx: point.n_ctx(),
            n_batch: point.n_batch,
            n_ubatch: point.n_ubatch,
            n_threads: point.n_threads,
            n_threads_batch: point.n_threads,
            flash_attn: point.flash_attn,
            type_k: point.type_k,
            type_v: point.type_v,
            no_kv_offload: point.no_kv_offload,
            embeddings: point.embeddings,
            ..ContextParams::default()
        };
        let mut ctx = Context::new(model, &params)?;
        ctx.memory_clear(false);
        if settings.delay_secs > 0 {
            std::thread::sleep(std::time::Duration::from_secs(settings.delay_secs));
        }
        let pool = ThreadPool::new(&ThreadPoolParams {
            n_threads: point.n_threads as usize,
            cpu_mask: point.cpu_mask.clone(),
            strict_cpu: point.cpu_strict,
            priority: settings.priority,
            poll: point.poll,
        })?;
        ctx.attach_threadpool(Arc::new(pool), None);
        let mut batch = Batch::new(point.n_batch.max(1) as usize, 1)?;
        let t = point.test;
        if !settings.no_warmup {
            if t.n_prompt > 0 {
                run_prompt(&mut ctx, &mut batch, t.n_prompt, point.n_batch, &mut rng)?;
            }
            if t.n_gen > 0 {
                run_gen(&mut ctx, &mut batch, 1, &mut rng)?;
            }
        }
        let mut samples_ns = Vec::with_capacity(settings.repetitions as usize);
        for rep in 0..settings.repetitions {
            ctx.memory_clear(false);
            if t.n_depth > 0 {
                let cached = match &self.depth_cache {
                    Some((d, state)) if *d == t.n_depth => ctx.set_seq_state(state, 0),
                    _ => false,
                };
                if !cached {
                    run_prompt(&mut ctx, &mut batch, t.n_depth, point.n_batch, &mut rng)?;
                    self.depth_cache = Some((t.n_depth, ctx.seq_state(0)));
                }
            }
            let start = Instant::now();
            if t.n_prompt > 0 {
                run_prompt(&mut ctx, &mut batch, t.n_prompt, point.n_batch, &mut rng)?;
            }
            if t.n_gen > 0 {
                run_gen(&mut ctx, &mut batch, t.n_gen, &mut rng)?;
            }
            samples_ns.push(start.elapsed().as_nanos() as u64);
            self.emit(Progress::Repetition { index, rep: rep + 1, of: settings.repetitions });
        }
        ctx.detach_threadpool();
        set_samples(record, &t, samples_ns);
        Ok(())
    }

    fn base_record(&self, point: &Point) -> BenchRecord {
        let mp = &point.model_params;
        let fa = match point.flash_attn {
            FlashAttn::Auto => -1,
            FlashAttn::Off => 0,
            FlashAttn::On => 1,
        };
        let max_nz = mp.tensor_split.iter().rposition(|v| *v > 0.0).unwrap_or(0);
        let tensor_split = if mp.tensor_split.is_empty() {
            "0.00".to_string()
        } else {
            mp.tensor_split[..=max_nz].iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join("/")
        };
        BenchRecord {
            build_commit: self.build.build_commit.clone(),
            build_number: self.build.build_number,
            cpu_info: self.system.cpu_info.clone(),
            gpu_info: self.system.gpu_info.clone(),
            backends: self.build.backends_csv(),
            model_filename: point.model.display().to_string(),
            model_type: String::new(),
            model_size: 0,
            model_n_params: 0,
            n_batch: point.n_batch,
            n_ubatch: point.n_ubatch,
            n_threads: point.n_threads,
            cpu_mask: point.cpu_mask.as_ref().map_or_else(|| "0x0".to_string(), |m| m.to_hex()),
            cpu_strict: point.cpu_strict,
            poll: point.poll,
            type_k: point.type_k.name().to_string(),
            type_v: point.type_v.name().to_string(),
            n_gpu_layers: mp.n_gpu_layers,
            n_cpu_moe: 0,
            split_mode: mp.split_mode.name().to_string(),
            main_gpu: mp.main_gpu,
            no_kv_offload: point.no_kv_offload,
            flash_attn: fa,
            devices: if mp.devices.is_empty() { "auto".into() } else { mp.devices.join("/") },
            tensor_split,
            tensor_buft_overrides: "none".into(),
            load_mode: match mp.use_mmap {
                None => "auto",
                Some(true) => "mmap",
                Some(false) => "none",
            }
            .into(),
            lazy_mode: "auto".into(),
            embeddings: point.embeddings,
            no_op_offload: 0,
            no_host: false,
            repack: true,
            fit_target: 0,
            fit_min_ctx: 0,
            n_prompt: point.test.n_prompt,
            n_gen: point.test.n_gen,
            n_depth: point.test.n_depth,
            test_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            avg_ns: 0,
            stddev_ns: 0,
            avg_ts: 0.0,
            stddev_ts: 0.0,
            samples_ns: Vec::new(),
            samples_ts: Vec::new(),
            status: Status::Ok,
            error: None,
            test: point.test.name(),
            repetitions: self.settings.repetitions,
            warmup: !self.settings.no_warmup,
            prio: self.settings.priority.level(),
            n_ctx: point.n_ctx(),
            seed: self.settings.seed,
            model_file_bytes: 0,
            model_arch: String::new(),
            build: self.build.clone(),
            system: self.system.clone(),
            benchkit_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl Iterator for Sweep<'_> {
    type Item = BenchRecord;

    fn next(&mut self) -> Option<BenchRecord> {
        let index = self.next;
        let point = self.points.get(index)?.clone();
        self.next += 1;
        let total = self.points.len();
        self.emit(Progress::Start { index, total, test: point.test.name() });
        let mut record = self.base_record(&point);
        if let Err(e) = self.run_point(index, &point, &mut record) {
            tracing::warn!(test = %record.test, model = %record.model_filename, error = %e, "grid point failed");
            record.status = Status::Failed;
            record.error = Some(e.to_string());
        }
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.points.len() - self.next;
        (n, Some(n))
    }
}

fn fill_model_fields(r: &mut BenchRecord, model: &Model) {
    let info = model.info();
    r.model_type = info.description.clone();
    r.model_size = info.size_bytes;
    r.model_n_params = info.n_params;
    r.model_file_bytes = info.file_bytes;
    r.model_arch = info.architecture.clone();
}

/// llama-bench's statistics: t/s per repetition = tokens / seconds; mean and sample stddev.
pub(crate) fn set_samples(r: &mut BenchRecord, t: &Test, samples_ns: Vec<u64>) {
    let n = t.n_tokens() as f64;
    let ts: Vec<f64> = samples_ns.iter().map(|&ns| 1e9 * n / ns.max(1) as f64).collect();
    let ns_f: Vec<f64> = samples_ns.iter().map(|&v| v as f64).collect();
    r.avg_ns = mean(&ns_f) as u64;
    r.stddev_ns = stddev(&ns_f) as u64;
    r.avg_ts = mean(&ts);
    r.stddev_ts = stddev(&ts);
    r.samples_ns = samples_ns;
    r.samples_ts = ts;
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn stddev(v: &[f64]) -> f64 {
    if v.len() <= 1 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Random prompt tokens in `n_batch` chunks; BOS first when the vocab adds one (llama-bench).
pub(crate) fn run_prompt(
    ctx: &mut Context<'_>,
    batch: &mut Batch,
    n_prompt: u32,
    n_batch: u32,
    rng: &mut ChaCha8Rng,
) -> Result<(), BenchError> {
    let model = ctx.model();
    let n_vocab = model.info().n_vocab as i32;
    let bos = model.add_bos().then(|| model.token_bos());
    let start = ctx_pos(ctx);
    let mut done = 0u32;
    while done < n_prompt {
        let n = (n_prompt - done).min(n_batch.max(1));
        batch.clear();
        for i in 0..n {
            let tok = match (done + i, bos) {
                (0, Some(b)) => b,
                _ => rng.random_range(0..n_vocab),
            };
            batch.add(tok, start + (done + i) as i32, &[0], i + 1 == n)?;
        }
        ctx.decode(batch)?;
        done += n;
    }
    ctx.synchronize();
    Ok(())
}

/// `n_gen` single-token decodes, synchronised after each (llama-bench).
pub(crate) fn run_gen(ctx: &mut Context<'_>, batch: &mut Batch, n_gen: u32, rng: &mut ChaCha8Rng) -> Result<(), BenchError> {
    let model = ctx.model();
    let n_vocab = model.info().n_vocab as i32;
    let mut tok = if model.add_bos() { model.token_bos() } else { rng.random_range(0..n_vocab) };
    let mut pos = ctx_pos(ctx);
    for _ in 0..n_gen {
        batch.clear();
        batch.add(tok, pos, &[0], true)?;
        ctx.decode(batch)?;
        ctx.synchronize();
        pos += 1;
        tok = rng.random_range(0..n_vocab);
    }
    Ok(())
}

fn ctx_pos(ctx: &Context<'_>) -> i32 {
    ctx.seq_pos_max(0) + 1
}

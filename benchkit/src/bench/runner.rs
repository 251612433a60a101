//! Runs grid points with llama-bench's methodology and yields a record per point.

use super::params::{Grid, ParamError, Point, RunConfig, Test};
use super::record::{BenchRecord, Status};
use crate::batch::Batch;
use crate::context::{Context, ContextParams, FlashAttn};
use crate::model::{Model, ModelParams};
use crate::stats::Moments;
use crate::supervise::Phase;
use crate::threadpool::{ThreadPool, ThreadPoolParams};
use crate::{Backend, Provenance};
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
    /// A sequence id the context does not have.
    #[error(transparent)]
    Seq(#[from] crate::SeqError),
}

/// Progress events while a sweep runs; as JSON, tagged by `event` (`start`, `phase`,
/// `repetition`, `worker`), for front ends that pass them on (the Python bindings).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Progress {
    /// Point `index` (0-based) of `total` starts.
    Start {
        /// Index of the point in the sweep.
        index: usize,
        /// Points in the sweep.
        total: usize,
        /// Test name.
        test: String,
    },
    /// Point `index` entered `phase` (load, warmup, a repetition), at `unix_ns` (wall clock of
    /// the process that measures, ns since the Unix epoch).
    Phase {
        /// Index of the point.
        index: usize,
        /// The phase (as JSON its fields sit beside `index`: `"phase": "repetition", "rep": 1`).
        #[serde(flatten)]
        phase: Phase,
        /// When the worker entered the phase, ns since the Unix epoch.
        unix_ns: u64,
    },
    /// Repetition `rep` of point `index` finished.
    Repetition {
        /// Index of the point.
        index: usize,
        /// 1-based repetition.
        rep: u32,
        /// Repetitions per point.
        of: u32,
    },
    /// A supervised sweep started a worker process (before any of its points starts).
    Worker {
        /// The worker's process id.
        pid: u32,
    },
}

/// A progress callback.
pub(crate) type ProgressFn<'a> = Box<dyn FnMut(&Progress) + 'a>;

/// A running sweep over grid points: an iterator of records, one per point, produced as each
/// point finishes. Loaded models are reused across consecutive points with the same model
/// parameters, as llama-bench does.
pub struct Sweep<'a> {
    backend: Backend,
    points: Vec<Point>,
    /// Each point's index in the whole sweep (a supervised sweep runs slices of it).
    indices: Vec<usize>,
    total: usize,
    next: usize,
    settings: RunConfig,
    model: Option<(PathBuf, ModelParams, Model)>,
    base: Provenance,
    progress: Option<ProgressFn<'a>>,
    depth_cache: Option<(u32, Vec<u8>)>,
    recorder: Option<crate::telemetry::Recorder>,
}

impl<'a> Sweep<'a> {
    /// Plans a sweep over `grid`.
    ///
    /// # Errors
    /// [`ParamError`] for an invalid or empty grid.
    pub fn new(backend: &Backend, grid: &Grid, settings: RunConfig) -> Result<Self, ParamError> {
        Ok(Self::from_points(backend, grid.points()?, settings))
    }

    /// A sweep over explicit points.
    pub fn from_points(backend: &Backend, points: Vec<Point>, settings: RunConfig) -> Self {
        let n = points.len();
        let base = base_provenance(&settings);
        Sweep {
            backend: *backend,
            points,
            indices: (0..n).collect(),
            total: n,
            next: 0,
            settings,
            model: None,
            base,
            progress: None,
            depth_cache: None,
            recorder: None,
        }
    }

    /// Samples this process while each point runs ([`crate::telemetry`]); each record gets
    /// its summary.
    pub fn telemetry(mut self, config: &crate::telemetry::TelemetryConfig) -> Self {
        self.recorder = Some(crate::telemetry::Recorder::start(std::process::id(), config));
        self
    }

    /// Numbers the points as `indices` of a sweep of `total` points: what a worker does with
    /// its slice, so that seeds and progress match the whole sweep's.
    pub(crate) fn numbered(mut self, indices: Vec<usize>, total: usize) -> Self {
        assert_eq!(indices.len(), self.points.len());
        self.indices = indices;
        self.total = total;
        self
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

    fn phase(&mut self, index: usize, phase: Phase) {
        let unix_ns = crate::supervise::unix_ns_now();
        if let Some(r) = &self.recorder {
            r.phase(index, phase, unix_ns);
        }
        self.emit(Progress::Phase { index, phase, unix_ns });
    }

    fn model_for(&mut self, index: usize, point: &Point) -> Result<(), BenchError> {
        let reuse = matches!(&self.model, Some((p, mp, _)) if *p == point.model && *mp == point.model_params);
        if !reuse {
            self.phase(index, Phase::Load);
            self.model = None; // free the previous model first (memory)
            self.depth_cache = None;
            let m = Model::load(&self.backend, &point.model, &point.model_params)?;
            self.model = Some((point.model.clone(), point.model_params.clone(), m));
        }
        Ok(())
    }

    fn run_point(&mut self, index: usize, point: &Point, record: &mut BenchRecord) -> Result<(), BenchError> {
        self.model_for(index, point)?;
        // Take the model out while measuring so progress callbacks can borrow `self`.
        let entry = self.model.take().expect("model loaded above");
        let result = self.measure(index, point, &entry.2, record);
        self.model = Some(entry);
        result
    }

    fn measure(
        &mut self,
        index: usize,
        point: &Point,
        model: &Model,
        record: &mut BenchRecord,
    ) -> Result<(), BenchError> {
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
            op_offload: !point.no_op_offload,
            ..ContextParams::default()
        };
        self.phase(index, Phase::Context);
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
            self.phase(index, Phase::Warmup);
            if t.n_prompt > 0 {
                run_prompt(&mut ctx, &mut batch, t.n_prompt, point.n_batch, &mut rng)?;
            }
            if t.n_gen > 0 {
                run_gen(&mut ctx, &mut batch, 1, &mut rng)?;
            }
        }
        let mut samples_ns = Vec::with_capacity(settings.repetitions as usize);
        for rep in 0..settings.repetitions {
            self.phase(index, Phase::Repetition { rep: rep + 1, of: settings.repetitions });
            ctx.memory_clear(false);
            if t.n_depth > 0 {
                let cached = match &self.depth_cache {
                    Some((d, state)) if *d == t.n_depth => ctx.set_seq_state(state, 0)?,
                    _ => false,
                };
                if !cached {
                    run_prompt(&mut ctx, &mut batch, t.n_depth, point.n_batch, &mut rng)?;
                    self.depth_cache = Some((t.n_depth, ctx.seq_state(0)?));
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
        new_record(point, &self.settings, &self.base)
    }
}

/// The provenance every record of a sweep starts from: this build and machine, the sweep's
/// start, its seed and run settings (each record adds its point and, once loaded, its model).
pub(crate) fn base_provenance(settings: &RunConfig) -> Provenance {
    Provenance::now().seed("prompt_tokens", settings.seed).setting("run", settings).setting("isolation", &"in-process")
}

/// A record's provenance: the sweep's, with the point's settings.
pub(crate) fn point_provenance(base: &Provenance, point: &Point) -> Provenance {
    base.clone().setting("point", point)
}

/// The record of `point` before measurement: parameters filled, no results.
pub(crate) fn new_record(point: &Point, settings: &RunConfig, base: &Provenance) -> BenchRecord {
    let build = &base.build;
    let system = &base.system;
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
        build_commit: build.build_commit.clone(),
        build_number: build.build_number,
        cpu_info: system.cpu_info.clone(),
        gpu_info: system.gpu_info.clone(),
        backends: build.backends_csv(),
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
        n_cpu_moe: i32::try_from(mp.n_cpu_moe).unwrap_or(i32::MAX),
        split_mode: mp.split_mode.name().to_string(),
        main_gpu: mp.main_gpu,
        no_kv_offload: point.no_kv_offload,
        flash_attn: fa,
        devices: mp.devices.to_string(),
        tensor_split,
        tensor_buft_overrides: crate::model::TensorBuftOverride::list_name(&mp.tensor_buft_overrides),
        load_mode: mp.load_mode.name().into(),
        lazy_mode: mp.lazy_mode.name().into(),
        embeddings: point.embeddings,
        no_op_offload: i32::from(point.no_op_offload),
        no_host: mp.no_host,
        repack: mp.repack,
        fit_target: i64::try_from(mp.fit_target_mib).unwrap_or(i64::MAX),
        fit_min_ctx: i64::from(mp.fit_min_ctx),
        n_prompt: point.test.n_prompt,
        n_gen: point.test.n_gen,
        n_depth: point.test.n_depth,
        test_time: crate::provenance::rfc3339_now(),
        avg_ns: 0,
        stddev_ns: 0,
        avg_ts: 0.0,
        stddev_ts: 0.0,
        samples_ns: Vec::new(),
        samples_ts: Vec::new(),
        status: Status::Ok,
        error: None,
        crash: None,
        test: point.test.name(),
        repetitions: settings.repetitions,
        warmup: !settings.no_warmup,
        prio: settings.priority.level(),
        n_ctx: point.n_ctx(),
        seed: settings.seed,
        model_file_bytes: 0,
        model_arch: String::new(),
        telemetry: crate::telemetry::Telemetry::default(),
        provenance: point_provenance(base, point),
    }
}

impl Iterator for Sweep<'_> {
    type Item = BenchRecord;

    fn next(&mut self) -> Option<BenchRecord> {
        let point = self.points.get(self.next)?.clone();
        let index = self.indices[self.next];
        self.next += 1;
        let total = self.total;
        self.emit(Progress::Start { index, total, test: point.test.name() });
        self.phase(index, Phase::Start);
        let mut record = self.base_record(&point);
        let result = self.run_point(index, &point, &mut record);
        self.phase(index, Phase::Finished);
        if let Err(e) = result {
            tracing::warn!(test = %record.test, model = %record.model_filename, error = %e, "grid point failed");
            record.status = Status::Failed;
            record.error = Some(e.to_string());
        }
        if let Some(r) = &self.recorder {
            record.attach_telemetry(r.take(index));
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
    r.provenance.model = Some(crate::provenance::ModelProvenance::from_info(info.clone()));
}

/// llama-bench's statistics: t/s per repetition = tokens / seconds; mean and sample stddev.
pub(crate) fn set_samples(r: &mut BenchRecord, t: &Test, samples_ns: Vec<u64>) {
    let n = t.n_tokens() as f64;
    let ts: Vec<f64> = samples_ns.iter().map(|&ns| 1e9 * n / ns.max(1) as f64).collect();
    let ns_f: Vec<f64> = samples_ns.iter().map(|&v| v as f64).collect();
    let (ns_m, ts_m) = (Moments::of(&ns_f), Moments::of(&ts));
    // llama-bench's avg_ns is the integer mean of the integer durations.
    r.avg_ns = samples_ns.iter().sum::<u64>() / (samples_ns.len() as u64).max(1);
    r.stddev_ns = ns_m.sample_stddev() as u64;
    r.avg_ts = ts_m.mean();
    r.stddev_ts = ts_m.sample_stddev();
    r.samples_ns = samples_ns;
    r.samples_ts = ts;
}

/// Random prompt tokens in `n_batch` chunks; BOS first when the vocab adds one (llama-bench).
// Never inlined: scripts/fidelity_callgrind.py restricts callgrind to this function.
#[inline(never)]
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
// Never inlined: scripts/fidelity_callgrind.py restricts callgrind to this function.
#[inline(never)]
pub(crate) fn run_gen(
    ctx: &mut Context<'_>,
    batch: &mut Batch,
    n_gen: u32,
    rng: &mut ChaCha8Rng,
) -> Result<(), BenchError> {
    let model = ctx.model();
    let n_vocab = model.info().n_vocab as i32;
    let mut tok = if model.add_bos() { model.token_bos() } else { rng.random_range(0..n_vocab) };
    let start = ctx_pos(ctx);
    for pos in start..start + n_gen as i32 {
        batch.clear();
        batch.add(tok, pos, &[0], true)?;
        ctx.decode(batch)?;
        ctx.synchronize();
        tok = rng.random_range(0..n_vocab);
    }
    Ok(())
}

fn ctx_pos(ctx: &Context<'_>) -> i32 {
    // Sequence 0 exists in every context.
    ctx.seq_pos_max(0).map_or(0, |p| p + 1)
}

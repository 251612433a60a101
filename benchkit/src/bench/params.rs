//! What to measure: tests, grid points, and the grid of every parameter llama-bench sweeps.

use crate::context::FlashAttn;
use crate::gguf::GgmlType;
use crate::model::{DeviceSelection, LazyMode, LoadMode, ModelParams, SplitMode, TensorBuftOverride};
use crate::threadpool::{CpuMask, Priority};
use std::path::PathBuf;

/// Errors in bench parameters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// A value list or range could not be parsed.
    #[error("invalid value {value:?} for {param}: {reason}")]
    Parse {
        /// The flag or field (`-p`, `--poll`, ...).
        param: String,
        /// Value given.
        value: String,
        /// What is wrong with it, and what the parameter takes.
        reason: String,
    },
    /// The grid has no points (e.g. every test size is 0).
    #[error("the grid is empty: {0}")]
    Empty(String),
    /// The grid, or one value list, is larger than benchkit runs.
    #[error("too many values: {0}")]
    TooLarge(String),
    /// A device or buffer type that this build's backend registry does not have.
    #[error("invalid {param} {value}: {source}")]
    Unavailable {
        /// Parameter (`-dev`, `-ot`).
        param: &'static str,
        /// Value given.
        value: String,
        /// The registry's answer (boxed: a grid error stays small).
        source: Box<crate::model::ModelError>,
    },
}

/// One test: `n_prompt` tokens processed, then `n_gen` generated, at depth `n_depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Test {
    /// Prompt tokens (pp).
    pub n_prompt: u32,
    /// Generated tokens (tg).
    pub n_gen: u32,
    /// Tokens already in the cache before timing.
    pub n_depth: u32,
}

impl Test {
    /// Prompt processing of `n` tokens.
    pub fn pp(n: u32) -> Self {
        Test { n_prompt: n, n_gen: 0, n_depth: 0 }
    }
    /// Generation of `n` tokens.
    pub fn tg(n: u32) -> Self {
        Test { n_prompt: 0, n_gen: n, n_depth: 0 }
    }
    /// Prompt then generation in one timed run.
    pub fn pg(p: u32, g: u32) -> Self {
        Test { n_prompt: p, n_gen: g, n_depth: 0 }
    }
    /// The same test at depth `d`.
    pub fn at_depth(self, d: u32) -> Self {
        Test { n_depth: d, ..self }
    }
    /// Tokens timed per repetition.
    pub fn n_tokens(&self) -> u64 {
        u64::from(self.n_prompt) + u64::from(self.n_gen)
    }
    /// Name as llama-bench's table shows it: `pp512`, `tg128`, `pp512+tg128`, with ` @ d512`.
    pub fn name(&self) -> String {
        let base = match (self.n_prompt, self.n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, g) => format!("tg{g}"),
            (p, g) => format!("pp{p}+tg{g}"),
        };
        if self.n_depth > 0 {
            format!("{base} @ d{}", self.n_depth)
        } else {
            base
        }
    }
}

/// Everything that defines one grid point.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Model path.
    pub model: PathBuf,
    /// Model-level parameters (a new model is loaded only when these or the path change).
    pub model_params: ModelParams,
    /// Logical batch.
    pub n_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// K cache type.
    pub type_k: GgmlType,
    /// V cache type.
    pub type_v: GgmlType,
    /// Flash attention.
    pub flash_attn: FlashAttn,
    /// KV cache on the host.
    pub no_kv_offload: bool,
    /// Embeddings mode.
    pub embeddings: bool,
    /// Keep host tensor ops on the host (llama-bench `-nopo`; the context's `op_offload` is the
    /// inverse).
    pub no_op_offload: bool,
    /// Threads.
    pub n_threads: u32,
    /// CPU mask; `None` = default affinity (llama-bench's `0x0`).
    pub cpu_mask: Option<CpuMask>,
    /// Strict placement.
    pub cpu_strict: bool,
    /// Poll level.
    pub poll: u32,
    /// The test.
    pub test: Test,
}

impl Point {
    /// Context size the test needs (llama-bench: n_prompt + n_gen + n_depth).
    pub fn n_ctx(&self) -> u32 {
        self.test.n_prompt.saturating_add(self.test.n_gen).saturating_add(self.test.n_depth).max(1)
    }
}

/// How tests are run (llama-bench's global options).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    /// Repetitions per test (`-r`, default 5).
    pub repetitions: u32,
    /// Seconds to sleep before each test (`--delay`).
    pub delay_secs: u64,
    /// Skip the warmup run (`--no-warmup`).
    pub no_warmup: bool,
    /// Thread priority (`--prio`).
    pub priority: Priority,
    /// Seed of the random prompt tokens.
    pub seed: u64,
    /// NUMA strategy (`--numa`), process-wide: a supervised sweep applies it in each worker
    /// before the model loads; an in-process caller applies it with `Backend::init_numa`.
    #[serde(default)]
    pub numa: crate::backend::Numa,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            repetitions: 5,
            delay_secs: 0,
            no_warmup: false,
            priority: Priority::Normal,
            seed: 1234,
            numa: crate::backend::Numa::default(),
        }
    }
}

/// A cartesian grid over every parameter llama-bench sweeps; lists of values, defaults as
/// llama-bench's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Grid {
    /// Models.
    pub models: Vec<PathBuf>,
    /// `-p`.
    pub n_prompt: Vec<u32>,
    /// `-n`.
    pub n_gen: Vec<u32>,
    /// `-pg`.
    pub n_pg: Vec<(u32, u32)>,
    /// `-d`.
    pub n_depth: Vec<u32>,
    /// `-b`.
    pub n_batch: Vec<u32>,
    /// `-ub`.
    pub n_ubatch: Vec<u32>,
    /// `-ctk`.
    pub type_k: Vec<GgmlType>,
    /// `-ctv`.
    pub type_v: Vec<GgmlType>,
    /// `-t`.
    pub n_threads: Vec<u32>,
    /// `-C` (hex masks; `0x0` = default affinity).
    pub cpu_mask: Vec<String>,
    /// `--cpu-strict`.
    pub cpu_strict: Vec<bool>,
    /// `--poll`.
    pub poll: Vec<u32>,
    /// `-ngl`.
    pub n_gpu_layers: Vec<i32>,
    /// `-ncmoe`: layers whose expert tensors stay on the CPU.
    pub n_cpu_moe: Vec<u32>,
    /// `-sm`.
    pub split_mode: Vec<SplitMode>,
    /// `-mg`.
    pub main_gpu: Vec<i32>,
    /// `-nkvo`.
    pub no_kv_offload: Vec<bool>,
    /// `-fa`.
    pub flash_attn: Vec<FlashAttn>,
    /// `-ts`.
    pub tensor_split: Vec<Vec<f32>>,
    /// `-ot`: each entry is one set of overrides (an empty set = none).
    pub tensor_buft_overrides: Vec<Vec<TensorBuftOverride>>,
    /// `-lm` (older llama-bench's `-mmp 0/1` is `none`/`mmap`).
    pub load_mode: Vec<LoadMode>,
    /// `-lzm`.
    pub lazy_mode: Vec<LazyMode>,
    /// `-embd`.
    pub embeddings: Vec<bool>,
    /// `-nopo`.
    pub no_op_offload: Vec<bool>,
    /// `--no-host`.
    pub no_host: Vec<bool>,
    /// `--repack`.
    pub repack: Vec<bool>,
    /// `-dev`.
    pub devices: Vec<DeviceSelection>,
    /// `-fitt`, MiB to leave free per device (0 = no fit).
    pub fit_target: Vec<u64>,
    /// `-fitc`, smallest context the fit may choose (0 = no fit).
    pub fit_min_ctx: Vec<u32>,
}

impl Default for Grid {
    fn default() -> Self {
        let mp = ModelParams::default();
        Grid {
            models: Vec::new(),
            n_prompt: vec![512],
            n_gen: vec![128],
            n_pg: Vec::new(),
            n_depth: vec![0],
            n_batch: vec![2048],
            n_ubatch: vec![512],
            type_k: vec![GgmlType::F16],
            type_v: vec![GgmlType::F16],
            n_threads: vec![crate::system::default_threads() as u32],
            cpu_mask: vec!["0x0".into()],
            cpu_strict: vec![false],
            poll: vec![50],
            n_gpu_layers: vec![mp.n_gpu_layers],
            n_cpu_moe: vec![mp.n_cpu_moe],
            split_mode: vec![mp.split_mode],
            main_gpu: vec![mp.main_gpu],
            no_kv_offload: vec![false],
            flash_attn: vec![FlashAttn::Auto],
            tensor_split: vec![Vec::new()],
            tensor_buft_overrides: vec![Vec::new()],
            load_mode: vec![mp.load_mode],
            lazy_mode: vec![mp.lazy_mode],
            embeddings: vec![false],
            no_op_offload: vec![false],
            no_host: vec![mp.no_host],
            repack: vec![mp.repack],
            devices: vec![mp.devices],
            fit_target: vec![mp.fit_target_mib],
            fit_min_ctx: vec![mp.fit_min_ctx],
        }
    }
}

/// Every combination of an item of `acc` with a value of `values`, `acc` varying slowest: one
/// level of a nested loop, so expanding parameter after parameter yields llama-bench's order.
fn expand<A: Clone, V>(acc: Vec<A>, values: &[V], set: impl Fn(&mut A, &V)) -> Vec<A> {
    let mut out = Vec::with_capacity(acc.len() * values.len());
    for a in &acc {
        for v in values {
            let mut next = a.clone();
            set(&mut next, v);
            out.push(next);
        }
    }
    out
}

impl Grid {
    /// A grid over one model with llama-bench's defaults.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Grid { models: vec![model.into()], ..Grid::default() }
    }

    /// Checks device names and override buffer types against the backend registry before
    /// anything runs, as llama-bench does, and spells device names as the registry does (the
    /// records show those).
    ///
    /// # Errors
    /// [`ParamError::Unavailable`] naming the first device or buffer type the registry lacks.
    pub fn check_against_registry(&mut self, backend: &crate::Backend) -> Result<(), ParamError> {
        for d in &mut self.devices {
            *d = d.canonical(backend).map_err(|source| ParamError::Unavailable {
                param: "-dev",
                value: d.to_string(),
                source: Box::new(source),
            })?;
        }
        for o in self.tensor_buft_overrides.iter().flatten() {
            o.validate(backend).map_err(|source| ParamError::Unavailable {
                param: "-ot",
                value: format!("{}={}", o.pattern, o.buffer_type),
                source: Box::new(source),
            })?;
        }
        Ok(())
    }

    /// The model-level parameter sets, in llama-bench's loop order (fit target, fit context,
    /// ngl, ncmoe, sm, lm, lzm, mg, dev, ts, ot, no-host, repack).
    fn model_params(&self) -> Vec<ModelParams> {
        let mut mps = vec![ModelParams::default()];
        mps = expand(mps, &self.fit_target, |m, v| m.fit_target_mib = *v);
        mps = expand(mps, &self.fit_min_ctx, |m, v| m.fit_min_ctx = *v);
        mps = expand(mps, &self.n_gpu_layers, |m, v| m.n_gpu_layers = *v);
        mps = expand(mps, &self.n_cpu_moe, |m, v| m.n_cpu_moe = *v);
        mps = expand(mps, &self.split_mode, |m, v| m.split_mode = *v);
        mps = expand(mps, &self.load_mode, |m, v| m.load_mode = *v);
        mps = expand(mps, &self.lazy_mode, |m, v| m.lazy_mode = *v);
        mps = expand(mps, &self.main_gpu, |m, v| m.main_gpu = *v);
        mps = expand(mps, &self.devices, |m, v| m.devices = v.clone());
        mps = expand(mps, &self.tensor_split, |m, v| m.tensor_split = v.clone());
        mps = expand(mps, &self.tensor_buft_overrides, |m, v| m.tensor_buft_overrides = v.clone());
        mps = expand(mps, &self.no_host, |m, v| m.no_host = *v);
        expand(mps, &self.repack, |m, v| m.repack = *v)
    }

    /// The grid points, in llama-bench's order: model-level parameters outermost (so a loaded
    /// model serves every point that shares them), then context and thread parameters, then
    /// depth, then the tests (pp sizes, tg sizes, pg pairs).
    ///
    /// # Errors
    /// [`ParamError`] for an unparsable CPU mask or an empty grid.
    pub fn points(&self) -> Result<Vec<Point>, ParamError> {
        let masks: Vec<Option<CpuMask>> = self
            .cpu_mask
            .iter()
            .map(|m| {
                let mask = CpuMask::parse(m).map_err(|e| ParamError::Parse {
                    param: "cpu_mask".into(),
                    value: m.clone(),
                    reason: e.to_string(),
                })?;
                Ok(if mask.cpus().is_empty() { None } else { Some(mask) })
            })
            .collect::<Result<_, ParamError>>()?;
        let mut tests = Vec::new();
        for &d in &self.n_depth {
            tests.extend(self.n_prompt.iter().filter(|&&p| p > 0).map(|&p| Test::pp(p).at_depth(d)));
            tests.extend(self.n_gen.iter().filter(|&&g| g > 0).map(|&g| Test::tg(g).at_depth(d)));
            tests.extend(self.n_pg.iter().filter(|&&(p, g)| p > 0 || g > 0).map(|&(p, g)| Test::pg(p, g).at_depth(d)));
        }
        let template = Point {
            model: PathBuf::new(),
            model_params: ModelParams::default(),
            n_batch: 0,
            n_ubatch: 0,
            type_k: GgmlType::F16,
            type_v: GgmlType::F16,
            flash_attn: FlashAttn::Auto,
            no_kv_offload: false,
            embeddings: false,
            no_op_offload: false,
            n_threads: 0,
            cpu_mask: None,
            cpu_strict: false,
            poll: 0,
            test: Test::pp(0),
        };
        if let Some(t) = tests.iter().find(|t| t.n_tokens() + u64::from(t.n_depth) > i32::MAX as u64) {
            return Err(ParamError::Parse {
                param: "-p/-n/-pg/-d".into(),
                value: t.name(),
                reason: "prompt, generated and depth tokens add up to more than a context can hold (2^31-1)".into(),
            });
        }
        let lens = [
            self.models.len(),
            self.model_params().len(),
            self.embeddings.len(),
            self.no_op_offload.len(),
            self.n_batch.len(),
            self.n_ubatch.len(),
            self.type_k.len(),
            self.type_v.len(),
            self.no_kv_offload.len(),
            self.flash_attn.len(),
            self.n_threads.len(),
            masks.len(),
            self.cpu_strict.len(),
            self.poll.len(),
            tests.len(),
        ];
        // Counted before anything is expanded: a few short ranges can span more points than
        // memory holds.
        let n = lens.iter().try_fold(1usize, |acc, &l| acc.checked_mul(l));
        if !matches!(n, Some(n) if n <= MAX_GRID_POINTS) {
            return Err(ParamError::TooLarge(format!(
                "the grid spans {} points; at most {MAX_GRID_POINTS}",
                n.map_or("over 2^64".to_string(), |n| n.to_string())
            )));
        }
        let mut out = expand(vec![template], &self.models, |p, v| p.model = v.clone());
        out = expand(out, &self.model_params(), |p, v| p.model_params = v.clone());
        out = expand(out, &self.embeddings, |p, v| p.embeddings = *v);
        out = expand(out, &self.no_op_offload, |p, v| p.no_op_offload = *v);
        out = expand(out, &self.n_batch, |p, v| p.n_batch = *v);
        out = expand(out, &self.n_ubatch, |p, v| p.n_ubatch = *v);
        out = expand(out, &self.type_k, |p, v| p.type_k = *v);
        out = expand(out, &self.type_v, |p, v| p.type_v = *v);
        out = expand(out, &self.no_kv_offload, |p, v| p.no_kv_offload = *v);
        out = expand(out, &self.flash_attn, |p, v| p.flash_attn = *v);
        out = expand(out, &self.n_threads, |p, v| p.n_threads = *v);
        out = expand(out, &masks, |p, v| p.cpu_mask = v.clone());
        out = expand(out, &self.cpu_strict, |p, v| p.cpu_strict = *v);
        out = expand(out, &self.poll, |p, v| p.poll = *v);
        out = expand(out, &tests, |p, v| p.test = *v);
        if out.is_empty() {
            return Err(ParamError::Empty(if self.models.is_empty() {
                "no model given".into()
            } else if tests.is_empty() {
                "every test size is 0".into()
            } else {
                "a parameter has an empty list of values".into()
            }));
        }
        Ok(out)
    }
}

/// The most values one list flag may hold, ranges expanded.
pub const MAX_LIST_VALUES: usize = 10_000;

/// The most points a grid may span.
pub const MAX_GRID_POINTS: usize = 100_000;

/// `first, first + step, ...` up to `last`, or `None` when that is more than
/// [`MAX_LIST_VALUES`] values.
fn span(first: i64, last: i64, step: i64) -> Option<impl Iterator<Item = i64>> {
    let count = (i128::from(last) - i128::from(first)) / i128::from(step) + 1;
    (count <= MAX_LIST_VALUES as i128).then(|| (0..count as i64).map(move |k| first + k * step))
}

/// Parses a llama-bench integer list: comma separated values and ranges `first-last`,
/// `first-last+step`, `first-last*mult` (e.g. `1,2,4-8+2,16-64*2`).
///
/// # Errors
/// [`ParamError::Parse`] naming the parameter.
pub fn parse_int_list(param: &str, s: &str) -> Result<Vec<i64>, ParamError> {
    let err = |value: &str, reason: &str| ParamError::Parse {
        param: param.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(err(s, "empty item"));
        }
        // A leading '-' is a negative number, not a range.
        let range_at = item.char_indices().skip(1).find(|&(_, c)| c == '-').map(|(i, _)| i);
        let Some(dash) = range_at else {
            out.push(item.parse::<i64>().map_err(|_| err(item, "not an integer"))?);
            continue;
        };
        let first: i64 = item[..dash].parse().map_err(|_| err(item, "range start is not an integer"))?;
        let rest = &item[dash + 1..];
        let (last, step) = if let Some((l, st)) = rest.split_once('+') {
            (l, Some(('+', st)))
        } else if let Some((l, st)) = rest.split_once('*') {
            (l, Some(('*', st)))
        } else {
            (rest, None)
        };
        let last: i64 = last.parse().map_err(|_| err(item, "range end is not an integer"))?;
        if last < first {
            return Err(err(item, "range end is below its start"));
        }
        let too_many = || err(item, &format!("a list holds at most {MAX_LIST_VALUES} values"));
        // The values a range spans are counted before any is stored, with checked arithmetic:
        // `1-9223372036854775807` is refused, not expanded.
        let values: Vec<i64> = match step {
            None => span(first, last, 1).ok_or_else(too_many)?.collect(),
            Some(('+', st)) => {
                let st: i64 = st.parse().map_err(|_| err(item, "step is not an integer"))?;
                if st <= 0 {
                    return Err(err(item, "step must be > 0"));
                }
                span(first, last, st).ok_or_else(too_many)?.collect()
            }
            Some((_, m)) => {
                let m: i64 = m.parse().map_err(|_| err(item, "multiplier is not an integer"))?;
                if m <= 1 || first <= 0 {
                    return Err(err(item, "multiplier must be > 1 and start > 0"));
                }
                // At most 63 values: each is at least twice the one before.
                std::iter::successors(Some(first), |&v| v.checked_mul(m)).take_while(|&v| v <= last).collect()
            }
        };
        if out.len() + values.len() > MAX_LIST_VALUES {
            return Err(too_many());
        }
        out.extend(values);
    }
    Ok(out)
}

/// [`parse_int_list`] for non-negative values that fit in u32.
///
/// # Errors
/// [`ParamError::Parse`].
pub fn parse_u32_list(param: &str, s: &str) -> Result<Vec<u32>, ParamError> {
    parse_int_list(param, s)?
        .into_iter()
        .map(|v| {
            u32::try_from(v).map_err(|_| ParamError::Parse {
                param: param.into(),
                value: v.to_string(),
                reason: "must be between 0 and 4294967295".into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_llama_bench_ranges() {
        assert_eq!(parse_int_list("t", "1,2,4").unwrap(), vec![1, 2, 4]);
        assert_eq!(parse_int_list("t", "1-4").unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(parse_int_list("t", "8-32+8").unwrap(), vec![8, 16, 24, 32]);
        assert_eq!(parse_int_list("b", "64-1024*4").unwrap(), vec![64, 256, 1024]);
        assert_eq!(parse_int_list("ngl", "-1,0").unwrap(), vec![-1, 0]);
        assert!(parse_int_list("t", "4-1").is_err());
        assert!(parse_int_list("t", "1-8*1").is_err());
        assert!(parse_int_list("t", "x").is_err());
        assert!(parse_u32_list("p", "-5").is_err());
    }

    #[test]
    fn huge_ranges_are_refused_before_they_are_expanded() {
        assert_eq!(parse_int_list("p", "9223372036854775806-9223372036854775807").unwrap().len(), 2);
        assert_eq!(parse_int_list("p", "1-9223372036854775807*2").unwrap().len(), 63);
        assert_eq!(parse_int_list("p", "1-10000").unwrap().len(), MAX_LIST_VALUES);
        for huge in ["1-9223372036854775807", "-9223372036854775808-9223372036854775807+1", "1-10001", "1-5000,1-5001"]
        {
            let e = parse_int_list("p", huge).unwrap_err().to_string();
            assert!(e.contains("at most 10000 values"), "{huge}: {e}");
        }
    }

    #[test]
    fn grids_too_large_or_too_long_for_a_context_are_refused() {
        let wide = Grid { n_prompt: (1..=1000).collect(), n_threads: (1..=1000).collect(), ..Grid::new("m.gguf") };
        assert!(matches!(wide.points(), Err(ParamError::TooLarge(_))));
        let long = Grid { n_prompt: vec![u32::MAX], n_gen: vec![0], ..Grid::new("m.gguf") };
        assert!(long.points().unwrap_err().to_string().contains("2^31-1"));
        let pg = Grid { n_prompt: vec![0], n_gen: vec![0], n_pg: vec![(u32::MAX, 1)], ..Grid::new("m.gguf") };
        assert!(pg.points().is_err());
    }

    #[test]
    fn grid_is_cartesian_in_llama_bench_order() {
        let g = Grid {
            n_prompt: vec![16, 32],
            n_gen: vec![8],
            n_pg: vec![(16, 8)],
            n_threads: vec![1, 2],
            ..Grid::new("m.gguf")
        };
        let pts = g.points().unwrap();
        assert_eq!(pts.len(), 2 * 4);
        let names: Vec<String> = pts.iter().take(4).map(|p| p.test.name()).collect();
        assert_eq!(names, ["pp16", "pp32", "tg8", "pp16+tg8"]);
        assert_eq!(pts[0].n_threads, 1);
        assert_eq!(pts[4].n_threads, 2);
        assert_eq!(Test::pp(512).at_depth(1024).name(), "pp512 @ d1024");
        assert!(matches!(
            Grid { n_prompt: vec![0], n_gen: vec![0], ..Grid::new("m") }.points(),
            Err(ParamError::Empty(_))
        ));
        assert!(Grid { cpu_mask: vec!["zz".into()], ..Grid::new("m") }.points().is_err());
    }
}

//! Prompt-processing / token-generation measurement with llama-bench's methodology.
//!
//! A [`Grid`] lists values for every parameter llama-bench sweeps; its cartesian product is a
//! list of [`Point`]s. A [`Sweep`] runs them one by one — an iterator of [`BenchRecord`]s, so
//! progress and partial results are available while it runs — reusing loaded models across
//! points, recording a failing point with its error and going on. Records carry llama-bench's
//! fields plus build, system and reproducibility information; [`output`] writes them in
//! llama-bench's md/csv/json/jsonl/sql formats.
//!
//! ```no_run
//! use benchkit::bench::{Grid, RunConfig, Sweep};
//! let backend = benchkit::Backend::init()?;
//! let grid = Grid { n_threads: vec![1, 2], ..Grid::new("model.gguf") };
//! for record in Sweep::new(&backend, &grid, RunConfig::default())? {
//!     println!("{} {:.2} t/s", record.test, record.avg_ts);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod measure;
pub mod output;
mod params;
mod record;
#[cfg(test)]
mod record_fields_tests;
mod run;
mod runner;
mod supervised;
mod syntax;

pub use measure::Measurer;
pub use params::{parse_int_list, parse_u32_list, Grid, ParamError, Point, RunConfig, Test};
pub use record::{field, field_type, BenchRecord, Field, FieldType, Status, FIELDS, LLAMA_BENCH_FIELDS};
pub use run::{BenchConfig, BenchRun};
pub use runner::{BenchError, Progress, Sweep};
pub(crate) use supervised::run_job;
pub use supervised::SupervisedSweep;
pub use syntax::{
    parse_bool_list, parse_device_lists, parse_fit_ctx, parse_fit_targets, parse_lazy_modes, parse_load_modes,
    parse_numa, parse_tensor_overrides,
};

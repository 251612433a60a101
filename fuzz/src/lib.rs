//! The checks behind the fuzz targets (fuzz_targets/*.rs), shared with the regression test
//! (tests/fuzz_regressions.rs), which includes these files by path and replays every kept
//! input through the same checks in the normal test suite.

pub mod checks;
pub mod heap;
pub mod split;

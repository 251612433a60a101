//! See [`benchkit_fuzz::checks::bench_args`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| benchkit_fuzz::checks::bench_args(data));

//! See [`benchkit_fuzz::checks::sse`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| benchkit_fuzz::checks::sse(data));

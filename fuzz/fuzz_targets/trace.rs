//! See [`benchkit_fuzz::checks::trace`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| benchkit_fuzz::checks::trace(data));

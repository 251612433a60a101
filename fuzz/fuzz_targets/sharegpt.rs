//! See [`benchkit_fuzz::checks::sharegpt`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| benchkit_fuzz::checks::sharegpt(data));

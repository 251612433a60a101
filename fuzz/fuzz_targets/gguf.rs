//! See [`benchkit_fuzz::checks::gguf`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| benchkit_fuzz::checks::gguf(data));

//! Raw bytes into the KL-divergence base reader (header, tokens, every chunk's records): no
//! panic, heap bounded by the input's size, and a file it accepts is exactly what the writer
//! produces from what was read.
#![no_main]

use benchkit::perplexity::{KlBaseHeader, KlBaseWriter};
use benchkit_fuzz::heap::bounded;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let read = bounded(data.len(), || {
        let mut r = data;
        let h = KlBaseHeader::read_from(&mut r, data.len() as u64, "fuzz")?;
        let (mut records, mut chunk) = (Vec::new(), Vec::new());
        for _ in 0..h.n_chunk {
            h.read_chunk(&mut r, &mut chunk)?;
            records.extend_from_slice(&chunk);
        }
        assert!(r.is_empty(), "{} bytes left after the last chunk", r.len());
        Ok::<_, benchkit::perplexity::PerplexityError>((h, records))
    });
    let Ok((h, records)) = read else { return };
    assert_eq!(h.expected_bytes(), data.len() as u64);
    assert_eq!(h.tokens.len() as u64, u64::from(h.n_chunk) * u64::from(h.n_ctx));
    assert!(h.tokens.iter().all(|&t| t >= 0 && (t as u32) < h.n_vocab));
    let mut w = KlBaseWriter::new(Vec::new(), "fuzz", h.n_ctx, h.n_vocab, h.n_chunk, &h.tokens)
        .unwrap_or_else(|e| panic!("the writer refuses a header the reader accepted: {e}"));
    w.write_records(&records).unwrap();
    let out = w.finish().unwrap();
    assert!(out == data, "re-written file differs");
});

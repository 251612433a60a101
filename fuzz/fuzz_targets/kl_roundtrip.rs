//! Structure-aware: an arbitrary KL-divergence base (header, tokens, records, written in
//! arbitrary pieces) written with `KlBaseWriter`, then read back: the same value. A header or
//! record count the writer refuses is a typed error, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use benchkit::perplexity::{record_len, scored_per_chunk, KlBaseHeader, KlBaseWriter, PerplexityError};
use libfuzzer_sys::fuzz_target;

/// Record values written at most (larger shapes are only checked up to the header).
const MAX_VALUES: u64 = 1 << 16;

#[derive(Debug, Arbitrary)]
struct Desc {
    /// Use the values as given (mostly refused) instead of folding them into valid ranges.
    raw: bool,
    n_ctx: u32,
    n_vocab: u32,
    n_chunk: u32,
    tokens: Vec<i32>,
    records: Vec<u16>,
    /// Lengths of the pieces the records are written in.
    pieces: Vec<u16>,
    /// Write fewer (or more) record values than the header describes.
    miscount: Option<i16>,
}

fuzz_target!(|d: Desc| {
    let (n_ctx, n_vocab, n_chunk) = if d.raw {
        (d.n_ctx, d.n_vocab, d.n_chunk)
    } else {
        (4 + d.n_ctx % 200, 1 + d.n_vocab % 600, 1 + d.n_chunk % 4)
    };
    let n_tokens = u64::from(n_ctx) * u64::from(n_chunk);
    let tokens: Vec<i32> = if d.raw || n_tokens > MAX_VALUES {
        d.tokens
    } else {
        let src = if d.tokens.is_empty() { vec![0] } else { d.tokens };
        (0..n_tokens as usize).map(|i| src[i % src.len()].rem_euclid(n_vocab as i32)).collect()
    };
    let mut w = match KlBaseWriter::new(Vec::new(), "fuzz", n_ctx, n_vocab, n_chunk, &tokens) {
        Ok(w) => w,
        Err(PerplexityError::KlInvalid { .. }) => return,
        Err(e) => panic!("untyped refusal: {e:?}"),
    };
    let per_chunk = scored_per_chunk(n_ctx) as u64 * record_len(n_vocab) as u64;
    let expected = u64::from(n_chunk) * per_chunk;
    let target = match d.miscount {
        None => expected,
        Some(k) => expected.saturating_add_signed(i64::from(k)),
    };
    if target > MAX_VALUES {
        return;
    }
    let src = if d.records.is_empty() { vec![0x3c00] } else { d.records };
    let records: Vec<u16> = (0..target as usize).map(|i| src[i % src.len()]).collect();
    let mut at = 0usize;
    for p in d.pieces.iter().map(|&p| usize::from(p)).chain([usize::MAX]) {
        let end = at.saturating_add(p).min(records.len());
        match w.write_records(&records[at..end]) {
            Ok(()) => at = end,
            Err(PerplexityError::KlInvalid { .. }) => {
                // Only more values than the header describes are refused, and nothing is written.
                assert!(end as u64 > expected);
                break;
            }
            Err(e) => panic!("untyped refusal: {e:?}"),
        }
        if at == records.len() {
            break;
        }
    }
    let out = match w.finish() {
        Ok(out) => out,
        Err(PerplexityError::KlInvalid { .. }) => {
            assert_ne!(at as u64, expected, "a complete file was refused");
            return;
        }
        Err(e) => panic!("untyped refusal: {e:?}"),
    };
    assert_eq!(at as u64, expected);
    let records = &records[..at];
    let mut r = &out[..];
    let h = KlBaseHeader::read_from(&mut r, out.len() as u64, "fuzz")
        .unwrap_or_else(|e| panic!("the writer's output does not read back: {e}"));
    assert_eq!((h.n_ctx, h.n_vocab, h.n_chunk), (n_ctx, n_vocab, n_chunk));
    assert_eq!(h.tokens, tokens);
    assert_eq!(h.expected_bytes(), out.len() as u64);
    let (mut back, mut chunk) = (Vec::new(), Vec::new());
    for _ in 0..h.n_chunk {
        h.read_chunk(&mut r, &mut chunk).unwrap();
        back.extend_from_slice(&chunk);
    }
    assert!(r.is_empty());
    assert!(back == records, "records changed");
});

//! llama-perplexity's `--kl-divergence-base` file: the base model's log-probabilities.
//!
//! Layout (all little-endian, as llama-perplexity writes it on every platform it runs on):
//!
//! | field | type |
//! | --- | --- |
//! | magic `_logits_` | 8 bytes |
//! | `n_ctx` (chunk length) | i32 |
//! | `n_vocab` | i32 |
//! | `n_chunk` | i32 |
//! | tokens of the evaluated chunks (`n_chunk * n_ctx`, without the BOS substitution) | i32 each |
//! | per chunk, per scored position (`n_ctx - 1 - n_ctx/2` of them): a record of `nv = 2*((n_vocab+1)/2) + 4` u16 | |
//!
//! A record starts with two f32 (`scale`, `min_log_prob`) stored as four u16, then one u16 per
//! vocabulary entry: `log p = scale * q + min_log_prob` (log-probabilities below
//! `max - 16` are clamped), then one u16 of padding when `n_vocab` is odd.

use super::PerplexityError;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The magic bytes that start a base file.
pub const MAGIC: &[u8; 8] = b"_logits_";

/// u16 values per record for a vocabulary of `n_vocab`.
pub fn record_len(n_vocab: u32) -> usize {
    2 * (n_vocab as usize).div_ceil(2) + 4
}

/// Scored positions per chunk of `n_ctx` tokens (0 for chunks too short to score).
pub fn scored_per_chunk(n_ctx: u32) -> usize {
    n_ctx.saturating_sub(1 + n_ctx / 2) as usize
}

/// The header and tokens of a base file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KlBaseHeader {
    /// The file.
    pub path: PathBuf,
    /// Chunk length the base model was evaluated with (llama-perplexity `-c`).
    pub n_ctx: u32,
    /// The base model's vocabulary size.
    pub n_vocab: u32,
    /// Chunks stored.
    pub n_chunk: u32,
    /// Size of the whole file in bytes.
    pub file_bytes: u64,
    /// The evaluated tokens (`n_chunk * n_ctx`).
    #[serde(skip, default)]
    pub tokens: Vec<i32>,
}

impl KlBaseHeader {
    /// Bytes before the first record.
    pub fn header_bytes(&self) -> u64 {
        8 + 12 + 4 * u64::from(self.n_chunk) * u64::from(self.n_ctx)
    }

    /// Bytes of one chunk's records.
    pub fn chunk_bytes(&self) -> u64 {
        (scored_per_chunk(self.n_ctx) as u64).saturating_mul(record_len(self.n_vocab) as u64 * 2)
    }

    /// The size a complete file with this header has (saturating: no file has `u64::MAX` bytes).
    pub fn expected_bytes(&self) -> u64 {
        self.header_bytes().saturating_add(u64::from(self.n_chunk).saturating_mul(self.chunk_bytes()))
    }

    /// Reads and checks the header, the tokens and the file's size.
    ///
    /// # Errors
    /// [`PerplexityError::Io`], [`PerplexityError::NotAKlBase`] for a file without the magic,
    /// [`PerplexityError::KlTruncated`] for a file shorter than its header says,
    /// [`PerplexityError::KlInvalid`] for impossible header values, tokens outside the
    /// vocabulary or trailing bytes.
    pub fn read(path: impl AsRef<Path>) -> Result<(Self, BufReader<File>), PerplexityError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| PerplexityError::Io { path: path.clone(), source };
        let file = File::open(&path).map_err(io)?;
        let file_bytes = file.metadata().map_err(io)?.len();
        let mut r = BufReader::with_capacity(1 << 20, file);
        let header = Self::read_from(&mut r, file_bytes, path)?;
        Ok((header, r))
    }

    /// Reads and checks the header and tokens of a base file of `file_bytes` bytes from `r`,
    /// positioned at its start, and leaves `r` at the first record; `path` names it in errors.
    /// [`read_chunk`](Self::read_chunk) then reads the records.
    ///
    /// # Errors
    /// As [`read`](Self::read); [`PerplexityError::Io`] also when `r` ends early.
    pub fn read_from(r: &mut impl Read, file_bytes: u64, path: impl Into<PathBuf>) -> Result<Self, PerplexityError> {
        let path = path.into();
        let io = |source| PerplexityError::Io { path: path.clone(), source };
        let truncated = |expected: u64| PerplexityError::KlTruncated {
            path: path.clone(),
            expected_bytes: expected,
            actual_bytes: file_bytes,
        };
        let mut magic = [0u8; 8];
        if file_bytes < 8 || r.read_exact(&mut magic).is_err() || &magic != MAGIC {
            return Err(PerplexityError::NotAKlBase { path: path.clone() });
        }
        if file_bytes < 20 {
            return Err(truncated(20));
        }
        let mut h = [0u8; 12];
        r.read_exact(&mut h).map_err(io)?;
        let field = |i: usize| i32::from_le_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]);
        let (n_ctx, n_vocab, n_chunk) = (field(0), field(1), field(2));
        let invalid = |reason: String| PerplexityError::KlInvalid { path: path.clone(), reason };
        if let Some(reason) = check_shape(n_ctx.into(), n_vocab.into(), n_chunk.into()) {
            return Err(invalid(reason));
        }
        let mut header = KlBaseHeader {
            path: path.clone(),
            n_ctx: n_ctx as u32,
            n_vocab: n_vocab as u32,
            n_chunk: n_chunk as u32,
            file_bytes,
            tokens: Vec::new(),
        };
        // Checked before the tokens are allocated: they then fit in the file.
        let expected = header.expected_bytes();
        if file_bytes < expected {
            return Err(truncated(expected));
        }
        if file_bytes > expected {
            return Err(invalid(format!(
                "{file_bytes} bytes, {} more than its header (n_ctx {n_ctx}, n_vocab {n_vocab}, n_chunk {n_chunk}) describes",
                file_bytes - expected
            )));
        }
        let n_tokens = header.n_chunk as usize * header.n_ctx as usize;
        let mut buf = vec![0u8; n_tokens * 4];
        r.read_exact(&mut buf).map_err(io)?;
        header.tokens = buf.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some((i, t)) = header.tokens.iter().enumerate().find(|(_, &t)| t < 0 || t >= n_vocab) {
            return Err(invalid(format!("token {t} at index {i} is outside the vocabulary (0..{n_vocab})")));
        }
        Ok(header)
    }

    /// Reads the next chunk's records (`scored_per_chunk(n_ctx)` records of
    /// `record_len(n_vocab)` u16 each) from `r`, positioned after the header or the previous
    /// chunk, into `out`.
    ///
    /// # Errors
    /// [`PerplexityError::Io`] when `r` fails or ends early.
    pub fn read_chunk(&self, r: &mut impl Read, out: &mut Vec<u16>) -> Result<(), PerplexityError> {
        read_chunk(r, scored_per_chunk(self.n_ctx), record_len(self.n_vocab), &self.path, out)
    }
}

/// Why a header with these values is impossible, if it is; the values are as stored (i32).
fn check_shape(n_ctx: i64, n_vocab: i64, n_chunk: i64) -> Option<String> {
    let max = i64::from(i32::MAX);
    if !(4..=max).contains(&n_ctx) {
        return Some(format!("chunk length n_ctx = {n_ctx} (must be >= 4)"));
    }
    if !(1..=max).contains(&n_vocab) {
        return Some(format!("n_vocab = {n_vocab}"));
    }
    if !(1..=max).contains(&n_chunk) {
        return Some(format!("n_chunk = {n_chunk}"));
    }
    None
}

/// Reads the records of one chunk.
pub(crate) fn read_chunk(
    r: &mut impl Read,
    n_rows: usize,
    nv: usize,
    path: &Path,
    out: &mut Vec<u16>,
) -> Result<(), PerplexityError> {
    let mut bytes = vec![0u8; n_rows * nv * 2];
    r.read_exact(&mut bytes).map_err(|source| PerplexityError::Io { path: path.to_path_buf(), source })?;
    out.clear();
    out.extend(bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])));
    Ok(())
}

/// Writes a base file as it is produced: the header and tokens, then each chunk's records.
pub struct KlBaseWriter<W: Write = BufWriter<File>> {
    /// The file (or the name given to [`KlBaseWriter::new`]).
    pub path: PathBuf,
    w: W,
    /// u16 values of records the header describes, and written so far.
    expected: u64,
    written: u64,
}

impl KlBaseWriter {
    /// Creates the file at `path` and writes the header and `tokens`.
    ///
    /// # Errors
    /// As [`KlBaseWriter::new`] (checked before the file is created), and
    /// [`PerplexityError::Io`] when it cannot be created or written.
    pub fn create(
        path: &Path,
        n_ctx: u32,
        n_vocab: u32,
        n_chunk: u32,
        tokens: &[i32],
    ) -> Result<Self, PerplexityError> {
        check_header(path, n_ctx, n_vocab, n_chunk, tokens)?;
        let file = File::create(path).map_err(|source| PerplexityError::Io { path: path.to_path_buf(), source })?;
        KlBaseWriter::new(BufWriter::with_capacity(1 << 20, file), path, n_ctx, n_vocab, n_chunk, tokens)
    }
}

impl<W: Write> KlBaseWriter<W> {
    /// Writes the header and `tokens` (`n_chunk * n_ctx` of them) to `w`; `path` names it in
    /// errors.
    ///
    /// # Errors
    /// [`PerplexityError::KlInvalid`] for a header the reader would refuse (`n_ctx` < 4, a zero
    /// `n_vocab` or `n_chunk`, a value above `i32::MAX`, a token count other than
    /// `n_chunk * n_ctx`, a token outside the vocabulary); [`PerplexityError::Io`] when `w` fails.
    pub fn new(
        mut w: W,
        path: impl Into<PathBuf>,
        n_ctx: u32,
        n_vocab: u32,
        n_chunk: u32,
        tokens: &[i32],
    ) -> Result<Self, PerplexityError> {
        let path = path.into();
        check_header(&path, n_ctx, n_vocab, n_chunk, tokens)?;
        let mut head = Vec::with_capacity(20 + tokens.len() * 4);
        head.extend_from_slice(MAGIC);
        for v in [n_ctx, n_vocab, n_chunk] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        for t in tokens {
            head.extend_from_slice(&t.to_le_bytes());
        }
        w.write_all(&head).map_err(|source| PerplexityError::Io { path: path.clone(), source })?;
        let per_chunk = scored_per_chunk(n_ctx) as u64 * record_len(n_vocab) as u64;
        Ok(KlBaseWriter { path, w, expected: u64::from(n_chunk) * per_chunk, written: 0 })
    }

    /// Appends records (whole records, `record_len(n_vocab)` u16 each, chunk after chunk).
    ///
    /// # Errors
    /// [`PerplexityError::KlInvalid`] for more records than the header describes;
    /// [`PerplexityError::Io`] when writing fails.
    pub fn write_records(&mut self, records: &[u16]) -> Result<(), PerplexityError> {
        let n = records.len() as u64;
        if self.written + n > self.expected {
            return Err(PerplexityError::KlInvalid {
                path: self.path.clone(),
                reason: format!("{} record values written, the header describes {}", self.written + n, self.expected),
            });
        }
        let mut bytes = Vec::with_capacity(records.len() * 2);
        for v in records {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.w.write_all(&bytes).map_err(|source| PerplexityError::Io { path: self.path.clone(), source })?;
        self.written += n;
        Ok(())
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// [`PerplexityError::KlInvalid`] when fewer records were written than the header
    /// describes (the file would be truncated); [`PerplexityError::Io`] when flushing fails.
    pub fn finish(mut self) -> Result<W, PerplexityError> {
        if self.written != self.expected {
            return Err(PerplexityError::KlInvalid {
                path: self.path.clone(),
                reason: format!("{} record values written, the header describes {}", self.written, self.expected),
            });
        }
        self.w.flush().map_err(|source| PerplexityError::Io { path: self.path.clone(), source })?;
        Ok(self.w)
    }
}

/// The reader's checks of a header, before it is written.
fn check_header(path: &Path, n_ctx: u32, n_vocab: u32, n_chunk: u32, tokens: &[i32]) -> Result<(), PerplexityError> {
    let invalid = |reason: String| Err(PerplexityError::KlInvalid { path: path.to_path_buf(), reason });
    if let Some(reason) = check_shape(n_ctx.into(), n_vocab.into(), n_chunk.into()) {
        return invalid(reason);
    }
    let n_tokens = u64::from(n_chunk) * u64::from(n_ctx);
    if tokens.len() as u64 != n_tokens {
        return invalid(format!("{} tokens for n_chunk {n_chunk} x n_ctx {n_ctx} = {n_tokens}", tokens.len()));
    }
    if let Some((i, t)) = tokens.iter().enumerate().find(|(_, &t)| t < 0 || t as u32 >= n_vocab) {
        return invalid(format!("token {t} at index {i} is outside the vocabulary (0..{n_vocab})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n_ctx: u32, n_vocab: u32, n_chunk: u32) -> (Vec<i32>, Vec<u16>) {
        let tokens = (0..n_ctx * n_chunk).map(|i| (i % n_vocab) as i32).collect();
        let n = n_chunk as usize * scored_per_chunk(n_ctx) * record_len(n_vocab);
        (tokens, (0..n).map(|i| i as u16).collect())
    }

    fn write(n_ctx: u32, n_vocab: u32, n_chunk: u32, tokens: &[i32], records: &[u16]) -> Vec<u8> {
        let mut w = KlBaseWriter::new(Vec::new(), "m", n_ctx, n_vocab, n_chunk, tokens).unwrap();
        w.write_records(records).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trip_in_memory() {
        let (n_ctx, n_vocab, n_chunk) = (8, 5, 3);
        let (tokens, records) = sample(n_ctx, n_vocab, n_chunk);
        let bytes = write(n_ctx, n_vocab, n_chunk, &tokens, &records);
        let mut r = &bytes[..];
        let h = KlBaseHeader::read_from(&mut r, bytes.len() as u64, "m").unwrap();
        assert_eq!((h.n_ctx, h.n_vocab, h.n_chunk, h.file_bytes), (n_ctx, n_vocab, n_chunk, bytes.len() as u64));
        assert_eq!(h.expected_bytes(), bytes.len() as u64);
        assert_eq!(h.tokens, tokens);
        let (mut all, mut chunk) = (Vec::new(), Vec::new());
        for _ in 0..n_chunk {
            h.read_chunk(&mut r, &mut chunk).unwrap();
            all.extend_from_slice(&chunk);
        }
        assert_eq!(all, records);
        assert!(r.is_empty());
    }

    #[test]
    fn file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.kld");
        let (tokens, records) = sample(6, 4, 2);
        let mut w = KlBaseWriter::create(&path, 6, 4, 2, &tokens).unwrap();
        w.write_records(&records).unwrap();
        w.finish().unwrap();
        let (h, mut r) = KlBaseHeader::read(&path).unwrap();
        assert_eq!(h.tokens, tokens);
        let mut chunk = Vec::new();
        h.read_chunk(&mut r, &mut chunk).unwrap();
        assert_eq!(chunk, records[..chunk.len()]);
    }

    #[test]
    fn writer_refuses_what_the_reader_would() {
        let bad = |n_ctx, n_vocab, n_chunk, tokens: &[i32]| {
            matches!(
                KlBaseWriter::new(Vec::new(), "m", n_ctx, n_vocab, n_chunk, tokens),
                Err(PerplexityError::KlInvalid { .. })
            )
        };
        assert!(bad(3, 5, 1, &[0, 0, 0]));
        assert!(bad(4, 0, 1, &[0; 4]));
        assert!(bad(4, 5, 0, &[]));
        assert!(bad(4, 5, 1, &[0; 3]));
        assert!(bad(4, 5, 1, &[0, 1, 5, 2]));
        assert!(bad(4, 5, 1, &[0, -1, 1, 2]));
        assert!(bad(1 << 31, 5, 1, &[]));
        let (tokens, records) = sample(4, 3, 1);
        let mut w = KlBaseWriter::new(Vec::new(), "m", 4, 3, 1, &tokens).unwrap();
        assert!(matches!(w.write_records(&[0; 7]), Ok(())));
        assert!(matches!(w.write_records(&records), Err(PerplexityError::KlInvalid { .. })));
        assert!(matches!(w.finish(), Err(PerplexityError::KlInvalid { .. })));
    }

    #[test]
    fn huge_header_is_refused_before_allocating() {
        let mut bytes = MAGIC.to_vec();
        for v in [i32::MAX, i32::MAX, i32::MAX] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        match KlBaseHeader::read_from(&mut &bytes[..], bytes.len() as u64, "m") {
            Err(PerplexityError::KlTruncated { expected_bytes, .. }) => assert_eq!(expected_bytes, u64::MAX),
            other => panic!("{other:?}"),
        }
        assert_eq!(scored_per_chunk(0), 0);
        assert_eq!(scored_per_chunk(4), 1);
    }

    #[test]
    fn bad_files() {
        let (tokens, records) = sample(4, 3, 1);
        let good = write(4, 3, 1, &tokens, &records);
        let read = |b: &[u8]| KlBaseHeader::read_from(&mut &b[..], b.len() as u64, "m");
        assert!(matches!(read(b"_logits"), Err(PerplexityError::NotAKlBase { .. })));
        assert!(matches!(read(b"_logitz_0123456789ab"), Err(PerplexityError::NotAKlBase { .. })));
        assert!(matches!(read(&good[..15]), Err(PerplexityError::KlTruncated { .. })));
        assert!(matches!(read(&good[..good.len() - 1]), Err(PerplexityError::KlTruncated { .. })));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(read(&long), Err(PerplexityError::KlInvalid { .. })));
        let mut bad_token = good.clone();
        bad_token[20..24].copy_from_slice(&7i32.to_le_bytes());
        assert!(matches!(read(&bad_token), Err(PerplexityError::KlInvalid { .. })));
        // A reader that ends before the size it was given is an I/O error, not a panic.
        assert!(matches!(
            KlBaseHeader::read_from(&mut &good[..24], good.len() as u64, "m"),
            Err(PerplexityError::Io { .. })
        ));
    }
}

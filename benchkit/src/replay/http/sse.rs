//! Incremental Server-Sent Events decoder.
//!
//! Bytes arrive in arbitrary pieces (an event may be split across TCP reads, several events
//! may share one read). [`SseDecoder::feed`] scans each piece in place and only copies the
//! bytes of a line that straddles two pieces and the `data:` payload of the event being
//! assembled, into buffers that are reused for the whole stream. Lines end with LF, CRLF or
//! a lone CR (also when the CR and LF arrive in different pieces).

use thiserror::Error;

/// The default cap on one line or one event's data (a stream that never ends a line is
/// malformed, not a reason to grow memory without bound).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 << 20;

/// Why a stream could not be decoded as SSE.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SseError {
    /// A line or an event's data grew past the configured cap.
    #[error("SSE line or event larger than {limit} bytes")]
    TooLarge {
        /// The cap, bytes.
        limit: usize,
    },
}

/// One dispatched event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field (empty when the event had none, i.e. a `message` event).
    pub event: &'a [u8],
    /// The `data:` lines joined with `\n` (one leading space after the colon removed).
    pub data: &'a [u8],
}

/// Incremental SSE decoder (see the module docs).
#[derive(Debug, Clone)]
pub struct SseDecoder {
    /// Part of a line carried over from the previous piece.
    line: Vec<u8>,
    /// Data of the event being assembled.
    data: Vec<u8>,
    /// Event type of the event being assembled.
    event: Vec<u8>,
    /// Whether the event being assembled has a `data` field.
    has_data: bool,
    /// The previous piece ended with CR: a LF at the start of the next one ends nothing.
    skip_lf: bool,
    max: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder with the default size cap ([`DEFAULT_MAX_EVENT_BYTES`]).
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A decoder that fails when one line or one event's data exceeds `max_bytes`.
    pub fn with_limit(max_bytes: usize) -> Self {
        Self { line: Vec::new(), data: Vec::new(), event: Vec::new(), has_data: false, skip_lf: false, max: max_bytes }
    }

    /// Feeds the next piece of the stream, calling `on_event` for every event it completes.
    ///
    /// # Errors
    /// [`SseError::TooLarge`] (converted into `E`) when a line or an event exceeds the cap, or
    /// the first error `on_event` returns (decoding stops there).
    pub fn feed<E: From<SseError>>(
        &mut self,
        piece: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = piece;
        if self.skip_lf && !rest.is_empty() {
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
            self.skip_lf = false;
        }
        while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
            let terminator = rest[i];
            if self.line.is_empty() {
                self.line_done(&rest[..i], &mut on_event)?;
            } else {
                if self.line.len() + i > self.max {
                    return Err(SseError::TooLarge { limit: self.max }.into());
                }
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..i]);
                let r = self.line_done(&line, &mut on_event);
                line.clear();
                self.line = line;
                r?;
            }
            rest = &rest[i + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    None => self.skip_lf = true,
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                }
            }
        }
        if !rest.is_empty() {
            if self.line.len() + rest.len() > self.max {
                return Err(SseError::TooLarge { limit: self.max }.into());
            }
            self.line.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Ends the stream: an unterminated last line and an event not yet followed by a blank
    /// line are dispatched (leniently: some servers omit the final blank line).
    ///
    /// # Errors
    /// As [`SseDecoder::feed`].
    pub fn finish<E: From<SseError>>(
        &mut self,
        mut on_event: impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut on_event)?;
        }
        self.line_done(b"", &mut on_event)
    }

    /// Resets the decoder for a new stream (buffers keep their capacity).
    pub fn reset(&mut self) {
        self.line.clear();
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.skip_lf = false;
    }

    fn line_done<E: From<SseError>>(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if line.is_empty() {
            if self.has_data {
                let r = on_event(SseEvent { event: &self.event, data: &self.data });
                self.data.clear();
                self.event.clear();
                self.has_data = false;
                return r;
            }
            self.event.clear();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // comment / keep-alive
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max {
                    return Err(SseError::TooLarge { limit: self.max }.into());
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            _ => {} // id, retry, unknown fields
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(pieces: &[&[u8]]) -> Vec<(String, String)> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let mut push = |e: SseEvent<'_>| -> Result<(), SseError> {
            out.push((String::from_utf8_lossy(e.event).into_owned(), String::from_utf8_lossy(e.data).into_owned()));
            Ok(())
        };
        for p in pieces {
            d.feed(p, &mut push).unwrap();
        }
        d.finish(&mut push).unwrap();
        out
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let stream: &[u8] = b"data: {\"a\":1}\r\n\r\n: ping\n\nevent: error\ndata: x\ndata: y\n\rdata:[DONE]\r\r";
        let whole = decode(&[stream]);
        assert_eq!(
            whole,
            vec![
                (String::new(), "{\"a\":1}".to_string()),
                ("error".to_string(), "x\ny".to_string()),
                (String::new(), "[DONE]".to_string()),
            ]
        );
        for i in 0..stream.len() {
            for j in i..stream.len() {
                assert_eq!(decode(&[&stream[..i], &stream[i..j], &stream[j..]]), whole, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn lenient_end_and_size_cap() {
        assert_eq!(decode(&[b"data: [DONE]"]), vec![(String::new(), "[DONE]".to_string())]);
        let mut d = SseDecoder::with_limit(8);
        let r = d.feed::<SseError>(b"data: 0123456789", |_| Ok(()));
        assert_eq!(r, Err(SseError::TooLarge { limit: 8 }));
    }
}

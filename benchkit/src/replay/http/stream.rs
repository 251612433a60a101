//! Interpreting an OpenAI-style completion stream: which events carry generated text, usage,
//! errors, and how failures are classified.

use super::super::Failure;
use super::sse::{SseDecoder, SseError};
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

/// Bytes of a body kept in failure messages.
pub(crate) const EXCERPT_BYTES: usize = 512;

/// One streamed chunk, borrowing from the event data (only `choices[0]` is decoded; other
/// choices and unknown fields are skipped without allocating).
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: FirstChoice<'a>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Default)]
struct FirstChoice<'a>(Option<Choice<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FirstChoice<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(FirstChoice(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<Choice<'a>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstChoice(first))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    /// `/v1/completions`.
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    /// `/v1/chat/completions`.
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Clone, Copy)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// What one SSE event meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventOutcome {
    /// Keep reading.
    Continue,
    /// `data: [DONE]`.
    Done,
}

/// Per-request stream state.
pub(crate) struct StreamState {
    /// First content chunk, ns after the run start.
    pub first_token_ns: Option<u64>,
    last_content_ns: u64,
    /// ITL samples.
    pub itl_ns: Vec<u64>,
    /// Chunks that carried content.
    pub content_chunks: u32,
    /// `usage.prompt_tokens`.
    pub prompt_tokens: Option<u32>,
    /// `usage.completion_tokens`.
    pub completion_tokens: Option<u32>,
    /// Received text (kept only when `collect_text`).
    pub text: String,
    collect_text: bool,
    /// `[DONE]` seen.
    pub done: bool,
    /// When `[DONE]` arrived.
    pub done_ns: Option<u64>,
    /// A `finish_reason` was seen.
    pub finished: bool,
    /// At least one SSE event was dispatched.
    pub any_event: bool,
}

impl StreamState {
    pub(crate) fn new(collect_text: bool, expected_tokens: u32) -> Self {
        Self {
            first_token_ns: None,
            last_content_ns: 0,
            itl_ns: Vec::with_capacity((expected_tokens as usize).min(4096)),
            content_chunks: 0,
            prompt_tokens: None,
            completion_tokens: None,
            text: String::new(),
            collect_text,
            done: false,
            done_ns: None,
            finished: false,
            any_event: false,
        }
    }

    /// Whether the stream reached a normal end.
    pub(crate) fn complete(&self) -> bool {
        self.done || self.finished
    }

    /// Handles one event whose bytes arrived at `now_ns`.
    pub(crate) fn on_event(&mut self, event: &[u8], data: &[u8], now_ns: u64) -> Result<EventOutcome, Failure> {
        self.any_event = true;
        if self.done {
            return Ok(EventOutcome::Done);
        }
        let trimmed = data.trim_ascii();
        if trimmed == b"[DONE]" {
            self.done = true;
            self.done_ns = Some(now_ns);
            return Ok(EventOutcome::Done);
        }
        if trimmed.is_empty() {
            return Ok(EventOutcome::Continue);
        }
        let chunk: Chunk<'_> = match serde_json::from_slice(trimmed) {
            Ok(c) => c,
            Err(e) => {
                if event == b"error" {
                    return Err(classify_error_text(&lossy_excerpt(trimmed)));
                }
                return Err(Failure::Stream {
                    detail: format!("invalid JSON in SSE data ({e}): {}", lossy_excerpt(trimmed)),
                });
            }
        };
        if let Some(err) = chunk.error {
            return Err(classify_error_value(&err));
        }
        if event == b"error" {
            return Err(classify_error_text(&lossy_excerpt(trimmed)));
        }
        if let Some(u) = chunk.usage {
            if let Some(p) = u.prompt_tokens {
                self.prompt_tokens = Some(saturate(p));
            }
            if let Some(c) = u.completion_tokens {
                self.completion_tokens = Some(saturate(c));
            }
        }
        if let Some(choice) = chunk.choices.0 {
            if choice.finish_reason.is_some() {
                self.finished = true;
            }
            let mut content = false;
            if let Some(t) = choice.text.as_deref().filter(|t| !t.is_empty()) {
                content = true;
                if self.collect_text {
                    self.text.push_str(t);
                }
            }
            if let Some(d) = &choice.delta {
                for t in [&d.reasoning_content, &d.reasoning, &d.content].into_iter().flatten() {
                    if !t.is_empty() {
                        content = true;
                        if self.collect_text {
                            self.text.push_str(t);
                        }
                    }
                }
            }
            if content {
                self.content_chunks += 1;
                match self.first_token_ns {
                    None => self.first_token_ns = Some(now_ns),
                    Some(_) => self.itl_ns.push(now_ns.saturating_sub(self.last_content_ns)),
                }
                self.last_content_ns = now_ns;
            }
        }
        Ok(EventOutcome::Continue)
    }
}

/// A response body on its way in: the SSE decoder feeding [`StreamState`], plus the first
/// bytes kept to classify a body that was not SSE at all.
pub(crate) struct StreamReader<'s> {
    state: &'s mut StreamState,
    decoder: SseDecoder,
    head: [u8; 256],
    head_len: usize,
}

/// A stream failure raised inside the decoder's callback.
struct StreamFailure(Failure);

impl From<SseError> for StreamFailure {
    fn from(e: SseError) -> Self {
        StreamFailure(Failure::Stream { detail: e.to_string() })
    }
}

impl<'s> StreamReader<'s> {
    pub(crate) fn new(state: &'s mut StreamState) -> Self {
        Self { state, decoder: SseDecoder::new(), head: [0; 256], head_len: 0 }
    }

    pub(crate) fn state(&self) -> &StreamState {
        self.state
    }

    /// The next piece of the body, arrived at `now_ns`.
    pub(crate) fn piece(&mut self, piece: &[u8], now_ns: u64) -> Result<(), Failure> {
        if self.head_len < self.head.len() {
            let n = piece.len().min(self.head.len() - self.head_len);
            self.head[self.head_len..self.head_len + n].copy_from_slice(&piece[..n]);
            self.head_len += n;
        }
        if self.state.done {
            return Ok(()); // drained to the end so the connection goes back to the pool
        }
        let state = &mut *self.state;
        self.decoder
            .feed(piece, |ev| state.on_event(ev.event, ev.data, now_ns).map(drop).map_err(StreamFailure))
            .map_err(|e| e.0)
    }

    /// The end of the body, at `now_ns`: a last unterminated event is read, then the stream
    /// must have been SSE and have reached `[DONE]` or a `finish_reason`.
    pub(crate) fn end(mut self, now_ns: u64) -> Result<(), Failure> {
        if !self.state.done {
            let state = &mut *self.state;
            self.decoder
                .finish(|ev| state.on_event(ev.event, ev.data, now_ns).map(drop).map_err(StreamFailure))
                .map_err(|e| e.0)?;
        }
        if !self.state.any_event {
            return Err(classify_non_sse(&self.head[..self.head_len]));
        }
        if !self.state.complete() {
            return Err(Failure::Connection { detail: "stream closed before [DONE]".to_string() });
        }
        Ok(())
    }
}

/// What the replay client made of a whole response body (see [`read_stream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOutcome {
    /// `Ok` for a complete stream, else the request's failure.
    pub result: Result<(), Failure>,
    /// Chunks that carried generated text.
    pub content_chunks: u32,
    /// `usage.prompt_tokens`.
    pub prompt_tokens: Option<u32>,
    /// `usage.completion_tokens`.
    pub completion_tokens: Option<u32>,
    /// The generated text.
    pub text: String,
}

/// Reads a recorded `text/event-stream` body, arriving in `pieces`, exactly as the HTTP
/// replay client reads a live one; for captured streams, tests and fuzzing.
pub fn read_stream(pieces: &[&[u8]]) -> StreamOutcome {
    let mut state = StreamState::new(true, 0);
    let mut reader = StreamReader::new(&mut state);
    let mut result = Ok(());
    for (i, p) in pieces.iter().enumerate() {
        if let Err(f) = reader.piece(p, i as u64) {
            result = Err(f);
            break;
        }
    }
    if result.is_ok() {
        result = reader.end(pieces.len() as u64);
    }
    StreamOutcome {
        result,
        content_chunks: state.content_chunks,
        prompt_tokens: state.prompt_tokens,
        completion_tokens: state.completion_tokens,
        text: state.text,
    }
}

fn saturate(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The first [`EXCERPT_BYTES`] bytes of `bytes` as text (lossy, trimmed).
pub(crate) fn lossy_excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(EXCERPT_BYTES)];
    String::from_utf8_lossy(cut).trim().to_string()
}

/// Whether an error text says the prompt does not fit the context (llama-server's
/// `exceed_context_size_error`, vLLM's "maximum context length", OpenAI's
/// `context_length_exceeded`).
pub(crate) fn mentions_context_limit(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "exceed_context_size",
        "context_length_exceeded",
        "context length",
        "context size",
        "context window",
        "maximum context",
    ]
    .iter()
    .any(|k| t.contains(k))
}

fn classify_error_text(text: &str) -> Failure {
    if mentions_context_limit(text) {
        Failure::ContextExceeded { detail: text.to_string() }
    } else {
        Failure::ServerError { message: text.to_string() }
    }
}

/// Classifies the `error` member of a stream event (an object with `message`/`type`, or a
/// string).
pub(crate) fn classify_error_value(err: &serde_json::Value) -> Failure {
    let message = match err {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => match o.get("message").and_then(|m| m.as_str()) {
            Some(m) => m.to_string(),
            None => err.to_string(),
        },
        other => other.to_string(),
    };
    let kind = err.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let code = err.get("code").and_then(|t| t.as_str()).unwrap_or("");
    if mentions_context_limit(&message) || mentions_context_limit(kind) || mentions_context_limit(code) {
        Failure::ContextExceeded { detail: message }
    } else {
        Failure::ServerError { message }
    }
}

/// Classifies a non-2xx response from its status and body.
pub(crate) fn classify_status(status: u16, body: &[u8]) -> Failure {
    let excerpt = lossy_excerpt(body);
    if (400..500).contains(&status) && mentions_context_limit(&String::from_utf8_lossy(body)) {
        Failure::ContextExceeded { detail: format!("HTTP {status}: {excerpt}") }
    } else {
        Failure::Http { status, body: excerpt }
    }
}

/// Classifies a 2xx body that carried no SSE event (an error JSON, or not a stream at all).
pub(crate) fn classify_non_sse(head: &[u8]) -> Failure {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(head.trim_ascii()) {
        if let Some(err) = v.get("error") {
            return classify_error_value(err);
        }
    }
    Failure::Stream { detail: format!("response is not an SSE stream: {}", lossy_excerpt(head)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_only_and_empty_chunks_are_not_tokens() {
        let mut s = StreamState::new(true, 4);
        let role = br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}"#;
        assert_eq!(s.on_event(b"", role, 10), Ok(EventOutcome::Continue));
        let empty = br#"{"choices":[{"index":0,"delta":{"content":""}}]}"#;
        s.on_event(b"", empty, 20).unwrap();
        assert_eq!(s.first_token_ns, None);
        s.on_event(b"", br#"{"choices":[{"delta":{"content":"Hi\n"}},{"delta":{"content":"x"}}]}"#, 30).unwrap();
        s.on_event(b"", br#"{"choices":[{"delta":{"reasoning_content":"so"}}]}"#, 45).unwrap();
        s.on_event(b"", br#"{"choices":[{"text":"!","finish_reason":"length"}]}"#, 50).unwrap();
        s.on_event(b"", br#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#, 51).unwrap();
        assert_eq!(s.on_event(b"", b"[DONE]", 52), Ok(EventOutcome::Done));
        assert_eq!(s.first_token_ns, Some(30));
        assert_eq!(s.itl_ns, vec![15, 5]);
        assert_eq!(s.text, "Hi\nso!");
        assert_eq!((s.prompt_tokens, s.completion_tokens), (Some(7), Some(3)));
        assert!(s.complete());
    }

    #[test]
    fn errors_are_classified() {
        let mut s = StreamState::new(false, 1);
        assert!(matches!(s.on_event(b"", b"{oops", 1), Err(Failure::Stream { .. })));
        let e = br#"{"error":{"message":"boom","type":"server_error"}}"#;
        assert_eq!(s.on_event(b"", e, 1), Err(Failure::ServerError { message: "boom".into() }));
        let c = br#"{"error":{"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}}"#;
        assert!(matches!(s.on_event(b"", c, 1), Err(Failure::ContextExceeded { .. })));
        assert!(matches!(
            classify_status(400, b"This model's maximum context length is 4096 tokens"),
            Failure::ContextExceeded { .. }
        ));
        assert_eq!(classify_status(500, b"x"), Failure::Http { status: 500, body: "x".into() });
        assert!(matches!(classify_non_sse(br#"{"error":"nope"}"#), Failure::ServerError { .. }));
    }
}

//! Types shared by workloads, targets and metrics.

use std::future::Future;
use std::pin::Pin;

/// One request to replay.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// Sequence number in the schedule (0-based).
    pub id: u64,
    /// Source conversation id (ShareGPT `id`), or `synthetic-N`.
    pub conversation_id: String,
    /// Turn index within the conversation (0 for single-turn workloads).
    pub turn: u32,
    /// Prompt text (for multi-turn: the whole conversation so far, as chat messages).
    pub messages: Vec<ChatMessage>,
    /// Prompt tokens when the workload is token-level (synthetic random tokens); targets that
    /// take text use `messages`.
    pub prompt_tokens: Option<Vec<i32>>,
    /// Prompt length in tokens (client-side tokenizer).
    pub prompt_len: u32,
    /// Tokens to generate.
    pub output_len: u32,
    /// Arrival time, ns after the run start (from the precomputed schedule).
    pub scheduled_ns: u64,
    /// Warmup requests are sent but excluded from the results.
    pub warmup: bool,
}

impl Request {
    /// A chat request of `messages` whose prompt is `prompt_len` tokens long, arriving at time
    /// 0, a conversation of its own (`request-{id}`, turn 0).
    pub fn chat(id: u64, messages: Vec<ChatMessage>, prompt_len: u32, output_len: u32) -> Self {
        Request {
            id,
            conversation_id: format!("request-{id}"),
            turn: 0,
            messages,
            prompt_tokens: None,
            prompt_len,
            output_len,
            scheduled_ns: 0,
            warmup: false,
        }
    }

    /// A single user message, as [`Request::chat`].
    pub fn text(id: u64, prompt: impl Into<String>, prompt_len: u32, output_len: u32) -> Self {
        Self::chat(id, vec![ChatMessage::user(prompt)], prompt_len, output_len)
    }

    /// A token-level prompt (targets that take tokens send them as they are; text targets
    /// send `messages`, empty here).
    pub fn tokens(id: u64, tokens: Vec<i32>, output_len: u32) -> Self {
        let prompt_len = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
        Request { prompt_tokens: Some(tokens), ..Self::chat(id, Vec::new(), prompt_len, output_len) }
    }

    /// The same request arriving `scheduled_ns` after the start.
    pub fn at(self, scheduled_ns: u64) -> Self {
        Request { scheduled_ns, ..self }
    }

    /// The same request as turn `turn` of conversation `conversation_id`.
    pub fn in_conversation(self, conversation_id: impl Into<String>, turn: u32) -> Self {
        Request { conversation_id: conversation_id.into(), turn, ..self }
    }

    /// The same request, sent but left out of the results when `warmup`.
    pub fn warmup(self, warmup: bool) -> Self {
        Request { warmup, ..self }
    }
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// Text.
    pub content: String,
}

impl ChatMessage {
    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage { role: "user".into(), content: content.into() }
    }
}

/// Where an output-token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenCountSource {
    /// The server's `usage` (stream_options.include_usage).
    ServerUsage,
    /// benchkit's tokenizer over the received text (server sent no usage).
    ClientTokenizer,
    /// One token per content chunk (server sent no usage and no tokenizer was given; exact for
    /// llama-server and vLLM, which stream one token per chunk).
    ContentChunks,
    /// Counted directly (in-process target: tokens decoded).
    Engine,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Failure {
    /// Non-2xx HTTP status.
    Http {
        /// Status code.
        status: u16,
        /// Body excerpt.
        body: String,
    },
    /// No complete response within the request timeout.
    Timeout,
    /// Connection refused, reset or closed mid-stream.
    Connection {
        /// The socket error or the point in the stream where the connection ended.
        detail: String,
    },
    /// Malformed SSE / JSON in the stream.
    Stream {
        /// The malformed line or JSON error.
        detail: String,
    },
    /// An error event inside the stream.
    ServerError {
        /// The server's error message, as sent.
        message: String,
    },
    /// The prompt does not fit the context.
    ContextExceeded {
        /// The prompt and context lengths, or the server's message.
        detail: String,
    },
    /// Anything else (in-process decode failure...).
    Other {
        /// What failed, as the target reported it.
        detail: String,
    },
}

/// What happened to one request. Times are ns after the run start.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RequestRecord {
    /// Request id.
    pub id: u64,
    /// Conversation id.
    pub conversation_id: String,
    /// Turn.
    pub turn: u32,
    /// Warmup (excluded from aggregates).
    pub warmup: bool,
    /// Scheduled arrival.
    pub scheduled_ns: u64,
    /// When the request was actually sent (schedule lag = sent - scheduled).
    pub sent_ns: u64,
    /// First chunk that carried generated text (not a role-only chunk).
    pub first_token_ns: Option<u64>,
    /// Gaps between successive content chunks after the first, ns (ITL samples).
    pub itl_ns: Vec<u64>,
    /// Completion (or failure) time.
    pub end_ns: u64,
    /// Prompt tokens (server usage when given, else client-side count).
    pub input_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
    /// Where `output_tokens` came from.
    pub output_tokens_source: TokenCountSource,
    /// `None` on success.
    pub failure: Option<Failure>,
    /// Generated text (only kept when the run asks for it).
    pub text: Option<String>,
}

impl RequestRecord {
    /// Whether the request succeeded.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// A boxed future returning a record (targets are object-safe without extra crates).
pub type RecordFuture = Pin<Box<dyn Future<Output = RequestRecord> + Send + 'static>>;

/// Something requests are replayed against: an in-process llama.cpp engine, an
/// OpenAI-compatible server, or a user's own implementation.
pub trait Target: Send + Sync {
    /// Short description for results (`inproc:<model>` / `http:<url>`).
    fn describe(&self) -> String;
    /// Sends one request; `start` is the run's time origin (records' times are relative to it).
    /// The future resolves when the request completes or fails — it never panics.
    fn send(&self, request: Request, start: std::time::Instant) -> RecordFuture;
}

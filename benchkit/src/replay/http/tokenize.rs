//! Client-side prompt lengths checked against the server's `/tokenize`, before a run.
//!
//! llama-server: `POST /tokenize {"content": text, "add_special": false}` answers
//! `{"tokens": [...]}`; vLLM: `POST /tokenize {"model": m, "prompt": text,
//! "add_special_tokens": false}` answers `{"count": n, "tokens": [...], ...}`. The first prompt
//! is sent in llama.cpp's shape; a server that rejects it (4xx other than 404, or an answer
//! without tokens) is asked in vLLM's. Both count without special tokens, as the client does
//! (`tokenize(text, add_special = false)`). A server without the endpoint is no error: the
//! result says why nothing was compared.

use super::client::{Client, Origin};
use super::{client_for, HttpTargetConfig};
use crate::replay::selfcheck::TokenCheck;
use crate::replay::Request;
use std::collections::HashSet;
use std::time::Duration;

/// Largest `/tokenize` answer read.
const MAX_BODY: usize = 16 << 20;
/// Longest wait for one answer.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Llama,
    Vllm,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Llama => "llama.cpp",
            Api::Vllm => "vllm",
        }
    }

    fn body(self, model: &str, text: &str) -> bytes::Bytes {
        let v = match self {
            Api::Llama => serde_json::json!({ "content": text, "add_special": false }),
            Api::Vllm => serde_json::json!({ "model": model, "prompt": text, "add_special_tokens": false }),
        };
        bytes::Bytes::from(v.to_string())
    }
}

/// The `/tokenize` URL at the server's root (a base URL ending in `/v1` included).
pub(crate) fn tokenize_url(base_url: &str) -> String {
    let root = base_url.trim_end_matches('/');
    format!("{}/tokenize", root.strip_suffix("/v1").unwrap_or(root))
}

/// Compares the prompt length (`prompt_len`) of up to `limit` distinct single-text prompts of
/// `requests` with the count of the server at `config.base_url`, asked one prompt at a time.
/// Never fails: a server without `/tokenize`, or one that errs, gives a result that says why
/// nothing (or not everything) was compared. Must run inside a tokio runtime with I/O and time.
pub async fn check_tokens(config: &HttpTargetConfig, requests: &[Request], limit: usize) -> TokenCheck {
    if limit == 0 {
        return TokenCheck::unavailable("turned off (tokenize limit 0)");
    }
    let url = tokenize_url(&config.base_url);
    let client = match Origin::parse(&url).map_err(|e| e.to_string()).and_then(|origin| {
        client_for(origin, &HttpTargetConfig { request_timeout: TIMEOUT, ..config.clone() }).map_err(|e| e.to_string())
    }) {
        Ok(c) => c,
        Err(e) => return TokenCheck { endpoint: Some(url), ..TokenCheck::unavailable(e) },
    };
    let mut check = TokenCheck { endpoint: Some(url), ..TokenCheck::default() };
    let mut seen = HashSet::new();
    let mut api: Option<Api> = None;
    for r in requests {
        let text = match (r.messages.as_slice(), &r.prompt_tokens) {
            ([one], None) => one.content.as_str(),
            _ => {
                check.prompts_skipped += 1;
                continue;
            }
        };
        if !seen.insert(text) {
            continue;
        }
        if check.prompts_checked >= limit || check.stopped.is_some() {
            check.prompts_skipped += 1;
            continue;
        }
        let answer = match api {
            Some(a) => ask(&client, a, &config.model, text).await,
            None => match ask(&client, Api::Llama, &config.model, text).await {
                Err(Ask::Rejected(_)) => ask(&client, Api::Vllm, &config.model, text).await,
                other => other,
            },
        };
        match answer {
            Ok((a, n)) => {
                api = Some(a);
                check.compare(r.id, u64::from(r.prompt_len), n);
            }
            Err(e) if check.prompts_checked == 0 => {
                return TokenCheck { endpoint: check.endpoint, ..TokenCheck::unavailable(e.to_string()) };
            }
            Err(e) => {
                check.stopped = Some(e.to_string());
                check.prompts_skipped += 1;
            }
        }
    }
    check.api = api.map(|a| a.name().to_string());
    if check.prompts_checked == 0 && check.unavailable.is_none() {
        check.unavailable = Some("no single-text prompt to compare (token ids or multi-turn messages)".into());
    }
    check
}

/// Why a `/tokenize` call gave no count.
enum Ask {
    /// The server has no such endpoint (404), or could not be reached.
    Absent(String),
    /// The server answered, but not with a count (a request shape it does not take).
    Rejected(String),
}

impl std::fmt::Display for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ask::Absent(s) | Ask::Rejected(s) => f.write_str(s),
        }
    }
}

async fn ask(client: &Client, api: Api, model: &str, text: &str) -> Result<(Api, u64), Ask> {
    let body = api.body(model, text);
    let exchange = async {
        let mut resp = match client.post(body.clone(), false).await {
            // A kept-alive connection the server closed while idle: once more on a fresh one.
            Err(e) if e.stale => client.post(body, true).await,
            other => other,
        }
        .map_err(|e| Ask::Absent(e.detail))?;
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| Ask::Absent(e.detail))? {
            if buf.len() + chunk.len() > MAX_BODY {
                return Err(Ask::Rejected(format!("/tokenize answer over {MAX_BODY} bytes")));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((resp.status, buf))
    };
    let (status, buf) = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| Ask::Absent(format!("no /tokenize answer within {TIMEOUT:?}")))??;
    let excerpt = || String::from_utf8_lossy(&buf[..buf.len().min(200)]).trim().to_string();
    if status.as_u16() == 404 {
        return Err(Ask::Absent(format!("HTTP 404: the server has no /tokenize ({})", excerpt())));
    }
    if !status.is_success() {
        return Err(Ask::Rejected(format!("HTTP {}: {}", status.as_u16(), excerpt())));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&buf).map_err(|e| Ask::Rejected(format!("/tokenize answer is not JSON: {e}")))?;
    let n = v["count"].as_u64().or_else(|| v["tokens"].as_array().map(|t| t.len() as u64));
    n.map(|n| (api, n)).ok_or_else(|| Ask::Rejected(format!("/tokenize answer has no count or tokens: {}", excerpt())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokenize_is_at_the_servers_root() {
        assert_eq!(super::tokenize_url("http://h:1/v1/"), "http://h:1/tokenize");
        assert_eq!(super::tokenize_url("http://h:1"), "http://h:1/tokenize");
    }
}

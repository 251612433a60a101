//! Sampling requests from ShareGPT conversations, the way vLLM's serving benchmark does.
//!
//! Single-turn sampling follows vLLM's `sample_sharegpt_requests`: conversations with at least
//! two turns are kept, shuffled with the seed, and taken in that order; each yields a prompt
//! (the first turn's text) and a completion (the second turn's text), tokenized with the
//! model's tokenizer; pairs that are too short or too long are skipped until `num_prompts`
//! pairs have been collected; if the dataset runs out first, the collected pairs are repeated
//! (seeded choice with replacement) up to `num_prompts`.
//!
//! Differences from vLLM: the shuffle uses ChaCha8 seeded with [`SampleConfig::seed`] (not
//! Python's Mersenne Twister), so the same seed does not select the same conversations as
//! vLLM — but it does select the same ones on every platform and every benchkit run.

use std::collections::HashMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::sharegpt::{Conversation, ShareGptLoad};
use super::WorkloadError;
use crate::replay::{ChatMessage, Request};

/// Counts the tokens of a text with a model's tokenizer.
///
/// To match vLLM's numbers, count the way a Hugging Face tokenizer's `__call__` does by default
/// (special tokens such as BOS included). Closures `Fn(&str) -> usize` implement it.
pub trait TokenCounter {
    /// Number of tokens in `text`.
    fn count(&self, text: &str) -> usize;
}

impl<F: Fn(&str) -> usize> TokenCounter for F {
    fn count(&self, text: &str) -> usize {
        self(text)
    }
}

/// An approximate token counter: one token per whitespace-separated word.
///
/// This is **not** a tokenizer — real BPE tokenizers produce roughly 1.3 tokens per English
/// word and many more for code or non-Latin scripts. It exists for tests and for dry runs
/// without a model; real benchmarks use the model's tokenizer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApproxTokenCounter;

impl TokenCounter for ApproxTokenCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// How to sample a ShareGPT workload. [`Default`] gives vLLM's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleConfig {
    /// Requests to produce (conversations, in multi-turn mode). vLLM's default: 1000.
    pub num_prompts: usize,
    /// Seed of the shuffle and of the oversampling choice. vLLM's default: 0.
    pub seed: u64,
    /// Prompts with fewer tokens are skipped ("too short"). vLLM: 4.
    pub min_prompt_len: usize,
    /// Outputs with fewer tokens are skipped ("too short"). vLLM: 4.
    pub min_output_len: usize,
    /// Prompts with more tokens are skipped ("too long"). vLLM: 1024.
    pub max_prompt_len: usize,
    /// Pairs whose prompt + output exceed this are skipped ("too long"). vLLM: 2048.
    pub max_total_len: usize,
    /// Replaces every output length (the completion text is then not tokenized); the filters
    /// use this length. Must be at least [`min_output_len`](Self::min_output_len).
    pub fixed_output_len: Option<usize>,
    /// Replay whole conversations turn by turn instead of first-turn pairs (see
    /// [`sample_sharegpt`]).
    pub multi_turn: bool,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            num_prompts: 1000,
            seed: 0,
            min_prompt_len: 4,
            min_output_len: 4,
            max_prompt_len: 1024,
            max_total_len: 2048,
            fixed_output_len: None,
            multi_turn: false,
        }
    }
}

impl SampleConfig {
    /// vLLM's defaults with the given request count and seed.
    pub fn new(num_prompts: usize, seed: u64) -> Self {
        Self { num_prompts, seed, ..Self::default() }
    }
}

/// A sampled ShareGPT workload.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SampledWorkload {
    /// The requests, ids `0..`, in sampling order (multi-turn: each conversation's turns in
    /// order, conversation after conversation). `scheduled_ns` is 0 and `warmup` false until
    /// [`schedule`](super::schedule) fills them.
    pub requests: Vec<Request>,
    /// Source ids of the conversations that passed the filters, in sampling order (the
    /// copies added by oversampling are not listed again).
    pub sampled_ids: Vec<String>,
    /// Whether fewer than `num_prompts` conversations passed the filters, so some were
    /// repeated.
    pub oversampled: bool,
    /// Conversations (multi-turn) or requests (single-turn) added by oversampling.
    pub oversampled_count: usize,
    /// Conversations with enough turns to be sampled (single-turn: at least two turns;
    /// multi-turn: at least one user turn answered by an assistant turn).
    pub eligible: usize,
    /// Eligible conversations examined (tokenized) before `num_prompts` passed the filters.
    pub considered: usize,
    /// Examined conversations rejected by the length filters (`too_short + too_long`).
    pub filtered_out: usize,
    /// Of those, rejected because the prompt or output was shorter than the minimum.
    pub too_short: usize,
    /// Of those, rejected because the prompt or prompt + output was longer than the maximum.
    pub too_long: usize,
    /// The seed used.
    pub seed: u64,
    /// Whether the requests are multi-turn.
    pub multi_turn: bool,
}

impl ShareGptLoad {
    /// [`sample_sharegpt`] over this file's conversations.
    ///
    /// # Errors
    ///
    /// As [`sample_sharegpt`].
    pub fn sample<C: TokenCounter + ?Sized>(
        &self,
        counter: &C,
        config: &SampleConfig,
    ) -> Result<SampledWorkload, WorkloadError> {
        sample_sharegpt(&self.conversations, counter, config)
    }
}

/// Chat role of a ShareGPT speaker (`None` for unknown speakers).
pub fn chat_role(from: &str) -> Option<&'static str> {
    match from {
        "human" | "user" => Some("user"),
        "gpt" | "chatgpt" | "bard" | "bing" | "assistant" | "model" => Some("assistant"),
        "system" => Some("system"),
        _ => None,
    }
}

/// Outcome of the length filters for one prompt/output pair.
enum Verdict {
    Ok,
    TooShort,
    TooLong,
}

fn check(config: &SampleConfig, prompt_len: usize, output_len: usize, check_min_prompt: bool) -> Verdict {
    if (check_min_prompt && prompt_len < config.min_prompt_len) || output_len < config.min_output_len {
        Verdict::TooShort
    } else if prompt_len > config.max_prompt_len || prompt_len.saturating_add(output_len) > config.max_total_len {
        Verdict::TooLong
    } else {
        Verdict::Ok
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One request before ids are assigned.
#[derive(Clone)]
struct Draft {
    messages: Vec<ChatMessage>,
    prompt_len: usize,
    output_len: usize,
}

/// Turns of a conversation usable for multi-turn replay: leading `system` turns, then the
/// longest run of (user, assistant) pairs. Returns (system prefix length, number of pairs).
fn multi_turn_shape(c: &Conversation) -> (usize, usize) {
    let roles: Vec<Option<&str>> = c.turns.iter().map(|t| chat_role(&t.from)).collect();
    let sys = roles.iter().take_while(|r| **r == Some("system")).count();
    let pairs = roles[sys..].chunks_exact(2).take_while(|p| p[0] == Some("user") && p[1] == Some("assistant")).count();
    (sys, pairs)
}

fn message(role: &str, content: &str) -> ChatMessage {
    ChatMessage { role: role.to_string(), content: content.to_string() }
}

/// Samples a request workload from ShareGPT conversations.
///
/// **Single-turn** (default, vLLM-compatible): conversations with at least two turns are
/// shuffled (ChaCha8 seeded with `config.seed`) and examined in that order; each gives
/// prompt = first turn's text and completion = second turn's text (speakers are not checked,
/// as in vLLM); `prompt_len`/`output_len` are their token counts (`output_len` is
/// `fixed_output_len` when set). A pair is skipped when `prompt_len < min_prompt_len`,
/// `output_len < min_output_len`, `prompt_len > max_prompt_len` or
/// `prompt_len + output_len > max_total_len`. Examination stops once `num_prompts` pairs have
/// passed. Each request has `messages = [user: prompt]`, `turn = 0`.
///
/// **Multi-turn** (`config.multi_turn`): each sampled conversation becomes one request per
/// user turn answered by an assistant turn (after optional leading `system` turns, up to the
/// first break of the user/assistant alternation or an unknown speaker). Request `k`
/// (`turn = k`) carries every earlier message — `human` → `user`, `gpt` → `assistant`, using
/// the dataset's replies, not the model's — plus the k-th user turn; `prompt_len` is the sum
/// of those messages' token counts (chat-template tokens not included) and `output_len` the
/// tokens of the assistant reply that follows. The filters apply to every turn; a
/// conversation is cut at its first failing turn and rejected if turn 0 fails (the minimum
/// prompt length is only checked on turn 0). `num_prompts` counts conversations. All turns of
/// a conversation share its `conversation_id`; the driver must not send turn `k` before turn
/// `k - 1` has completed.
///
/// **Oversampling**: when fewer than `num_prompts` pass, the passing ones are repeated by a
/// seeded choice with replacement until `num_prompts` (whole conversations in multi-turn
/// mode) and [`SampledWorkload::oversampled`] is set. Repeated (or duplicate) source ids get a
/// `#2`, `#3`... suffix in `Request::conversation_id`, so conversation ids are unique within
/// the workload.
///
/// # Errors
///
/// - [`WorkloadError::InvalidConfig`] if `fixed_output_len < min_output_len`;
/// - [`WorkloadError::NoEligibleRequests`] if `num_prompts > 0` and no conversation passed the
///   filters.
pub fn sample_sharegpt<C: TokenCounter + ?Sized>(
    conversations: &[Conversation],
    counter: &C,
    config: &SampleConfig,
) -> Result<SampledWorkload, WorkloadError> {
    if let Some(fixed) = config.fixed_output_len {
        if fixed < config.min_output_len {
            return Err(WorkloadError::InvalidConfig {
                detail: format!("fixed_output_len {fixed} is below min_output_len {}", config.min_output_len),
            });
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..conversations.len())
        .filter(|&i| {
            let c = &conversations[i];
            if config.multi_turn {
                multi_turn_shape(c).1 > 0
            } else {
                c.turns.len() >= 2
            }
        })
        .collect();
    let eligible = order.len();
    order.shuffle(&mut rng);

    // Each passing conversation: (index, its requests).
    let mut picked: Vec<(usize, Vec<Draft>)> = Vec::new();
    let (mut considered, mut too_short, mut too_long) = (0usize, 0usize, 0usize);
    for &idx in &order {
        if picked.len() >= config.num_prompts {
            break;
        }
        considered += 1;
        let c = &conversations[idx];
        let result =
            if config.multi_turn { expand_multi_turn(c, counter, config) } else { single_turn(c, counter, config) };
        match result {
            Ok(drafts) => picked.push((idx, drafts)),
            Err(Verdict::TooShort) => too_short += 1,
            Err(_) => too_long += 1,
        }
    }
    let filtered_out = too_short + too_long;
    if picked.is_empty() && config.num_prompts > 0 {
        return Err(WorkloadError::NoEligibleRequests { considered, filtered_out });
    }
    let sampled_ids: Vec<String> = picked.iter().map(|(i, _)| conversations[*i].id.clone()).collect();
    let unique = picked.len();
    let mut oversampled_count = 0;
    while picked.len() < config.num_prompts {
        let j = rng.random_range(0..unique);
        picked.push(picked[j].clone());
        oversampled_count += 1;
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut requests = Vec::new();
    for (idx, drafts) in picked {
        let source = conversations[idx].id.as_str();
        let n = seen.entry(source).or_insert(0);
        *n += 1;
        let conversation_id = if *n == 1 { source.to_string() } else { format!("{source}#{n}") };
        for (turn, d) in drafts.into_iter().enumerate() {
            requests.push(Request {
                id: requests.len() as u64,
                conversation_id: conversation_id.clone(),
                turn: to_u32(turn),
                messages: d.messages,
                prompt_tokens: None,
                prompt_len: to_u32(d.prompt_len),
                output_len: to_u32(d.output_len),
                scheduled_ns: 0,
                warmup: false,
            });
        }
    }
    Ok(SampledWorkload {
        requests,
        sampled_ids,
        oversampled: oversampled_count > 0,
        oversampled_count,
        eligible,
        considered,
        filtered_out,
        too_short,
        too_long,
        seed: config.seed,
        multi_turn: config.multi_turn,
    })
}

fn single_turn<C: TokenCounter + ?Sized>(
    c: &Conversation,
    counter: &C,
    config: &SampleConfig,
) -> Result<Vec<Draft>, Verdict> {
    let prompt = &c.turns[0].value;
    let prompt_len = counter.count(prompt);
    let output_len = match config.fixed_output_len {
        Some(n) => n,
        None => counter.count(&c.turns[1].value),
    };
    match check(config, prompt_len, output_len, true) {
        Verdict::Ok => Ok(vec![Draft { messages: vec![message("user", prompt)], prompt_len, output_len }]),
        v => Err(v),
    }
}

fn expand_multi_turn<C: TokenCounter + ?Sized>(
    c: &Conversation,
    counter: &C,
    config: &SampleConfig,
) -> Result<Vec<Draft>, Verdict> {
    let (sys, pairs) = multi_turn_shape(c);
    let mut history: Vec<ChatMessage> = Vec::new();
    let mut history_len = 0usize;
    for t in &c.turns[..sys] {
        history.push(message("system", &t.value));
        history_len += counter.count(&t.value);
    }
    let mut drafts = Vec::new();
    for k in 0..pairs {
        let user = &c.turns[sys + 2 * k].value;
        let reply = &c.turns[sys + 2 * k + 1].value;
        let prompt_len = history_len + counter.count(user);
        let reply_len = match config.fixed_output_len {
            // The history still carries the dataset's reply, so count it when it is needed.
            Some(_) if k + 1 == pairs => 0,
            _ => counter.count(reply),
        };
        let output_len = config.fixed_output_len.unwrap_or(reply_len);
        match check(config, prompt_len, output_len, k == 0) {
            Verdict::Ok => {}
            v if k == 0 => return Err(v),
            _ => break,
        }
        history.push(message("user", user));
        drafts.push(Draft { messages: history.clone(), prompt_len, output_len });
        history.push(message("assistant", reply));
        history_len = prompt_len + reply_len;
    }
    Ok(drafts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::workload::Turn;

    fn conv(id: &str, turns: &[(&str, &str)]) -> Conversation {
        Conversation {
            id: id.into(),
            turns: turns.iter().map(|(f, v)| Turn { from: (*f).into(), value: (*v).into() }).collect(),
        }
    }

    #[test]
    fn multi_turn_shape_rules() {
        let c = conv("a", &[("system", "s"), ("human", "h"), ("gpt", "g"), ("human", "h2"), ("human", "x")]);
        assert_eq!(multi_turn_shape(&c), (1, 1));
        let c = conv("b", &[("gpt", "g"), ("human", "h")]);
        assert_eq!(multi_turn_shape(&c), (0, 0));
        let c = conv("c", &[("human", "h"), ("weird", "g")]);
        assert_eq!(multi_turn_shape(&c), (0, 0));
    }

    #[test]
    fn closures_count_tokens() {
        let bytes = |s: &str| s.len();
        assert_eq!(TokenCounter::count(&bytes, "abcd"), 4);
        assert_eq!(ApproxTokenCounter.count(" a  b\nc "), 3);
    }
}

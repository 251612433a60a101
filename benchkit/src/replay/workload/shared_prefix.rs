//! Shared-prefix workloads (inference-perf's `shared_prefix`, vLLM's prefix repetition):
//! `groups` system prompts, each followed by `prompts_per_group` questions, shuffled, so a
//! server's prefix cache sees the same system prompt again and again.

use rand::seq::SliceRandom;

use super::vocab::{item_rng, RandomText, TextTokens, Vocab};
use super::WorkloadError;
use crate::replay::{ChatMessage, Request};

/// The shape of a shared-prefix workload. Lengths are in tokens of the model's tokenizer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SharedPrefixConfig {
    /// System prompts (groups).
    pub groups: usize,
    /// Questions per system prompt.
    pub prompts_per_group: usize,
    /// Tokens of each system prompt.
    pub system_prompt_len: u32,
    /// Tokens of each question.
    pub question_len: u32,
    /// Tokens every request generates.
    pub output_len: u32,
}

impl Default for SharedPrefixConfig {
    /// inference-perf's scale, small: 4 system prompts of 256 tokens, 8 questions of 32
    /// tokens each, 64 output tokens.
    fn default() -> Self {
        Self { groups: 4, prompts_per_group: 8, system_prompt_len: 256, question_len: 32, output_len: 64 }
    }
}

impl SharedPrefixConfig {
    /// The number of distinct prompts: `groups * prompts_per_group`.
    pub fn distinct_prompts(&self) -> usize {
        self.groups.saturating_mul(self.prompts_per_group)
    }
}

/// Generates `num_requests` shared-prefix requests.
///
/// Every system prompt and question is random text of ordinary tokens, drawn from its own
/// ChaCha8 stream of `seed` (so a group's system prompt does not depend on how many groups
/// there are), detokenized and re-tokenized to the asked length (see the module `vocab`). The
/// `groups * prompts_per_group` prompts are then shuffled with `seed`, as inference-perf does,
/// and requests take them in that order; past the end they start over (a later round repeats
/// whole prompts, which a prefix cache serves entirely).
///
/// Request `i` has conversation id `shared-prefix-{group}-{question}` (`-r{round}` added from
/// the second round), turn 0, `messages` = the system prompt as a `system` message and the
/// question as a `user` message (text targets: the chat endpoint sends both, the completions
/// endpoint their texts joined), `prompt_tokens` = the system prompt's tokens followed by the
/// question's (token-level targets: every request of a group starts with the same tokens),
/// and `prompt_len` their number.
///
/// # Errors
///
/// [`WorkloadError::InvalidConfig`] for no groups, no prompts per group, an empty system
/// prompt or question, no output, or a vocabulary of fewer than two tokens.
pub fn shared_prefix_requests<V: Vocab + ?Sized>(
    vocab: &V,
    config: &SharedPrefixConfig,
    num_requests: usize,
    seed: u64,
) -> Result<Vec<Request>, WorkloadError> {
    let bad = |detail: &str| Err(WorkloadError::InvalidConfig { detail: format!("shared prefix: {detail}") });
    let c = config;
    if c.groups == 0 || c.prompts_per_group == 0 {
        return bad("groups and prompts per group must be at least 1");
    }
    if c.system_prompt_len == 0 || c.question_len == 0 || c.output_len == 0 {
        return bad("system prompt, question and output lengths must be at least 1 token");
    }
    let random = RandomText::new(vocab)?;
    let systems: Vec<TextTokens> = (0..c.groups)
        .map(|g| random.text(&mut item_rng(seed, b"sysprmpt", g as u64), c.system_prompt_len as usize))
        .collect();
    let mut order: Vec<(usize, usize)> =
        (0..c.groups).flat_map(|g| (0..c.prompts_per_group).map(move |q| (g, q))).collect();
    order.shuffle(&mut item_rng(seed, b"shuffle!", 0));
    let mut requests = Vec::with_capacity(num_requests);
    // Questions are drawn once per distinct prompt and reused by later rounds.
    let mut questions: Vec<Option<TextTokens>> = vec![None; order.len()];
    for i in 0..num_requests {
        let (round, slot) = (i / order.len(), i % order.len());
        let (g, q) = order[slot];
        let question = questions[slot].get_or_insert_with(|| {
            let id = (g * c.prompts_per_group + q) as u64;
            random.text(&mut item_rng(seed, b"question", id), c.question_len as usize)
        });
        let system = &systems[g];
        let mut tokens = Vec::with_capacity(system.tokens.len() + question.tokens.len());
        tokens.extend_from_slice(&system.tokens);
        tokens.extend_from_slice(&question.tokens);
        let messages = vec![
            ChatMessage { role: "system".into(), content: system.text.clone() },
            ChatMessage::user(question.text.clone()),
        ];
        let id = match round {
            0 => format!("shared-prefix-{g}-{q}"),
            r => format!("shared-prefix-{g}-{q}-r{r}"),
        };
        let prompt_len = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
        requests.push(Request {
            prompt_tokens: Some(tokens),
            ..Request::chat(i as u64, messages, prompt_len, c.output_len).in_conversation(id, 0)
        });
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::super::vocab::tests::Words;
    use super::*;

    fn cfg(groups: usize, per: usize) -> SharedPrefixConfig {
        SharedPrefixConfig { groups, prompts_per_group: per, system_prompt_len: 20, question_len: 5, output_len: 3 }
    }

    #[test]
    fn groups_share_their_system_prompt_and_nothing_else() {
        let r = shared_prefix_requests(&Words(5000), &cfg(3, 4), 12, 7).unwrap();
        assert_eq!(r.len(), 12);
        let group = |r: &Request| r.conversation_id.split('-').nth(2).unwrap().to_string();
        for a in &r {
            let t = a.prompt_tokens.as_ref().unwrap();
            assert_eq!((t.len(), a.prompt_len, a.output_len), (25, 25, 3));
            assert_eq!(a.messages[0].role, "system");
            assert_eq!(a.messages[1].role, "user");
            for b in &r {
                let u = b.prompt_tokens.as_ref().unwrap();
                assert_eq!(t[..20] == u[..20], group(a) == group(b), "{} {}", a.conversation_id, b.conversation_id);
                assert_eq!(t[20..] == u[20..], a.conversation_id == b.conversation_id);
            }
        }
        let ids: std::collections::HashSet<_> = r.iter().map(|r| r.conversation_id.clone()).collect();
        assert_eq!(ids.len(), 12);
    }

    #[test]
    fn seeded_order_and_rounds() {
        let v = Words(5000);
        let a = shared_prefix_requests(&v, &cfg(2, 8), 16, 1).unwrap();
        assert_eq!(a, shared_prefix_requests(&v, &cfg(2, 8), 16, 1).unwrap());
        let b = shared_prefix_requests(&v, &cfg(2, 8), 16, 2).unwrap();
        let order = |r: &[Request]| r.iter().map(|r| r.conversation_id.clone()).collect::<Vec<_>>();
        assert_ne!(order(&a), order(&b));
        assert_ne!(a[0].messages[0], b[0].messages[0]);
        // Shuffled: not group by group.
        assert_ne!(order(&a)[..8].iter().filter(|c| c.starts_with("shared-prefix-0-")).count(), 8);
        let more = shared_prefix_requests(&v, &cfg(2, 8), 20, 1).unwrap();
        assert_eq!(more[..16], a[..]);
        assert_eq!(more[16].conversation_id, format!("{}-r1", a[0].conversation_id));
        assert_eq!(more[16].prompt_tokens, a[0].prompt_tokens);
        assert_eq!(more[19].id, 19);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let v = Words(5000);
        for c in [cfg(0, 1), cfg(1, 0), SharedPrefixConfig { question_len: 0, ..cfg(1, 1) }] {
            let e = shared_prefix_requests(&v, &c, 1, 0).unwrap_err();
            assert!(matches!(e, WorkloadError::InvalidConfig { .. }), "{e}");
        }
        assert!(shared_prefix_requests(&v, &cfg(1, 1), 0, 0).unwrap().is_empty());
    }
}

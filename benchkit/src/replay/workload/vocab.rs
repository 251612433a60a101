//! Random text from a model's vocabulary, for workloads that go to both token-level and text
//! targets (shared prefix, trace): seeded random ordinary token ids are detokenized, and the
//! text is re-tokenized and adjusted until it is the asked number of tokens (as vLLM's
//! `gen_prompt_decode_to_target_len` does), so the text a server receives and the tokens an
//! in-process engine receives describe the same prompt.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{TokenCounter, WorkloadError};
use crate::replay::Request;

/// A tokenizer that can also render single tokens: what random-text workloads need.
/// [`crate::Model`] implements it; tests can use a toy vocabulary.
pub trait Vocab {
    /// Number of token ids.
    fn n_vocab(&self) -> i32;
    /// The text of one token.
    fn piece(&self, token: i32) -> String;
    /// The tokens of `text`, without special tokens (no BOS).
    fn tokenize(&self, text: &str) -> Vec<i32>;
}

impl Vocab for crate::Model {
    fn n_vocab(&self) -> i32 {
        self.info().n_vocab as i32
    }

    fn piece(&self, token: i32) -> String {
        self.token_to_piece(token)
    }

    fn tokenize(&self, text: &str) -> Vec<i32> {
        // Fails only past i32::MAX bytes, far beyond any prompt built here.
        crate::Model::tokenize(self, text, false).unwrap_or_default()
    }
}

/// A text and the tokens that stand for it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextTokens {
    /// What a text target (HTTP) sends.
    pub text: String,
    /// What a token-level target (in-process) sends: the tokenizer's tokens of `text`, except
    /// where the adjustment did not converge (then cut or padded to the asked length).
    pub tokens: Vec<i32>,
}

impl TextTokens {
    /// Appends `other` (text and tokens).
    pub fn push(&mut self, other: &TextTokens) {
        self.text.push_str(&other.text);
        self.tokens.extend_from_slice(&other.tokens);
    }
}

/// Draws random text of a given token length from a vocabulary's ordinary tokens.
pub(crate) struct RandomText<'a, V: Vocab + ?Sized> {
    vocab: &'a V,
    range: Range<i32>,
}

/// Rounds of detokenize / re-tokenize before giving up on an exact length.
const ROUNDS: usize = 8;
/// Draws before a token that renders badly is accepted anyway (a toy vocabulary).
const DRAWS: usize = 64;

impl<'a, V: Vocab + ?Sized> RandomText<'a, V> {
    /// Ids above the specials and byte tokens of llama-style vocabularies, as the synthetic
    /// workload draws them.
    ///
    /// # Errors
    /// [`WorkloadError::InvalidConfig`] for a vocabulary of fewer than two tokens.
    pub(crate) fn new(vocab: &'a V) -> Result<Self, WorkloadError> {
        let n = vocab.n_vocab();
        if n < 2 {
            return Err(WorkloadError::InvalidConfig { detail: format!("the vocabulary has {n} tokens") });
        }
        Ok(Self { vocab, range: 300.min(n - 1)..n })
    }

    /// One token whose text is printable and valid UTF-8 on its own (no control tokens, byte
    /// pieces or empty pieces), and that text.
    fn token(&self, rng: &mut ChaCha8Rng) -> (i32, String) {
        let mut last = (0, String::new());
        for _ in 0..DRAWS {
            let id = rng.random_range(self.range.clone());
            let piece = self.vocab.piece(id);
            if !piece.is_empty() && !piece.chars().any(|c| c == '\u{FFFD}' || c.is_control()) {
                return (id, piece);
            }
            last = (id, piece);
        }
        last
    }

    fn render(&self, tokens: &[i32]) -> String {
        tokens.iter().map(|&t| self.vocab.piece(t)).collect()
    }

    /// Random text of `len` tokens: `len` random tokens detokenized, then re-tokenized and cut
    /// or extended until the text is `len` tokens long. `tokens` has exactly `len` entries.
    pub(crate) fn text(&self, rng: &mut ChaCha8Rng, len: usize) -> TextTokens {
        let mut text = String::new();
        let mut tokens = Vec::new();
        for _ in 0..ROUNDS {
            if tokens.len() < len {
                for _ in tokens.len()..len {
                    text.push_str(&self.token(rng).1);
                }
            } else if tokens.len() > len {
                tokens.truncate(len);
                text = self.render(&tokens);
            }
            tokens = self.vocab.tokenize(&text);
            if tokens.len() == len {
                return TextTokens { text, tokens };
            }
        }
        // Not converged (boundary merges that keep flipping): the tokens are made exact, the
        // text follows them; a text target counts its own length anyway.
        tokens.truncate(len);
        while tokens.len() < len {
            tokens.push(self.token(rng).0);
        }
        let text = self.render(&tokens);
        TextTokens { text, tokens }
    }
}

/// Makes requests of text and token ids text-only, for a text (HTTP) target: the ids are
/// dropped and `prompt_len` becomes the tokens of the text as it is sent: the messages'
/// contents joined by blank lines when `joined` (the completions endpoint's prompt), else the
/// sum of each message's tokens (the chat endpoint, whose template the server adds, counted as
/// ShareGPT's multi-turn prompts are).
pub fn text_only<C: TokenCounter + ?Sized>(requests: &mut [Request], counter: &C, joined: bool) {
    for r in requests {
        if r.messages.is_empty() {
            continue;
        }
        r.prompt_tokens = None;
        let n = if joined {
            let texts: Vec<&str> = r.messages.iter().map(|m| m.content.as_str()).collect();
            counter.count(&texts.join("\n\n"))
        } else {
            r.messages.iter().map(|m| counter.count(&m.content)).sum()
        };
        r.prompt_len = u32::try_from(n).unwrap_or(u32::MAX);
    }
}

/// A ChaCha8 stream for one item of a workload: `(seed, domain, id)` always gives the same
/// stream, different ids or domains give independent ones.
pub(crate) fn item_rng(seed: u64, domain: &[u8; 8], id: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(domain);
    key[16..24].copy_from_slice(&id.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A toy vocabulary: token `i` is the word ` w{i}`; the tokenizer splits on spaces, so
    /// detokenizing and re-tokenizing is exact.
    pub(crate) struct Words(pub(crate) i32);

    impl Vocab for Words {
        fn n_vocab(&self) -> i32 {
            self.0
        }

        fn piece(&self, token: i32) -> String {
            format!(" w{token}")
        }

        fn tokenize(&self, text: &str) -> Vec<i32> {
            text.split_whitespace().filter_map(|w| w.strip_prefix('w')?.parse().ok()).collect()
        }
    }

    /// A toy vocabulary that merges: ids 300..304 are the letters `a`..`d`, ids 304..320 all
    /// their pairs, and the tokenizer takes the longest match, as BPE vocabularies do.
    struct Letters;

    const LETTERS: &[u8] = b"abcd";

    impl Vocab for Letters {
        fn n_vocab(&self) -> i32 {
            320
        }

        fn piece(&self, token: i32) -> String {
            match token {
                300..304 => (LETTERS[(token - 300) as usize] as char).to_string(),
                304..320 => {
                    let i = (token - 304) as usize;
                    [LETTERS[i / 4] as char, LETTERS[i % 4] as char].iter().collect()
                }
                _ => String::new(),
            }
        }

        fn tokenize(&self, text: &str) -> Vec<i32> {
            let idx = |b: u8| LETTERS.iter().position(|&l| l == b).map(|i| i as i32);
            let b = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                match (idx(b[i]), b.get(i + 1).and_then(|&c| idx(c))) {
                    (Some(x), Some(y)) => (out.push(304 + x * 4 + y), i += 2),
                    (Some(x), None) => (out.push(300 + x), i += 1),
                    (None, _) => ((), i += 1),
                };
            }
            out
        }
    }

    #[test]
    fn text_only_counts_what_is_sent() {
        let words = |t: &str| t.split_whitespace().count() + t.matches("\n\n").count();
        let mut r = vec![
            Request { prompt_tokens: Some(vec![1, 2, 3]), ..Request::text(0, "a b", 3, 1) },
            crate::replay::Request::tokens(1, vec![5], 1),
        ];
        r[0].messages.insert(0, crate::replay::ChatMessage { role: "system".into(), content: "s".into() });
        let mut chat = r.clone();
        text_only(&mut chat, &words, false);
        assert_eq!((chat[0].prompt_len, chat[0].prompt_tokens.is_none()), (3, true));
        assert_eq!(chat[1], r[1], "token-only requests stay as they are");
        text_only(&mut r, &words, true);
        assert_eq!(r[0].prompt_len, 4, "s\n\na b");
    }

    #[test]
    fn texts_have_the_asked_length_and_follow_the_seed() {
        let v = Words(1000);
        let r = RandomText::new(&v).unwrap();
        let a = r.text(&mut item_rng(1, b"testtest", 0), 50);
        assert_eq!(a.tokens.len(), 50);
        assert_eq!(v.tokenize(&a.text), a.tokens);
        assert!(a.tokens.iter().all(|&t| (300..1000).contains(&t)), "ordinary ids only");
        assert_eq!(a, r.text(&mut item_rng(1, b"testtest", 0), 50));
        assert_ne!(a, r.text(&mut item_rng(2, b"testtest", 0), 50));
        assert_ne!(a, r.text(&mut item_rng(1, b"testtest", 1), 50));
        assert!(r.text(&mut item_rng(1, b"testtest", 0), 0).text.is_empty());
    }

    #[test]
    fn merging_tokenizers_are_adjusted_to_the_length() {
        // Most random sequences re-tokenize shorter: pairs of letters merge.
        let r = RandomText::new(&Letters).unwrap();
        let mut exact = 0;
        for seed in 0..20 {
            let t = r.text(&mut item_rng(seed, b"testtest", 0), 30);
            assert_eq!(t.tokens.len(), 30);
            if Letters.tokenize(&t.text) == t.tokens {
                exact += 1;
            } else {
                // Not converged: the text renders the tokens.
                assert_eq!(t.text, r.render(&t.tokens));
            }
        }
        assert!(exact > 10, "{exact} of 20 converged");
        assert!(RandomText::new(&Words(1)).is_err());
    }
}

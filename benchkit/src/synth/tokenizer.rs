//! A self-contained SentencePiece-style vocabulary that llama.cpp loads as
//! `tokenizer.ggml.model = "llama"` (its SPM tokenizer).
//!
//! Layout: `<unk>` (0), `<s>` (1), `</s>` (2), the 256 byte tokens `<0x00>`..`<0xFF>`, then
//! normal pieces: `▁`, single letters, digits and punctuation, `▁`-prefixed single characters,
//! common English words and suffixes (with every prefix, so SPM's pairwise merges can reach
//! them), then every lowercase 2-, 3-, 4-... letter piece with and without `▁` until the
//! vocabulary is full. Scores decrease with the id, so shorter, more common pieces merge first.
//! Ordinary English text therefore tokenizes into normal pieces; anything else falls back to the
//! byte tokens, which SPM looks up by their `<0xXX>` text (newline is `<0x0A>`).

use std::collections::HashSet;

/// SentencePiece word-boundary marker (U+2581), which SPM puts where spaces were.
pub(crate) const SPACE: char = '\u{2581}';

/// llama.cpp token types (`enum llama_token_type`).
pub(crate) mod token_type {
    /// A normal piece.
    pub const NORMAL: i32 = 1;
    /// The unknown token.
    pub const UNKNOWN: i32 = 2;
    /// A control token (`<s>`, `</s>`).
    pub const CONTROL: i32 = 3;
    /// A byte-fallback token `<0xXX>`.
    pub const BYTE: i32 = 6;
}

/// Id of `<unk>`.
pub(crate) const UNK_ID: u32 = 0;
/// Id of `<s>`.
pub(crate) const BOS_ID: u32 = 1;
/// Id of `</s>`.
pub(crate) const EOS_ID: u32 = 2;
/// Id of the first byte token `<0x00>`.
pub(crate) const FIRST_BYTE_ID: u32 = 3;
/// Id of the first normal piece.
pub(crate) const FIRST_NORMAL_ID: u32 = FIRST_BYTE_ID + 256;

const PUNCTUATION: &str = ".,!?;:'\"-()[]{}/\\@#$%^&*_+=<>|~`";

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "she",
    "other",
    "its",
    "may",
    "these",
    "what",
    "them",
    "than",
    "some",
    "him",
    "time",
    "into",
    "only",
    "do",
    "out",
    "about",
    "also",
    "up",
    "then",
    "any",
    "my",
    "new",
    "first",
    "like",
    "over",
    "such",
    "our",
    "how",
    "two",
    "most",
    "me",
    "way",
    "after",
    "many",
    "just",
    "where",
    "your",
    "made",
    "could",
    "should",
    "each",
    "make",
    "very",
    "through",
    "before",
    "between",
    "under",
    "while",
    "both",
    "year",
    "years",
    "people",
    "work",
    "world",
    "day",
    "because",
    "good",
    "well",
    "long",
    "little",
    "great",
    "said",
    "get",
    "use",
    "used",
    "know",
    "see",
    "take",
    "come",
    "think",
    "look",
    "want",
    "give",
    "find",
    "tell",
    "ask",
    "seem",
    "feel",
    "try",
    "leave",
    "call",
    "model",
    "data",
    "system",
    "language",
    "number",
    "part",
    "place",
    "case",
    "point",
    "group",
    "problem",
    "fact",
    "water",
    "city",
    "house",
    "school",
    "state",
    "country",
    "story",
    "question",
    "answer",
    "example",
    "here",
    "now",
    "there",
    "old",
    "small",
    "large",
    "high",
    "same",
    "different",
    "important",
    "own",
    "right",
    "left",
    "last",
    "next",
    "few",
    "man",
    "woman",
    "child",
    "life",
    "hand",
    "eye",
    "home",
    "thing",
    "name",
    "word",
    "words",
    "text",
    "book",
    "once",
    "upon",
    "quick",
    "brown",
    "fox",
    "jumps",
    "lazy",
    "dog",
    "hello",
];

const SUFFIXES: &[&str] = &["s", "ed", "ing", "er", "ers", "ly", "tion", "ment", "ness", "est", "es", "al", "ous"];

/// The vocabulary: token texts, scores and token types, `n_vocab` entries each.
pub(crate) struct Vocab {
    pub tokens: Vec<String>,
    pub scores: Vec<f32>,
    pub types: Vec<i32>,
}

/// Builds a deterministic vocabulary of exactly `n_vocab` tokens (`n_vocab >= 260`).
pub(crate) fn vocab(n_vocab: usize) -> Vocab {
    let mut b = Builder { tokens: Vec::with_capacity(n_vocab), seen: HashSet::with_capacity(n_vocab), n_vocab };
    let mut types = Vec::with_capacity(n_vocab);
    for (text, ty) in [("<unk>", token_type::UNKNOWN), ("<s>", token_type::CONTROL), ("</s>", token_type::CONTROL)] {
        b.push(text.to_string());
        types.push(ty);
    }
    for byte in 0..=255u8 {
        b.push(format!("<0x{byte:02X}>"));
        types.push(token_type::BYTE);
    }
    b.normal_pieces();
    let n_normal = b.tokens.len() - FIRST_NORMAL_ID as usize;
    types.resize(b.tokens.len(), token_type::NORMAL);
    let mut scores = vec![0.0f32; FIRST_NORMAL_ID as usize];
    // Exact in f32 for any supported vocabulary size (< 2^24).
    scores.extend((0..n_normal).map(|i| -(i as f32)));
    Vocab { tokens: b.tokens, scores, types }
}

struct Builder {
    tokens: Vec<String>,
    seen: HashSet<String>,
    n_vocab: usize,
}

impl Builder {
    fn full(&self) -> bool {
        self.tokens.len() >= self.n_vocab
    }

    /// Adds a piece unless it is already present or the vocabulary is full.
    fn push(&mut self, piece: String) {
        if !self.full() && !self.seen.contains(&piece) {
            self.seen.insert(piece.clone());
            self.tokens.push(piece);
        }
    }

    /// Adds `piece` after all its prefixes of 2 or more characters.
    fn push_with_prefixes(&mut self, piece: &str) {
        let ends: Vec<usize> = piece.char_indices().map(|(i, _)| i).skip(2).chain([piece.len()]).collect();
        for end in ends {
            self.push(piece[..end].to_string());
        }
    }

    fn normal_pieces(&mut self) {
        let singles: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').chain(PUNCTUATION.chars()).collect();
        self.push(SPACE.to_string());
        for &c in &singles {
            self.push(c.to_string());
        }
        for &c in &singles {
            self.push(format!("{SPACE}{c}"));
        }
        for w in WORDS {
            self.push_with_prefixes(&format!("{SPACE}{w}"));
        }
        for w in WORDS {
            let mut cap: Vec<char> = w.chars().collect();
            cap[0] = cap[0].to_ascii_uppercase();
            self.push_with_prefixes(&format!("{SPACE}{}", cap.iter().collect::<String>()));
        }
        for s in SUFFIXES {
            self.push_with_prefixes(s);
        }
        for w in WORDS {
            self.push_with_prefixes(w);
        }
        // Every lowercase piece of 2, 3, 4, ... letters, with and without the marker. Each
        // length has 26^len pieces, so this always fills any supported vocabulary.
        let mut len = 2u32;
        while !self.full() {
            let count = 26u64.pow(len);
            let mut i = 0u64;
            while i < count && !self.full() {
                let mut word = String::with_capacity(len as usize + 3);
                let mut x = i;
                let mut letters = [b'a'; 16];
                for k in (0..len as usize).rev() {
                    letters[k] = b'a' + (x % 26) as u8;
                    x /= 26;
                }
                word.extend(letters[..len as usize].iter().map(|&b| b as char));
                self.push(format!("{SPACE}{word}"));
                self.push(word);
                i += 1;
            }
            len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let v = vocab(600);
        assert_eq!(v.tokens.len(), 600);
        assert_eq!(v.scores.len(), 600);
        assert_eq!(v.types.len(), 600);
        assert_eq!(v.tokens[UNK_ID as usize], "<unk>");
        assert_eq!(v.tokens[BOS_ID as usize], "<s>");
        assert_eq!(v.tokens[EOS_ID as usize], "</s>");
        assert_eq!(v.types[0], token_type::UNKNOWN);
        assert_eq!(v.types[1], token_type::CONTROL);
        assert_eq!(v.tokens[3], "<0x00>");
        assert_eq!(v.tokens[3 + 0x0A], "<0x0A>");
        assert_eq!(v.tokens[258], "<0xFF>");
        assert!(v.types[3..259].iter().all(|&t| t == token_type::BYTE));
        assert!(v.types[259..].iter().all(|&t| t == token_type::NORMAL));
        assert_eq!(v.tokens[259], "\u{2581}");
        assert!(v.scores[259..].windows(2).all(|w| w[0] > w[1]));
        assert!(v.tokens.iter().all(|t| !t.is_empty() && !t.contains(' ')));
    }

    #[test]
    fn minimum_and_large_vocabularies_are_distinct() {
        let v = vocab(MIN_VOCAB_FOR_TEST);
        assert_eq!(v.tokens.len(), MIN_VOCAB_FOR_TEST);
        // No time bound here (a loaded CI machine would make it flaky); a generator that went
        // quadratic in the vocabulary size would not finish this test at all.
        let v = vocab(151_936);
        assert_eq!(v.tokens.len(), 151_936);
        let set: HashSet<&String> = v.tokens.iter().collect();
        assert_eq!(set.len(), v.tokens.len());
        assert_eq!(vocab(151_936).tokens, v.tokens, "deterministic");
    }

    const MIN_VOCAB_FOR_TEST: usize = 260;

    /// A greedy re-implementation of SPM's merge loop (highest-score adjacent pair first) to
    /// check that English text reaches multi-character, non-byte pieces.
    fn spm(v: &Vocab, text: &str) -> Vec<usize> {
        let index: std::collections::HashMap<&str, usize> =
            v.tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
        let text = format!("{SPACE}{}", text.replace(' ', &SPACE.to_string()));
        let mut syms: Vec<String> = text.chars().map(String::from).collect();
        loop {
            let best = (0..syms.len().saturating_sub(1))
                .filter_map(|i| index.get(format!("{}{}", syms[i], syms[i + 1]).as_str()).map(|&id| (v.scores[id], i)))
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
            let Some((_, i)) = best else { break };
            let right = syms.remove(i + 1);
            syms[i].push_str(&right);
        }
        syms.iter().map(|s| index.get(s.as_str()).copied().unwrap_or(UNK_ID as usize)).collect()
    }

    #[test]
    fn english_tokenizes_into_pieces() {
        let v = vocab(32_000);
        let ids = spm(&v, "The quick brown fox jumps over the lazy dog, and the model answers.");
        assert!(ids.iter().all(|&id| id >= FIRST_NORMAL_ID as usize), "{ids:?}");
        assert!(ids.len() < 20, "{} tokens: {:?}", ids.len(), ids.iter().map(|&i| &v.tokens[i]).collect::<Vec<_>>());
        let small = vocab(512);
        let ids = spm(&small, "hello world 42!");
        assert!(ids.iter().all(|&id| id >= FIRST_NORMAL_ID as usize), "{ids:?}");
    }
}

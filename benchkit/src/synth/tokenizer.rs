//! A self-contained SentencePiece-style vocabulary that llama.cpp loads as `llama` (SPM).

/// Token types as GGUF stores them.
pub const NORMAL: i32 = 1;
/// Unknown token.
pub const UNKNOWN: i32 = 2;
/// Control token.
pub const CONTROL: i32 = 3;
/// Byte-fallback token.
pub const BYTE: i32 = 6;

/// Tokens, scores and types for a vocabulary of `n_vocab` entries: `<unk>`, `<s>`, `</s>`,
/// 256 byte tokens, then distinct pieces (single characters, then `▁`-prefixed and bare letter
/// combinations of growing length) so ordinary text tokenizes into non-byte tokens.
pub fn vocab(n_vocab: usize) -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens: Vec<String> = Vec::with_capacity(n_vocab);
    let mut types = Vec::with_capacity(n_vocab);
    tokens.extend(["<unk>", "<s>", "</s>"].map(String::from));
    types.extend([UNKNOWN, CONTROL, CONTROL]);
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(BYTE);
    }
    let letters: Vec<char> = ('a'..='z').collect();
    let mut singles: Vec<String> = vec!["▁".to_string()];
    for c in ('a'..='z').chain('A'..='Z').chain('0'..='9').chain(".,;:!?'\"-()".chars()) {
        singles.push(c.to_string());
        singles.push(format!("▁{c}"));
    }
    let mut pieces = singles.into_iter();
    let mut combos: Vec<String> = letters.iter().map(|c| c.to_string()).collect();
    while tokens.len() < n_vocab {
        match pieces.next() {
            Some(p) => {
                tokens.push(p);
                types.push(NORMAL);
            }
            None => {
                // Next length of lowercase combinations, each bare and ▁-prefixed.
                combos = combos.iter().flat_map(|s| letters.iter().map(move |c| format!("{s}{c}"))).collect();
                let batch: Vec<String> = combos.iter().flat_map(|s| [format!("▁{s}"), s.clone()]).collect();
                pieces = batch.into_iter();
            }
        }
    }
    tokens.truncate(n_vocab);
    types.truncate(n_vocab);
    // Earlier (shorter) pieces score higher; specials and bytes score 0.
    let scores = (0..n_vocab).map(|i| if types[i] == NORMAL { -(i as f32) } else { 0.0 }).collect();
    (tokens, scores, types)
}

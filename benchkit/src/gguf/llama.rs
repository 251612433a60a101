//! Metadata that makes llama.cpp abort while loading a model.
//!
//! llama.cpp checks most metadata with exceptions, which become a typed load error, but a few
//! values it reads with `GGML_ASSERT`, which aborts the whole process. The reader refuses those
//! files ([`GgufError::LlamaAbort`](super::GgufError::LlamaAbort)), mirroring each assertion of the pinned llama.cpp's load path (`load_hparams`, the
//! vocabulary) for the value types llama.cpp accepts there: a value of another type makes
//! llama.cpp throw before it asserts, so it is left to llama.cpp's own error. Keys and strings
//! are compared as llama.cpp compares them, as C strings: up to their first NUL byte.

use super::Value;
use std::collections::HashSet;

/// `LLAMA_MAX_LAYERS`.
const MAX_LAYERS: u32 = 512;
/// `LLAMA_MAX_EXPERTS`.
const MAX_EXPERTS: u32 = 1024;
/// Architectures whose loader asserts `expert_count > 0` and `expert_used_count > 0`.
const MOE_ONLY: [&str; 5] = ["bailingmoe2", "glm4moe", "grovemoe", "llada-moe", "smallthinker"];
/// ggml's `TENSOR_ALIGNMENT`: tensors mapped from the file must start at a multiple of it.
pub(crate) const TENSOR_ALIGNMENT: u64 = 32;
/// `LLAMA_TOKEN_TYPE_BYTE`.
const TOKEN_TYPE_BYTE: i32 = 6;
/// `LLAMA_ROPE_SCALING_TYPES`.
const ROPE_SCALING_TYPES: [&str; 4] = ["none", "linear", "yarn", "longrope"];

/// The first metadata entry llama.cpp would abort on: `(index of the entry, reason)`.
pub(crate) fn check(metadata: &[(String, Value)]) -> Result<(), (usize, String)> {
    // gguf_find_key: the first key equal as a C string.
    let find = |key: &str| metadata.iter().position(|(k, _)| c_str(k) == key);
    let get = |key: &str| find(key).map(|i| &metadata[i].1);
    if let Some(i) = find("tokenizer.ggml.tokens") {
        let model = match get("tokenizer.ggml.model") {
            Some(Value::String(m)) => c_str(m),
            _ => "",
        };
        check_vocab(&metadata[i].1, model, get("tokenizer.ggml.token_type")).map_err(|reason| (i, reason))?;
    }
    let Some(Value::String(arch)) = get("general.architecture") else { return Ok(()) };
    let arch = c_str(arch);
    // llama.cpp loads "clip" files (projectors) without hyperparameters.
    if arch == "clip" {
        return Ok(());
    }
    let key = |suffix: &str| format!("{arch}.{suffix}");
    let u32_of = |suffix: &str| match get(&key(suffix)) {
        Some(Value::U32(v)) => Some(Some(*v)),
        None => Some(None),
        // Another type: llama.cpp throws before it asserts.
        Some(_) => None,
    };
    // An absent key is reported at the architecture that requires it.
    let fail =
        |suffix: &str, reason: String| Err((find(&key(suffix)).or(find("general.architecture")).unwrap_or(0), reason));

    let Some(Some(n_layer)) = u32_of("block_count") else { return Ok(()) };
    if n_layer == 0 || n_layer > MAX_LAYERS {
        return fail("block_count", format!("{n_layer} layers; llama.cpp asserts 1 to {MAX_LAYERS}"));
    }
    match u32_of("nextn_predict_layers") {
        Some(Some(n)) if n > n_layer => {
            return fail("nextn_predict_layers", format!("{n} exceeds the {n_layer} layers (llama.cpp asserts)"));
        }
        None => return Ok(()),
        _ => {}
    }

    let (Some(n_expert), Some(groups), Some(group_used)) =
        (u32_of("expert_count"), u32_of("expert_group_count"), u32_of("expert_group_used_count"))
    else {
        return Ok(());
    };
    let (mut n_expert, groups, group_used) = (n_expert.unwrap_or(0), groups.unwrap_or(0), group_used.unwrap_or(0));
    let Some((mut used_max, used_first)) = expert_used(get(&key("expert_used_count")), n_layer) else {
        return Ok(());
    };
    if (arch == "hunyuan_vl" || arch == "hunyuan-dense") && n_expert <= 1 {
        (n_expert, used_max) = (0, 0);
    }
    // Mixture-of-experts architectures whose tensor loader asserts experts (after only the
    // embedding and output tensors, or at once).
    if MOE_ONLY.contains(&arch) && (n_expert == 0 || used_first == 0) {
        let at = if n_expert == 0 { "expert_count" } else { "expert_used_count" };
        return fail(
            at,
            format!(
                "{}: {n_expert} experts, {used_first} used in layer 0; llama.cpp asserts experts for {arch}",
                key(at)
            ),
        );
    }
    if arch == "wavtokenizer-dec" {
        for suffix in ["posnet.block_count", "convnext.block_count"] {
            match u32_of(suffix) {
                Some(Some(n)) if n > n_layer => {
                    return fail(suffix, format!("{n} exceeds the {n_layer} layers (llama.cpp asserts)"));
                }
                Some(Some(_)) => {}
                _ => return Ok(()),
            }
        }
    }
    if n_expert > MAX_EXPERTS {
        return fail("expert_count", format!("{n_expert} experts; llama.cpp asserts at most {MAX_EXPERTS}"));
    }
    if used_max > n_expert {
        return fail("expert_used_count", format!("{used_max} experts used of {n_expert} (llama.cpp asserts)"));
    }
    if n_expert > 0 {
        if used_max == 0 {
            let at = if get(&key("expert_used_count")).is_some() { "expert_used_count" } else { "expert_count" };
            return fail(at, format!("0 experts used of {n_expert} (llama.cpp asserts at least 1)"));
        }
        if groups >= n_expert {
            return fail(
                "expert_group_count",
                format!("{groups} groups of {n_expert} experts (llama.cpp asserts fewer)"),
            );
        }
        if groups > 1 {
            if n_expert % groups != 0 {
                return fail("expert_group_count", format!("{groups} groups do not divide {n_expert} experts"));
            }
            if group_used == 0 || group_used >= groups {
                let at = if group_used == 0 { "expert_group_count" } else { "expert_group_used_count" };
                return fail(
                    at,
                    format!("{group_used} groups used of {groups} (llama.cpp asserts 1 to {})", groups - 1),
                );
            }
        }
    } else if used_max > 0 {
        return fail("expert_used_count", format!("{used_max} experts used without experts (llama.cpp asserts)"));
    } else if groups > 0 {
        return fail("expert_group_count", format!("{groups} expert groups without experts (llama.cpp asserts)"));
    }

    if let Some(Value::String(s)) = get(&key("rope.scaling.type")) {
        if !ROPE_SCALING_TYPES.contains(&c_str(s)) {
            return fail(
                "rope.scaling.type",
                format!("{s:?} (llama.cpp asserts one of {})", ROPE_SCALING_TYPES.join(", ")),
            );
        }
    }
    Ok(())
}

/// The largest per-layer `expert_used_count` and layer 0's, as llama.cpp reads it (a u32, or
/// an array of one u32, i32 or bool per layer); `None` when llama.cpp refuses it with an error.
fn expert_used(v: Option<&Value>, n_layer: u32) -> Option<(u32, u32)> {
    let one = |x: &Value| match x {
        Value::U32(n) => Some(*n),
        // Copied bit for bit into llama.cpp's u32 array.
        Value::I32(n) => Some(*n as u32),
        Value::Bool(b) => Some(u32::from(*b)),
        _ => None,
    };
    match v {
        None => Some((0, 0)),
        Some(Value::U32(n)) => Some((*n, *n)),
        Some(Value::Array(items)) if items.len() == n_layer as usize => {
            let first = one(items.first()?)?;
            items.iter().try_fold((0u32, first), |(m, f), x| Some((m.max(one(x)?), f)))
        }
        // An empty array has no element type; llama.cpp reads it as a wrong length.
        Some(_) => None,
    }
}

/// llama.cpp maps each token's text to its id and asserts that no two tokens share a text
/// (an empty token becomes `[EMPTY_<id>]` first); building its piece cache at load, it aborts
/// on a byte token (type 6) of a WordPiece (`bert`) vocabulary.
fn check_vocab(tokens: &Value, model: &str, types: Option<&Value>) -> Result<(), String> {
    let Value::Array(items) = tokens else { return Ok(()) };
    if model == "bert" && items.iter().all(|t| matches!(t, Value::String(_))) {
        if let Some(Value::Array(types)) = types {
            // Fewer types than tokens, or another element type: llama.cpp throws first.
            let byte = types.iter().take(items.len()).position(|t| matches!(t, Value::I32(TOKEN_TYPE_BYTE)));
            if let (true, Some(i)) = (types.len() >= items.len(), byte) {
                return Err(format!(
                    "token {i} is a byte token (type 6), which llama.cpp aborts on in a WordPiece (bert) vocabulary"
                ));
            }
        }
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(items.len());
    let mut empty = Vec::new();
    for (i, t) in items.iter().enumerate() {
        let Value::String(s) = t else { return Ok(()) };
        let s = c_str(s);
        if s.is_empty() {
            empty.push(i);
        } else if !seen.insert(s) {
            return Err(format!("token {i} ({s:?}) occurs twice; llama.cpp asserts unique tokens"));
        }
    }
    for i in empty {
        let s = format!("[EMPTY_{i}]");
        if seen.contains(s.as_str()) {
            return Err(format!(
                "token {i} is empty and llama.cpp names it {s:?}, which is another token; it asserts unique tokens"
            ));
        }
    }
    Ok(())
}

/// `s` as C code sees it: up to its first NUL byte.
fn c_str(s: &str) -> &str {
    s.split('\0').next().unwrap_or(s)
}

/// The first tensor whose data llama.cpp would map at an address it asserts on: `(index,
/// reason)`.
pub(crate) fn check_tensors(data_offset: u64, tensors: &[super::TensorInfo]) -> Result<(), (usize, String)> {
    match tensors.iter().position(|t| (data_offset + t.offset) % TENSOR_ALIGNMENT != 0) {
        Some(i) => Err((
            i,
            format!(
                "its data starts at byte {}, not a multiple of {TENSOR_ALIGNMENT}: llama.cpp maps the file and asserts \
                 {TENSOR_ALIGNMENT}-byte aligned tensors (general.alignment below {TENSOR_ALIGNMENT}?)",
                data_offset + tensors[i].offset
            ),
        )),
        None => Ok(()),
    }
}

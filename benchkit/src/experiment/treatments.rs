//! Treatments: one level of each factor, from a full factorial or an explicit list.

use serde::Serialize;

use super::file::Factor;

/// One treatment: a level of every factor, in the file's factor order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Treatment {
    /// `factor=level+factor=level` (levels spelled with `[A-Za-z0-9._:-]` only, the rest as
    /// `_`): its id in labels, log file names and `{treatment}`.
    pub id: String,
    /// `(factor, level)`, the levels as written in the file.
    pub levels: Vec<(String, String)>,
}

impl Treatment {
    /// The treatment of these levels.
    pub fn new(levels: Vec<(String, String)>) -> Self {
        let id = if levels.is_empty() {
            "all".to_string()
        } else {
            levels.iter().map(|(f, l)| format!("{f}={}", id_safe(l))).collect::<Vec<_>>().join("+")
        };
        Treatment { id, levels }
    }

    /// The level of `factor`.
    pub fn level(&self, factor: &str) -> Option<&str> {
        self.levels.iter().find(|(f, _)| f == factor).map(|(_, l)| l.as_str())
    }
}

/// A level as an id may spell it: safe in file names, labels and store filters.
fn id_safe(level: &str) -> String {
    let s: String = level
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') { c } else { '_' })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// A TOML level as text: strings as written, numbers and booleans as TOML prints them.
pub(crate) fn level_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every combination of the factors' levels, the last factor varying fastest.
pub(crate) fn full_factorial(factors: &[Factor]) -> Vec<Treatment> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for f in factors {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                f.levels.iter().map(move |l| {
                    let mut c = c.clone();
                    c.push((f.name.clone(), l.clone()));
                    c
                })
            })
            .collect();
    }
    combos.into_iter().map(Treatment::new).collect()
}

/// The explicit treatment `table` (the `i`th of the list): every factor, each at one of its
/// levels.
///
/// # Errors
/// `(key, reason)` for a missing or unknown factor, a level that is not one of the factor's,
/// or a value that is no scalar.
pub(crate) fn explicit(i: usize, table: &toml::Table, factors: &[Factor]) -> Result<Treatment, (String, String)> {
    let key = |k: &str| format!("treatments[{i}].{k}");
    if let Some(k) = table.keys().find(|k| !factors.iter().any(|f| &f.name == *k)) {
        let names: Vec<&str> = factors.iter().map(|f| f.name.as_str()).collect();
        return Err((key(k), format!("no factor of that name (factors: {})", names.join(", "))));
    }
    let mut levels = Vec::new();
    for f in factors {
        let v = table.get(&f.name).ok_or_else(|| (key(&f.name), "missing: a treatment sets every factor".into()))?;
        let text = level_text(v).ok_or_else(|| (key(&f.name), "a level is a string, number or boolean".into()))?;
        if !f.levels.contains(&text) {
            return Err((key(&f.name), format!("{text:?} is not one of the factor's levels {:?}", f.levels)));
        }
        levels.push((f.name.clone(), text));
    }
    Ok(Treatment::new(levels))
}

//! `{placeholder}` strings: a factor's level, `{port}`, `{treatment}`, `{experiment}`,
//! `{env:NAME}`; `{{` and `}}` are literal braces.

use std::collections::BTreeMap;

/// Placeholders every treatment defines besides its factors.
pub(crate) const BUILTIN: &[&str] = &["port", "treatment", "experiment"];

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(String),
    /// `{name}`.
    Var(&'a str),
    /// `{env:NAME}`.
    Env(&'a str),
}

/// Splits a template into pieces.
///
/// # Errors
/// A message for an unclosed `{`, a stray `}` or an empty `{}`.
pub(crate) fn parse(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(['{', '}']) {
        text.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            text.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!("a '}}' without its '{{' in {s:?} (write '}}}}' for a literal one)"));
        }
        let Some(end) = tail.find('}') else {
            return Err(format!("an unclosed '{{' in {s:?} (write '{{{{' for a literal one)"));
        };
        let name = &tail[1..end];
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        match name.strip_prefix("env:") {
            Some(var) if !var.is_empty() => out.push(Piece::Env(var)),
            _ if name.is_empty() || name.starts_with("env:") => {
                return Err(format!("an empty placeholder in {s:?}"));
            }
            _ => out.push(Piece::Var(name)),
        }
        rest = &tail[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// Checks that every placeholder of `s` is one of `known` or a set environment variable.
///
/// # Errors
/// A message naming the placeholder.
pub(crate) fn check(s: &str, known: &[&str]) -> Result<(), String> {
    for p in parse(s)? {
        match p {
            Piece::Var(v) if !known.contains(&v) => {
                return Err(format!("unknown placeholder {{{v}}} (known: {})", braced(known)));
            }
            Piece::Env(e) if std::env::var_os(e).is_none() => {
                return Err(format!("{{env:{e}}}: the environment variable {e} is not set"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn braced(known: &[&str]) -> String {
    let mut v: Vec<String> = known.iter().map(|k| format!("{{{k}}}")).collect();
    v.push("{env:NAME}".into());
    v.join(", ")
}

/// Whether `s` uses the placeholder `{name}`.
pub(crate) fn uses(s: &str, name: &str) -> bool {
    parse(s).is_ok_and(|ps| ps.contains(&Piece::Var(name)))
}

/// `s` with its placeholders replaced (a checked template: an unknown one stays as written).
pub(crate) fn render(s: &str, vars: &BTreeMap<String, String>) -> String {
    let Ok(pieces) = parse(s) else { return s.to_string() };
    pieces
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => t,
            Piece::Var(v) => vars.get(v).cloned().unwrap_or_else(|| format!("{{{v}}}")),
            Piece::Env(e) => std::env::var(e).unwrap_or_default(),
        })
        .collect()
}

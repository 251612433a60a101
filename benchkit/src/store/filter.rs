//! Which runs and records a command is about: `key=value` conditions, all of which must hold.

use super::{Entry, Run, StoreError, RUN_KEYS};

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cond {
    key: String,
    /// Any of these (`a|b`).
    values: Vec<String>,
    negated: bool,
}

/// `key=value[,key=value...]` conditions, all of which must hold.
///
/// A value may list alternatives (`n_threads=1|2`); `key!=value` excludes. A commit matches by
/// prefix (`commit=a1b2c3`), as git abbreviates. Keys are those of [`Entry::value`]: run keys
/// (`commit`, `build`, `machine`, `source`, `label`, `run`, ...), record keys (`model`, `test`,
/// `status`, `kind`) and any parameter (`n_threads`, `n_batch`, `request_rate`, ...). A comma
/// inside a value (`backends=CPU,BLAS`) stays in it when what follows has no `=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    conds: Vec<Cond>,
}

impl Filter {
    /// Everything.
    pub fn all() -> Self {
        Filter::default()
    }

    /// Parses `key=value[,key=value...]`; an empty string is [`Filter::all`].
    ///
    /// # Errors
    /// [`StoreError::Filter`] for an item without `=` or with an empty key.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let bad = |reason: &str| StoreError::Filter { filter: text.to_string(), reason: reason.to_string() };
        let mut items: Vec<String> = Vec::new();
        for part in text.split(',') {
            match items.last_mut() {
                // A trailing or doubled comma is a separator, not part of a value.
                _ if part.trim().is_empty() => {}
                Some(last) if !part.contains('=') => {
                    last.push(',');
                    last.push_str(part);
                }
                _ => items.push(part.to_string()),
            }
        }
        let mut conds = Vec::new();
        for item in items {
            let (key, value, negated) = match item.split_once("!=") {
                Some((k, v)) => (k, v, true),
                None => match item.split_once('=') {
                    Some((k, v)) => (k, v, false),
                    None => return Err(bad("expected key=value")),
                },
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(bad("empty key"));
            }
            conds.push(Cond {
                key: key.to_string(),
                values: value.split('|').map(|v| v.trim().to_string()).collect(),
                negated,
            });
        }
        Ok(Filter { conds })
    }

    /// This filter and `other`.
    pub fn and(mut self, other: &Filter) -> Self {
        self.conds.extend(other.conds.iter().cloned());
        self
    }

    /// The keys it constrains.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.conds.iter().map(|c| c.key.as_str())
    }

    /// Whether it has no conditions.
    pub fn is_empty(&self) -> bool {
        self.conds.is_empty()
    }

    fn holds(c: &Cond, value: Option<String>) -> bool {
        let prefix = matches!(c.key.as_str(), "commit" | "build_commit");
        let hit = value.is_some_and(|v| {
            c.values
                .iter()
                .any(|want| if prefix && want.len() >= 4 { v.starts_with(want.as_str()) } else { &v == want })
        });
        hit != c.negated
    }

    /// Whether an entry satisfies every condition.
    pub fn matches(&self, e: &Entry) -> bool {
        self.conds.iter().all(|c| Self::holds(c, e.value(&c.key)))
    }

    /// Whether a run satisfies every run-level condition (record-level ones are not checked).
    pub fn matches_run(&self, run: &Run) -> bool {
        self.conds
            .iter()
            .filter(|c| RUN_KEYS.contains(&c.key.as_str()) || c.key == "kind")
            .all(|c| Self::holds(c, run.value(&c.key)))
    }
}

/// The conditions as `parse` reads them back: `key=a|b,key!=c`.
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, c) in self.conds.iter().enumerate() {
            let op = if c.negated { "!=" } else { "=" };
            write!(f, "{}{}{op}{}", if i > 0 { "," } else { "" }, c.key, c.values.join("|"))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Filter {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Filter;

    #[test]
    fn parses_conditions_alternatives_and_commas_in_values() {
        let f = Filter::parse("n_threads=1|2,backends=CPU,BLAS,model!=x").unwrap();
        assert_eq!(f.keys().collect::<Vec<_>>(), ["n_threads", "backends", "model"]);
        assert_eq!(f.conds[0].values, ["1", "2"]);
        assert_eq!(f.conds[1].values, ["CPU,BLAS"]);
        assert!(f.conds[2].negated);
        assert!(Filter::parse("").unwrap().is_empty());
        assert!(Filter::parse("novalue").is_err());
        assert!(Filter::parse("=v").is_err());
    }
}

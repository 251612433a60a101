//! The experiment file (TOML), read and checked whole before anything runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::template::{self, BUILTIN};
use super::treatments::{self, Treatment};
use super::ExperimentError;

/// The subcommands a treatment may run.
pub const COMMANDS: &[&str] = &["bench", "perplexity", "replay", "placement"];

/// How long `wait_http` waits by default.
const DEFAULT_WAIT: Duration = Duration::from_secs(120);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    treatments: Option<RawTreatments>,
    #[serde(default)]
    timeout_s: Option<f64>,
    #[serde(default)]
    factors: Vec<RawFactor>,
    #[serde(default)]
    setup: RawSetup,
    #[serde(default)]
    teardown: Teardown,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTreatments {
    Design(String),
    List(Vec<toml::Table>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFactor {
    name: String,
    levels: Vec<toml::Value>,
    #[serde(default)]
    flag: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    #[serde(default)]
    run: Vec<Vec<String>>,
    #[serde(default)]
    spawn: Option<Vec<String>>,
    #[serde(default)]
    wait_http: Option<String>,
    #[serde(default)]
    wait_timeout_s: Option<f64>,
}

/// A factor: its levels, and the flag that applies a level to the command (without one, the
/// level is used through `{name}` placeholders only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Factor {
    /// Its name, also its placeholder.
    pub name: String,
    /// The levels, as text.
    pub levels: Vec<String>,
    /// `--request-rate`: `flag level` is appended to the command's arguments.
    pub flag: Option<String>,
}

/// What each treatment starts with (templates).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setup {
    /// Commands run in order, each of which must exit 0.
    pub run: Vec<Vec<String>>,
    /// A long-lived process (a server) kept until teardown.
    pub spawn: Option<Vec<String>>,
    /// A URL that must answer 200 before the command runs.
    pub wait_http: Option<String>,
    /// How long to wait for it.
    pub wait_timeout: Duration,
}

/// What each treatment ends with, whatever happened before (templates).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Teardown {
    /// Commands run in order; a failure is reported, and the rest still run.
    #[serde(default)]
    pub run: Vec<Vec<String>>,
}

/// A checked experiment file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    /// The file.
    pub path: PathBuf,
    /// The experiment's name (`[A-Za-z0-9._-]+`).
    pub name: String,
    /// The benchkit subcommand each treatment runs.
    pub command: String,
    /// Its arguments (templates).
    pub args: Vec<String>,
    /// The factors.
    pub factors: Vec<Factor>,
    /// The treatments, in the order they run.
    pub treatments: Vec<Treatment>,
    /// Per-treatment setup.
    pub setup: Setup,
    /// Per-treatment teardown.
    pub teardown: Teardown,
    /// The command is killed (and the treatment failed) after this long.
    pub timeout: Option<Duration>,
    /// 12 hex digits of SHA-256 over what makes a result: command, arguments, factors (names
    /// and flags) and setup. Part of every label, so an edited file does not skip treatments.
    pub hash: String,
}

/// The most treatments one experiment file may define.
pub const MAX_TREATMENTS: usize = 10_000;

fn positive_secs(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok().filter(|d| !d.is_zero())
}

impl Experiment {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    /// [`ExperimentError::Read`], [`ExperimentError::Toml`] (with the line), or
    /// [`ExperimentError::Invalid`] naming the key.
    pub fn load(path: &Path) -> Result<Self, ExperimentError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ExperimentError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Checks the TOML `text`, read from `path` (named in errors).
    ///
    /// # Errors
    /// As [`Experiment::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, ExperimentError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ExperimentError::Toml { path: path.to_path_buf(), line, column, message: e.message().to_string() }
        })?;
        let bad = |key: &str, reason: String| ExperimentError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        if raw.name.is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(bad("name", format!("{:?}: a name is [A-Za-z0-9._-]+ (it is part of labels)", raw.name)));
        }
        if !COMMANDS.contains(&raw.command.as_str()) {
            return Err(bad("command", format!("{:?} is not one of {}", raw.command, COMMANDS.join(", "))));
        }
        for (i, a) in raw.args.iter().enumerate() {
            let flag = a.split('=').next().unwrap_or_default();
            if flag == "--store" || flag == "--label" {
                return Err(bad(&format!("args[{i}]"), format!("{a}: the experiment sets --store and --label itself")));
            }
        }

        let mut factors: Vec<Factor> = Vec::new();
        for (i, f) in raw.factors.iter().enumerate() {
            let key = |k: &str| format!("factors[{i}].{k}");
            let valid = f.name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && f.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(bad(&key("name"), format!("{:?}: a factor name is [A-Za-z_][A-Za-z0-9_]*", f.name)));
            }
            if BUILTIN.contains(&f.name.as_str()) || factors.iter().any(|g| g.name == f.name) {
                return Err(bad(
                    &key("name"),
                    format!("{:?} is taken (by another factor or a built-in placeholder)", f.name),
                ));
            }
            if f.levels.is_empty() {
                return Err(bad(&key("levels"), "a factor needs at least one level".into()));
            }
            let mut levels = Vec::new();
            for (j, v) in f.levels.iter().enumerate() {
                let text = treatments::level_text(v).ok_or_else(|| {
                    bad(&format!("factors[{i}].levels[{j}]"), "a level is a string, number or boolean".into())
                })?;
                if levels.contains(&text) {
                    return Err(bad(&format!("factors[{i}].levels[{j}]"), format!("{text:?} is listed twice")));
                }
                levels.push(text);
            }
            if let Some(flag) = f.flag.as_deref().filter(|fl| !fl.starts_with('-')) {
                return Err(bad(&key("flag"), format!("{flag:?} is not a flag (it starts with '-')")));
            }
            factors.push(Factor { name: f.name.clone(), levels, flag: f.flag.clone() });
        }

        let full_factorial = || {
            // Counted before it is built: ten factors of ten levels would be 10^10 treatments.
            let n = factors.iter().try_fold(1usize, |acc, f| acc.checked_mul(f.levels.len()));
            match n {
                Some(n) if n <= MAX_TREATMENTS => Ok(treatments::full_factorial(&factors)),
                _ => Err(bad(
                    "factors",
                    format!(
                        "the full factorial design has {} treatments; at most {MAX_TREATMENTS}",
                        n.map_or("over 2^64".to_string(), |n| n.to_string())
                    ),
                )),
            }
        };
        let treatments = match &raw.treatments {
            None => full_factorial()?,
            Some(RawTreatments::Design(d)) if d == "full-factorial" => full_factorial()?,
            Some(RawTreatments::Design(d)) => {
                return Err(bad("treatments", format!("{d:?}: \"full-factorial\" or a list of tables")));
            }
            Some(RawTreatments::List(list)) => {
                if list.is_empty() {
                    return Err(bad("treatments", "an empty list runs nothing".into()));
                }
                let mut out = Vec::new();
                for (i, t) in list.iter().enumerate() {
                    out.push(treatments::explicit(i, t, &factors).map_err(|(k, r)| bad(&k, r))?);
                }
                out
            }
        };
        let mut first_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, t) in treatments.iter().enumerate() {
            if let Some(&j) = first_of.get(t.id.as_str()) {
                return Err(bad(
                    &format!("treatments[{i}]"),
                    format!("treatment {} is the same as treatments[{j}] (levels spelled alike in ids)", t.id),
                ));
            }
            first_of.insert(&t.id, i);
        }

        let setup = Setup {
            run: raw.setup.run.clone(),
            spawn: raw.setup.spawn.clone(),
            wait_http: raw.setup.wait_http.clone(),
            wait_timeout: match raw.setup.wait_timeout_s {
                None => DEFAULT_WAIT,
                Some(s) => positive_secs(s)
                    .ok_or_else(|| bad("setup.wait_timeout_s", format!("{s} is not a number of seconds > 0")))?,
            },
        };
        let timeout = raw
            .timeout_s
            .map(|s| positive_secs(s).ok_or_else(|| bad("timeout_s", format!("{s} is not a number of seconds > 0"))))
            .transpose()?;

        // Every template, by its key, for the placeholder checks.
        let mut templates: Vec<(String, &str)> = Vec::new();
        let mut argvs: Vec<(String, &Vec<String>)> = Vec::new();
        for (i, r) in setup.run.iter().enumerate() {
            argvs.push((format!("setup.run[{i}]"), r));
        }
        if let Some(s) = &setup.spawn {
            argvs.push(("setup.spawn".into(), s));
        }
        for (i, r) in raw.teardown.run.iter().enumerate() {
            argvs.push((format!("teardown.run[{i}]"), r));
        }
        for (key, argv) in &argvs {
            if argv.is_empty() || argv[0].is_empty() {
                return Err(bad(key, "a command is a non-empty list: program first, then its arguments".into()));
            }
            templates.extend(argv.iter().enumerate().map(|(j, a)| (format!("{key}[{j}]"), a.as_str())));
        }
        templates.extend(raw.args.iter().enumerate().map(|(j, a)| (format!("args[{j}]"), a.as_str())));
        if let Some(u) = &setup.wait_http {
            templates.push(("setup.wait_http".into(), u.as_str()));
            if !u.starts_with("http://") {
                return Err(bad("setup.wait_http", format!("{u:?}: an http:// URL")));
            }
        }
        let known: Vec<&str> = factors.iter().map(|f| f.name.as_str()).chain(BUILTIN.iter().copied()).collect();
        for (key, t) in &templates {
            template::check(t, &known).map_err(|r| bad(key, r))?;
        }
        for (i, f) in factors.iter().enumerate() {
            if f.flag.is_none() && !templates.iter().any(|(_, t)| template::uses(t, &f.name)) {
                return Err(bad(
                    &format!("factors[{i}]"),
                    format!(
                        "{:?} has no flag and no {{{}}} placeholder uses it: its levels would change nothing",
                        f.name, f.name
                    ),
                ));
            }
        }

        let hash = {
            let what = serde_json::json!({
                "command": raw.command,
                "args": raw.args,
                "factors": factors.iter().map(|f| (&f.name, &f.flag)).collect::<Vec<_>>(),
                "setup": { "run": setup.run, "spawn": setup.spawn },
            });
            let digest = Sha256::digest(what.to_string().as_bytes());
            digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
        };
        Ok(Experiment {
            path: path.to_path_buf(),
            name: raw.name,
            command: raw.command,
            args: raw.args,
            factors,
            treatments,
            setup,
            teardown: raw.teardown,
            timeout,
            hash,
        })
    }

    /// The label of `t`'s runs.
    pub fn label(&self, t: &Treatment) -> String {
        super::label(&self.name, &t.id, &self.hash)
    }
}

/// 1-based line and column of byte `offset` of `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

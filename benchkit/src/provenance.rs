//! Where a result came from: the one description every benchkit result carries.
//!
//! A bench record, a perplexity or KL-divergence result and a replay result each embed a
//! [`Provenance`] under the key `provenance`, with the same keys whatever the capability:
//! build, system, start time, host, seeds, model, dataset and every setting. Two results can be
//! compared (or refused as incomparable) from their provenance alone.
//!
//! Versioning: [`SCHEMA_VERSION`] counts incompatible changes (a key removed, renamed or
//! retyped) of the result types; adding an optional key does not bump it. Readers refuse a
//! schema version newer than their own.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{BuildInfo, SystemInfo};

/// Bumped when a result type changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

/// Build, machine, time, inputs and settings of one result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Provenance {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// benchkit's version.
    pub benchkit_version: String,
    /// How the linked llama.cpp was built.
    pub build: BuildInfo,
    /// The machine.
    pub system: SystemInfo,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// Host name, where known.
    pub host: Option<String>,
    /// Every seed the run used, by what it seeded (`prompt_tokens`, `workload`, ...).
    pub seeds: BTreeMap<String, u64>,
    /// The model measured.
    pub model: Option<ModelProvenance>,
    /// The dataset (perplexity text, replay workload).
    pub dataset: Option<DatasetProvenance>,
    /// Every setting of the run, as the capability's configuration types serialise them.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// The model of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelProvenance {
    /// What llama.cpp reports of the loaded model (path, description, sizes, parameters,
    /// file type, shape).
    #[serde(flatten)]
    pub info: crate::ModelInfo,
    /// sha256 of the file (hex), when the run was asked to hash it.
    pub sha256: Option<String>,
}

/// The dataset of a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetProvenance {
    /// What it is: `file`, `sharegpt`, `synthetic`, ...
    pub kind: String,
    /// The file it was read from, if any.
    pub path: Option<String>,
    /// sha256 (hex) of the bytes read.
    pub sha256: Option<String>,
    /// Bytes read.
    pub bytes: u64,
    /// The file ended mid-record and was cut at the last complete one.
    pub truncated: bool,
    /// What the truncation left out, in words.
    pub truncation: Option<String>,
    /// Ids of the entries the run sampled, in order, where it samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sampled_ids: Vec<String>,
}

impl Provenance {
    /// Build and system of this process, started now; no seeds, model, dataset or settings.
    pub fn now() -> Self {
        Self::with(BuildInfo::current(), SystemInfo::collect())
    }

    /// As [`now`](Self::now), with build and system already collected (`SystemInfo::collect`
    /// asks llama.cpp, so sweeps collect it once).
    pub fn with(build: BuildInfo, system: SystemInfo) -> Self {
        Provenance {
            schema_version: SCHEMA_VERSION,
            benchkit_version: env!("CARGO_PKG_VERSION").to_string(),
            host: system.hostname.clone(),
            build,
            system,
            started_at: rfc3339_now(),
            seeds: BTreeMap::new(),
            model: None,
            dataset: None,
            settings: serde_json::Map::new(),
        }
    }

    /// Records a seed.
    pub fn seed(mut self, name: &str, value: u64) -> Self {
        self.seeds.insert(name.to_string(), value);
        self
    }

    /// Records a setting; `value` is serialised as the result's JSON shows it.
    pub fn setting(mut self, name: &str, value: &impl Serialize) -> Self {
        let v =
            serde_json::to_value(value).unwrap_or_else(|e| serde_json::Value::String(format!("unserialisable: {e}")));
        self.settings.insert(name.to_string(), v);
        self
    }

    /// Records the model.
    pub fn model(mut self, model: ModelProvenance) -> Self {
        self.model = Some(model);
        self
    }

    /// Records the dataset.
    pub fn dataset(mut self, dataset: DatasetProvenance) -> Self {
        self.dataset = Some(dataset);
        self
    }
}

impl ModelProvenance {
    /// The loaded model's description; `sha256` when asked for (reads the whole file).
    ///
    /// # Errors
    /// The file cannot be read for hashing.
    pub fn of(model: &crate::Model, sha256: bool) -> std::io::Result<Self> {
        let info = model.info().clone();
        let sha256 = if sha256 { Some(sha256_file(&info.path)?) } else { None };
        Ok(ModelProvenance { info, sha256 })
    }

    /// From a model description already taken.
    pub fn from_info(info: crate::ModelInfo) -> Self {
        ModelProvenance { info, sha256: None }
    }
}

impl DatasetProvenance {
    /// A dataset of `kind`, read from `path` (`bytes` bytes, hashed `sha256`).
    pub fn file(kind: &str, path: Option<&Path>, bytes: u64, sha256: Option<String>) -> Self {
        DatasetProvenance {
            kind: kind.to_string(),
            path: path.map(|p| p.display().to_string()),
            sha256,
            bytes,
            ..Default::default()
        }
    }
}

/// The current time, RFC 3339 UTC, whole seconds (llama-bench's `test_time` style).
pub fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// sha256 (hex) of a file, streamed.
///
/// # Errors
/// The file cannot be opened or read.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A provenance for unit tests that does not call llama.cpp's `llama_print_system_info`
/// (not safe on several test threads at once).
#[cfg(test)]
pub(crate) fn test_provenance() -> Provenance {
    tests::sample()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sample() -> Provenance {
        let build = BuildInfo::current();
        let system = SystemInfo {
            cpu_info: "cpu".into(),
            gpu_info: String::new(),
            n_cpus: 2,
            n_physical_cores: 2,
            memory_bytes: 1 << 30,
            os: "linux x86_64".into(),
            kernel: Some("6.1".into()),
            hostname: Some("host".into()),
            sched_ext: None,
            llama_system_info: "CPU : AVX2 = 1".into(),
            topology: None,
        };
        Provenance::with(build, system)
            .seed("prompt_tokens", 1234)
            .setting("repetitions", &5)
            .dataset(DatasetProvenance { truncated: true, sampled_ids: vec!["a".into()], ..Default::default() })
    }

    #[test]
    fn round_trips_through_json() {
        let p = sample();
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Provenance>(&s).unwrap(), p);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["schema_version"], SCHEMA_VERSION);
        assert_eq!(v["host"], "host");
        assert_eq!(v["seeds"]["prompt_tokens"], 1234);
        assert!(v["started_at"].as_str().unwrap().ends_with('Z'));
        assert!(chrono::DateTime::parse_from_rfc3339(v["started_at"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn file_hash_matches_a_known_digest() {
        let dir = std::env::temp_dir().join(format!("benchkit-prov-{}", std::process::id()));
        std::fs::write(&dir, b"abc").unwrap();
        let h = sha256_file(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(sha256_file(Path::new("/nonexistent/benchkit")).is_err());
    }
}

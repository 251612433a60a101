//! CPU energy from RAPL through powercap (`/sys/class/powercap/intel-rapl:*`; AMD Zen exposes
//! the same zones on recent kernels).
//!
//! Counted: every package zone and every DRAM subzone (outside the package on servers). The
//! core/uncore subzones lie inside their package and `psys` spans the platform, so those would
//! count twice. Each counter wraps at its `max_energy_range_uj`.

use super::{Probe, Roots, Sample};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Zone {
    name: String,
    energy: PathBuf,
    max_range_uj: u64,
    last_uj: u64,
    joules: f64,
}

/// Samples RAPL energy counters; a sample holds joules per domain since [`Probe::start`].
pub struct RaplProbe {
    root: PathBuf,
    zones: Vec<Zone>,
}

impl RaplProbe {
    /// A probe of the powercap zones under `roots`.
    pub fn new(roots: &Roots) -> Self {
        RaplProbe { root: roots.sys.join("class/powercap"), zones: Vec::new() }
    }

    fn discover(&self) -> Result<Vec<Zone>, String> {
        let entries = std::fs::read_dir(&self.root).map_err(|e| {
            format!("no powercap interface at {} ({e}): RAPL is not exposed by this kernel or VM", self.root.display())
        })?;
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("intel-rapl:")))
            .collect();
        dirs.sort();
        let mut zones = Vec::new();
        for dir in dirs {
            let depth = dir.file_name().and_then(|n| n.to_str()).map_or(0, |n| n.matches(':').count());
            let name = std::fs::read_to_string(dir.join("name")).map(|s| s.trim().to_string()).unwrap_or_default();
            let counted = match depth {
                1 => name.starts_with("package"),
                _ => name == "dram",
            };
            if !counted {
                continue;
            }
            let energy = dir.join("energy_uj");
            let last_uj = read_uj(&energy)?;
            let max_range_uj = read_uj(&dir.join("max_energy_range_uj")).unwrap_or(u64::MAX);
            let label =
                if depth == 1 { name } else { format!("{}-{name}", zones.last().map_or("", |z: &Zone| &z.name)) };
            zones.push(Zone { name: label, energy, max_range_uj, last_uj, joules: 0.0 });
        }
        if zones.is_empty() {
            return Err(format!("no RAPL package zones under {}", self.root.display()));
        }
        Ok(zones)
    }
}

fn read_uj(path: &Path) -> Result<u64, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().parse().map_err(|_| format!("{}: not a number: {:?}", path.display(), s.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
            "{}: permission denied (RAPL energy is readable by root only since CVE-2020-8694)",
            path.display()
        )),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Energy between two readings of a counter that wraps at `max_range`.
fn delta_uj(last: u64, now: u64, max_range: u64) -> u64 {
    if now >= last {
        now - last
    } else {
        max_range.saturating_sub(last) + now
    }
}

impl Probe for RaplProbe {
    fn name(&self) -> &'static str {
        "energy.cpu"
    }

    fn start(&mut self) -> Result<(), String> {
        self.zones = self.discover()?;
        Ok(())
    }

    fn sample(&mut self, out: &mut Sample) {
        if self.zones.is_empty() {
            return;
        }
        let mut joules = BTreeMap::new();
        for z in &mut self.zones {
            if let Ok(now) = read_uj(&z.energy) {
                z.joules += delta_uj(z.last_uj, now, z.max_range_uj) as f64 / 1e6;
                z.last_uj = now;
            }
            joules.insert(z.name.clone(), z.joules);
        }
        out.rapl_j = Some(joules);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(root: &Path, dir: &str, name: &str, uj: u64, max: u64) {
        let d = root.join("sys/class/powercap").join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(d.join("energy_uj"), format!("{uj}\n")).unwrap();
        std::fs::write(d.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
    }

    fn roots(dir: &Path) -> Roots {
        Roots { proc: dir.join("proc"), sys: dir.join("sys") }
    }

    #[test]
    fn counts_packages_and_dram_across_a_wraparound() {
        let dir = tempfile::tempdir().unwrap();
        zone(dir.path(), "intel-rapl:0", "package-0", 999_000_000, 1_000_000_000);
        zone(dir.path(), "intel-rapl:0:0", "core", 5, 1_000_000_000);
        zone(dir.path(), "intel-rapl:0:1", "dram", 10_000_000, 1_000_000_000);
        zone(dir.path(), "intel-rapl:1", "psys", 0, 1_000_000_000);
        let mut p = RaplProbe::new(&roots(dir.path()));
        p.start().unwrap();
        // package wraps: 999 J -> (1000 J range) -> 1.5 J = 2.5 J; dram 10 J -> 12 J.
        zone(dir.path(), "intel-rapl:0", "package-0", 1_500_000, 1_000_000_000);
        zone(dir.path(), "intel-rapl:0:1", "dram", 12_000_000, 1_000_000_000);
        let mut s = Sample::default();
        p.sample(&mut s);
        let j = s.rapl_j.unwrap();
        assert_eq!(j.keys().collect::<Vec<_>>(), ["package-0", "package-0-dram"]);
        assert!((j["package-0"] - 2.5).abs() < 1e-9, "{j:?}");
        assert!((j["package-0-dram"] - 2.0).abs() < 1e-9, "{j:?}");
    }

    #[test]
    fn missing_powercap_and_unreadable_counters_give_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let err = RaplProbe::new(&roots(dir.path())).start().unwrap_err();
        assert!(err.contains("no powercap interface"), "{err}");
        std::fs::create_dir_all(dir.path().join("sys/class/powercap")).unwrap();
        let err = RaplProbe::new(&roots(dir.path())).start().unwrap_err();
        assert!(err.contains("no RAPL package zones"), "{err}");
        zone(dir.path(), "intel-rapl:0", "package-0", 1, 10);
        let energy = dir.path().join("sys/class/powercap/intel-rapl:0/energy_uj");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&energy, std::fs::Permissions::from_mode(0o000)).unwrap();
        let r = roots(dir.path());
        // As the kernel has it since CVE-2020-8694: root-only. Root reads the file anyway, so
        // this thread drops to another filesystem uid, which also drops CAP_DAC_OVERRIDE.
        let err = std::thread::spawn(move || {
            // SAFETY: setfsuid changes this thread's filesystem uid only; no memory is passed.
            unsafe { libc::setfsuid(65534) };
            RaplProbe::new(&r).start().unwrap_err()
        })
        .join()
        .unwrap();
        assert!(err.contains("permission denied") && err.contains("CVE-2020-8694"), "{err}");
        std::fs::set_permissions(&energy, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&energy, "garbage").unwrap();
        assert!(RaplProbe::new(&roots(dir.path())).start().unwrap_err().contains("not a number"));
    }

    #[test]
    fn wraparound_arithmetic() {
        assert_eq!(delta_uj(10, 15, 100), 5);
        assert_eq!(delta_uj(90, 5, 100), 15);
    }
}

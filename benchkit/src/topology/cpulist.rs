//! The kernel's CPU-list syntax (`0-3,8,10-11`), as sysfs writes it and `taskset -c` reads it.

use super::TopologyError;

/// Parses a CPU list: comma-separated CPUs and inclusive ranges; empty (or blank) is no CPU.
/// The result is sorted and without duplicates.
///
/// # Errors
/// [`TopologyError::CpuList`] for anything else (`3-1`, `a`, `1,,2`).
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, TopologyError> {
    let bad = |why: &str| TopologyError::CpuList { list: s.to_string(), reason: why.to_string() };
    let mut cpus = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(cpus);
    }
    for part in s.split(',') {
        let part = part.trim();
        let num = |x: &str| x.trim().parse::<u32>().map_err(|_| bad("expected CPU numbers and ranges like 0-3"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad("a range must not run backwards"));
                }
                if b - a > 1 << 16 {
                    return Err(bad("range too large"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(num(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Writes CPUs in the kernel's syntax, ranges folded: `[0, 1, 2, 5]` is `0-2,5`.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        out.push(if sorted[i] == start { start.to_string() } else { format!("{start}-{}", sorted[i]) });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::{format_cpu_list, parse_cpu_list};

    #[test]
    fn round_trips_the_kernels_syntax() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n").unwrap(), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("5,1,1-2").unwrap(), [1, 2, 5]);
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpu_list(&[7]), "7");
        assert_eq!(format_cpu_list(&[]), "");
        for bad in ["3-1", "a", "1,,2", "0-", "-1", "0-4294967295"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad}");
        }
    }
}

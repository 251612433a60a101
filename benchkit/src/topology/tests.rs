use super::*;

/// A fake sysfs tree: two packages of two cores with two threads each (Intel numbering:
/// siblings of CPUs 0-3 are 4-7), one NUMA node and one L3 per package, CPU 7 offline.
fn fake_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys/devices/system");
    let put = |rel: &str, content: &str| {
        let p = sys.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{content}\n")).unwrap();
    };
    put("cpu/online", "0-6");
    put("cpu/isolated", "3");
    put("cpu/nohz_full", "2-3");
    put("cpu/smt/control", "on");
    for cpu in 0..8u32 {
        let (core, pkg) = (cpu % 2, (cpu / 2) % 2);
        let first = cpu % 4;
        let c = format!("cpu/cpu{cpu}");
        put(&format!("{c}/topology/core_id"), &core.to_string());
        put(&format!("{c}/topology/physical_package_id"), &pkg.to_string());
        put(&format!("{c}/topology/thread_siblings_list"), &format!("{first},{}", first + 4));
        put(&format!("{c}/cache/index0/level"), "1");
        put(&format!("{c}/cache/index0/type"), "Data");
        put(&format!("{c}/cache/index0/shared_cpu_list"), &format!("{first},{}", first + 4));
        put(&format!("{c}/cache/index1/level"), "1");
        put(&format!("{c}/cache/index1/type"), "Instruction");
        put(&format!("{c}/cache/index1/shared_cpu_list"), "0-7");
        put(&format!("{c}/cache/index3/level"), "3");
        put(&format!("{c}/cache/index3/type"), "Unified");
        put(&format!("{c}/cache/index3/shared_cpu_list"), if pkg == 0 { "0-1,4-5" } else { "2-3,6-7" });
        put(&format!("{c}/cpufreq/scaling_governor"), if cpu == 0 { "performance" } else { "powersave" });
    }
    put("node/online", "0-1");
    put("node/node0/cpulist", "0-1,4-5");
    put("node/node1/cpulist", "2-3,6-7");
    put("node/node0/distance", "10 21");
    put("node/node1/distance", "21 10");
    put("node/node0/meminfo", "Node 0 MemTotal:       1024 kB\nNode 0 MemFree:         512 kB");
    put("node/node1/meminfo", "Node 1 MemTotal:       2048 kB");
    dir
}

#[test]
fn reads_cpus_cores_caches_and_nodes() {
    let root = fake_tree();
    let t = Topology::read_from(root.path()).unwrap();
    assert_eq!(t.online_list(), "0-6");
    assert_eq!(t.physical_cores(), [vec![0, 4], vec![1, 5], vec![2, 6], vec![3]]);
    assert_eq!(t.llc_groups(), [vec![0, 1, 4, 5], vec![2, 3, 6]]);
    let c6 = t.cpu(6).unwrap();
    assert_eq!((c6.core_id, c6.package_id, c6.node, c6.governor.as_deref()), (0, 1, Some(1), Some("powersave")));
    assert_eq!(t.cpu(0).unwrap().governor.as_deref(), Some("performance"));
    assert!(t.cpu(7).is_none());
    assert_eq!(t.nodes.len(), 2);
    assert_eq!((t.nodes[0].distances.clone(), t.nodes[1].memory_bytes), (vec![10, 21], Some(2048 * 1024)));
    assert_eq!((t.isolated.clone(), t.nohz_full.clone(), t.smt.as_deref()), (vec![3], vec![2, 3], Some("on")));
    // It is recorded as it was read.
    let back: Topology = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
    assert_eq!(back, t);
}

#[test]
fn presets_become_this_machines_cpu_lists() {
    let root = fake_tree();
    let t = Topology::read_from(root.path()).unwrap();
    let r = |p: &str| p.parse::<CpuPreset>().unwrap().resolve(&t);
    assert_eq!(r("cores").unwrap(), [0, 1, 2, 3]);
    assert_eq!(r("threads").unwrap(), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(r("llc:1").unwrap(), [2, 3, 6]);
    assert_eq!(r("node:0").unwrap(), [0, 1, 4, 5]);
    // Spread: one per core, alternating packages, before any sibling.
    assert_eq!(t.spread_order(), [0, 2, 1, 3, 4, 6, 5]);
    assert_eq!(r("spread:2").unwrap(), [0, 2]);
    assert_eq!(r("spread:5").unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(r("0-1,5").unwrap(), [0, 1, 5]);
    for (bad, needle) in
        [("llc:2", "2 LLC group"), ("node:3", "no NUMA node 3"), ("spread:9", "1 to 7"), ("7", "not online")]
    {
        let e = r(bad).unwrap_err().to_string();
        assert!(e.contains(needle), "{bad}: {e}");
    }
    assert!("cores:2".parse::<CpuPreset>().is_err());
    for p in ["cores", "threads", "llc:0", "node:1", "spread:3", "0-2,5"] {
        assert_eq!(p.parse::<CpuPreset>().unwrap().to_string(), p);
    }
}

#[test]
fn missing_files_are_unknowns_and_no_sysfs_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Topology::read_from(dir.path()).unwrap_err();
    assert!(matches!(e, TopologyError::NoSysfs { .. }), "{e}");
    // Only the online list: every CPU its own core, one package, no nodes, no caches.
    let cpu = dir.path().join("sys/devices/system/cpu");
    std::fs::create_dir_all(&cpu).unwrap();
    std::fs::write(cpu.join("online"), "0-1\n").unwrap();
    let t = Topology::read_from(dir.path()).unwrap();
    assert_eq!(t.physical_cores(), [vec![0], vec![1]]);
    assert_eq!(t.llc_groups(), [vec![0, 1]]);
    assert!(t.nodes.is_empty() && t.smt.is_none() && t.cpu(0).unwrap().governor.is_none());
}

#[test]
fn this_machine_reads() {
    // CI runs on Linux: its own sysfs must give at least one core and one LLC group.
    let t = Topology::read().unwrap();
    assert!(!t.cpus.is_empty());
    assert!(!t.physical_cores().is_empty() && !t.llc_groups().is_empty());
    assert_eq!(t.spread_order().len(), t.cpus.len());
}

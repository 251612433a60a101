use super::apply::Applier;
use super::observe::{mismatches, observe, parse_numa_maps, ExtExpect, Observation, ThreadObservation};
use super::*;
use crate::topology::{CpuPreset, Topology};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};

#[test]
fn arms_parse_with_every_key() {
    let a = parse_arm("p:cpus=0,2-3,strict=1,policy=fifo:10,nice=5,mem=interleave:0,1").unwrap();
    assert_eq!(a.name, "p");
    assert_eq!(a.placement.cpus, Some(CpuPreset::List(vec![0, 2, 3])));
    assert!(a.placement.strict);
    assert_eq!(a.placement.policy, Some(SchedPolicy::Fifo(10)));
    assert_eq!(a.placement.nice, Some(5));
    assert_eq!(a.placement.mem, Some(MemPolicy::Interleave(NodeSet::List(vec![0, 1]))));
    let a = parse_arm("rusty:scheduler='scx_rusty --slice-us 5000',attach_timeout=2.5").unwrap();
    let s = a.scheduler.unwrap();
    assert_eq!(s.command, ["scx_rusty", "--slice-us", "5000"]);
    assert_eq!(s.attach_timeout, std::time::Duration::from_millis(2500));
    assert_eq!(s.detach_timeout, DEFAULT_SCX_TIMEOUT);
    let a = parse_arm("part:scheduler=scx_simple -p,partial=1").unwrap();
    assert_eq!(a.effective_policy(), Some(SchedPolicy::Ext));
    assert_eq!(parse_arm("default").unwrap(), Arm::new("default"));
    assert_eq!(parse_arm("c:cpus=cores").unwrap().placement.cpus, Some(CpuPreset::Cores));
    assert_eq!(parse_arm("m:mem=preferred:0").unwrap().placement.mem, Some(MemPolicy::Preferred(0)));
    assert_eq!(parse_arm("m:mem=local").unwrap().placement.mem, Some(MemPolicy::Local));
}

#[test]
fn bad_arms_say_why() {
    let err = |s: &str| parse_arm(s).unwrap_err().to_string();
    assert!(err("x:color=red").contains("unknown key \"color\""));
    assert!(err("x:policy=fifo").contains("priority"));
    assert!(err("x:policy=fifo:0").contains("1 to 99"));
    assert!(err("x:mem=bind").contains("bind:NODES"));
    assert!(err("x:strict=1").contains("cpus="));
    assert!(err("x:nice=40").contains("-20..19"));
    assert!(err("x:partial=1").contains("scheduler="));
    assert!(err("x:policy=ext").contains("partial-switch"));
    assert!(err("x:scheduler=scx_lavd,policy=fifo:5").contains("never schedules SCHED_FIFO"));
    assert!(err("x:scheduler=scx_lavd,policy=rr:5").contains("never schedules"));
    assert!(err("x:scheduler=scx_simple,partial=1,policy=batch").contains("only runs SCHED_EXT"));
    assert!(err("x:attach_timeout=-1,scheduler=a").contains("seconds > 0"));
}

#[test]
fn arms_files_are_toml() {
    let arms = parse_arms_file(
        r#"
        [[arm]]
        name = "default"

        [[arm]]
        name = "pinned"
        cpus = "0-1"
        strict = true
        nice = -5

        [[arm]]
        name = "lavd"
        scheduler = ["scx_lavd", "--performance"]
        detach_timeout = 3
        "#,
    )
    .unwrap();
    assert_eq!(arms.len(), 3);
    assert_eq!(arms[1].placement.cpus, Some(CpuPreset::List(vec![0, 1])));
    assert_eq!(arms[1].placement.nice, Some(-5));
    assert_eq!(arms[2].scheduler.as_ref().unwrap().command, ["scx_lavd", "--performance"]);
    let e = parse_arms_file("[[arm]]\nname = \"a\"\ncolour = 1\n").unwrap_err();
    assert!(matches!(e, PlacementError::ArmsFile(_)) && e.to_string().contains("colour"), "{e}");
    let e = parse_arms_file("[[arm]]\nname = \"a\"\nscheduler = \"scx_x\"\npolicy = \"fifo:3\"\n").unwrap_err();
    assert!(e.to_string().contains("SCHED_FIFO"), "{e}");
}

#[test]
fn arms_resolve_against_the_machine() {
    let topo = Topology::read().unwrap();
    let online: Vec<u32> = topo.cpus.iter().map(|c| c.id).collect();
    let r = parse_arm("a:cpus=threads,mem=interleave:all").unwrap().resolve(&topo).unwrap();
    assert_eq!(r.cpus.as_deref(), Some(online.as_slice()));
    let mem = r.mem.unwrap();
    assert_eq!(mem.numa_maps_name(), format!("interleave:{}", crate::topology::format_cpu_list(&mem.nodes)));
    let e = parse_arm("a:mem=bind:63").unwrap().resolve(&topo).unwrap_err();
    assert!(e.to_string().contains("no NUMA node 63"), "{e}");
    let e = parse_arm("a:cpus=1000").unwrap().resolve(&topo).unwrap_err();
    assert!(e.to_string().contains("not online"), "{e}");
    let r = parse_arm("p:scheduler=scx_simple -p,partial=1").unwrap().resolve(&topo).unwrap();
    assert_eq!((r.policy, r.partial, r.scheduler.as_deref()), (Some(SchedPolicy::Ext), true, Some("scx_simple -p")));
}

#[test]
fn numa_maps_count_anonymous_pages_and_the_model_apart() {
    let maps = "\
55d0 bind:0 heap anon=10 dirty=10 N0=10 kernelpagesize_kB=4
7f00 bind:0 anon=300 dirty=300 N0=200 N1=100 kernelpagesize_kB=4
7f10 default file=/models/m.gguf mapped=50 N0=30 N1=20 kernelpagesize_kB=4
7f20 default file=/usr/lib/libc.so.6 mapped=80 mapmax=9 N1=80 kernelpagesize_kB=4
7f30 interleave:0-1 anon=4 N1=4 kernelpagesize_kB=4
7f40 default stack anon=0 kernelpagesize_kB=4
";
    let m = parse_numa_maps(maps, Some(std::path::Path::new("/models/m.gguf")));
    assert_eq!(m.pages_per_node.into_iter().collect::<Vec<_>>(), [(0, 210), (1, 104)]);
    assert_eq!(m.pages_per_policy.get("bind:0"), Some(&310));
    assert_eq!(m.pages_per_policy.get("interleave:0-1"), Some(&4));
    assert!(!m.pages_per_policy.contains_key("default"));
    assert_eq!(m.model_file_pages, 50);
}

fn thread(tid: u32, cpus: &str, policy: &str, nice: i32, ext: Option<bool>) -> ThreadObservation {
    ThreadObservation {
        tid,
        comm: "w".into(),
        cpus_allowed: cpus.into(),
        policy: policy.into(),
        rt_priority: 0,
        nice,
        ext_enabled: ext,
    }
}

fn obs(threads: Vec<ThreadObservation>, maps: &str) -> Observation {
    Observation { pid: 1, threads, memory: parse_numa_maps(maps, Some(std::path::Path::new("/m.gguf"))) }
}

#[test]
fn mismatches_name_what_did_not_hold() {
    let mut unverified = BTreeSet::new();
    let req = Requested { cpus: Some(vec![0, 1]), ..Requested::default() };
    let ok = obs(vec![thread(1, "0-1", "SCHED_OTHER", 0, None)], "");
    assert!(mismatches(&req, &ok, ExtExpect::Off, &mut unverified).is_empty());
    let wide = obs(vec![thread(1, "0-3", "SCHED_OTHER", 0, None)], "");
    let m = mismatches(&req, &wide, ExtExpect::Off, &mut unverified);
    assert!(m[0].contains("may run on CPUs 0-3, asked 0-1"), "{m:?}");

    // strict: each thread on a subset, one at least pinned to a single CPU.
    let strict = Requested { strict: true, ..req.clone() };
    let pinned = obs(vec![thread(1, "0", "SCHED_OTHER", 0, None), thread(2, "1", "SCHED_OTHER", 0, None)], "");
    assert!(mismatches(&strict, &pinned, ExtExpect::Off, &mut unverified).is_empty());
    let m = mismatches(&strict, &ok, ExtExpect::Off, &mut unverified);
    assert!(m[0].contains("no thread is pinned"), "{m:?}");

    let batch = Requested { policy: Some(SchedPolicy::Batch), nice: Some(5), ..Requested::default() };
    let m = mismatches(&batch, &ok, ExtExpect::Off, &mut unverified);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m[0].contains("runs SCHED_OTHER priority 0, asked batch") && m[1].contains("nice 0, asked 5"), "{m:?}");

    let bind = Requested { mem: Some(RequestedMem { mode: MemMode::Bind, nodes: vec![0] }), ..Requested::default() };
    let good = obs(vec![], "1 bind:0 anon=5 N0=5\n");
    assert!(mismatches(&bind, &good, ExtExpect::Off, &mut unverified).is_empty());
    let bad = obs(vec![], "1 default anon=5 N0=5\n2 bind:0 anon=2 N1=2\n3 default file=/m.gguf mapped=9 N0=9\n");
    let m = mismatches(&bind, &bad, ExtExpect::Off, &mut unverified);
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m[0].contains("5 anonymous pages under memory policy default, asked bind:0"), "{m:?}");
    assert!(m[1].contains("2 pages on node 1, outside bind:0"), "{m:?}");
    assert!(m[2].contains("without mmap"), "{m:?}");

    // sched_ext membership, where the kernel shows it.
    let none = Requested::default();
    let on = obs(vec![thread(1, "0-1", "SCHED_OTHER", 0, Some(true))], "");
    let off = obs(vec![thread(1, "0-1", "SCHED_OTHER", 0, Some(false))], "");
    assert!(mismatches(&none, &on, ExtExpect::Off, &mut unverified)[0].contains("runs on sched_ext"));
    assert!(mismatches(&none, &off, ExtExpect::All, &mut unverified)[0].contains("ext.enabled 0"));
    assert!(mismatches(&none, &on, ExtExpect::All, &mut unverified).is_empty());
    assert!(unverified.is_empty());
    assert!(mismatches(&none, &ok, ExtExpect::All, &mut unverified).is_empty());
    assert!(unverified.iter().any(|u| u.contains("ext.enabled")));
    let partial = Requested { policy: Some(SchedPolicy::Ext), partial: true, ..Requested::default() };
    let m = mismatches(&partial, &on, ExtExpect::Partial, &mut unverified);
    assert!(m[0].contains("runs SCHED_OTHER priority 0, asked ext"), "{m:?}");
}

/// A child placed by `req`, stopped at its exec so that it can be observed: it sleeps.
fn placed_sleeper(req: &Requested) -> std::process::Child {
    let mut cmd = Command::new("sleep");
    cmd.arg("30").stdout(Stdio::null());
    Applier::new(req).install(&mut cmd);
    let child = cmd.spawn().expect("placement applied (run as root for FIFO)");
    // Until the exec is done, /proc shows the parent's image.
    let exe = std::path::PathBuf::from(format!("/proc/{}/exe", child.id()));
    for _ in 0..200 {
        if std::fs::read_link(&exe).is_ok_and(|p| p.file_name().is_some_and(|n| n == "sleep")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child
}

fn placed_and_observed(req: &Requested) -> (Observation, Vec<String>) {
    let mut child = placed_sleeper(req);
    let o = observe(child.id(), None).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let mut unverified = BTreeSet::new();
    let m = mismatches(req, &o, ExtExpect::Off, &mut unverified);
    (o, m)
}

#[test]
fn real_affinity_policy_and_nice_are_applied_and_observed() {
    let (o, m) = placed_and_observed(&Requested {
        cpus: Some(vec![0]),
        policy: Some(SchedPolicy::Batch),
        nice: Some(7),
        ..Requested::default()
    });
    assert!(m.is_empty(), "{m:?}");
    assert_eq!(
        (o.threads[0].cpus_allowed.as_str(), o.threads[0].policy.as_str(), o.threads[0].nice),
        ("0", "SCHED_BATCH", 7)
    );
    let (o, m) = placed_and_observed(&Requested { policy: Some(SchedPolicy::Idle), ..Requested::default() });
    assert!(m.is_empty() && o.threads[0].policy == "SCHED_IDLE", "{m:?}");
    // Real-time needs CAP_SYS_NICE: tests (and CI) run as root.
    let (o, m) = placed_and_observed(&Requested { policy: Some(SchedPolicy::Fifo(3)), ..Requested::default() });
    assert!(m.is_empty(), "{m:?}");
    assert_eq!((o.threads[0].policy.as_str(), o.threads[0].rt_priority), ("SCHED_FIFO", 3));
    let (o, _) = placed_and_observed(&Requested { policy: Some(SchedPolicy::Rr(2)), ..Requested::default() });
    assert_eq!((o.threads[0].policy.as_str(), o.threads[0].rt_priority), ("SCHED_RR", 2));
    // An unplaced process is observed as it is: every online CPU, SCHED_OTHER.
    let (o, m) = placed_and_observed(&Requested::default());
    assert!(m.is_empty() && o.threads[0].policy == "SCHED_OTHER");
}

#[test]
fn real_memory_policies_show_in_numa_maps() {
    let topo = Topology::read().unwrap();
    let node = topo.nodes.first().map_or(0, |n| n.id);
    for (mode, name) in [(MemMode::Bind, "bind"), (MemMode::Interleave, "interleave"), (MemMode::Preferred, "prefer")] {
        let req = Requested { mem: Some(RequestedMem { mode, nodes: vec![node] }), ..Requested::default() };
        let (o, m) = placed_and_observed(&req);
        assert!(m.is_empty(), "{name}: {m:?}");
        assert_eq!(o.memory.pages_per_policy.keys().collect::<Vec<_>>(), [&format!("{name}:{node}")], "{name}");
        assert!(o.memory.pages_per_node.get(&node).is_some_and(|p| *p > 0), "{:?}", o.memory);
    }
    let req = Requested { mem: Some(RequestedMem { mode: MemMode::Local, nodes: vec![] }), ..Requested::default() };
    let (o, m) = placed_and_observed(&req);
    assert!(m.is_empty() && o.memory.pages_per_policy.contains_key("local"), "{m:?} {:?}", o.memory);
}

#[test]
fn a_placement_the_kernel_refuses_fails_the_spawn() {
    // This machine's kernel lacks sched_ext: SCHED_EXT is EINVAL, found without moving us.
    let supported = std::path::Path::new("/sys/kernel/sched_ext/state").exists();
    assert_eq!(sched_ext_policy_supported(), supported);
    if !supported {
        let mut cmd = Command::new("/bin/true");
        Applier::new(&Requested { policy: Some(SchedPolicy::Ext), ..Requested::default() }).install(&mut cmd);
        let e = cmd.status().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    }
}

#[cfg(feature = "placement")]
mod scx {
    use super::super::*;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    const FAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake_scx.sh");

    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("state"), "disabled\n").unwrap();
            std::fs::write(dir.path().join("enable_seq"), "4\n").unwrap();
            std::fs::write(dir.path().join("switch_all"), "1\n").unwrap();
            std::fs::write(dir.path().join("kmsg"), "").unwrap();
            Fake { dir }
        }
        fn sysfs(&self) -> ScxSysfs {
            ScxSysfs::new(self.dir.path())
        }
        fn kmsg(&self) -> PathBuf {
            self.dir.path().join("kmsg")
        }
        fn spec(&self, mode: &str, delay: f64) -> SchedulerSpec {
            let root = self.dir.path().display().to_string();
            let kmsg = self.kmsg().display().to_string();
            let mut s = SchedulerSpec::new([FAKE.to_string(), root, mode.into(), delay.to_string(), kmsg]);
            s.attach_timeout = Duration::from_secs(2);
            s.detach_timeout = Duration::from_secs(1);
            s
        }
        fn state(&self) -> String {
            self.sysfs().snapshot().state
        }
        fn pid(&self) -> i32 {
            std::fs::read_to_string(self.dir.path().join("pid")).unwrap().trim().parse().unwrap()
        }
    }

    fn gone(pid: i32) -> bool {
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
    }

    fn wait_until(mut f: impl FnMut() -> bool, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        f()
    }

    #[test]
    fn attach_check_detach() {
        let fake = Fake::new();
        let mut s = AttachedScheduler::attach(&fake.spec("normal", 0.0), &fake.sysfs(), &fake.kmsg()).unwrap();
        assert_eq!(s.at_attach().state, "enabled");
        assert_eq!(s.at_attach().ops.as_deref(), Some("fake_scx"));
        assert_eq!(s.at_attach().enable_seq, Some(5));
        let (snap, verdict) = s.check();
        assert_eq!((snap.state.as_str(), verdict), ("enabled", Ok(())));
        let pid = s.pid() as i32;
        let r = s.detach();
        assert_eq!((r.signal.as_deref(), r.state.as_str()), (Some("SIGINT"), "disabled"));
        assert!(gone(pid));
        // A second attach finds it disabled again.
        let s = AttachedScheduler::attach(&fake.spec("normal", 0.0), &fake.sysfs(), &fake.kmsg()).unwrap();
        assert_eq!(s.at_attach().enable_seq, Some(6));
        drop(s);
        assert_eq!(fake.state(), "disabled");
    }

    #[test]
    fn a_scheduler_that_never_enables_times_out_and_is_stopped() {
        let fake = Fake::new();
        let t = Instant::now();
        let e = AttachedScheduler::attach(&fake.spec("never", 0.0), &fake.sysfs(), &fake.kmsg()).unwrap_err();
        assert!(matches!(e, ScxError::AttachTimeout { .. }), "{e}");
        assert!(e.to_string().contains("still \"disabled\" 2 s after starting"), "{e}");
        assert!(e.to_string().contains("fake_scx: starting in mode never"), "its output is in the error: {e}");
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(wait_until(|| gone(fake.pid()), 2));
        assert_eq!(fake.state(), "disabled");
    }

    #[test]
    fn ejection_by_the_kernel_is_seen_with_its_reason() {
        let fake = Fake::new();
        let mut s = AttachedScheduler::attach(&fake.spec("eject-state", 0.2), &fake.sysfs(), &fake.kmsg()).unwrap();
        assert!(wait_until(|| fake.state() == "disabled", 3));
        let (snap, verdict) = s.check();
        let why = verdict.unwrap_err();
        assert_eq!(snap.state, "disabled");
        assert!(why.starts_with("ejected: state is \"disabled\""), "{why}");
        assert!(why.contains("ops went from Some(\"fake_scx\") to None"), "{why}");
        assert!(why.contains("kernel: sched_ext: BPF scheduler \"fake_scx\" disabled (runnable task stall)"), "{why}");
        assert_eq!(s.detach().state, "disabled");
    }

    #[test]
    fn a_changed_enable_seq_is_an_ejection() {
        let fake = Fake::new();
        let mut s = AttachedScheduler::attach(&fake.spec("reattach", 0.2), &fake.sysfs(), &fake.kmsg()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(s.check().1, Ok(()));
        assert!(wait_until(|| fake.sysfs().snapshot().enable_seq == Some(6), 3));
        let why = s.check().1.unwrap_err();
        assert!(why.contains("enable_seq went from 5 to 6"), "{why}");
        assert!(!why.contains("state is"), "still enabled: {why}");
        assert!(!why.contains("kernel:"), "the kernel logged nothing: {why}");
    }

    #[test]
    fn a_dead_scheduler_is_an_ejection() {
        let fake = Fake::new();
        let mut s = AttachedScheduler::attach(&fake.spec("die", 0.2), &fake.sysfs(), &fake.kmsg()).unwrap();
        let pid = s.pid() as i32;
        assert!(wait_until(|| gone(pid), 3));
        let why = s.check().1.unwrap_err();
        assert!(why.contains("the scheduler process exited (status 1)"), "{why}");
        let r = s.detach();
        assert_eq!((r.signal, r.state.as_str()), (None, "disabled"));
    }

    #[test]
    fn a_scheduler_that_ignores_sigint_is_killed() {
        let fake = Fake::new();
        let s = AttachedScheduler::attach(&fake.spec("ignore-int", 0.0), &fake.sysfs(), &fake.kmsg()).unwrap();
        let pid = s.pid() as i32;
        let t = Instant::now();
        let r = s.detach();
        assert_eq!((r.signal.as_deref(), r.state.as_str()), (Some("SIGKILL"), "disabled"));
        assert!(t.elapsed() >= Duration::from_secs(1), "it waited the detach timeout first");
        assert!(gone(pid));
    }

    #[test]
    fn attach_needs_sched_ext_disabled_present_and_the_binary() {
        let fake = Fake::new();
        std::fs::write(fake.dir.path().join("state"), "enabled\n").unwrap();
        std::fs::create_dir_all(fake.dir.path().join("root")).unwrap();
        std::fs::write(fake.dir.path().join("root/ops"), "rusty\n").unwrap();
        let e = AttachedScheduler::attach(&fake.spec("normal", 0.0), &fake.sysfs(), &fake.kmsg()).unwrap_err();
        assert!(e.to_string().contains("state is \"enabled\" (ops \"rusty\")"), "{e}");
        assert!(!fake.dir.path().join("pid").exists(), "nothing was started");

        let none = ScxSysfs::new("/nonexistent/sched_ext");
        let spec = SchedulerSpec::new(["scx_surely_absent"]);
        let e = AttachedScheduler::attach(&spec, &none, Path::new("/dev/null")).unwrap_err();
        assert!(matches!(e, ScxError::Unsupported { .. }), "{e}");
        let why = preflight(&spec, &none).unwrap_err();
        assert!(why.contains("lacks sched_ext") && why.contains("\"scx_surely_absent\" not found in PATH"), "{why}");
        assert_eq!(none.snapshot().state, "unsupported");
        assert!(none.snapshot().is_disabled());
        let e = AttachedScheduler::attach(&spec, &Fake::new().sysfs(), Path::new("/dev/null")).unwrap_err();
        assert!(matches!(e, ScxError::NotFound { .. }), "{e}");
    }
}

//! Applying a placement to a process before it runs anything: between fork and exec, so that
//! the worker (or a server) starts with its affinity, policy, nice and memory policy, and every
//! thread it creates inherits them.

use super::spec::{MemMode, Requested};
use std::os::unix::process::CommandExt;
use std::process::Command;

// <linux/mempolicy.h>, which libc leaves out.
const MPOL_PREFERRED: i32 = 1;
const MPOL_BIND: i32 = 2;
const MPOL_INTERLEAVE: i32 = 3;
const MPOL_LOCAL: i32 = 4;

/// Everything the child needs, computed before fork: nothing is allocated after it.
#[derive(Clone)]
pub(crate) struct Applier {
    cpus: Option<libc::cpu_set_t>,
    nice: Option<i32>,
    policy: Option<(i32, i32)>,
    mem: Option<(i32, Vec<libc::c_ulong>, libc::c_ulong)>,
}

impl std::fmt::Debug for Applier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier")
            .field("cpus", &self.cpus.is_some())
            .field("nice", &self.nice)
            .field("policy", &self.policy)
            .field("mem", &self.mem.as_ref().map(|m| m.0))
            .finish()
    }
}

impl Applier {
    pub(crate) fn new(req: &Requested) -> Self {
        let cpus = req.cpus.as_ref().map(|list| {
            // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            for &c in list {
                // SAFETY: CPU_SET ignores CPUs beyond the set's size (1024) and writes only
                // inside `set`.
                unsafe { libc::CPU_SET(c as usize, &mut set) };
            }
            set
        });
        let mem = req.mem.as_ref().map(|m| {
            let mode = match m.mode {
                MemMode::Bind => MPOL_BIND,
                MemMode::Interleave => MPOL_INTERLEAVE,
                MemMode::Preferred => MPOL_PREFERRED,
                MemMode::Local => MPOL_LOCAL,
            };
            let bits = libc::c_ulong::BITS as usize;
            let max = m.nodes.iter().max().map_or(0, |n| *n as usize + 1);
            let mut mask = vec![0 as libc::c_ulong; max.div_ceil(bits).max(1)];
            for &n in &m.nodes {
                mask[n as usize / bits] |= 1 << (n as usize % bits);
            }
            // The kernel reads maxnode - 1 bits.
            let maxnode = if m.nodes.is_empty() { 0 } else { (mask.len() * bits + 1) as libc::c_ulong };
            (mode, mask, maxnode)
        });
        Applier { cpus, nice: req.nice, policy: req.policy.map(|p| (p.number(), i32::from(p.rt_priority()))), mem }
    }

    /// Applies to the calling thread (and so to what it later creates or execs).
    fn apply_here(&self) -> std::io::Result<()> {
        let check = |rc: libc::c_long| if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) };
        if let Some((mode, mask, maxnode)) = &self.mem {
            let ptr = if *maxnode == 0 { std::ptr::null() } else { mask.as_ptr() };
            // SAFETY: set_mempolicy reads maxnode - 1 bits from `ptr`, which holds that many.
            check(unsafe { libc::syscall(libc::SYS_set_mempolicy, *mode, ptr, *maxnode) })?;
        }
        if let Some(set) = &self.cpus {
            // SAFETY: `set` is a valid cpu_set_t of the size passed.
            check(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) }.into())?;
        }
        if let Some(nice) = self.nice {
            // SAFETY: plain syscall on this process; `which`/`who` name the caller.
            check(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) }.into())?;
        }
        if let Some((policy, prio)) = self.policy {
            let param = libc::sched_param { sched_priority: prio };
            // SAFETY: `param` is a valid sched_param for the call's duration.
            check(unsafe { libc::sched_setscheduler(0, policy, &param) }.into())?;
        }
        Ok(())
    }

    /// Makes `cmd`'s child apply the placement after fork, before exec. A placement the
    /// kernel refuses (EPERM for FIFO without CAP_SYS_NICE, EINVAL for SCHED_EXT without
    /// sched_ext) fails the spawn with that error.
    pub(crate) fn install(&self, cmd: &mut Command) {
        let me = self.clone();
        // SAFETY: the closure only makes async-signal-safe syscalls on data computed before
        // the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || me.apply_here());
        }
    }
}

/// Whether the kernel accepts `SCHED_EXT` (7): tried in a throwaway child, since a kernel
/// without sched_ext answers EINVAL and one with it would move the caller.
pub fn sched_ext_policy_supported() -> bool {
    let req = Requested { policy: Some(super::SchedPolicy::Ext), ..Requested::default() };
    let mut cmd = Command::new("/bin/true");
    Applier::new(&req).install(&mut cmd);
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    cmd.status().is_ok_and(|s| s.success())
}

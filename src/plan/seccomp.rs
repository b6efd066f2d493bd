//! The seccomp policy: which calls are refused, as data (`Policy`, printed
//! by `--print-plan`), compiled into BPF with seccompiler before any fork.
//! Installing it (`runtime::enforce::install_seccomp`) is the very last
//! step before execve.
//!
//! The filter is written for the architecture nook is built for (`ARCH`,
//! x86-64 or aarch64) and kills a process that calls through any other
//! (i386's `int 0x80` on x86-64, an arm32 binary on aarch64). The lists
//! below name x86-64 calls; a name the build's architecture lacks (aarch64
//! has no `open`, `iopl` or `create_module`) is left out of the policy.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::{Deserialize, Serialize};

pub use crate::spec::security::SeccompMode as Mode;
use crate::spec::syscalls;

/// The architecture the filter is compiled for: the build's.
#[cfg(target_arch = "x86_64")]
pub const ARCH: TargetArch = TargetArch::x86_64;
/// The architecture the filter is compiled for: the build's.
#[cfg(target_arch = "aarch64")]
pub const ARCH: TargetArch = TargetArch::aarch64;

/// Refused in the default mode, with EPERM.
pub const DENIED: &[&str] = &[
    // keyrings: the launcher's keys
    "add_key",
    "request_key",
    "keyctl",
    // kernel attack surface with a long record
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // modules and kexec
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "kexec_load",
    "kexec_file_load",
    // mounting, old and new API
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "open_tree_attr",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    // entering other namespaces
    "setns",
    // file handles bypass path checks
    "open_by_handle_at",
    "name_to_handle_at",
    // host-wide state
    "syslog",
    "acct",
    "quotactl",
    "quotactl_fd",
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "uselib",
    "vhangup",
    "_sysctl",
    "sysfs",
    "ustat",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
];

/// Namespace flags refused in clone and unshare (clone3 gets ENOSYS, so
/// libc falls back to clone, whose flags a filter can see).
const NS_FLAGS: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWCGROUP
    | 0x80) as u64; // CLONE_NEWTIME

/// ioctl requests refused: faking terminal input and the Linux console's
/// selection/paste, compared on the low 32 bits as the kernel does.
const TTY_INJECT: [u64; 2] = [0x5412, 0x541C]; // TIOCSTI, TIOCLINUX

/// personality(2) values that change nothing dangerous: PER_LINUX,
/// PER_LINUX32, UNAME26 variants and the query (as in Docker's profile).
const PERSONALITY_OK: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The policy as data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Policy {
    pub mode: Mode,
    /// Unconditionally refused (default) or allowed (strict) calls.
    pub calls: Vec<String>,
    /// clone and unshare may create namespaces (a profile allowed nested
    /// user namespaces).
    pub allow_namespaces: bool,
}

impl Policy {
    pub fn new(mode: Mode, allow: &[String], deny: &[String], allow_namespaces: bool) -> Policy {
        let builtin: &[&str] = match mode {
            Mode::Default => DENIED,
            Mode::Strict => STRICT_ALLOWED,
            Mode::Off => &[],
        };
        // Only the calls this architecture has; a profile's own names were
        // checked against the same table when the Spec was resolved.
        let mut calls: Vec<String> = builtin
            .iter()
            .filter(|c| syscalls::number(c).is_some())
            .map(|s| s.to_string())
            .collect();
        let (add, remove) = match mode {
            Mode::Strict => (allow, deny),
            _ => (deny, allow),
        };
        calls.retain(|c| !remove.contains(c));
        for a in add {
            if !calls.contains(a) {
                calls.push(a.clone());
            }
        }
        if allow_namespaces && mode == Mode::Default {
            calls.retain(|c| c != "setns");
        }
        Policy {
            mode,
            calls,
            allow_namespaces,
        }
    }

    /// Compile to BPF programs, to install in order. The first, written by
    /// hand because seccompiler can't express a range, answers clone3 with
    /// ENOSYS and on x86-64 refuses the x32 ABI (numbers with bit 30 set);
    /// the second is seccompiler's, which also kills any foreign
    /// architecture (i386 on x86-64, arm32 on aarch64).
    pub fn compile(&self) -> Result<Vec<BpfProgram>, String> {
        if self.mode == Mode::Off {
            return Ok(Vec::new());
        }
        let nr = |name: &str| {
            syscalls::number(name).ok_or_else(|| format!("unknown system call '{name}'"))
        };
        let cond = |arg: u8, len, op, v: u64| {
            SeccompCondition::new(arg, len, op, v).map_err(|e| e.to_string())
        };
        let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(|e| e.to_string());
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for c in &self.calls {
            rules.insert(nr(c)?, Vec::new());
        }
        let (mismatch, matched) = match self.mode {
            Mode::Default => {
                // Conditional refusals: a rule matches, so the call fails.
                if !self.allow_namespaces {
                    for call in ["clone", "unshare"] {
                        let mut rs = Vec::new();
                        for bit in 0..64 {
                            let flag = 1u64 << bit;
                            if NS_FLAGS & flag != 0 {
                                rs.push(rule(vec![cond(
                                    0,
                                    SeccompCmpArgLen::Qword,
                                    SeccompCmpOp::MaskedEq(flag),
                                    flag,
                                )?])?);
                            }
                        }
                        rules.insert(nr(call)?, rs);
                    }
                }
                let tty: Vec<SeccompRule> = TTY_INJECT
                    .iter()
                    .map(|&req| {
                        rule(vec![cond(
                            1,
                            SeccompCmpArgLen::Dword,
                            SeccompCmpOp::Eq,
                            req,
                        )?])
                    })
                    .collect::<Result<_, _>>()?;
                rules.insert(nr("ioctl")?, tty);
                let mut not_ok = Vec::new();
                for v in PERSONALITY_OK {
                    not_ok.push(cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, v)?);
                }
                rules.insert(nr("personality")?, vec![rule(not_ok)?]);
                (
                    SeccompAction::Allow,
                    SeccompAction::Errno(libc::EPERM as u32),
                )
            }
            Mode::Strict => {
                // Conditional permissions: a rule matches, so the call runs.
                if !self.allow_namespaces {
                    for call in ["clone", "unshare"] {
                        rules.insert(
                            nr(call)?,
                            vec![rule(vec![cond(
                                0,
                                SeccompCmpArgLen::Qword,
                                SeccompCmpOp::MaskedEq(NS_FLAGS),
                                0,
                            )?])?],
                        );
                    }
                }
                let mut not_tty = Vec::new();
                for req in TTY_INJECT {
                    not_tty.push(cond(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, req)?);
                }
                rules.insert(nr("ioctl")?, vec![rule(not_tty)?]);
                let ok: Vec<SeccompRule> = PERSONALITY_OK
                    .iter()
                    .map(|&v| rule(vec![cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v)?]))
                    .collect::<Result<_, _>>()?;
                rules.insert(nr("personality")?, ok);
                // clone3 must pass this filter so that the prefilter's
                // ENOSYS is the answer: when two filters both answer with
                // an errno, the one installed later (this one) wins
                // (seccomp_run_filters in kernel/seccomp.c), and an EPERM
                // here would keep libc from falling back to clone, so no
                // thread could start.
                rules.insert(nr("clone3")?, Vec::new());
                (
                    SeccompAction::Errno(libc::EPERM as u32),
                    SeccompAction::Allow,
                )
            }
            Mode::Off => unreachable!("handled above"),
        };
        let filter =
            SeccompFilter::new(rules, mismatch, matched, ARCH).map_err(|e| e.to_string())?;
        let main: BpfProgram = filter
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?;
        Ok(vec![prefilter(), main])
    }
}

const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO

fn stmt(code: u32, k: u32) -> seccompiler::sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> seccompiler::sock_filter {
    seccompiler::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// x32 numbers -> EPERM, clone3 -> ENOSYS, anything else passes on to the
/// main filter. Foreign architectures pass too: the main filter kills them.
#[cfg(target_arch = "x86_64")]
fn prefilter() -> BpfProgram {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    vec![
        // struct seccomp_data: nr at offset 0, arch at offset 4
        stmt(BPF_LD | BPF_W | BPF_ABS, 4),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        stmt(BPF_LD | BPF_W | BPF_ABS, 0),
        jump(BPF_JMP | BPF_JGE | BPF_K, 0x4000_0000, 2, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_clone3 as u32, 2, 0),
        stmt(BPF_RET | BPF_K, RET_ALLOW),
        stmt(BPF_RET | BPF_K, RET_ERRNO | libc::EPERM as u32),
        stmt(BPF_RET | BPF_K, RET_ERRNO | libc::ENOSYS as u32),
    ]
}

/// clone3 -> ENOSYS, anything else passes on to the main filter. aarch64
/// has no second ABI in its own number space (nothing like x32): an arm32
/// (compat) process reports AUDIT_ARCH_ARM, which passes here and is
/// killed by the main filter's architecture check, like i386 on x86-64.
#[cfg(target_arch = "aarch64")]
fn prefilter() -> BpfProgram {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
    vec![
        // struct seccomp_data: nr at offset 0, arch at offset 4
        stmt(BPF_LD | BPF_W | BPF_ABS, 4),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 0, 2),
        stmt(BPF_LD | BPF_W | BPF_ABS, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_clone3 as u32, 1, 0),
        stmt(BPF_RET | BPF_K, RET_ALLOW),
        stmt(BPF_RET | BPF_K, RET_ERRNO | libc::ENOSYS as u32),
    ]
}

/// The allow list of `strict`: what ordinary programs (shells, compilers,
/// interpreters, servers on loopback) use.
pub const STRICT_ALLOWED: &[&str] = &[
    "read",
    "write",
    "open",
    "close",
    "stat",
    "fstat",
    "lstat",
    "poll",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "access",
    "pipe",
    "select",
    "sched_yield",
    "mremap",
    "msync",
    "mincore",
    "madvise",
    "dup",
    "dup2",
    "pause",
    "nanosleep",
    "getitimer",
    "alarm",
    "setitimer",
    "getpid",
    "sendfile",
    "socket",
    "connect",
    "accept",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "shutdown",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "socketpair",
    "setsockopt",
    "getsockopt",
    "fork",
    "vfork",
    "execve",
    "exit",
    "wait4",
    "kill",
    "uname",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "truncate",
    "ftruncate",
    "getdents",
    "getcwd",
    "chdir",
    "fchdir",
    "rename",
    "mkdir",
    "rmdir",
    "creat",
    "link",
    "unlink",
    "symlink",
    "readlink",
    "chmod",
    "fchmod",
    "chown",
    "fchown",
    "lchown",
    "umask",
    "gettimeofday",
    "getrlimit",
    "getrusage",
    "sysinfo",
    "times",
    "getuid",
    "getgid",
    "setuid",
    "setgid",
    "geteuid",
    "getegid",
    "setpgid",
    "getppid",
    "getpgrp",
    "setsid",
    "setreuid",
    "setregid",
    "getgroups",
    "setresuid",
    "getresuid",
    "setresgid",
    "getresgid",
    "getpgid",
    "getsid",
    "capget",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_sigsuspend",
    "sigaltstack",
    "utime",
    "statfs",
    "fstatfs",
    "getpriority",
    "setpriority",
    "sched_setparam",
    "sched_getparam",
    "sched_setscheduler",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "mlock",
    "munlock",
    "prctl",
    "arch_prctl",
    "setrlimit",
    "sync",
    "gettid",
    "readahead",
    "setxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "tkill",
    "time",
    "futex",
    "sched_setaffinity",
    "sched_getaffinity",
    "epoll_create",
    "getdents64",
    "set_tid_address",
    "restart_syscall",
    "fadvise64",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "exit_group",
    "epoll_wait",
    "epoll_ctl",
    "tgkill",
    "utimes",
    "waitid",
    "inotify_init",
    "inotify_add_watch",
    "inotify_rm_watch",
    "openat",
    "mkdirat",
    "mknodat",
    "fchownat",
    "futimesat",
    "newfstatat",
    "unlinkat",
    "renameat",
    "linkat",
    "symlinkat",
    "readlinkat",
    "fchmodat",
    "faccessat",
    "pselect6",
    "ppoll",
    "set_robust_list",
    "get_robust_list",
    "splice",
    "tee",
    "sync_file_range",
    "vmsplice",
    "utimensat",
    "epoll_pwait",
    "signalfd",
    "timerfd_create",
    "eventfd",
    "fallocate",
    "timerfd_settime",
    "timerfd_gettime",
    "accept4",
    "signalfd4",
    "eventfd2",
    "epoll_create1",
    "dup3",
    "pipe2",
    "inotify_init1",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "prlimit64",
    "syncfs",
    "sendmmsg",
    "getcpu",
    "sched_setattr",
    "sched_getattr",
    "renameat2",
    "getrandom",
    "memfd_create",
    "execveat",
    "membarrier",
    "mlock2",
    "copy_file_range",
    "preadv2",
    "pwritev2",
    "statx",
    "rseq",
    "pidfd_open",
    "pidfd_send_signal",
    "close_range",
    "faccessat2",
    "epoll_pwait2",
    "futex_waitv",
    "fchmodat2",
    "clone",
    "unshare",
    "ioctl",
    "personality",
    "madvise",
    "getpgrp",
    "wait4",
    "rt_sigreturn",
    "mseal",
    "landlock_create_ruleset",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_call_is_known() {
        // The lists name x86-64 calls, every one of them real...
        for name in DENIED.iter().chain(STRICT_ALLOWED) {
            assert!(syscalls::number_x86_64(name).is_some(), "{name}");
        }
        // ...and the ones aarch64 lacks are calls it never had, not typos.
        let lacking = |list: &[&'static str]| -> Vec<&'static str> {
            let mut v: Vec<_> = list
                .iter()
                .copied()
                .filter(|n| syscalls::number_aarch64(n).is_none())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        assert_eq!(
            lacking(DENIED),
            [
                "_sysctl",
                "create_module",
                "get_kernel_syms",
                "ioperm",
                "iopl",
                "query_module",
                "sysfs",
                "uselib",
                "ustat"
            ]
        );
        // Each has a newer call on the list that aarch64 has (openat,
        // newfstatat, pipe2, dup3, clone, getdents64, renameat2, ...).
        assert_eq!(
            lacking(STRICT_ALLOWED),
            [
                "access",
                "alarm",
                "arch_prctl",
                "chmod",
                "chown",
                "creat",
                "dup2",
                "epoll_create",
                "epoll_wait",
                "eventfd",
                "fork",
                "futimesat",
                "getdents",
                "getpgrp",
                "inotify_init",
                "lchown",
                "link",
                "lstat",
                "mkdir",
                "open",
                "pause",
                "pipe",
                "poll",
                "readlink",
                "rename",
                "rmdir",
                "select",
                "signalfd",
                "stat",
                "symlink",
                "time",
                "unlink",
                "utime",
                "utimes",
                "vfork"
            ]
        );
    }

    #[test]
    fn the_policy_holds_only_calls_of_the_build_architecture() {
        for mode in [Mode::Default, Mode::Strict] {
            let p = Policy::new(mode, &[], &[], false);
            for c in &p.calls {
                assert!(syscalls::number(c).is_some(), "{c}");
            }
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            Policy::new(Mode::Default, &[], &[], false).calls.len(),
            DENIED.len()
        );
    }

    #[test]
    fn profiles_add_and_remove_calls() {
        let p = Policy::new(
            Mode::Default,
            &["bpf".to_string()],
            &["ptrace".to_string()],
            false,
        );
        assert!(!p.calls.contains(&"bpf".to_string()));
        assert!(p.calls.contains(&"ptrace".to_string()));
        let s = Policy::new(
            Mode::Strict,
            &["ptrace".to_string()],
            &["read".to_string()],
            false,
        );
        assert!(s.calls.contains(&"ptrace".to_string()));
        assert!(!s.calls.contains(&"read".to_string()));
        assert!(
            Policy::new(Mode::Off, &[], &[], false)
                .compile()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn policies_compile() {
        for mode in [Mode::Default, Mode::Strict] {
            for ns in [false, true] {
                let progs = Policy::new(mode, &[], &[], ns).compile().unwrap();
                assert_eq!(progs.len(), 2);
                assert!(progs[1].len() > 20);
            }
        }
        let bad = Policy::new(Mode::Default, &[], &["no_such_call".to_string()], false);
        assert_eq!(
            bad.compile().unwrap_err(),
            "unknown system call 'no_such_call'"
        );
    }
}

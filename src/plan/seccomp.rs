//! The seccomp policy: which calls are refused, as data (`Policy`, printed
//! by `--print-plan`), compiled into one BPF program before any fork.
//! Installing it (`runtime::enforce::install_seccomp`) is the very last
//! step before execve.
//!
//! The filter is written for the architecture nook is built for (`ARCH`,
//! x86-64 or aarch64) and kills a process that calls through any other
//! (i386's `int 0x80` on x86-64, an arm32 binary on aarch64). The lists
//! below name x86-64 calls; a name the build's architecture lacks (aarch64
//! has no `open`, `iopl` or `create_module`) is left out of the policy.
//!
//! The program is emitted here rather than by seccompiler, whose programs
//! test the call number against each listed call in turn: 435
//! instructions for the default list, 1233 for `strict`. The kernel runs
//! a filter's every path once per system call number when it installs it
//! (the allow cache of kernel/seccomp.c) and translates and JIT-compiles
//! every instruction, so the length is paid at startup, and the chain's
//! depth on every call. Here the numbers are split into ranges that get
//! the same answer and found by a binary search (`jge` on range bounds):
//! about 2 instructions per range and a path of a dozen.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, sock_filter};
use serde::{Deserialize, Serialize};

pub use crate::spec::security::SeccompMode as Mode;
use crate::spec::syscalls;

/// The architecture the filter is compiled for, as seccomp_data.arch
/// reports it (AUDIT_ARCH_X86_64): the build's.
#[cfg(target_arch = "x86_64")]
pub const ARCH: u32 = 0xc000_003e;
/// The architecture the filter is compiled for, as seccomp_data.arch
/// reports it (AUDIT_ARCH_AARCH64): the build's.
#[cfg(target_arch = "aarch64")]
pub const ARCH: u32 = 0xc000_00b7;

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

/// What a nested sandbox needs besides clone and unshare with namespace
/// flags: mounting (old and new API) and joining its own namespaces.
const NESTING: &[&str] = &[
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
    "setns",
];

/// Namespace flags refused in clone and unshare (clone3 gets ENOSYS, so
/// libc falls back to clone, whose flags a filter can see).
const NS_FLAGS: u32 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWCGROUP
    | 0x80) as u32; // CLONE_NEWTIME

/// ioctl requests refused: faking terminal input and the Linux console's
/// selection/paste, compared on the low 32 bits as the kernel does.
const TTY_INJECT: [u32; 2] = [0x5412, 0x541C]; // TIOCSTI, TIOCLINUX

/// personality(2) values that change nothing dangerous: PER_LINUX,
/// PER_LINUX32, UNAME26 variants and the query (as in Docker's profile).
const PERSONALITY_OK: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// What `--trace` hands to the tracer besides the refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    Off,
    /// Calls that open, run, list or change a path.
    Paths,
    /// ...and the ones that only look (stat, access, readlink).
    PathsAndLooks,
}

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
        // With namespaces allowed, the calls that set one up run too (a
        // nested sandbox mounts and joins its own): they act only on
        // namespaces the sandbox made, since its capabilities reach no
        // further. The profile's own lists come after and win.
        if allow_namespaces {
            match mode {
                Mode::Default => calls.retain(|c| !NESTING.contains(&c.as_str())),
                Mode::Strict => {
                    for c in NESTING {
                        if syscalls::number(c).is_some() && !calls.iter().any(|k| k == c) {
                            calls.push(c.to_string());
                        }
                    }
                }
                Mode::Off => {}
            }
        }
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
        Policy {
            mode,
            calls,
            allow_namespaces,
        }
    }

    /// Compile to BPF (the tests' name for `compile_for(false)`): one
    /// program, or none when seccomp is off. What
    /// it answers, in order:
    /// - a call through another architecture kills the process;
    /// - on x86-64, an x32 call (number with bit 30 set) gets EPERM;
    /// - clone3 gets ENOSYS, so that libc falls back to clone, whose
    ///   flags a filter can see (EPERM instead if a profile adds clone3 to
    ///   the default list);
    /// - clone and unshare with a namespace flag, ioctl TIOCSTI and
    ///   TIOCLINUX, and personality other than the harmless values get
    ///   EPERM (unless the profile allows namespaces);
    /// - the named calls get EPERM (default) or run (strict), the others
    ///   run (default) or get EPERM (strict).
    #[cfg(test)]
    pub fn compile(&self) -> Result<Vec<BpfProgram>, String> {
        self.compile_for(Watch::Off)
    }

    /// Compile for `--trace` when `observe`: every refusal above is handed
    /// to the tracer instead (SECCOMP_RET_USER_NOTIF; it answers EPERM
    /// itself and counts it), and so is every call that names a path
    /// (`PATH_CALLS`), which the tracer looks at and lets run. Even with
    /// seccomp off there is then a program, for the paths.
    pub fn compile_for(&self, watch: Watch) -> Result<Vec<BpfProgram>, String> {
        let observe = watch != Watch::Off;
        let watched =
            |c: &(&str, usize, Option<usize>, bool)| !c.3 || watch == Watch::PathsAndLooks;
        if self.mode == Mode::Off && !observe {
            return Ok(Vec::new());
        }
        let nr = |name: &str| {
            syscalls::number(name)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("unknown system call '{name}'"))
        };
        let refused = if observe { RET_USER_NOTIF } else { EPERM };
        let (named, others) = match self.mode {
            Mode::Default => (refused, RET_ALLOW),
            Mode::Strict => (RET_ALLOW, refused),
            Mode::Off => (RET_ALLOW, RET_ALLOW),
        };
        if self.mode == Mode::Off {
            let mut answers: BTreeMap<u32, Answer> = BTreeMap::new();
            for c in PATH_CALLS.iter().filter(|c| watched(c)) {
                if let Ok(n) = nr(c.0) {
                    answers.insert(n, Answer::Ret(RET_USER_NOTIF));
                }
            }
            return Ok(vec![program(&answers, Answer::Ret(RET_ALLOW))]);
        }
        let mut answers: BTreeMap<u32, Answer> = BTreeMap::new();
        for c in &self.calls {
            answers.insert(nr(c)?, Answer::Ret(named));
        }
        // Checked arguments, whatever the lists say about these calls.
        if !self.allow_namespaces {
            for call in ["clone", "unshare"] {
                answers.insert(nr(call)?, Answer::Check(Check::NoNamespaceFlags));
            }
        }
        answers.insert(nr("ioctl")?, Answer::Check(Check::NoTerminalInjection));
        answers.insert(
            nr("personality")?,
            Answer::Check(Check::HarmlessPersonality),
        );
        // clone3's flags sit in a struct a filter can't read. A profile's
        // own refusal of it (default mode) stands.
        let clone3 = nr("clone3")?;
        if self.mode == Mode::Strict || !self.calls.iter().any(|c| c == "clone3") {
            answers.insert(clone3, Answer::Ret(ENOSYS));
        }
        if observe {
            for c in PATH_CALLS.iter().filter(|c| watched(c)) {
                let Ok(n) = nr(c.0) else { continue };
                // A call the policy runs is watched; a refused one is
                // already the tracer's.
                let runs = match answers.get(&n) {
                    Some(a) => *a == Answer::Ret(RET_ALLOW),
                    None => others == RET_ALLOW,
                };
                if runs {
                    answers.insert(n, Answer::Ret(RET_USER_NOTIF));
                }
            }
        }
        Ok(vec![program(&answers, Answer::Ret(others))])
    }

    /// Whether clone and unshare are refused namespace flags (and clone3
    /// answered ENOSYS), so that no nested namespace can be made.
    pub fn refuses_namespaces(&self) -> bool {
        self.mode != Mode::Off && !self.allow_namespaces
    }

    /// Whether the policy refuses call number `nr` outright (what the
    /// tracer answers EPERM for).
    pub fn refuses(&self, nr: i64) -> bool {
        let named = self.calls.iter().any(|c| syscalls::number(c) == Some(nr));
        match self.mode {
            Mode::Default => named,
            Mode::Strict => !named,
            Mode::Off => false,
        }
    }
}

/// The calls that name a path, as (name, index of the path argument,
/// index of the directory descriptor it is relative to, if any, and
/// whether it only looks: stat, access, readlink): what `--trace` watches.
/// Each opens, runs, looks at or changes something by name; calls on
/// descriptors are left alone. The looks are most of a build's calls
/// (make and compilers stat everything), so they are watched only when
/// asked (`--trace-stat`).
pub const PATH_CALLS: &[(&str, usize, Option<usize>, bool)] = &[
    ("open", 0, None, false),
    ("creat", 0, None, false),
    ("openat", 1, Some(0), false),
    ("openat2", 1, Some(0), false),
    ("execve", 0, None, false),
    ("execveat", 1, Some(0), false),
    ("stat", 0, None, true),
    ("lstat", 0, None, true),
    ("newfstatat", 1, Some(0), true),
    ("statx", 1, Some(0), true),
    ("access", 0, None, true),
    ("faccessat", 1, Some(0), true),
    ("faccessat2", 1, Some(0), true),
    ("readlink", 0, None, true),
    ("readlinkat", 1, Some(0), true),
    ("mkdir", 0, None, false),
    ("mkdirat", 1, Some(0), false),
    ("unlink", 0, None, false),
    ("unlinkat", 1, Some(0), false),
    ("rmdir", 0, None, false),
    ("rename", 1, None, false),
    ("renameat", 3, Some(2), false),
    ("renameat2", 3, Some(2), false),
    ("chdir", 0, None, false),
    ("truncate", 0, None, false),
];

const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
const RET_USER_NOTIF: u32 = 0x7fc0_0000; // SECCOMP_RET_USER_NOTIF
const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
const RET_KILL_PROCESS: u32 = 0x8000_0000; // SECCOMP_RET_KILL_PROCESS
const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

/// struct seccomp_data: the call number, the architecture, and the low
/// 32 bits of argument `i` (little-endian).
const NR: u32 = 0;
const ARCH_OFFSET: u32 = 4;
const fn arg_low(i: u32) -> u32 {
    16 + 8 * i
}

/// What the filter answers for one call number of the build's
/// architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A fixed return value.
    Ret(u32),
    /// An argument check: EPERM when it fails, the call runs otherwise.
    Check(Check),
}

/// The argument checks. Each compares the low 32 bits of one argument,
/// where the values it knows live (and as the kernel reads ioctl's
/// request and personality's persona: as 32-bit values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// clone and unshare (flags in argument 0): no CLONE_NEW* flag.
    NoNamespaceFlags,
    /// ioctl (request in argument 1): not TIOCSTI or TIOCLINUX.
    NoTerminalInjection,
    /// personality (argument 0): one of `PERSONALITY_OK`.
    HarmlessPersonality,
}

impl Check {
    /// The instructions of the check; each path ends in a return.
    fn emit(self) -> Vec<sock_filter> {
        match self {
            Check::NoNamespaceFlags => vec![
                stmt(BPF_LD | BPF_W | BPF_ABS, arg_low(0)),
                jump(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1),
                stmt(BPF_RET | BPF_K, EPERM),
                stmt(BPF_RET | BPF_K, RET_ALLOW),
            ],
            Check::NoTerminalInjection => one_of(arg_low(1), &TTY_INJECT, EPERM, RET_ALLOW),
            Check::HarmlessPersonality => one_of(arg_low(0), &PERSONALITY_OK, RET_ALLOW, EPERM),
        }
    }
}

/// Load the word at `offset`: `member` if it is one of `values`,
/// `otherwise` if not.
fn one_of(offset: u32, values: &[u32], member: u32, otherwise: u32) -> Vec<sock_filter> {
    let n = values.len();
    let mut p = vec![stmt(BPF_LD | BPF_W | BPF_ABS, offset)];
    for (i, &v) in values.iter().enumerate() {
        // A match jumps over the remaining comparisons and `otherwise`.
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, v, (n - i) as u8, 0));
    }
    p.push(stmt(BPF_RET | BPF_K, otherwise));
    p.push(stmt(BPF_RET | BPF_K, member));
    p
}

/// The program: the architecture check, the x32 check (x86-64), then a
/// binary search of the call number over the ranges of numbers that get
/// one answer (`answers` for the numbers it names, `others` for the rest).
fn program(answers: &BTreeMap<u32, Answer>, others: Answer) -> BpfProgram {
    let mut p = vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, ARCH_OFFSET),
        jump(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, RET_KILL_PROCESS),
        stmt(BPF_LD | BPF_W | BPF_ABS, NR),
    ];
    #[cfg(target_arch = "x86_64")]
    p.extend([
        jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET | BPF_K, EPERM),
    ]);
    p.extend(search(&ranges(answers, others)));
    p
}

/// x32 calls are x86-64 calls with this bit set in the number (and
/// AUDIT_ARCH_X86_64 as their architecture).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The numbers cut into ranges of one answer: (first number, answer),
/// sorted, each range running up to the next one's first number, the
/// last to u32::MAX; neighbours answer differently.
fn ranges(answers: &BTreeMap<u32, Answer>, others: Answer) -> Vec<(u32, Answer)> {
    let mut v: Vec<(u32, Answer)> = vec![(0, others)];
    let mut push = |first: u32, a: Answer| {
        let last = v.last_mut().expect("never empty");
        if last.1 == a {
            return;
        }
        if last.0 == first {
            last.1 = a;
            // Merging may make it equal to the range before.
            if v.len() >= 2 && v[v.len() - 2].1 == a {
                v.pop();
            }
        } else {
            v.push((first, a));
        }
    };
    for (&nr, &a) in answers {
        push(nr, a);
        if let Some(next) = nr.checked_add(1)
            && !answers.contains_key(&next)
        {
            push(next, others);
        }
    }
    v
}

/// Binary search over `ranges` (register A holds the number): each inner
/// node is `jge` on the first number of the upper half; the left subtree
/// follows it, the right one follows the left.
fn search(ranges: &[(u32, Answer)]) -> Vec<sock_filter> {
    if let [(_, a)] = ranges {
        return match *a {
            Answer::Ret(k) => vec![stmt(BPF_RET | BPF_K, k)],
            Answer::Check(c) => c.emit(),
        };
    }
    let mid = ranges.len() / 2;
    let (lower, upper) = (search(&ranges[..mid]), search(&ranges[mid..]));
    let bound = ranges[mid].0;
    let mut p = Vec::with_capacity(lower.len() + upper.len() + 2);
    match u8::try_from(lower.len()) {
        Ok(skip) => p.push(jump(BPF_JMP | BPF_JGE | BPF_K, bound, skip, 0)),
        // Conditional jumps reach 255 instructions; `ja` anything.
        Err(_) => p.extend([
            jump(BPF_JMP | BPF_JGE | BPF_K, bound, 0, 1),
            stmt(BPF_JMP | BPF_JA, lower.len() as u32),
        ]),
    }
    p.extend(lower);
    p.extend(upper);
    p
}

use libc::{BPF_ABS, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W};

fn stmt(code: u32, k: u32) -> sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
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

    /// Allowing namespaces allows what a nested sandbox does with them
    /// (mount, pivot_root, setns), in both modes; a profile's own refusal
    /// still wins.
    #[test]
    fn allowed_namespaces_bring_the_mount_calls() {
        let has = |p: &Policy, c: &str| p.calls.iter().any(|k| k == c);
        let closed = Policy::new(Mode::Default, &[], &[], false);
        assert!(has(&closed, "mount") && has(&closed, "setns") && closed.refuses_namespaces());
        let open = Policy::new(Mode::Default, &[], &[], true);
        for c in [
            "mount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsmount",
            "setns",
        ] {
            assert!(!has(&open, c), "{c}");
        }
        assert!(has(&open, "bpf") && !open.refuses_namespaces());
        let strict = Policy::new(Mode::Strict, &[], &[], true);
        assert!(has(&strict, "mount") && has(&strict, "pivot_root"));
        let denied = Policy::new(Mode::Default, &[], &["mount".to_string()], true);
        assert!(has(&denied, "mount") && !has(&denied, "umount2"));
    }

    #[test]
    fn policies_compile() {
        for mode in [Mode::Default, Mode::Strict] {
            for ns in [false, true] {
                let progs = Policy::new(mode, &[], &[], ns).compile().unwrap();
                assert_eq!(progs.len(), 1);
                assert!(progs[0].len() > 20);
            }
        }
        let bad = Policy::new(Mode::Default, &[], &["no_such_call".to_string()], false);
        assert_eq!(
            bad.compile().unwrap_err(),
            "unknown system call 'no_such_call'"
        );
    }

    #[test]
    fn tracing_hands_refusals_and_path_calls_to_the_tracer() {
        let call = |name: &str| {
            let mut d = [0u32; 16];
            d[0] = syscalls::number(name).unwrap() as u32;
            d[1] = ARCH;
            d
        };
        let p = Policy::new(Mode::Default, &[], &["mkdir".to_string()], false);
        let traced = p.compile_for(Watch::PathsAndLooks).unwrap();
        for (name, want) in [
            ("openat", RET_USER_NOTIF),
            ("execve", RET_USER_NOTIF),
            ("mkdir", RET_USER_NOTIF),
            ("bpf", RET_USER_NOTIF),
            ("read", RET_ALLOW),
            ("getpid", RET_ALLOW),
        ] {
            assert_eq!(run(&traced[0], &call(name)), want, "{name}");
        }
        // Without --trace-stat, looks run unwatched.
        let paths = p.compile_for(Watch::Paths).unwrap();
        assert_eq!(run(&paths[0], &call("openat")), RET_USER_NOTIF);
        assert_eq!(run(&paths[0], &call("newfstatat")), RET_ALLOW);
        assert_eq!(run(&traced[0], &call("newfstatat")), RET_USER_NOTIF);
        // Untraced, the same policy answers by itself.
        let plain = p.compile().unwrap();
        assert_eq!(run(&plain[0], &call("mkdir")), EPERM);
        assert_eq!(run(&plain[0], &call("openat")), RET_ALLOW);
        assert!(p.refuses(syscalls::number("mkdir").unwrap()));
        assert!(p.refuses(syscalls::number("bpf").unwrap()));
        assert!(!p.refuses(syscalls::number("openat").unwrap()));
        // With seccomp off, tracing still watches paths, and refuses nothing.
        let off = Policy::new(Mode::Off, &[], &[], false);
        let traced = off.compile_for(Watch::PathsAndLooks).unwrap();
        assert_eq!(run(&traced[0], &call("openat")), RET_USER_NOTIF);
        assert_eq!(run(&traced[0], &call("bpf")), RET_ALLOW);
        assert!(!off.refuses(syscalls::number("bpf").unwrap()));
        // Strict: what the list lacks goes to the tracer as a refusal.
        let strict = Policy::new(Mode::Strict, &[], &[], false);
        let traced = strict.compile_for(Watch::PathsAndLooks).unwrap();
        assert_eq!(run(&traced[0], &call("bpf")), RET_USER_NOTIF);
        assert!(strict.refuses(syscalls::number("bpf").unwrap()));
    }

    /// Classic BPF as the kernel runs a seccomp filter, for the
    /// instructions seccomp programs use here.
    fn run(prog: &[sock_filter], data: &[u32; 16]) -> u32 {
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = &prog[pc];
            let (code, k) = (i.code as u32, i.k);
            pc += 1;
            match code {
                c if c == BPF_LD | BPF_W | BPF_ABS => a = data[k as usize / 4],
                c if c == libc::BPF_ALU | libc::BPF_AND | BPF_K => a &= k,
                c if c == BPF_JMP | BPF_JA => pc += k as usize,
                c if c & 0x07 == BPF_JMP => {
                    let taken = match c & 0xf0 {
                        BPF_JEQ => a == k,
                        BPF_JGE => a >= k,
                        libc::BPF_JGT => a > k,
                        BPF_JSET => a & k != 0,
                        op => panic!("jump op {op:#x}"),
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
                c if c == BPF_RET | BPF_K => return k,
                c => panic!("instruction {c:#x}"),
            }
        }
    }

    /// What a stack of filters answers: the most urgent action wins, and
    /// of equal actions the newest filter's (seccomp_run_filters in
    /// kernel/seccomp.c).
    fn run_stack(progs: &[BpfProgram], data: &[u32; 16]) -> u32 {
        let action = |r: u32| (r & 0xffff_0000) as i32;
        let mut ret = RET_ALLOW;
        for p in progs.iter().rev() {
            let cur = run(p, data);
            if action(cur) < action(ret) {
                ret = cur;
            }
        }
        ret
    }

    /// The two programs nook installed before it emitted its own: a
    /// prefilter (x32 -> EPERM, clone3 -> ENOSYS, written by hand) and
    /// seccompiler's chain for the policy. The new program must answer
    /// every call exactly as this stack did.
    fn reference(p: &Policy) -> Vec<BpfProgram> {
        use seccompiler::{
            SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
            SeccompFilter, SeccompRule, TargetArch,
        };
        #[cfg(target_arch = "x86_64")]
        let arch = TargetArch::x86_64;
        #[cfg(target_arch = "aarch64")]
        let arch = TargetArch::aarch64;
        let nr = |name: &str| syscalls::number(name).unwrap();
        let cond = |arg, len, op, v| SeccompCondition::new(arg, len, op, v).unwrap();
        let rule = |c| SeccompRule::new(c).unwrap();
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for c in &p.calls {
            rules.insert(nr(c), Vec::new());
        }
        let ns = NS_FLAGS as u64;
        let (mismatch, matched) = match p.mode {
            Mode::Default => {
                if !p.allow_namespaces {
                    for call in ["clone", "unshare"] {
                        let rs = (0..64)
                            .map(|bit| 1u64 << bit)
                            .filter(|f| ns & f != 0)
                            .map(|f| rule(vec![cond(0, Len::Qword, Op::MaskedEq(f), f)]))
                            .collect();
                        rules.insert(nr(call), rs);
                    }
                }
                let tty = TTY_INJECT
                    .iter()
                    .map(|&r| rule(vec![cond(1, Len::Dword, Op::Eq, r.into())]))
                    .collect();
                rules.insert(nr("ioctl"), tty);
                let not_ok = PERSONALITY_OK
                    .iter()
                    .map(|&v| cond(0, Len::Dword, Op::Ne, v.into()))
                    .collect();
                rules.insert(nr("personality"), vec![rule(not_ok)]);
                (SeccompAction::Allow, SeccompAction::Errno(EPERM & 0xffff))
            }
            Mode::Strict => {
                if !p.allow_namespaces {
                    for call in ["clone", "unshare"] {
                        let r = rule(vec![cond(0, Len::Qword, Op::MaskedEq(ns), 0)]);
                        rules.insert(nr(call), vec![r]);
                    }
                }
                let not_tty = TTY_INJECT
                    .iter()
                    .map(|&r| cond(1, Len::Dword, Op::Ne, r.into()))
                    .collect();
                rules.insert(nr("ioctl"), vec![rule(not_tty)]);
                let ok = PERSONALITY_OK
                    .iter()
                    .map(|&v| rule(vec![cond(0, Len::Dword, Op::Eq, v.into())]))
                    .collect();
                rules.insert(nr("personality"), ok);
                rules.insert(nr("clone3"), Vec::new());
                (SeccompAction::Errno(EPERM & 0xffff), SeccompAction::Allow)
            }
            Mode::Off => unreachable!(),
        };
        let main: BpfProgram = SeccompFilter::new(rules, mismatch, matched, arch)
            .unwrap()
            .try_into()
            .unwrap();
        let clone3 = libc::SYS_clone3 as u32;
        #[cfg(target_arch = "x86_64")]
        let pre = vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, 4),
            jump(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 0, 3),
            stmt(BPF_LD | BPF_W | BPF_ABS, 0),
            jump(BPF_JMP | BPF_JGE | BPF_K, 0x4000_0000, 2, 0),
            jump(BPF_JMP | BPF_JEQ | BPF_K, clone3, 2, 0),
            stmt(BPF_RET | BPF_K, RET_ALLOW),
            stmt(BPF_RET | BPF_K, EPERM),
            stmt(BPF_RET | BPF_K, ENOSYS),
        ];
        #[cfg(target_arch = "aarch64")]
        let pre = vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, 4),
            jump(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 0, 2),
            stmt(BPF_LD | BPF_W | BPF_ABS, 0),
            jump(BPF_JMP | BPF_JEQ | BPF_K, clone3, 1, 0),
            stmt(BPF_RET | BPF_K, RET_ALLOW),
            stmt(BPF_RET | BPF_K, ENOSYS),
        ];
        vec![pre, main]
    }

    #[test]
    fn the_program_answers_as_the_two_it_replaced() {
        let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let policies = [
            Policy::new(Mode::Default, &[], &[], false),
            Policy::new(Mode::Default, &[], &[], true),
            Policy::new(
                Mode::Default,
                &s(&["bpf", "keyctl"]),
                &s(&["ptrace"]),
                false,
            ),
            // A profile naming calls that are also checked or special.
            Policy::new(
                Mode::Default,
                &[],
                &s(&["clone3", "ioctl", "personality", "clone"]),
                false,
            ),
            Policy::new(Mode::Default, &[], &s(&["clone", "read"]), true),
            Policy::new(Mode::Strict, &[], &[], false),
            Policy::new(Mode::Strict, &[], &[], true),
            Policy::new(
                Mode::Strict,
                &s(&["ptrace", "clone3"]),
                &s(&["read", "ioctl", "personality", "clone"]),
                false,
            ),
        ];
        // Numbers: every call of the tables and beyond, the x32 range,
        // the top of the number space.
        let mut nrs: Vec<u32> = (0..1100).collect();
        nrs.extend([
            0x3fff_ffff,
            0x4000_0000,
            0x4000_0027,
            0x4000_01b3,
            0x7fff_ffff,
        ]);
        nrs.extend([0x8000_0000, 0xffff_fffe, 0xffff_ffff]);
        // Arguments, as (low, high) halves of arguments 0 and 1: each
        // namespace flag, flags libc passes, TTY requests and personas,
        // and the same with high bits set.
        let mut lows: Vec<u32> = (0..32).map(|b| 1u32 << b).collect();
        lows.extend([
            0, 0x11, 0x3d0f00, 0x5412, 0x541c, 0x5413, 0x8, 0x20000, 0x20008,
        ]);
        lows.extend([0x400000, 0xffff_ffff, 0x1000_0000 | 0x5412, NS_FLAGS]);
        let checked: Vec<u32> = ["clone", "unshare", "ioctl", "personality"]
            .iter()
            .map(|c| syscalls::number(c).unwrap() as u32)
            .collect();
        #[cfg(target_arch = "x86_64")]
        let foreign = [0x4000_0003, 0]; // AUDIT_ARCH_I386
        #[cfg(target_arch = "aarch64")]
        let foreign = [0x4000_0028, 0]; // AUDIT_ARCH_ARM
        for p in &policies {
            let new = p.compile().unwrap();
            assert_eq!(new.len(), 1);
            let old = reference(p);
            let mut tried = 0;
            for &arch in [ARCH].iter().chain(&foreign) {
                for &nr in &nrs {
                    let args: Vec<[u32; 4]> = if checked.contains(&nr) {
                        let mut v = Vec::new();
                        for &l in &lows {
                            for high in [0, 1, 0xffff_ffff] {
                                v.push([l, high, 0x5412, 0]);
                                v.push([0, 0, l, high]);
                            }
                        }
                        v
                    } else {
                        vec![[0, 0, 0, 0], [0x5412, 0, 0x10000, 0]]
                    };
                    for a in args {
                        let mut d = [0u32; 16];
                        (d[0], d[1]) = (nr, arch);
                        d[4..8].copy_from_slice(&a);
                        assert_eq!(
                            run(&new[0], &d),
                            run_stack(&old, &d),
                            "{:?} nr {nr:#x} arch {arch:#x} args {a:x?}",
                            p.mode
                        );
                        tried += 1;
                    }
                }
            }
            assert!(tried > 3000);
        }
    }

    #[test]
    fn the_program_is_short_and_shallow() {
        for mode in [Mode::Default, Mode::Strict] {
            let p = Policy::new(mode, &[], &[], false).compile().unwrap();
            // Against 435 + 8 and 1233 + 8 instructions for seccompiler's
            // chains and the prefilter.
            let most = if mode == Mode::Default { 160 } else { 400 };
            assert!(p[0].len() < most, "{mode:?}: {}", p[0].len());
        }
    }
}

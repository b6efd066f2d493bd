//! Thin safe wrappers over the raw calls that nix and rustix don't cover, or
//! cover only as `unsafe`. This is the only module allowed to use `unsafe`;
//! every block says which invariant makes it sound.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::{ForkResult, Pid};

/// Why [`fork`] or [`clone_fork`] did not make a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ForkError {
    /// Refused: the process has other threads (`threads` counts all of
    /// them, when /proc could tell). A child forked now could inherit a
    /// lock one of them holds (the allocator's, stdio's) and hang on it.
    #[error("refused to fork: the process has {} threads", .threads.map_or("several".to_string(), |n| n.to_string()))]
    Threaded { threads: Option<u32> },
    /// Refused: whether other threads exist could not be found out.
    #[error("refused to fork: could not count the process's threads ({0})")]
    Unchecked(Errno),
    /// fork or clone itself failed.
    #[error("{0}")]
    Failed(Errno),
}

impl ForkError {
    /// As the failure of `step`: a failed call with its errno; a refusal
    /// with no errno and a hint that says why.
    pub fn into_step(self, step: crate::error::Step) -> crate::error::StepError {
        use crate::error::StepError;
        match self {
            ForkError::Failed(e) => StepError::new(step, None, e),
            ForkError::Unchecked(e) => StepError::new(step, None, e).hint(format!(
                "{self}: unshare(CLONE_THREAD) and /proc/self/stat both failed"
            )),
            ForkError::Threaded { .. } => StepError::failed(step, None).hint(format!(
                "{self}; a thread outlived its work, which is a bug in nook"
            )),
        }
    }

    /// For a caller that can carry only an errno (doctor's probes): a
    /// refusal becomes EDEADLK, "resource deadlock avoided", which is what
    /// it is.
    pub fn errno(self) -> Errno {
        match self {
            ForkError::Failed(e) | ForkError::Unchecked(e) => e,
            ForkError::Threaded { .. } => Errno::EDEADLK,
        }
    }
}

/// Whether the calling thread is its process's only thread.
///
/// unshare(CLONE_THREAD) does nothing and succeeds exactly when the thread
/// group has one member, and fails with EINVAL otherwise
/// (check_unshare_flags in kernel/fork.c): one system call (0.2 µs here
/// against 8 µs to read /proc/self/stat), and it needs no /proc, which
/// init and `nook exec`'s joiner may not have (or not their own). When a
/// filter refuses unshare (a container runtime's), /proc/self/stat's
/// num_threads decides.
pub fn only_thread() -> Result<bool, Errno> {
    match nix::sched::unshare(nix::sched::CloneFlags::CLONE_THREAD) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL) => Ok(false),
        Err(_) => proc_threads().map(|n| n == 1),
    }
}

/// num_threads from /proc/self/stat.
fn proc_threads() -> Result<u32, Errno> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    stat_threads(&stat).ok_or(Errno::EIO)
}

/// Field 20, num_threads, of a /proc/PID/stat line; fields are counted
/// after the command name, which may hold spaces and parentheses.
fn stat_threads(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields 3 (state) onwards; num_threads is field 20.
    after_comm.split_whitespace().nth(20 - 3)?.parse().ok()
}

/// Refuse unless the calling thread is the process's only one. A thread
/// that was just joined can still be leaving the kernel's thread group
/// for a short while after pthread_join returns (the join wakes on the
/// thread's tid being cleared, before the kernel releases it: up to 0.4
/// ms measured here, on 3 joins in 2000), so a refusal waits for up to
/// 50 ms before it is final.
fn check_single_threaded() -> Result<(), ForkError> {
    use std::time::{Duration, Instant};
    let mut deadline = None;
    loop {
        match only_thread() {
            Ok(true) => return Ok(()),
            Err(e) => return Err(ForkError::Unchecked(e)),
            Ok(false) => {}
        }
        let end = *deadline.get_or_insert_with(|| Instant::now() + Duration::from_millis(50));
        if Instant::now() >= end {
            return Err(ForkError::Threaded {
                threads: proc_threads().ok(),
            });
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// fork(2), refused while the process has other threads (see
/// [`check_single_threaded`]).
///
/// Callers are the supervisor and the processes it creates; the only
/// threads nook starts are the egress gate's, in a process of its own that
/// never forks, and the check makes sure of it. In a single-threaded process the child
/// can't inherit a lock held by a thread it lacks, so it may allocate
/// freely. The same holds for [`clone_fork`].
pub fn fork() -> Result<ForkResult, ForkError> {
    check_single_threaded()?;
    // SAFETY: check_single_threaded just found the calling thread to be
    // the process's only one, and this thread starts none between the
    // check and the fork; a single-threaded process is the condition under
    // which everything is safe to call in the child.
    unsafe { nix::unistd::fork() }.map_err(ForkError::Failed)
}

/// clone(2) used like fork(2), with extra `flags`: the namespace flags that
/// create init in all its namespaces at once (CLONE_NEWUSER with the
/// others), or none. Returns `None` in the child, like fork. Refused while
/// the process has other threads, like [`fork`].
pub fn clone_fork(flags: libc::c_int) -> Result<Option<Pid>, ForkError> {
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    check_single_threaded()?;
    // SAFETY: without CLONE_VM and with a null stack, clone behaves as
    // fork: the child gets a private copy of the address space and its own
    // stack, continuing from this call. check_single_threaded just found
    // the calling thread to be the process's only one (and it starts none
    // before this call), so no lock can be held by a thread missing in the
    // child. glibc's fork handlers are skipped: nook registers none, and
    // glibc no longer caches the pid.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(ForkError::Failed(Errno::last())),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;

/// struct mount_attr from linux/mount.h (not in libc).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Add read-only (and nosuid) to the mount `fd` refers to, and with
/// `recursive` to every mount below it (mount_setattr(2), Linux 5.12).
pub fn mount_set_read_only(fd: BorrowedFd<'_>, recursive: bool) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` is a
    // live, correctly laid out struct mount_attr and its size is passed; the
    // kernel only reads from both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// close_range(2) for [first, last].
pub fn close_range(first: u32, last: u32) -> nix::Result<()> {
    // SAFETY: closing descriptors can't violate memory safety; the payload
    // calls this just before execve, when no Rust object still owns an fd
    // in the range that it will use again.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint) };
    Errno::result(ret).map(drop)
}

extern "C" fn noop_handler(_: libc::c_int) {}

/// Give `sig` a handler that does nothing. pid 1 of a pid namespace only
/// receives signals from its ancestors for which it has a handler
/// (pid_namespaces(7)), even when it consumes them with sigwait.
pub fn install_noop_handler(sig: Signal) -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(noop_handler),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler is async-signal-safe (it does nothing).
    unsafe { sigaction(sig, &action) }.map(drop)
}

/// Reset `sig` to its default disposition.
pub fn default_handler(sig: Signal) -> nix::Result<()> {
    let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_DFL installs no code of ours.
    unsafe { sigaction(sig, &action) }.map(drop)
}

/// Ignore `sig` (SIG_IGN).
pub fn ignore_signal(sig: Signal) -> nix::Result<()> {
    let action = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN installs no code of ours.
    unsafe { sigaction(sig, &action) }.map(drop)
}

/// Make descriptor `to` a copy of `from` (dup2), replacing what `to` was.
pub fn dup_onto(from: i32, to: i32) -> nix::Result<()> {
    if from == to {
        return clear_cloexec(to);
    }
    // SAFETY: dup2 on a descriptor we hold; replacing `to` (a standard
    // stream) is the point.
    Errno::result(unsafe { libc::dup2(from, to) }).map(drop)
}

/// Bring up `lo` in the current network namespace (SIOCSIFFLAGS).
pub fn loopback_up() -> nix::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
    // SAFETY: SIOCSIFFLAGS reads a struct ifreq, which `req` is, and the
    // socket fd is open for the duration of the call.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    Errno::result(ret).map(drop)
}

/// Clear FD_CLOEXEC on a descriptor number inherited from nook's caller.
pub fn clear_cloexec(fd: i32) -> nix::Result<()> {
    // SAFETY: fcntl(F_SETFD) on an arbitrary number touches no memory; a
    // closed number gives EBADF.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    Errno::result(ret).map(drop)
}

fn cap_set(caps: &[u8]) -> rustix::thread::CapabilitySet {
    caps.iter()
        .fold(rustix::thread::CapabilitySet::empty(), |s, &c| {
            s | rustix::thread::CapabilitySet::from_bits_retain(1u64 << c)
        })
}

/// Make the capabilities numbered `keep` inheritable and ambient, so that
/// they outlive execve of ordinary programs. Before the securebits forbid
/// raising ambient ones.
pub fn raise_ambient(keep: &[u8]) -> nix::Result<()> {
    if keep.is_empty() {
        return Ok(());
    }
    let errno = |e: rustix::io::Errno| Errno::from_raw(e.raw_os_error());
    let now = rustix::thread::capabilities(None).map_err(errno)?;
    rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: now.effective,
            permitted: now.permitted,
            inheritable: cap_set(keep),
        },
    )
    .map_err(errno)?;
    for &c in keep {
        // SAFETY: integer-only prctl.
        let ret = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                c as libc::c_ulong,
                0,
                0,
            )
        };
        Errno::result(ret)?;
    }
    Ok(())
}

/// Keep only the capabilities numbered `keep` (usually none): the
/// bounding set cut (so execve of a file with capabilities can't regain
/// others; needs CAP_SETPCAP, so after the securebits), the ambient set
/// cleared when none is kept (those raised before stay), then effective,
/// permitted and inheritable.
pub fn keep_only_capabilities(keep: &[u8]) -> nix::Result<()> {
    for cap in 0..64u8 {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes an integer and touches no memory.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if ret == -1 && Errno::last() == Errno::EINVAL {
            break; // past the last capability this kernel knows
        }
        Errno::result(ret)?;
    }
    if keep.is_empty() {
        // SAFETY: integer-only prctl.
        let ret = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        Errno::result(ret)?;
    }
    hold_only(keep)
}

/// capset(2): effective, permitted and inheritable exactly `keep`.
pub fn hold_only(keep: &[u8]) -> nix::Result<()> {
    let set = cap_set(keep);
    rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: set,
            permitted: set,
            inheritable: set,
        },
    )
    .map_err(|e| Errno::from_raw(e.raw_os_error()))
}

/// _exit(2): end a forked process without running the parent's atexit
/// handlers or flushing buffers it inherited.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and needs no invariant from the caller.
    unsafe { libc::_exit(code) }
}

/// landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the
/// kernel's Landlock ABI, or 0 when it has none.
pub fn landlock_abi_version() -> i32 {
    // SAFETY: a null attribute pointer with size 0 and the VERSION flag is
    // the documented query; nothing is read or written through it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    if ret < 0 { 0 } else { ret as i32 }
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): a new anonymous session
/// keyring, so the payload can't reach the keys of nook's caller.
pub fn join_new_session_keyring() -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: a null name asks for an anonymous keyring; no memory is
    // passed to the kernel.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// Make `cmd`'s process receive SIGKILL when the process that spawned it
/// dies (a helper must never outlive its sandbox, even when nook is
/// killed), and start it with no signal blocked: the supervisor blocks the
/// signals it waits for, and a helper that inherited that mask would never
/// see the SIGTERM that stops it.
pub fn kill_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before execve and only
    // makes async-signal-safe calls (sigprocmask, prctl, getppid, _exit);
    // it touches no lock or allocation.
    unsafe {
        cmd.pre_exec(move || {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the line above took effect.
            if libc::getppid() != parent.as_raw() {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Let `cmd` keep CAP_NET_ADMIN across its execve (as an ambient
/// capability): the egress gate runs `nft` as the mapped, non-root user,
/// whose capabilities would otherwise all be lost at exec.
pub fn keep_net_admin_across_exec(cmd: &mut std::process::Command) {
    use rustix::thread::{
        CapabilitySet, capabilities, configure_capability_in_ambient_set, set_capabilities,
    };
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before execve and only
    // makes raw capget/capset/prctl system calls through rustix; it
    // allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            let mut sets = capabilities(None)?;
            sets.inheritable |= CapabilitySet::NET_ADMIN;
            set_capabilities(None, sets)?;
            configure_capability_in_ambient_set(CapabilitySet::NET_ADMIN, true)?;
            Ok(())
        });
    }
}

/// How a waited-for child ended, with the resources it and the descendants
/// it waited for used (wait4(2)).
pub struct Reaped {
    /// The exit code, or 128+N for a signal N.
    pub code: i32,
    pub rusage: libc::rusage,
}

/// wait4 on `pid` without blocking: `None` while it still runs.
pub fn wait4_nohang(pid: nix::unistd::Pid) -> nix::Result<Option<Reaped>> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers point to live, writable locals of the types
    // wait4 expects.
    let r = unsafe { libc::wait4(pid.as_raw(), &mut status, libc::WNOHANG, &mut rusage) };
    match Errno::result(r)? {
        0 => Ok(None),
        _ if libc::WIFEXITED(status) => Ok(Some(Reaped {
            code: libc::WEXITSTATUS(status),
            rusage,
        })),
        _ if libc::WIFSIGNALED(status) => Ok(Some(Reaped {
            code: 128 + libc::WTERMSIG(status),
            rusage,
        })),
        // Stopped or continued: not an end.
        _ => Ok(None),
    }
}

/// Deliver SIGALRM to this process after `after` (one shot; the
/// supervisor's --timeout).
pub fn arm_alarm(after: std::time::Duration) -> nix::Result<()> {
    let tv = libc::timeval {
        tv_sec: after.as_secs() as libc::time_t,
        tv_usec: after.subsec_micros() as libc::suseconds_t,
    };
    let it = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: tv,
    };
    // SAFETY: `it` is a valid itimerval; the old value is not asked for.
    let r = unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
    Errno::result(r).map(drop)
}

/// Prepare `cmd` to run as a FUSE daemon for a mount nook made: the
/// /dev/fuse descriptor `fuse` becomes its fd 3 (it is given
/// `/dev/fd/3` as the mount point), and it runs chrooted into `root` (the
/// host's root, which its paths and its shared libraries are relative to).
pub fn fuse_daemon(cmd: &mut std::process::Command, fuse: i32, root: &'static std::ffi::CStr) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before execve and only
    // makes async-signal-safe system calls (dup2, chroot, chdir) on values
    // captured by copy; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fuse, 3) < 0
                || libc::chroot(root.as_ptr()) != 0
                || libc::chdir(c"/".as_ptr()) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Take over an inherited descriptor (`--events 3`), after checking that
/// it is open: a `File` owns and closes it.
pub fn file_from_inherited_fd(fd: i32) -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    nix::fcntl::fcntl(
        // SAFETY: only used for this one F_GETFD query, while `fd` is open
        // (or the call fails with EBADF).
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_GETFD,
    )
    .map_err(std::io::Error::from)?;
    // Close-on-exec from here: it is nook's, not the sandbox's.
    let _ = nix::fcntl::fcntl(
        // SAFETY: as above; the descriptor is open.
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    // SAFETY: the descriptor is open and nothing else in nook owns it: it
    // was named on the command line for exactly this.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Point stdin at /dev/null and stdout and stderr at `log` (a detached
/// supervisor, and the sandbox it runs, write there).
pub fn redirect_stdio(log: &std::fs::File) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )?;
    for (from, to) in [
        (null.as_raw_fd(), 0),
        (log.as_raw_fd(), 1),
        (log.as_raw_fd(), 2),
    ] {
        // SAFETY: dup2 on descriptors we hold open; the standard streams
        // are replaced, which is the point.
        Errno::result(unsafe { libc::dup2(from, to) })?;
    }
    Ok(())
}

/// The system calls the process-state tests make under the real filters
/// (runtime/probe_tests.rs), each with fixed arguments: integers and
/// null pointers only, so the kernel reads and writes no memory of ours.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0): the
    /// session keyring's id, created if need be.
    Keyctl,
    /// bpf(BPF_MAP_CREATE, NULL, 0): EINVAL from the kernel (all-zero
    /// attributes), EPERM for an unprivileged caller where
    /// kernel.unprivileged_bpf_disabled is set.
    Bpf,
    /// ptrace(PTRACE_PEEKUSER, 0, 0, 0): ESRCH (no process 0).
    Ptrace,
    /// io_uring_setup(1, NULL): EFAULT.
    IoUringSetup,
    /// mount(NULL, NULL, NULL, 0, NULL): EFAULT (no target).
    Mount,
    /// clone3(NULL, 0): EINVAL (too small).
    Clone3,
    /// clone(CLONE_NEWUSER | SIGCHLD): a child in a new user namespace,
    /// which _exits at once and is reaped here.
    CloneNewUser,
    /// unshare(CLONE_NEWUSER): EINVAL in a multi-threaded process.
    UnshareNewUser,
    /// personality(ADDR_NO_RANDOMIZE): the previous persona.
    Personality,
    /// ioctl(fd, TIOCSTI, NULL), with bits above the low 32 of the request
    /// set when `high` (the kernel ignores them): ENOTTY when `fd` is not
    /// a terminal.
    Tiocsti { fd: i32, high: bool },
    /// getpid through the x32 ABI (39 | __X32_SYSCALL_BIT): ENOSYS where
    /// the kernel has no x32.
    #[cfg(target_arch = "x86_64")]
    X32Getpid,
    /// getpid through the i386 ABI (`int 0x80`, eax = 20).
    #[cfg(target_arch = "x86_64")]
    I386Getpid,
}

#[cfg(test)]
impl Probe {
    pub fn run(self) -> nix::Result<i64> {
        const PTRACE_PEEKUSER: i64 = 3;
        const ADDR_NO_RANDOMIZE: i64 = 0x0040000;
        let null = 0i64;
        let (nr, args): (i64, [i64; 5]) = match self {
            Probe::Keyctl => (libc::SYS_keyctl, [0, -3, 0, 0, 0]),
            Probe::Bpf => (libc::SYS_bpf, [0, null, 0, 0, 0]),
            Probe::Ptrace => (libc::SYS_ptrace, [PTRACE_PEEKUSER, 0, null, null, 0]),
            Probe::IoUringSetup => (libc::SYS_io_uring_setup, [1, null, 0, 0, 0]),
            Probe::Mount => (libc::SYS_mount, [null, null, null, 0, null]),
            Probe::Clone3 => (libc::SYS_clone3, [null, 0, 0, 0, 0]),
            Probe::CloneNewUser => (
                libc::SYS_clone,
                [
                    (libc::CLONE_NEWUSER | libc::SIGCHLD) as i64,
                    null,
                    null,
                    null,
                    0,
                ],
            ),
            Probe::UnshareNewUser => (libc::SYS_unshare, [libc::CLONE_NEWUSER as i64, 0, 0, 0, 0]),
            Probe::Personality => (libc::SYS_personality, [ADDR_NO_RANDOMIZE, 0, 0, 0, 0]),
            Probe::Tiocsti { fd, high } => (
                libc::SYS_ioctl,
                [
                    fd as i64,
                    0x5412 | if high { 1 << 32 } else { 0 },
                    null,
                    0,
                    0,
                ],
            ),
            #[cfg(target_arch = "x86_64")]
            Probe::X32Getpid => (0x4000_0000 | libc::SYS_getpid, [0; 5]),
            #[cfg(target_arch = "x86_64")]
            Probe::I386Getpid => {
                let ret: i32;
                // SAFETY: i386 getpid (20) takes no argument and touches no
                // memory; `int 0x80` from 64-bit code returns in eax and may
                // clear r8-r11, which are declared clobbered.
                unsafe {
                    std::arch::asm!(
                        "int 0x80",
                        inlateout("eax") 20i32 => ret,
                        lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
                        options(nostack),
                    );
                }
                return Errno::result(ret).map(i64::from);
            }
        };
        // SAFETY: every argument above is an integer or a null pointer, so
        // the kernel reads and writes no memory of this process; the one
        // call that makes a process (clone without CLONE_VM, so a private
        // copy of memory, like fork) has its child _exit at once, doing
        // nothing else.
        let ret = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4]) };
        if self == Probe::CloneNewUser && ret == 0 {
            exit_now(0);
        }
        let ret = Errno::result(ret)?;
        if self == Probe::CloneNewUser {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(ret as i32), None);
        }
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Step;
    use std::sync::mpsc;

    /// A thread that lives until the returned sender is dropped.
    fn second_thread() -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        (tx, h)
    }

    #[test]
    fn num_threads_is_field_20_after_the_command_name() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 7 0 \
                    123 4096 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        assert_eq!(stat_threads(line), Some(7));
        assert_eq!(stat_threads("4242 (x) S 1"), None);
        assert_eq!(stat_threads("no parenthesis"), None);
        // And this process's own line parses.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_threads(&own).unwrap() >= 1);
    }

    #[test]
    fn another_thread_is_seen() {
        let (stop, h) = second_thread();
        assert_eq!(only_thread(), Ok(false));
        assert!(proc_threads().unwrap() >= 2);
        drop(stop);
        h.join().unwrap();
    }

    #[test]
    fn fork_and_clone_refuse_while_another_thread_runs() {
        let (stop, h) = second_thread();
        // If the check let a fork through, the child leaves at once
        // (_exit is async-signal-safe) and the parent fails the test.
        match fork() {
            Err(ForkError::Threaded { threads }) => assert!(threads.unwrap() >= 2),
            Err(e) => panic!("fork: {e}"),
            Ok(ForkResult::Child) => exit_now(99),
            Ok(ForkResult::Parent { child }) => {
                let _ = nix::sys::wait::waitpid(child, None);
                panic!("fork ran in a multi-threaded process");
            }
        }
        match clone_fork(0) {
            Err(ForkError::Threaded { .. }) => {}
            Err(e) => panic!("clone: {e}"),
            Ok(None) => exit_now(99),
            Ok(Some(child)) => {
                let _ = nix::sys::wait::waitpid(child, None);
                panic!("clone ran in a multi-threaded process");
            }
        }
        drop(stop);
        h.join().unwrap();
    }

    #[test]
    fn a_single_threaded_process_passes_the_check() {
        use std::os::unix::process::CommandExt;
        // A child between fork and execve has only the forking thread;
        // it runs the check there and fails the spawn if it disagrees.
        let mut cmd = std::process::Command::new("/bin/true");
        // SAFETY: the closure runs in the forked child before execve; it
        // makes one unshare(CLONE_THREAD) system call (the fallback to
        // /proc, which allocates, is only taken when unshare is refused
        // with something other than EINVAL, as a filter would) and builds
        // an io::Error from a raw errno, which doesn't allocate.
        unsafe {
            cmd.pre_exec(|| match only_thread() {
                Ok(true) => Ok(()),
                _ => Err(std::io::Error::from_raw_os_error(libc::EDEADLK)),
            });
        }
        let status = cmd.status().expect("the check passed in the child");
        assert!(status.success());
    }

    #[test]
    fn a_refusal_names_the_step_and_no_errno() {
        let e = ForkError::Threaded { threads: Some(3) }.into_step(Step::StartPayload);
        assert_eq!(e.to_string(), "starting the payload (fork)");
        assert_eq!(
            e.hint.as_deref(),
            Some(
                "refused to fork: the process has 3 threads; a thread outlived its work, which is a bug in nook"
            )
        );
        let e = ForkError::Failed(Errno::EAGAIN).into_step(Step::StartInit);
        assert_eq!(e.errno(), Some(Errno::EAGAIN));
        assert_eq!(e.hint, None);
        assert_eq!(
            ForkError::Threaded { threads: None }.errno(),
            Errno::EDEADLK
        );
    }
}

/// Install `prog` on the calling thread like seccompiler does, but with
/// SECCOMP_FILTER_FLAG_NEW_LISTENER: the calls it answers with
/// SECCOMP_RET_USER_NOTIF wait for whoever holds the returned descriptor
/// (`--trace`'s tracer). no_new_privs must already be set.
pub fn install_seccomp_listener(prog: &[seccompiler::sock_filter]) -> nix::Result<OwnedFd> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| Errno::EINVAL)?,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: seccompiler's sock_filter is the kernel's struct sock_filter
    // (#[repr(C)], same fields as libc's), `fprog` points at `prog`, which
    // outlives the call, and the kernel copies the program before it
    // returns.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this new descriptor to us; nothing
    // else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// One call waiting for the tracer (struct seccomp_notif).
#[derive(Debug, Clone, Copy)]
pub struct Notice {
    pub id: u64,
    /// The caller's thread id, in the tracer's pid namespace.
    pub pid: u32,
    pub nr: i32,
    pub args: [u64; 6],
}

/// Take the next waiting call from a seccomp listener (blocks until one
/// comes; ENOENT when the caller died meanwhile).
pub fn notice_receive(listener: BorrowedFd<'_>) -> nix::Result<Notice> {
    // SAFETY: seccomp_notif is plain data; all-zero is the state the
    // kernel requires before NOTIF_RECV fills it.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one struct seccomp_notif into `n`, which is
    // one, and live for the call.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV as _,
            &mut n as *mut libc::seccomp_notif,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(Notice {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        args: n.data.args,
    })
}

/// Whether the call `id` still waits (its caller did not die or get
/// interrupted): what the tracer read from its memory is then what the
/// call will use.
pub fn notice_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: the ioctl reads one u64 from the pointer, a live local.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
            &id as *const u64,
        ) == 0
    }
}

/// Answer call `id`: let it run as asked (`None`), or fail it with errno.
pub fn notice_answer(listener: BorrowedFd<'_>, id: u64, fail: Option<Errno>) -> nix::Result<()> {
    let resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: fail.map_or(0, |e| -(e as i32)),
        flags: if fail.is_none() {
            libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
        } else {
            0
        },
    };
    // SAFETY: the ioctl reads one struct seccomp_notif_resp from the
    // pointer, a live local.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &resp as *const libc::seccomp_notif_resp,
        )
    };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}

/// Take ownership of a descriptor that just arrived in an SCM_RIGHTS
/// message.
pub fn own_received_fd(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: the kernel installed this descriptor in our table when the
    // message was received; no other owner of it exists.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Ask the kernel to hand the CPU straight from a waiting caller to the
/// listener's reader and back (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux
/// 6.6): a watched call then costs a switch, not two wake-ups. Older
/// kernels refuse; the tracer works without it, only slower.
pub fn notices_wake_synchronously(listener: BorrowedFd<'_>) -> nix::Result<()> {
    const SYNC_WAKE_UP: u64 = 1;
    // SAFETY: the ioctl takes the flags by value (an integer argument);
    // it reads no memory of ours.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as _,
            SYNC_WAKE_UP,
        )
    };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}

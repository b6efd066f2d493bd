//! Thin safe wrappers over the raw calls that nix and rustix don't cover, or
//! cover only as `unsafe`. This is the only module allowed to use `unsafe`;
//! every block says which invariant makes it sound.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::{ForkResult, Pid};

/// fork(2).
///
/// Callers are the supervisor and the processes it creates, which are all
/// single-threaded (nook never starts a thread), so the child can't inherit
/// a lock held by another thread and may allocate freely. The same holds
/// for `clone_fork`.
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: the process is single-threaded (see above), which is the
    // condition under which everything is safe to call in the child.
    unsafe { nix::unistd::fork() }
}

/// clone(2) used like fork(2), with extra `flags`: the namespace flags that
/// create init in all its namespaces at once (CLONE_NEWUSER with the
/// others), or none. Returns `None` in the child, like fork.
pub fn clone_fork(flags: libc::c_int) -> nix::Result<Option<Pid>> {
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: without CLONE_VM and with a null stack, clone behaves as
    // fork: the child gets a private copy of the address space and its own
    // stack, continuing from this call. The caller is single-threaded, so no
    // lock can be held by a thread missing in the child. glibc's fork
    // handlers are skipped: nook registers none, and glibc no longer caches
    // the pid.
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
        -1 => Err(Errno::last()),
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

/// Drop every capability: the bounding set (so execve of a file with
/// capabilities can't regain them), the ambient set, and the thread's own.
pub fn drop_capabilities() -> nix::Result<()> {
    for cap in 0..64 {
        // SAFETY: PR_CAPBSET_DROP takes an integer and touches no memory.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if ret == -1 && Errno::last() == Errno::EINVAL {
            break; // past the last capability this kernel knows
        }
        Errno::result(ret)?;
    }
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
    clear_capability_sets()
}

/// capset(2) with every set empty: effective, permitted, inheritable.
pub fn clear_capability_sets() -> nix::Result<()> {
    let none = rustix::thread::CapabilitySet::empty();
    rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: none,
            permitted: none,
            inheritable: none,
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
/// capability): init runs `nft` as the mapped, non-root user, whose
/// capabilities would otherwise all be lost at exec.
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

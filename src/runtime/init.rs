//! init: pid 1 of the sandbox. Builds the filesystem, starts the payload,
//! then only forwards signals and reaps until the payload exits.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use std::os::fd::OwnedFd;

use nix::unistd::{ForkResult, Pid};

use crate::error::{EXIT_NOOK, Step, StepError, from_io, from_rustix};
use crate::plan::Plan;
use crate::sys;

use super::msg::{Ending, Receiver, Sender, ToSandbox, ToSupervisor};
use super::payload::{self, ExecPlan};
use super::setup;
use super::{FORWARDED, mounts, trace, wait_mask};

pub fn run(
    plan: &Plan,
    v: bool,
    exec: &ExecPlan,
    mut tx: Sender,
    mut rx: Receiver,
    end: Sender,
    alone: bool,
) -> ! {
    if let Err(e) = setup::enter(&plan.namespaces, plan, alone, &mut rx, v) {
        let _ = tx.send(&ToSupervisor::Failed(e));
        sys::exit_now(EXIT_NOOK);
    }
    let kept = match prepare(plan, v, rx) {
        Ok(kept) => kept,
        Err(e) => {
            let _ = tx.send(&ToSupervisor::Failed(e));
            sys::exit_now(EXIT_NOOK);
        }
    };

    let payload = match sys::fork() {
        Ok(ForkResult::Child) => payload::run(exec, tx),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            let _ = tx.send(&ToSupervisor::Failed(e.into_step(Step::StartPayload)));
            sys::exit_now(EXIT_NOOK);
        }
    };
    drop(tx);
    trace(v, "init", format_args!("payload is pid {payload}"));
    let code = reap(payload);
    tell_the_end(code, end, kept.1.as_ref());
    sys::exit_now(code)
}

/// Send the payload's status ahead of our own exit when nothing else is
/// left in the sandbox: every process of the sandbox is init's descendant
/// (orphans are reparented to init), so no child left means none. The
/// supervisor can then answer without waiting for the kernel to tear the
/// namespaces down after us. When something is left, say nothing: the
/// supervisor waits for our exit, which kills the rest (pid_namespaces(7)).
fn tell_the_end(code: i32, mut end: Sender, pool: Option<&OwnedFd>) {
    use nix::sys::resource::{UsageWho, getrusage};
    if waitpid(None, Some(WaitPidFlag::WNOHANG)) != Err(Errno::ECHILD) {
        return;
    }
    let (Ok(me), Ok(reaped)) = (
        getrusage(UsageWho::RUSAGE_SELF),
        getrusage(UsageWho::RUSAGE_CHILDREN),
    ) else {
        return;
    };
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() * 1_000_000 + t.tv_usec();
    // As wait4(2) adds them up for the process it reaps.
    let _ = end.send(&Ending {
        code,
        user_us: us(me.user_time()) + us(reaped.user_time()),
        system_us: us(me.system_time()) + us(reaped.system_time()),
        maxrss_kb: me.max_rss().max(reaped.max_rss()),
        inblock: me.block_reads() + reaped.block_reads(),
        oublock: me.block_writes() + reaped.block_writes(),
        // A tmpfs at its size has no block left to give.
        scratch_full: pool.is_some_and(|p| rustix::fs::fstatvfs(p).is_ok_and(|s| s.f_bavail == 0)),
    });
}

/// Everything before the payload; returns what init keeps until it exits
/// (the proc mount that forbids nested user namespaces, the scratch
/// pool).
fn prepare(
    plan: &Plan,
    v: bool,
    mut rx: Receiver,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>), StepError> {
    if !plan.namespaces.pid {
        // Not pid 1: become the reaper for the payload's orphans anyway.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| StepError::new(Step::BecomeSubreaper, None, from_rustix(e)))?;
    }
    // pid 1 gets a signal from outside only if it has a handler for it.
    for s in FORWARDED {
        sys::install_noop_handler(s)
            .map_err(|e| StepError::new(Step::InstallHandler, None, e).detail(s.to_string()))?;
    }
    if plan.namespaces.net {
        sys::loopback_up().map_err(|e| StepError::new(Step::LoopbackUp, None, e))?;
        trace(v, "init", format_args!("lo up"));
    }
    if let Some(h) = &plan.hostname {
        rustix::system::sethostname(h.as_bytes()).map_err(|e| {
            let e = StepError::new(Step::SetHostname, None, from_rustix(e)).detail(h);
            if crate::host::nesting::Surroundings::read().seccomp_filter {
                // We hold CAP_SYS_ADMIN over our own uts namespace: only a
                // filter we inherited refuses (podman's and Docker's do,
                // without that capability in the container).
                e.hint("a seccomp filter nook inherited refuses sethostname (a container engine's, without CAP_SYS_ADMIN); leave out --hostname, or give the container that capability")
            } else {
                e
            }
        })?;
    }
    // No nested user namespaces (and so no nested mount or network
    // namespaces, which would need one): the limit is per user namespace
    // and ours is the one we hold every capability in. Written before the
    // sandbox's /proc/sys becomes read-only.
    // Best effort, like the other hardening layers: nested in a sandbox
    // that already made /proc/sys read-only, or in one that forbids it
    // itself, the limit can't be written. Where seccomp refuses namespace
    // flags anyway the loss is a -v line; else one warning; --strict
    // makes it an error.
    let proc = if plan.forbid_nested_userns {
        match forbid_nested_userns(plan.namespaces.pid) {
            Ok(p) => p,
            Err(e) if plan.exec.strict => return Err(e),
            Err(e) if plan.exec.seccomp.refuses_namespaces() => {
                trace(
                    v,
                    "init",
                    format_args!("{e}; seccomp still refuses nested namespaces"),
                );
                None
            }
            Err(e) => {
                warn(&format!(
                    "{e}; nested user namespaces stay possible inside (--strict makes this an error)"
                ));
                None
            }
        }
    } else {
        None
    };
    let built = mounts::build_root(&plan.mounts, plan.scratch_size, plan.exec.strict, v)?;
    if built.parent_proc {
        warn(
            "a new /proc was refused (nook runs inside another sandbox or container whose /proc has covered parts): the sandbox has the parent's /proc, which lists the parent's processes (--strict makes this an error)",
        );
    }
    if plan.net.wait_for_route {
        // The helper started while the mounts were built; the payload
        // starts only once the interface really carries a default route.
        crate::net::wait_for_network(
            &plan.net.wait_for_listen,
            std::time::Duration::from_secs(10),
        )?;
        trace(v, "init", format_args!("network up"));
    }
    if !plan.net.slirp_forwards.is_empty() {
        match rx.recv::<ToSandbox>() {
            Ok(Some(ToSandbox::Published)) => trace(v, "init", format_args!("ports published")),
            _ => sys::exit_now(EXIT_NOOK),
        }
    }
    drop(rx);
    // Setup is over: init keeps nothing the payload could use against it.
    lock_down(&plan.exec.caps)?;
    Ok((proc, built.pool))
}

fn warn(what: &str) {
    let line = format!("nook: warning: {what}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// Why a new procfs is refused, and the fix, for the errors that meet it.
pub(super) const PROC_REFUSED_HINT: &str = "the kernel refuses a new procfs where the /proc nook sees has covered parts (inside another sandbox or a container); give the container an uncovered /proc (podman: --security-opt unmask=ALL; docker: --security-opt systempaths=unconfined), or run without --strict";

/// Set user.max_user_namespaces to 0 for our user namespace, through a
/// fresh procfs instance of our own pid namespace: a lookup in the host's
/// /proc/sys walks past the entries of every other user namespace on the
/// machine (measured: 50-90 us here), a new instance has only ours.
/// Without our own pid namespace, no procfs can be made: the host's
/// /proc then. The instance is returned to be kept until init exits:
/// closing it would unmount it, and an unmount waits for an RCU grace
/// period.
fn forbid_nested_userns(own_pid_ns: bool) -> Result<Option<OwnedFd>, StepError> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let limit = std::path::Path::new("/proc/sys/user/max_user_namespaces");
    let step = Step::ForbidUserns;
    if !own_pid_ns {
        return std::fs::write(limit, "0")
            .map(|()| None)
            .map_err(|e| StepError::new(step, Some(limit), from_io(&e)));
    }
    let fail = |e: rustix::io::Errno| StepError::new(step, Some(limit), from_rustix(e));
    // The limit is written through a new procfs; where the kernel refuses
    // one, the error says so, not that the write failed.
    let refused = |e: rustix::io::Errno| {
        StepError::new(
            Step::MountNew,
            Some(std::path::Path::new("/proc")),
            from_rustix(e),
        )
        .detail("proc (to forbid nested user namespaces) on")
        .hint(PROC_REFUSED_HINT)
    };
    let fs = rustix::mount::fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC).map_err(refused)?;
    rustix::mount::fsconfig_create(&fs).map_err(refused)?;
    let proc = rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
    .map_err(refused)?;
    let f = rustix::fs::openat(
        &proc,
        "sys/user/max_user_namespaces",
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(fail)?;
    rustix::io::write(&f, b"0").map_err(fail)?;
    Ok(Some(proc))
}

/// No capabilities but the ones the plan holds (set before the payload's
/// fork, so it starts with the same), locked securebits, and not
/// dumpable, so it can't be ptraced from inside. `nook exec` does the same
/// to a joining process.
pub fn lock_down(keep: &[u8]) -> Result<(), StepError> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| StepError::new(Step::NotDumpable, None, from_rustix(e)))?;
    // Locked securebits (while we still hold CAP_SETPCAP): uid 0 inside
    // gets no capabilities back from execve, ever, and none is raised
    // into the ambient set after ours. Without held capabilities, setuid
    // gives none back either; with them, setuid away from root clears
    // them as on any system (a package manager dropping to its own user
    // checks that it can't get root back).
    use rustix::thread::CapabilitiesSecureBits as B;
    let mut bits = B::NO_ROOT
        | B::NO_ROOT_LOCKED
        | B::NO_SETUID_FIXUP_LOCKED
        | B::KEEP_CAPS_LOCKED
        | B::NO_CAP_AMBIENT_RAISE
        | B::NO_CAP_AMBIENT_RAISE_LOCKED;
    if keep.is_empty() {
        bits |= B::NO_SETUID_FIXUP;
    }
    // In this order: ambient ones raised while that is allowed, the
    // securebits and the bounding cut while we hold CAP_SETPCAP.
    sys::raise_ambient(keep).map_err(|e| StepError::new(Step::KeepCaps, None, e))?;
    rustix::thread::set_capabilities_secure_bits(bits)
        .map_err(|e| StepError::new(Step::LockSecurebits, None, from_rustix(e)))?;
    sys::keep_only_capabilities(keep).map_err(|e| StepError::new(Step::DropCaps, None, e))
}

/// Forward signals to the payload and reap every child until the payload
/// exits; returns its status as an exit code. Orphans still running then
/// are killed by the kernel when pid 1 exits.
fn reap(payload: Pid) -> i32 {
    let mask = wait_mask();
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == payload => return code,
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == payload => {
                    return 128 + sig as i32;
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        match mask.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = kill(payload, sig);
            }
        }
    }
}

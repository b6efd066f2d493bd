//! `nook exec`: run a command inside a running sandbox with exactly its
//! restrictions. The sandbox's command (init's child) is found through a
//! pidfd, checked against init's recorded pid and start time, so a
//! recycled pid can't redirect us. A child joins the sandbox's cgroup,
//! enters all its namespaces with one setns on that pidfd, takes its root,
//! and forks once more to be in its pid namespace; that grandchild locks
//! itself down as init did and runs the exec stage as the payload did
//! (rlimits, no_new_privs, Landlock, no capabilities, seccomp last).
//! Nothing from inside the sandbox runs before all of that: the binary is
//! nook's own until the final execve.
//!
//! Why the command and not init: init is not dumpable and its memory came
//! from the host's nook (its mm belongs to the host user namespace), so
//! the kernel lets no one outside join or inspect it; the command, exec'd
//! inside, is ours to inspect, and shares every namespace with init.

use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;

use crate::error::{Context, EXIT_NOOK, Error, Step, StepError};
use crate::state::running::{self, Entry};
use crate::sys;

use super::msg::{self, ToSupervisor};
use super::payload::ExecPlan;
use super::{init, payload, report, wait_for, wait_mask};

pub fn exec(entry: &Entry, command: &[String]) -> Result<i32, Error> {
    let exec = ExecPlan::new(&entry.join, command, &[], None)?;
    let ended = || {
        Error::usage(
            "sandbox name",
            &entry.name,
            "expected a running sandbox, but it has ended",
        )
    };
    let target = payload_of(entry).ok_or_else(ended)?;
    let pid = rustix::process::Pid::from_raw(target).ok_or_else(ended)?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .step(Step::PidfdOpen, None)?;
    // The pidfd now pins the process: make sure it is still init's child,
    // and init the one recorded.
    if running::proc_stat(target).map(|s| s.0) != Some(entry.init)
        || running::start_time(entry.init) != Some(entry.init_start)
    {
        return Err(ended());
    }
    let root_path = format!("/proc/{target}/root");
    let root: OwnedFd = rustix::fs::open(
        &root_path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .step(Step::OpenSandboxRoot, Some(root_path.as_ref()))
    .map_err(|e| {
        e.hint("the sandbox's command made itself undumpable, which keeps nook exec out")
    })?;
    // Still alive after the open (a pidfd turns readable at exit), so the
    // root is the sandbox's.
    {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::ZERO).map_or(true, |n| n > 0) {
            return Err(ended());
        }
    }

    let mask = wait_mask();
    mask.thread_block()
        .map_err(|e| StepError::new(Step::BlockSignals, None, e))?;
    let (tx, mut rx) = msg::channel().step(Step::CreatePipe, None)?;
    let child = match sys::clone_fork(0).map_err(|e| e.into_step(Step::StartJoiner))? {
        None => {
            drop(rx);
            joiner(entry, &pidfd, &root, &exec, tx)
        }
        Some(c) => c,
    };
    drop(tx);
    // End-of-file: the command's execve succeeded (or the joiner died).
    let mut failure = None;
    while let Ok(Some(m)) = rx.recv::<ToSupervisor>() {
        match m {
            ToSupervisor::Failed(e) => failure = Some(e),
            ToSupervisor::Enforced(r) => report(&r, false),
        }
    }
    let end = wait_for(child, &mask, false, None);
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(end.code),
    }
}

/// The joining child: cgroup, namespaces, root; then the grandchild in the
/// sandbox's pid namespace, which it waits for and whose status it passes
/// on.
fn joiner(
    entry: &Entry,
    pidfd: &OwnedFd,
    root: &OwnedFd,
    exec: &ExecPlan,
    mut tx: msg::Sender,
) -> ! {
    let step = enter(entry, pidfd, root)
        .and_then(|()| sys::clone_fork(0).map_err(|e| e.into_step(Step::StartCommand)));
    let e = match step {
        Ok(None) => match die_with_parent().and_then(|()| init::lock_down(&entry.join.caps)) {
            Ok(()) => payload::run(exec, tx),
            Err(e) => e,
        },
        Ok(Some(grandchild)) => {
            drop(tx);
            let end = wait_for(grandchild, &wait_mask(), false, None);
            sys::exit_now(end.code)
        }
        Err(e) => e,
    };
    let _ = tx.send(&ToSupervisor::Failed(e));
    sys::exit_now(EXIT_NOOK)
}

fn die_with_parent() -> Result<(), StepError> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .step(Step::ParentDeathSignal, None)
}

/// Into the sandbox: its cgroup, its namespaces, its root.
fn enter(entry: &Entry, pidfd: &OwnedFd, root: &OwnedFd) -> Result<(), StepError> {
    // Dies with `nook exec`.
    die_with_parent()?;
    if let Some(cg) = &entry.cgroup {
        std::fs::write(cg.join("cgroup.procs"), std::process::id().to_string())
            .step(Step::JoinCgroup, Some(cg))
            .map_err(|e| {
                e.hint("the cgroup you run nook exec from and the sandbox's must share a delegated parent")
            })?;
    }
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    nix::sched::setns(pidfd.as_fd(), flags).step(Step::Setns, None)?;
    // Not ptraceable by the sandbox while it still holds capabilities.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    nix::unistd::fchdir(root)
        .and_then(|()| nix::unistd::chroot("."))
        .step(Step::Chroot, None)
}

/// The sandbox's command: init's oldest child (init starts only the
/// command; the command's own descendants are reparented to init only
/// once it has ended).
fn payload_of(entry: &Entry) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| running::proc_stat(pid).map(|(ppid, start)| (pid, ppid, start)))
        .filter(|&(_, ppid, _)| ppid == entry.init)
        .min_by_key(|&(_, _, start)| start)
        .map(|(pid, _, _)| pid)
}

//! `nook exec`: run a command inside a running sandbox with exactly its
//! restrictions. The sandbox's init is found through a pidfd (checked
//! against the start time recorded with its pid, so a recycled pid can't
//! redirect us); a child joins its cgroup, enters all its namespaces with
//! one setns on that pidfd, takes its root, and forks once more to be in
//! its pid namespace; that grandchild locks itself down as init did and
//! runs the exec stage as the payload did (rlimits, no_new_privs, Landlock,
//! no capabilities, seccomp last). Nothing from inside the sandbox runs
//! before all of that: the binary is nook's own until the final execve.

use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{EXIT_NOOK, Error, StepError};
use crate::registry::Entry;
use crate::sys;

use super::msg::{self, ToSupervisor};
use super::payload::ExecPlan;
use super::{init, payload, wait_mask};

fn errno(e: rustix::io::Errno) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(e.raw_os_error())
}

pub fn exec(entry: &Entry, command: &[String]) -> Result<i32, Error> {
    let exec = ExecPlan::for_join(&entry.join, command)?;
    // The namespaces are entered through the sandbox's command, init's
    // child: init is not dumpable (its memory came from the host's nook),
    // so the kernel lets no one outside join or inspect it, while the
    // command, exec'd inside, is ours to inspect. Both share every
    // namespace.
    let target = payload_of(entry)?;
    let pid = rustix::process::Pid::from_raw(target).ok_or_else(|| {
        StepError::new(
            "finding the sandbox's command",
            None,
            nix::errno::Errno::ESRCH,
        )
    })?;
    let pidfd =
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).map_err(|e| {
            StepError::new("opening the sandbox's command (pidfd_open)", None, errno(e))
        })?;
    // The pidfd now pins the process; make sure it is still init's child
    // and init the one recorded (a recycled pid can't redirect us).
    if parent_of(target) != Some(entry.init)
        || crate::registry::start_time(entry.init) != Some(entry.init_start)
    {
        return Err(Error::usage(
            "sandbox name",
            &entry.name,
            "expected a running sandbox, but it has ended",
        ));
    }
    let root_path = format!("/proc/{target}/root");
    let root: OwnedFd = rustix::fs::open(
        &root_path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| {
        StepError::new(
            "opening the sandbox's root",
            Some(root_path.as_ref()),
            errno(e),
        )
        .hint("the sandbox's command made itself undumpable, which keeps nook exec out")
    })?;
    {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let exited = poll(&mut fds, PollTimeout::ZERO).map_or(true, |n| n > 0);
        if exited {
            return Err(Error::usage(
                "sandbox name",
                &entry.name,
                "expected a running sandbox, but it has ended",
            ));
        }
    }

    let mask = wait_mask();
    mask.thread_block()
        .map_err(|e| StepError::new("blocking signals", None, e))?;
    let (tx, mut rx) = msg::channel().map_err(|e| {
        StepError::new(
            "creating a pipe",
            None,
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    let child = match sys::clone_fork(0)
        .map_err(|e| StepError::new("starting the joining process (fork)", None, e))?
    {
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
            ToSupervisor::Enforced(r) => {
                let mut lines = String::new();
                for w in &r.weaker {
                    lines.push_str(&format!(
                        "nook: warning: {w}; --strict makes this an error\n"
                    ));
                }
                let _ = std::io::Write::write_all(&mut std::io::stderr(), lines.as_bytes());
            }
            ToSupervisor::InitStarted { .. } => {}
        }
    }
    let code = forward_until_exit(child, &mask);
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(code),
    }
}

/// Wait for `child`, passing on the signals a user sends; its status as an
/// exit code.
fn forward_until_exit(child: Pid, mask: &nix::sys::signal::SigSet) -> i32 {
    loop {
        match waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => {}
            Err(_) => return EXIT_NOOK,
        }
        match mask.wait() {
            Ok(Signal::SIGCHLD) | Ok(Signal::SIGALRM) | Err(_) => {}
            Ok(sig) => {
                let _ = kill(child, sig);
            }
        }
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
    let fail = |tx: &mut msg::Sender, e: StepError| -> ! {
        let _ = tx.send(&ToSupervisor::Failed(e));
        sys::exit_now(EXIT_NOOK)
    };
    // Dies with `nook exec`.
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        fail(
            &mut tx,
            StepError::new("setting the parent-death signal", None, errno(e)),
        );
    }
    if let Some(cg) = &entry.cgroup
        && let Err(e) = std::fs::write(cg.join("cgroup.procs"), std::process::id().to_string())
    {
        fail(
            &mut tx,
            StepError::new(
                "joining the sandbox's cgroup",
                Some(cg),
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
            .hint(
                "the cgroup you run nook exec from and the sandbox's must share a delegated parent",
            ),
        );
    }
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if let Err(e) = nix::sched::setns(pidfd.as_fd(), flags) {
        fail(
            &mut tx,
            StepError::new("entering the sandbox's namespaces (setns)", None, e),
        );
    }
    // Not ptraceable by the sandbox while it still holds capabilities.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    if let Err(e) = nix::unistd::fchdir(root).and_then(|()| nix::unistd::chroot(".")) {
        fail(
            &mut tx,
            StepError::new("taking the sandbox's root (chroot)", None, e),
        );
    }
    match sys::clone_fork(0) {
        Ok(None) => {
            if let Err(e) = rustix::process::set_parent_process_death_signal(Some(
                rustix::process::Signal::KILL,
            )) {
                fail(
                    &mut tx,
                    StepError::new("setting the parent-death signal", None, errno(e)),
                );
            }
            if let Err(e) = init::lock_down() {
                fail(&mut tx, e);
            }
            payload::run(exec, tx)
        }
        Ok(Some(g)) => {
            drop(tx);
            let code = forward_until_exit(g, &wait_mask());
            sys::exit_now(code)
        }
        Err(e) => fail(
            &mut tx,
            StepError::new("starting the command (fork)", None, e),
        ),
    }
}

/// The parent pid of `pid` (/proc/PID/stat, readable by anyone).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The sandbox's command: init's child (the only one init starts; others
/// are the command's own descendants, reparented only once it has ended).
fn payload_of(entry: &Entry) -> Result<i32, Error> {
    let mut found = None;
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if parent_of(pid) == Some(entry.init) {
                // The oldest child is the command.
                let start = crate::registry::start_time(pid).unwrap_or(u64::MAX);
                if found.is_none_or(|(_, s)| start < s) {
                    found = Some((pid, start));
                }
            }
        }
    }
    found.map(|(p, _)| p).ok_or_else(|| {
        Error::usage(
            "sandbox name",
            &entry.name,
            "expected a running sandbox, but its command has ended",
        )
    })
}

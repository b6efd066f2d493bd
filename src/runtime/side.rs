//! A side process of the supervisor (the egress gate, the tracer): forked
//! from it, in the host's pid namespace where the sandbox can't see it,
//! dying with it, told to stop with a byte on a pipe, and answering over
//! a typed channel.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Step, StepError};
use crate::runtime::msg;
use crate::sys;

/// The supervisor's handle on a side process.
pub struct Side {
    pid: Pid,
    stop: Option<OwnedFd>,
    report: msg::Receiver,
}

/// The side's own ends: readable `stop` means the supervisor wants its
/// report now; `tx` carries it.
pub struct Ends {
    pub stop: OwnedFd,
    pub tx: msg::Sender,
}

impl Side {
    /// Fork `body` as a side process; it never returns into the caller's
    /// code (it exits with the status `body` gives).
    pub fn fork(step: Step, body: impl FnOnce(Ends) -> i32) -> Result<Side, StepError> {
        let (stop_r, stop_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).step(step, None)?;
        let (tx, report) = msg::channel().step(step, None)?;
        let supervisor = nix::unistd::getpid();
        match sys::fork().map_err(|e| e.into_step(step))? {
            nix::unistd::ForkResult::Child => {
                drop(stop_w);
                drop(report);
                // Never outlive the supervisor (it may have died already).
                let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
                if nix::unistd::getppid() != supervisor {
                    sys::exit_now(1);
                }
                sys::exit_now(body(Ends { stop: stop_r, tx }))
            }
            nix::unistd::ForkResult::Parent { child } => Ok(Side {
                pid: child,
                stop: Some(stop_w),
                report,
            }),
        }
    }

    /// The side's next message, if one comes within `t`.
    pub fn hear<T: for<'de> Deserialize<'de>>(&mut self, t: Duration) -> Option<T> {
        ready_within(self.report.as_fd(), PollFlags::POLLIN, t)
            .then(|| self.report.recv::<T>().ok().flatten())
            .flatten()
    }

    /// Tell the side to stop, take its last message (waiting up to 2 s),
    /// and end it.
    pub fn stop<T: Serialize + for<'de> Deserialize<'de>>(mut self) -> Option<T> {
        // A byte, not only the hang-up: another side forked later holds a
        // copy of this end.
        if let Some(stop) = self.stop.take() {
            let _ = nix::unistd::write(&stop, b"x");
        }
        let last = self.hear(Duration::from_secs(2));
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
        last
    }
}

/// Whether `fd` is ready for `what` (POLLIN, POLLOUT) within `t`.
pub fn ready_within(fd: std::os::fd::BorrowedFd<'_>, what: PollFlags, t: Duration) -> bool {
    let mut fds = [PollFd::new(fd, what)];
    let t = PollTimeout::try_from(t.as_millis() as i32).unwrap_or(PollTimeout::NONE);
    matches!(poll(&mut fds, t), Ok(n) if n > 0)
}

/// Join the sandbox's user and network namespaces (init's), holding every
/// capability there, with its loopback up: init brings it up too, and
/// whoever comes first, the addresses a side binds must exist.
pub fn enter_sandbox_net(init: Pid) -> Result<(), StepError> {
    use nix::sched::CloneFlags;
    for (ns, flag) in [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("net", CloneFlags::CLONE_NEWNET),
    ] {
        let path = std::path::PathBuf::from(format!("/proc/{init}/ns/{ns}"));
        let f = std::fs::File::open(&path).step(Step::Setns, Some(&path))?;
        nix::sched::setns(f, flag).map_err(|e| StepError::new(Step::Setns, Some(&path), e))?;
    }
    sys::loopback_up().map_err(|e| StepError::new(Step::LoopbackUp, None, e))
}

/// Confine a side process before it reads a byte from the sandbox: no
/// filesystem access at all (it needs none, whatever a bug in it might
/// try), abstract sockets and signals scoped. Says what Landlock
/// enforced, for -v.
pub fn confine() -> String {
    crate::runtime::enforce::enforce_landlock(&crate::plan::landlock::Rules {
        mode: crate::spec::security::LandlockMode::BestEffort,
        paths: Vec::new(),
        scoped: true,
        tcp_connect: None,
    })
    .map_or_else(|e| e.to_string(), |o| o.text)
}

//! A terminal of the sandbox's own. The payload makes a pty in the
//! sandbox's devpts (so `tty` inside names it, and TIOCSTI or escape
//! sequences reach only it), takes the slave as its controlling terminal
//! and standard descriptors, and sends the master out over a socket. The
//! supervisor relays between the master and its own stdin and stdout,
//! with the user's terminal in raw mode: ^C, ^Z and ^\ are bytes the
//! sandbox's line discipline turns into its own signals; the window size
//! follows SIGWINCH.
//!
//! The user's terminal is restored at the end, and also when nook is
//! killed: a guardian process, forked before raw mode, holds the saved
//! settings and a pipe from the supervisor; if the pipe hangs up without
//! the supervisor's word, it restores them.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nix::unistd::Pid;
use rustix::termios::{OptionalActions, Termios, Winsize};

use crate::error::{Step, StepError, from_rustix};
use crate::sys;

use super::msg;

/// The supervisor's side of the sandbox's terminal.
pub struct Terminal {
    /// The user's terminal settings before raw mode (stdin a terminal).
    saved: Option<Termios>,
    /// The guardian, and the pipe it waits on.
    guardian: Option<(Pid, OwnedFd)>,
    output: Option<std::thread::JoinHandle<()>>,
}

/// The pty master of the sandbox this supervisor runs (one per process),
/// for the signal loop.
static CURRENT: OnceLock<Arc<OnceLock<OwnedFd>>> = OnceLock::new();

/// SIGWINCH: when the sandbox has a terminal of its own, it takes the
/// user's terminal's new size (and the kernel signals its foreground
/// job); true then, false when the signal is for init as usual.
pub fn follow_resize() -> bool {
    let Some(m) = CURRENT.get().and_then(|slot| slot.get()) else {
        return CURRENT.get().is_some();
    };
    if let Some(ws) = size_of_stdin() {
        let _ = rustix::termios::tcsetwinsize(m, ws);
    }
    true
}

/// The size of the user's terminal, to start the sandbox's pty with.
pub fn size_of_stdin() -> Option<Winsize> {
    rustix::termios::tcgetwinsize(std::io::stdin()).ok()
}

impl Terminal {
    /// Take over the user's terminal and relay for the pty whose master
    /// arrives on `sock`. Forks the guardian, so it must be called while
    /// the supervisor has one thread (after the side processes started,
    /// before anything else does).
    pub fn start(sock: OwnedFd) -> Result<Terminal, StepError> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok();
        let guardian = match &saved {
            Some(t) => Some(guard(t)?),
            None => None,
        };
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            rustix::termios::tcsetattr(&stdin, OptionalActions::Drain, &raw)
                .map_err(|e| StepError::new(Step::RawTerminal, None, from_rustix(e)))?;
        }
        let master: Arc<OnceLock<OwnedFd>> = Arc::default();
        let slot = master.clone();
        let _ = CURRENT.set(master);
        let tty_in = saved.is_some();
        let output = std::thread::Builder::new()
            .stack_size(super::relay::THREAD_STACK)
            .spawn(move || relay(sock, slot, tty_in))
            .map_err(|e| StepError::io(Step::RawTerminal, None, &e))?;
        Ok(Terminal {
            saved,
            guardian,
            output: Some(output),
        })
    }

    /// The sandbox ended: let the last output through (up to 1 s), then
    /// give the user's terminal back as it was.
    pub fn finish(mut self) {
        if let Some(h) = self.output.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            while !h.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        self.restore();
    }

    fn restore(&mut self) {
        if let Some(t) = self.saved.take() {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Drain, &t);
        }
        // Restored: the guardian goes without touching the terminal (the
        // shell may have set its own modes by the time it would).
        if let Some((pid, pipe)) = self.guardian.take() {
            let _ = nix::unistd::write(&pipe, b"q");
            drop(pipe);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Fork the guardian: it restores `saved` on stdin when the pipe hangs up
/// with no word from the supervisor (killed), and exits quietly on a byte.
fn guard(saved: &Termios) -> Result<(Pid, OwnedFd), StepError> {
    let step = Step::RawTerminal;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| StepError::new(step, None, e))?;
    match sys::fork().map_err(|e| e.into_step(step))? {
        nix::unistd::ForkResult::Child => {
            drop(w);
            // After the supervisor's death the shell takes the terminal's
            // foreground back: a background tcsetattr must not stop us.
            let _ = sys::ignore_signal(nix::sys::signal::Signal::SIGTTOU);
            for s in super::FORWARDED {
                let _ = sys::ignore_signal(s);
            }
            let _ = nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            );
            let mut byte = [0u8; 1];
            let n = loop {
                match nix::unistd::read(&r, &mut byte) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other.unwrap_or(0),
                }
            };
            if n == 0 {
                let _ = rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
            }
            sys::exit_now(0)
        }
        nix::unistd::ForkResult::Parent { child } => Ok((child, w)),
    }
}

/// The relay: wait for the master, then copy master -> stdout here and
/// stdin -> master on a second thread, until the sandbox's side is gone
/// (EIO once no process holds the slave).
fn relay(sock: OwnedFd, slot: Arc<OnceLock<OwnedFd>>, tty_in: bool) {
    let master = match msg::receive_fd(sock.as_raw_fd()) {
        Ok((Some(m), _)) => m,
        _ => return,
    };
    drop(sock);
    let Ok(input_end) = master.try_clone() else {
        return;
    };
    let _ = slot.set(master);
    let _ = std::thread::Builder::new()
        .stack_size(super::relay::THREAD_STACK)
        .spawn(move || copy_input(input_end, tty_in));
    let Some(m) = slot.get() else { return };
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match nix::unistd::read(m, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
        }
    }
}

/// stdin -> the master. At the end of a stdin that is not a terminal
/// (`-t` with a pipe), an end-of-file character, as a terminal's ^D.
fn copy_input(master: OwnedFd, tty_in: bool) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => {
                if !tty_in {
                    let _ = write_all(&master, b"\x04");
                }
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
            Ok(n) => {
                if write_all(&master, &buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(n) => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// The payload's side, in the sandbox before its session step: a pty from
/// the sandbox's devpts, sized like the user's terminal (without one, not
/// echoing); the master goes
/// to the supervisor over `sock`; the slave becomes the controlling
/// terminal of a new session and the standard descriptors. Returns the
/// slave's name.
pub fn take_own(sock: RawFd, size: Option<Winsize>) -> Result<String, StepError> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::OpenptFlags;
    let step = Step::OwnTerminal;
    let fail = |e: rustix::io::Errno| {
        StepError::new(
            step,
            Some(std::path::Path::new("/dev/ptmx")),
            from_rustix(e),
        )
        .hint("the sandbox needs its own /dev/pts (the default view has one; --dev adds it)")
    };
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(fail)?;
    rustix::pty::grantpt(&master).map_err(fail)?;
    rustix::pty::unlockpt(&master).map_err(fail)?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(fail)?;
    let name = name.to_string_lossy().into_owned();
    let slave = rustix::fs::open(
        name.as_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail)?;
    match size {
        Some(ws) => {
            let _ = rustix::termios::tcsetwinsize(&slave, ws);
        }
        // No user's terminal behind it (-t with a pipe): nobody types, so
        // nothing is echoed back into the output.
        None => {
            if let Ok(mut t) = rustix::termios::tcgetattr(&slave) {
                t.local_modes -= rustix::termios::LocalModes::ECHO;
                let _ = rustix::termios::tcsetattr(&slave, OptionalActions::Now, &t);
            }
        }
    }
    msg::send_fd(sock, master.as_raw_fd()).map_err(|e| {
        StepError::new(step, None, e).detail("sending the terminal to the supervisor")
    })?;
    drop(master);
    nix::unistd::setsid().map_err(|e| StepError::new(Step::NewSession, None, e))?;
    rustix::process::ioctl_tiocsctty(&slave).map_err(fail)?;
    for to in 0..3 {
        sys::dup_onto(slave.as_raw_fd(), to).map_err(|e| StepError::new(step, None, e))?;
    }
    Ok(name)
}

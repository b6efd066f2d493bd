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
//!
//! A detached sandbox (`run -d -t`) keeps the master and writes what it
//! prints to its log; `nook attach` connects to its socket in the private
//! directory of running-sandbox records and relays the same way, in
//! frames (keys, sizes), one attach at a time.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nix::unistd::Pid;
use rustix::termios::{OptionalActions, Termios, Winsize};

use crate::error::{Step, StepError, from_rustix};
use crate::sys;

use super::msg;

/// The supervisor's side of the sandbox's terminal.
pub struct Terminal {
    /// The user's terminal, raw while the sandbox runs (a foreground run
    /// on a terminal).
    raw: Option<RawMode>,
    /// A detached sandbox's attach socket, removed at the end.
    sessions: Option<std::path::PathBuf>,
    /// Says (by closing) when the relay's output thread is done.
    output: Option<std::sync::mpsc::Receiver<()>>,
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

/// A detached session's terminal starts at this size, until an attach
/// says its own.
pub const SESSION_SIZE: Winsize = Winsize {
    ws_row: 24,
    ws_col: 80,
    ws_xpixel: 0,
    ws_ypixel: 0,
};

/// Where a detached sandbox called `name` listens for `nook attach`: in
/// the private directory of running-sandbox records.
pub fn session_socket(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("{name}.tty"))
}

impl Terminal {
    /// Relay for the pty whose master arrives on `sock`: with the user's
    /// terminal (made raw when stdin is one), or, for a detached sandbox,
    /// with whoever attaches on `sessions` while the output goes to the
    /// log. Forks the guardian, so it must be called while the supervisor
    /// has one thread (after the side processes started).
    pub fn start(
        sock: OwnedFd,
        sessions: Option<std::path::PathBuf>,
    ) -> Result<Terminal, StepError> {
        let listener = match &sessions {
            Some(path) => {
                let _ = std::fs::remove_file(path);
                Some(
                    std::os::unix::net::UnixListener::bind(path)
                        .map_err(|e| StepError::io(Step::OwnTerminal, Some(path), &e))?,
                )
            }
            None => None,
        };
        let raw = if listener.is_none() {
            RawMode::enter()?
        } else {
            None
        };
        let master: Arc<OnceLock<OwnedFd>> = Arc::default();
        let slot = master.clone();
        let _ = CURRENT.set(master);
        let tty_in = raw.is_some();
        let (done, output) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .stack_size(super::relay::THREAD_STACK)
            .spawn(move || {
                relay(sock, slot, tty_in, listener);
                drop(done);
            })
            .map_err(|e| StepError::io(Step::RawTerminal, None, &e))?;
        Ok(Terminal {
            raw,
            sessions,
            output: Some(output),
        })
    }

    /// The sandbox ended: let the last output through (up to 1 s), then
    /// give the user's terminal back as it was.
    pub fn finish(mut self) {
        if let Some(done) = self.output.take() {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
        self.end();
    }

    fn end(&mut self) {
        if let Some(r) = self.raw.take() {
            r.restore();
        }
        if let Some(p) = self.sessions.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.end();
    }
}

/// The user's terminal in raw mode, with a guardian that restores it if
/// this process dies first.
pub struct RawMode {
    saved: Termios,
    guardian: Option<(Pid, OwnedFd)>,
}

impl RawMode {
    /// Raw mode on stdin when it is a terminal (None when it is not).
    pub fn enter() -> Result<Option<RawMode>, StepError> {
        let stdin = std::io::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return Ok(None);
        };
        let guardian = guard(&saved)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, OptionalActions::Drain, &raw)
            .map_err(|e| StepError::new(Step::RawTerminal, None, from_rustix(e)))?;
        Ok(Some(RawMode {
            saved,
            guardian: Some(guardian),
        }))
    }

    /// The settings back; the guardian goes without touching the terminal
    /// (the shell may have set its own modes by the time it would).
    pub fn restore(mut self) {
        self.put_back();
    }

    fn put_back(&mut self) {
        let Some((pid, pipe)) = self.guardian.take() else {
            return;
        };
        let _ = rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Drain, &self.saved);
        let _ = nix::unistd::write(&pipe, b"q");
        drop(pipe);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.put_back();
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

/// The relay: wait for the master, then copy master -> stdout here (and
/// to an attached session's client) and, from a second thread, stdin (or
/// the attached client) -> master, until the sandbox's side is gone (EIO
/// once no process holds the slave).
fn relay(
    sock: OwnedFd,
    slot: Arc<OnceLock<OwnedFd>>,
    tty_in: bool,
    sessions: Option<std::os::unix::net::UnixListener>,
) {
    let master = match msg::receive_fd(sock.as_raw_fd()) {
        Ok((Some(m), _)) => m,
        _ => return,
    };
    drop(sock);
    let Ok(input_end) = master.try_clone() else {
        return;
    };
    let _ = slot.set(master);
    let client: Arc<std::sync::Mutex<Option<std::os::unix::net::UnixStream>>> = Arc::default();
    let spawn = |f: Box<dyn FnOnce() + Send>| {
        let _ = std::thread::Builder::new()
            .stack_size(super::relay::THREAD_STACK)
            .spawn(f);
    };
    match sessions {
        Some(listener) => {
            let attached = client.clone();
            spawn(Box::new(move || {
                serve_sessions(listener, input_end, attached)
            }));
        }
        None => spawn(Box::new(move || copy_input(input_end, tty_in))),
    }
    let Some(m) = slot.get() else { return };
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match nix::unistd::read(m, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(n) => {
                // A full or gone log: an attached client still gets the
                // output.
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                let mut c = client.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(s) = c.as_mut()
                    && send_frame(s, FRAME_DATA, &buf[..n]).is_err()
                {
                    *c = None;
                }
            }
        }
    }
    // The end: an attached client sees the connection close.
    if let Some(s) = client.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

/// Frames between a detached sandbox's supervisor and `nook attach`: a
/// kind byte, a length (u32, little-endian), the bytes.
const FRAME_DATA: u8 = b'd';
/// The attaching terminal's size: rows and columns (u16 each).
const FRAME_SIZE: u8 = b'w';
/// Another attach holds the session.
const FRAME_BUSY: u8 = b'b';

fn send_frame(w: &mut impl Write, kind: u8, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = Vec::with_capacity(5 + bytes.len());
    f.push(kind);
    f.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    f.extend_from_slice(bytes);
    w.write_all(&f)
}

fn read_frame(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 1 << 20 {
        return Err(std::io::Error::other("frame too long"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some((head[0], body)))
}

/// A detached sandbox: one attached client at a time (a second is told
/// the session is busy); its keys go to the master, its size sizes it.
fn serve_sessions(
    listener: std::os::unix::net::UnixListener,
    master: OwnedFd,
    attached: Arc<std::sync::Mutex<Option<std::os::unix::net::UnixStream>>>,
) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let (Ok(reader), Ok(keys_to)) = (conn.try_clone(), master.try_clone()) else {
            continue;
        };
        {
            let mut slot = attached.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_some() {
                let _ = send_frame(&mut conn, FRAME_BUSY, b"");
                continue;
            }
            *slot = Some(conn);
        }
        let attached = attached.clone();
        let _ = std::thread::Builder::new()
            .stack_size(super::relay::THREAD_STACK)
            .spawn(move || {
                client_keys(reader, keys_to);
                // Detached (or gone): the output goes to the log alone.
                attached.lock().unwrap_or_else(|p| p.into_inner()).take();
            });
    }
}

/// An attached client's frames: keys to the master, its size to the pty.
fn client_keys(reader: std::os::unix::net::UnixStream, master: OwnedFd) {
    let mut reader = std::io::BufReader::new(reader);
    while let Ok(Some((kind, body))) = read_frame(&mut reader) {
        match kind {
            FRAME_DATA if write_all(&master, &body).is_err() => return,
            FRAME_SIZE if body.len() == 4 => {
                let ws = Winsize {
                    ws_row: u16::from_le_bytes([body[0], body[1]]),
                    ws_col: u16::from_le_bytes([body[2], body[3]]),
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                let _ = rustix::termios::tcsetwinsize(&master, ws);
            }
            _ => {}
        }
    }
}

/// `nook attach`: connect the user's terminal to a detached sandbox's
/// session at `socket` until the sandbox ends or the user types `keys`
/// (two bytes, ctrl-p ctrl-q by default). Returns whether it was a
/// detach (true) or the end (false).
pub fn attach(socket: &std::path::Path, keys: [u8; 2]) -> Result<bool, StepError> {
    use std::os::unix::net::UnixStream;
    let step = Step::Attach;
    let mut conn =
        UnixStream::connect(socket).map_err(|e| StepError::io(step, Some(socket), &e))?;
    let mut reader = conn
        .try_clone()
        .map_err(|e| StepError::io(step, Some(socket), &e))?;
    let size = |c: &mut UnixStream| {
        if let Some(ws) = size_of_stdin() {
            let mut b = ws.ws_row.to_le_bytes().to_vec();
            b.extend_from_slice(&ws.ws_col.to_le_bytes());
            let _ = send_frame(c, FRAME_SIZE, &b);
        }
    };
    size(&mut conn);
    let raw = RawMode::enter()?;
    // The session's output, on a thread of its own; it says when the
    // session ended (or was busy) through a pipe the main loop polls.
    let (done_r, done_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| StepError::new(step, None, e))?;
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let was_busy = busy.clone();
    std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        while let Ok(Some((kind, body))) = read_frame(&mut reader) {
            if kind == FRAME_BUSY {
                was_busy.store(true, std::sync::atomic::Ordering::SeqCst);
                break;
            }
            if kind == FRAME_DATA && out.write_all(&body).and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        let _ = nix::unistd::write(&done_w, b"e");
    });
    let mut winch = nix::sys::signal::SigSet::empty();
    winch.add(nix::sys::signal::Signal::SIGWINCH);
    let _ = winch.thread_block();
    let sfd = nix::sys::signalfd::SignalFd::with_flags(
        &winch,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| StepError::new(step, None, e))?;
    let stdin = std::io::stdin();
    let mut held = false;
    let mut buf = [0u8; 4096];
    let detached = loop {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
            PollFd::new(done_r.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let (input, done, resized) = (ready(&fds[0]), ready(&fds[1]), ready(&fds[2]));
        if done {
            break false;
        }
        if resized {
            while let Ok(Some(_)) = sfd.read_signal() {}
            size(&mut conn);
        }
        if !input {
            continue;
        }
        let n = match nix::unistd::read(&stdin, &mut buf) {
            Ok(0) | Err(_) => break false,
            Ok(n) => n,
        };
        // The detach keys, possibly split across reads; anything else
        // (a lone first key too) goes to the sandbox.
        let mut send = Vec::with_capacity(n + 1);
        let mut detach = false;
        for &b in &buf[..n] {
            if held {
                held = false;
                if b == keys[1] {
                    detach = true;
                    break;
                }
                send.push(keys[0]);
            }
            if b == keys[0] {
                held = true;
            } else {
                send.push(b);
            }
        }
        if !send.is_empty() && send_frame(&mut conn, FRAME_DATA, &send).is_err() {
            break false;
        }
        if detach {
            break true;
        }
    };
    if let Some(r) = raw {
        r.restore();
    }
    if busy.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(StepError::failed(step, Some(socket))
            .hint("another nook attach holds this sandbox's terminal; detach that one first"));
    }
    Ok(detached)
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
pub fn take_own(sock: RawFd, size: Option<Winsize>, echo: bool) -> Result<String, StepError> {
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
    if let Some(ws) = size {
        let _ = rustix::termios::tcsetwinsize(&slave, ws);
    }
    // No user's terminal behind it (-t with a pipe): nobody types, so
    // nothing is echoed back into the output.
    if !echo && let Ok(mut t) = rustix::termios::tcgetattr(&slave) {
        t.local_modes -= rustix::termios::LocalModes::ECHO;
        let _ = rustix::termios::tcsetattr(&slave, OptionalActions::Now, &t);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut wire = Vec::new();
        send_frame(&mut wire, FRAME_DATA, b"ls\r").unwrap();
        send_frame(&mut wire, FRAME_SIZE, &[24, 0, 80, 0]).unwrap();
        let mut r = std::io::Cursor::new(wire);
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((FRAME_DATA, b"ls\r".to_vec()))
        );
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((FRAME_SIZE, vec![24, 0, 80, 0]))
        );
        assert_eq!(read_frame(&mut r).unwrap(), None);
        // A length no client sends is refused, not allocated.
        let mut bad = std::io::Cursor::new(vec![FRAME_DATA, 0xff, 0xff, 0xff, 0xff]);
        assert!(read_frame(&mut bad).is_err());
    }
}

//! Bytes between two sockets, and the host-port relay built on that: with
//! the slirp4netns driver, `--allow-host-port PORT` puts the host's
//! loopback PORT on the sandbox's own loopback, as pasta's `-T` does.
//! slirp4netns itself can only open the whole host loopback (its
//! gateway), so it keeps that closed and this relay opens single ports.
//!
//! The relay is a side process in the host's namespaces. A short-lived
//! child of it joins the sandbox's user and network namespaces, binds a
//! listener on the sandbox's loopback per port (IPv4, and IPv6 where the
//! sandbox has it), and hands them back over a socket pair; the relay
//! accepts there and connects to the same port on the host's loopback,
//! from the host's namespace. Sockets belong to the namespace they were
//! made in, so both sides work from one process.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::PollFlags;
use nix::sys::socket::MsgFlags;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Step, StepError};
use crate::sys;

use super::msg;
use super::side::{Ends, Side, enter_sandbox_net, ready_within};
use super::trace;

/// The pipe between the two splices of a pump: a bigger one moves more per
/// pair of calls (the default is 64 KiB).
const PIPE_SIZE: i32 = 256 * 1024;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connection threads need little stack: their buffers are on the heap.
pub(super) const THREAD_STACK: usize = 256 * 1024;

#[derive(Debug, Serialize, Deserialize)]
enum FromRelay {
    Ready,
    Failed(StepError),
}

/// The supervisor's handle on a running relay.
pub struct PortRelay(Side);

impl PortRelay {
    /// Start relaying `ports` into init's network namespace; returns once
    /// every listener is bound (init waits for them to listen).
    pub fn start(ports: &[u16], init: Pid, v: bool) -> Result<PortRelay, StepError> {
        let mut side = Side::fork(Step::StartRelay, |ends| child(ports, init, v, ends))?;
        match side.hear::<FromRelay>(READY_TIMEOUT) {
            Some(FromRelay::Ready) => Ok(PortRelay(side)),
            Some(FromRelay::Failed(e)) => {
                side.stop::<FromRelay>();
                Err(e)
            }
            _ => {
                side.stop::<FromRelay>();
                Err(StepError::failed(Step::StartRelay, None)
                    .hint("the relay ended, or did not get ready in 10 s"))
            }
        }
    }

    pub fn stop(self) {
        self.0.stop::<FromRelay>();
    }
}

fn child(ports: &[u16], init: Pid, v: bool, ends: Ends) -> i32 {
    let Ends { stop, mut tx } = ends;
    let listeners = match listeners_inside(ports, init) {
        Ok(l) => l,
        Err(e) => {
            let _ = tx.send(&FromRelay::Failed(e));
            return 1;
        }
    };
    // It moves bytes the sandbox sends and never needs a file.
    let confined = super::side::confine();
    trace(
        v,
        "relay",
        format_args!(
            "host ports {ports:?} on the sandbox's loopback; landlock: {}",
            confined
        ),
    );
    if tx.send(&FromRelay::Ready).is_err() {
        return 1;
    }
    for l in listeners {
        let _ = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || accept_loop(l));
    }
    // Until the supervisor says stop (or dies, and the pipe hangs up).
    while !ready_within(stop.as_fd(), PollFlags::POLLIN, Duration::from_secs(3600)) {}
    0
}

fn accept_loop(listener: TcpListener) {
    for client in listener.incoming().flatten() {
        let _ = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || connection(client));
    }
}

/// The same port on the host's loopback of the same family.
fn connection(client: TcpStream) {
    let Ok(local) = client.local_addr() else {
        return;
    };
    let to = SocketAddr::new(
        match local.ip() {
            IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        },
        local.port(),
    );
    let Ok(server) = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT) else {
        // A reset: the client sees the port closed, as on the host.
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    std::thread::scope(|s| {
        let _ = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn_scoped(s, || pump(&client, &server));
        pump(&server, &client);
    });
}

/// The listeners, bound in the sandbox's network namespace by a child that
/// joins it and passes them back.
fn listeners_inside(ports: &[u16], init: Pid) -> Result<Vec<TcpListener>, StepError> {
    let step = Step::StartRelay;
    let (ours, theirs) = msg::fd_channel().map_err(|e| StepError::new(step, None, e))?;
    match sys::fork().map_err(|e| e.into_step(step))? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            let (fds, report) = match bind_inside(ports, init) {
                Ok(fds) => (fds, Ok(())),
                Err(e) => (Vec::new(), Err(e)),
            };
            for fd in &fds {
                if msg::send_fd(theirs.as_raw_fd(), fd.as_raw_fd()).is_err() {
                    sys::exit_now(1);
                }
            }
            let last = serde_json::to_vec(&report).unwrap_or_default();
            let _ = nix::sys::socket::send(theirs.as_raw_fd(), &last, MsgFlags::empty());
            sys::exit_now(0)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let got = receive_listeners(&ours);
            let _ = nix::sys::wait::waitpid(child, None);
            got
        }
    }
}

/// Listeners until the closing report (an error, or none).
fn receive_listeners(sock: &OwnedFd) -> Result<Vec<TcpListener>, StepError> {
    let mut out = Vec::new();
    loop {
        let (fd, bytes) = msg::receive_fd(sock.as_raw_fd())
            .map_err(|e| StepError::new(Step::StartRelay, None, e))?;
        if let Some(fd) = fd {
            out.push(TcpListener::from(fd));
            continue;
        }
        if bytes.is_empty() {
            return Err(StepError::failed(Step::StartRelay, None)
                .hint("its child ended before it bound the ports"));
        }
        let report: Result<(), StepError> = serde_json::from_slice(&bytes).map_err(|_| {
            StepError::failed(Step::StartRelay, None).hint("its child's report was garbled")
        })?;
        return report.map(|()| out);
    }
}

/// In the sandbox's user and network namespaces (this process is the
/// relay's throw-away child): a listener per port on 127.0.0.1, and on ::1
/// where the sandbox has IPv6 loopback.
fn bind_inside(ports: &[u16], init: Pid) -> Result<Vec<OwnedFd>, StepError> {
    enter_sandbox_net(init)?;
    let mut out = Vec::new();
    for &port in ports {
        for (ip, needed) in [
            (IpAddr::from([127, 0, 0, 1]), true),
            (IpAddr::from(std::net::Ipv6Addr::LOCALHOST), false),
        ] {
            match TcpListener::bind((ip, port)) {
                Ok(l) => out.push(OwnedFd::from(l)),
                Err(e) if needed => {
                    return Err(StepError::io(Step::RelayListen, None, &e)
                        .detail(SocketAddr::new(ip, port).to_string()));
                }
                Err(_) => {}
            }
        }
    }
    Ok(out)
}

/// Move bytes from `from` to `to` through a pipe with splice(2) until
/// `from` ends; then end `to`'s sending side (a half-close passes on).
pub(super) fn pump(from: &TcpStream, to: &TcpStream) {
    use nix::fcntl::{SpliceFFlags, splice};
    // No SPLICE_F_MORE: like MSG_MORE it would hold a short write back
    // for up to 200 ms waiting for more, on every exchange of a handshake.
    let flags = SpliceFFlags::SPLICE_F_MOVE;
    let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return;
    };
    // Where the system refuses a bigger pipe, the default does.
    let chunk = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE))
        .map_or(1 << 16, |n| n as usize);
    let ok = (|| -> nix::Result<()> {
        loop {
            let n = splice(from, None, &w, None, chunk, flags)?;
            if n == 0 {
                return Ok(());
            }
            let mut left = n;
            while left > 0 {
                left -= splice(&r, None, to, None, left, flags)?;
            }
        }
    })();
    match ok {
        Ok(()) => {
            let _ = to.shutdown(std::net::Shutdown::Write);
        }
        // A reset or a dead peer: end both ways, so the other pump ends.
        Err(_) => {
            let _ = to.shutdown(std::net::Shutdown::Both);
            let _ = from.shutdown(std::net::Shutdown::Both);
        }
    }
}

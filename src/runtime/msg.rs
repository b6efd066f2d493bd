//! Typed one-way channels between the named processes.
//!
//! The sync points, in order (init is born in its namespaces and the
//! supervisor has its pid from clone, so no message is needed for either):
//!  1. supervisor -> init: `Mapped` (uid_map, setgroups, gid_map written,
//!     and init moved into the cgroup leaf if there is one); only when
//!     init does not set itself up alone (see `setup`).
//!     Then, when the plan has slirp4netns publish ports, `Published`
//!     once it did (init waits for it with the route, so the payload never
//!     runs before its ports are reachable).
//!  2. payload -> supervisor: `Enforced`, what its hardening really did
//!  3. init or payload -> supervisor: `Failed` if any step fails; otherwise
//!     the channel reaches end-of-file when the payload's execve succeeds
//!     (every write end is close-on-exec or closed by its owner).
//!  4. init -> supervisor, on a channel of its own: `Ending`, the payload's
//!     status, when the payload has exited and left no process behind
//!     (init has no child left), just before init exits.

use std::io::{Read, Write};
use std::os::fd::{OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::error::StepError;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum ToSupervisor {
    /// What the payload's hardening really enforced (just before execve).
    Enforced(crate::runtime::enforce::Report),
    Failed(StepError),
}

/// How the payload ended, as init saw it: its status, and what init and
/// every process it reaped used (what wait4 on init would report).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Ending {
    /// The exit code, or 128+N for a signal N.
    pub code: i32,
    pub user_us: i64,
    pub system_us: i64,
    pub maxrss_kb: i64,
    pub inblock: i64,
    pub oublock: i64,
    /// With --disk-quota: the scratch areas were full at the end.
    pub scratch_full: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum ToSandbox {
    Mapped,
    /// slirp4netns publishes the ports (the plan's `slirp_forwards`).
    Published,
}

pub struct Sender(std::fs::File);
pub struct Receiver(std::fs::File);

/// A close-on-exec pipe as a typed channel.
pub fn channel() -> std::io::Result<(Sender, Receiver)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((Sender(w.into()), Receiver(r.into())))
}

impl Sender {
    /// One message is one write of at most a few hundred bytes, below
    /// PIPE_BUF, so it arrives whole or not at all.
    pub fn send<T: Serialize>(&mut self, msg: &T) -> std::io::Result<()> {
        let body = serde_json::to_vec(msg)?;
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&body);
        self.0.write_all(&frame)
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd()
    }
}

impl std::os::fd::AsFd for Receiver {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Receiver {
    /// True once every write end is closed: for the supervisor -> sandbox
    /// channel, whose only writer is the supervisor, that means it died.
    pub fn writers_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
            Err(_) => true,
        }
    }

    /// The next message, or `None` at end-of-file (every sender gone).
    pub fn recv<T: for<'de> Deserialize<'de>>(&mut self) -> std::io::Result<Option<T>> {
        let mut len = [0u8; 4];
        match self.0.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        self.0.read_exact(&mut body)?;
        Ok(Some(serde_json::from_slice(&body)?))
    }
}

/// A socket pair for passing descriptors (SCM_RIGHTS), close-on-exec.
pub fn fd_channel() -> nix::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Send `fd` over `sock` (one message of one byte).
pub fn send_fd(sock: RawFd, fd: RawFd) -> nix::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    sendmsg::<()>(
        sock,
        &[std::io::IoSlice::new(b"F")],
        &[ControlMessage::ScmRights(&[fd])],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
}

/// The next message on `sock`: a descriptor if it carries one, and its
/// bytes (at most 64 KiB); `None` and no bytes at end-of-file.
pub fn receive_fd(sock: RawFd) -> nix::Result<(Option<OwnedFd>, Vec<u8>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                let owned = crate::sys::own_received_fd(f);
                if fd.is_none() {
                    fd = Some(owned);
                }
            }
        }
    }
    let n = msg.bytes;
    buf.truncate(n);
    Ok((fd, buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_eof_ends() {
        let (mut tx, mut rx) = channel().unwrap();
        let err = StepError::new(
            crate::error::Step::MountNew,
            Some("/proc".as_ref()),
            nix::errno::Errno::EPERM,
        )
        .detail("proc on");
        tx.send(&ToSupervisor::Failed(err.clone())).unwrap();
        drop(tx);
        assert_eq!(
            rx.recv::<ToSupervisor>().unwrap(),
            Some(ToSupervisor::Failed(err))
        );
        assert_eq!(rx.recv::<ToSupervisor>().unwrap(), None);
    }
}

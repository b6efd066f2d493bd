//! The user-mode network helper (pasta or slirp4netns): started by the
//! supervisor against init's namespaces, killed with the supervisor
//! (parent-death signal) or at teardown, whichever comes first.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Context, Error, Step, StepError};
use crate::net::{DriverKind, Publish};
use crate::plan::NetPlan;
use crate::sys;

pub struct Helper {
    child: Child,
    /// Readable once the helper has exited.
    pidfd: std::os::fd::OwnedFd,
    /// Its stderr: a memory file, so that a chatty helper never blocks on
    /// a pipe nobody reads while the payload runs.
    log: std::fs::File,
}

/// Refuse to start when a published port is taken, with a clear line,
/// rather than let the helper fail later with its own words.
pub fn check_ports(publish: &[Publish]) -> Result<(), Error> {
    for p in publish {
        let ip = p.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let free = if p.udp {
            UdpSocket::bind((ip, p.host_port)).map(drop)
        } else {
            TcpListener::bind((ip, p.host_port)).map(drop)
        };
        if let Err(e) = free {
            return Err(Error::usage(
                "--publish",
                &p.text,
                format!(
                    "expected a free host port, but {ip}:{} ({}) is not: {}",
                    p.host_port,
                    if p.udp { "udp" } else { "tcp" },
                    e.kind()
                ),
            ));
        }
    }
    Ok(())
}

impl Helper {
    pub fn start(
        plan: &NetPlan,
        driver: DriverKind,
        target: Pid,
    ) -> Result<Option<Helper>, StepError> {
        let Some((path, args)) = &plan.helper else {
            return Ok(None);
        };
        let step = Step::StartHelper;
        let log: std::fs::File =
            rustix::fs::memfd_create("nook-helper-log", rustix::fs::MemfdFlags::CLOEXEC)
                .step(step, Some(path))?
                .into();
        let mut cmd = Command::new(path);
        cmd.args(args).arg(target.to_string());
        if driver == DriverKind::Slirp4netns {
            cmd.arg("tap0");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.try_clone().step(step, Some(path))?);
        sys::kill_with_parent(&mut cmd);
        let child = cmd.spawn().step(step, Some(path))?;
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        )
        .step(step, Some(path))?;
        Ok(Some(Helper { child, pidfd, log }))
    }

    /// Becomes readable when the helper exits.
    pub fn exit_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.pidfd.as_fd()
    }

    /// Stop the helper and return what it said on stderr. It keeps no
    /// state worth a clean shutdown, so SIGKILL; and it is not waited for:
    /// the kernel's teardown of its few hundred sockets takes 20-25 ms,
    /// which nobody should wait for at every exit. Once we exit, it is
    /// reaped by whoever reaps our orphans.
    pub fn stop(mut self) -> String {
        use std::io::Seek;
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let mut said = String::new();
        let _ = self.log.rewind();
        let _ = self.log.read_to_string(&mut said);
        said.lines()
            .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

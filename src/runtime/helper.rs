//! The user-mode network helper (pasta or slirp4netns): started by the
//! supervisor against init's namespaces, killed with the supervisor
//! (parent-death signal) or at teardown, whichever comes first.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
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
    /// slirp4netns's API socket, in a private directory of ours that goes
    /// as soon as the ports are published.
    api: Option<ApiDir>,
}

/// A directory only we can enter, removed when dropped.
struct ApiDir(PathBuf);

impl ApiDir {
    fn socket(&self) -> PathBuf {
        self.0.join("api.sock")
    }
}

impl Drop for ApiDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
        cmd.args(args);
        let api = if plan.slirp_forwards.is_empty() {
            None
        } else {
            let base = std::env::temp_dir().join("nook-slirp-XXXXXX");
            let dir = nix::unistd::mkdtemp(&base).step(step, Some(&base))?;
            let api = ApiDir(dir);
            cmd.arg(format!("--api-socket={}", api.socket().display()));
            Some(api)
        };
        cmd.arg(target.to_string());
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
        Ok(Some(Helper {
            child,
            pidfd,
            log,
            api,
        }))
    }

    /// Send slirp4netns the requests that publish ports, one per
    /// connection to its API socket (which it makes a moment after it
    /// starts), and check each answer; then the socket goes.
    pub fn publish(&mut self, requests: &[String]) -> Result<(), StepError> {
        use std::io::Write;
        let Some(api) = self.api.take() else {
            return Ok(());
        };
        let step = Step::PublishPorts;
        let sock = api.socket();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let connect = || -> Result<std::os::unix::net::UnixStream, StepError> {
            let mut pause = std::time::Duration::from_micros(200);
            loop {
                match std::os::unix::net::UnixStream::connect(&sock) {
                    Ok(c) => return Ok(c),
                    Err(e) if std::time::Instant::now() > deadline || self.exited() => {
                        return Err(StepError::io(step, Some(&sock), &e));
                    }
                    Err(_) => std::thread::sleep(pause),
                }
                pause = (pause * 2).min(std::time::Duration::from_millis(5));
            }
        };
        for r in requests {
            let mut c = connect()?;
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .step(step, Some(&sock))?;
            // One write: slirp4netns takes a request in one read.
            c.write_all(r.as_bytes()).step(step, Some(&sock))?;
            let _ = c.shutdown(std::net::Shutdown::Write);
            let mut answer = String::new();
            c.read_to_string(&mut answer).step(step, Some(&sock))?;
            let said: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            if said.get("return").is_none() {
                let why = said
                    .pointer("/error/desc")
                    .and_then(|d| d.as_str())
                    .unwrap_or(answer.trim());
                return Err(StepError::failed(step, Some(&sock))
                    .detail(r.clone())
                    .hint(format!("slirp4netns said: {why}")));
            }
        }
        Ok(())
    }

    fn exited(&self) -> bool {
        crate::runtime::side::ready_within(
            self.exit_fd(),
            nix::poll::PollFlags::POLLIN,
            std::time::Duration::ZERO,
        )
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

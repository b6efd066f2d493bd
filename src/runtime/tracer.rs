//! `--trace`: a child of the supervisor that holds the payload's seccomp
//! listener (the payload sends it over a socket right after installing its
//! filter) and answers the calls the filter hands it:
//! - a call the policy refuses: counted by name, answered EPERM, as the
//!   filter itself would have;
//! - a call that names a path: the path is read from the caller's memory
//!   and looked up in the sandbox's view (through `/proc/PID/root`) and on
//!   the host; what the view lacks, or has read-only for a write, is
//!   recorded; the call then runs as asked.
//!
//! It only watches: a hostile command can change the path between the
//! look and the call, so the record is a report, never a boundary (the
//! view, Landlock and the filter are the boundary). The tracer runs in
//! the host's pid namespace, out of the sandbox's sight.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Step, StepError};
use crate::plan::seccomp::{PATH_CALLS, Policy};
use crate::runtime::events::{Event, Events};
use crate::runtime::msg;
use crate::runtime::side::Side;
use crate::state::trace::{Access, HostKind, PathDenial, SyscallDenial, Trace, Why};
use crate::sys;

#[derive(Debug, Serialize, Deserialize)]
enum FromTracer {
    Seen(Trace),
}

/// The supervisor's handle on a running tracer.
pub struct Tracer(Side);

/// The socket pair the listener travels over: the tracer's end and the
/// payload's.
pub fn channel() -> Result<(OwnedFd, OwnedFd), StepError> {
    msg::fd_channel().map_err(|e| StepError::new(Step::StartTracer, None, e))
}

/// The payload's side: send the listener, and let go of both.
pub fn send_listener(sock: std::os::fd::RawFd, listener: OwnedFd) -> Result<(), StepError> {
    msg::send_fd(sock, listener.as_raw_fd())
        .map_err(|e| StepError::new(Step::StartTracer, None, e).detail("sending the listener"))
}

impl Tracer {
    pub fn start(
        sock: OwnedFd,
        policy: &Policy,
        home: &Path,
        events: &Events,
    ) -> Result<Tracer, StepError> {
        let side = Side::fork(Step::StartTracer, |ends| {
            let w = Watch {
                watched: PATH_CALLS
                    .iter()
                    .filter_map(|&(name, arg, dirfd, _)| {
                        crate::spec::syscalls::number(name).map(|nr| (nr, (name, arg, dirfd)))
                    })
                    .filter(|(nr, _)| !policy.refuses(*nr))
                    .collect(),
                events,
                secrets: crate::profile::secrets::paths(home),
                started: Instant::now(),
                paths: HashMap::new(),
                calls: HashMap::new(),
                judged: HashMap::new(),
                root: None,
            };
            w.serve(sock.as_fd(), ends.stop.as_fd(), ends.tx)
        })?;
        Ok(Tracer(side))
    }

    /// Stop the tracer (the sandbox has ended) and return what it saw.
    pub fn stop(self) -> Trace {
        match self.0.stop::<FromTracer>() {
            Some(FromTracer::Seen(t)) => t,
            None => Trace::default(),
        }
    }
}

/// What the view refused: the path it lacks, why, and what the host has.
type Verdict = (PathBuf, Why, HostKind);

struct Watch<'a> {
    /// The watched calls the policy runs, by number (looked up once, not
    /// by name at each call): name, path argument, directory argument.
    watched: HashMap<i64, (&'static str, usize, Option<usize>)>,
    events: &'a Events,
    secrets: Vec<PathBuf>,
    started: Instant,
    paths: HashMap<(PathBuf, Access, Why), PathDenial>,
    calls: HashMap<String, u32>,
    judged: HashMap<(PathBuf, Access), Option<Verdict>>,
    /// The sandbox's root, opened through the first caller.
    root: Option<OwnedFd>,
}

impl Watch<'_> {
    /// Answer calls until the supervisor says stop, then send what was
    /// seen and exit. The calls are taken with a blocking receive (with
    /// synchronous wake-ups where the kernel has them, the caller's CPU
    /// passes straight here and back); a second thread waits for the stop.
    fn serve(self, sock: BorrowedFd<'_>, stop: BorrowedFd<'_>, mut tx: msg::Sender) -> ! {
        let listener = receive_listener(sock, stop);
        let watch = std::sync::Mutex::new(self);
        std::thread::scope(|scope| {
            if let Some(listener) = &listener {
                let _ = sys::notices_wake_synchronously(listener.as_fd());
                let watch = &watch;
                scope.spawn(move || {
                    loop {
                        match sys::notice_receive(listener.as_fd()) {
                            Ok(n) => {
                                let Ok(mut w) = watch.lock() else { return };
                                let (answer, seen) = w.look(listener.as_fd(), &n);
                                let _ = sys::notice_answer(listener.as_fd(), n.id, answer);
                                // Judged after the call went on: the caller
                                // doesn't wait for the lookups, and a view
                                // the call changed (a file it created) is
                                // not a refusal.
                                if let Some((path, access)) = seen {
                                    w.judge_and_record(n.pid, path, access);
                                }
                            }
                            Err(Errno::EINTR | Errno::ENOENT) => continue,
                            Err(_) => return,
                        }
                    }
                });
            }
            let mut fds = [PollFd::new(stop, PollFlags::POLLIN)];
            while let Err(Errno::EINTR) = poll(&mut fds, PollTimeout::NONE) {}
            let seen = match watch.lock() {
                Ok(mut w) => w.take_trace(),
                Err(_) => Trace::default(),
            };
            let _ = tx.send(&FromTracer::Seen(seen));
            // Inside the scope, whose end would wait for the receiving
            // thread, blocked for good once the sandbox is gone.
            sys::exit_now(0)
        })
    }

    /// What to answer for one call, and the path it named (read while the
    /// call still waits).
    fn look(
        &mut self,
        listener: BorrowedFd<'_>,
        n: &sys::Notice,
    ) -> (Option<Errno>, Option<(PathBuf, Access)>) {
        let nr = i64::from(n.nr);
        // What the filter hands over is either a watched call the policy
        // runs, or a refusal.
        let Some(&(name, arg, dirfd)) = self.watched.get(&nr) else {
            let name = crate::spec::syscalls::name(nr).unwrap_or("unknown");
            let count = self.calls.entry(name.to_string()).or_default();
            *count += 1;
            if *count == 1 {
                self.events.emit(Event::DeniedCall { syscall: name });
            }
            return (Some(Errno::EPERM), None);
        };
        let Some(raw) = read_string(n.pid, n.args[arg]) else {
            return (None, None);
        };
        // Read before the caller could change it: still waiting, so the
        // memory was the call's.
        if !sys::notice_valid(listener, n.id) {
            return (None, None);
        }
        let access = access_of(name, n.args);
        let path = absolute(n.pid, &raw, dirfd.map(|i| n.args[i] as i32));
        (None, path.map(|p| (p, access)))
    }

    /// Judge a path once per way it was used; a repeat only counts.
    fn judge_and_record(&mut self, pid: u32, path: PathBuf, access: Access) {
        // Every process of the sandbox has the same root (none can
        // chroot): held open from the first call on, so a caller that has
        // exited by the time its path is judged is judged all the same.
        if self.root.is_none() {
            self.root = rustix::fs::open(
                format!("/proc/{pid}/root"),
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ok();
        }
        let Some(root) = self.root.as_ref() else {
            return;
        };
        let key = (path, access);
        let verdict = match self.judged.get(&key) {
            Some(v) => v.clone(),
            None => {
                let v = judge(root.as_fd(), &key.0, access);
                self.judged.insert(key.clone(), v.clone());
                v
            }
        };
        if let Some((path, why, host)) = verdict {
            self.record(path, access, why, host);
        }
    }

    fn record(&mut self, path: PathBuf, access: Access, why: Why, host: HostKind) {
        let path = match path.to_str() {
            Some(_) => path,
            None => PathBuf::from(path.to_string_lossy().into_owned()),
        };
        let first = self.started.elapsed().as_secs_f64();
        let secret = self.secrets.iter().any(|s| path.starts_with(s));
        let d = self
            .paths
            .entry((path.clone(), access, why))
            .or_insert_with(|| PathDenial {
                path,
                access,
                why,
                host,
                secret,
                count: 0,
                first,
            });
        d.count += 1;
        if d.count == 1 {
            self.events.emit(Event::DeniedPath {
                path: &d.path,
                access: d.access,
                why: d.why,
            });
        }
    }

    fn take_trace(&mut self) -> Trace {
        let mut paths: Vec<PathDenial> = std::mem::take(&mut self.paths).into_values().collect();
        paths.sort_by(|a, b| b.count.cmp(&a.count).then(a.path.cmp(&b.path)));
        let mut syscalls: Vec<SyscallDenial> = std::mem::take(&mut self.calls)
            .into_iter()
            .map(|(name, count)| SyscallDenial { name, count })
            .collect();
        syscalls.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
        Trace {
            paths,
            syscalls,
            ..Trace::default()
        }
    }
}

/// Wait for the payload to send its listener (or for the end).
fn receive_listener(sock: BorrowedFd<'_>, stop: BorrowedFd<'_>) -> Option<OwnedFd> {
    let mut fds = [
        PollFd::new(sock, PollFlags::POLLIN),
        PollFd::new(stop, PollFlags::POLLIN),
    ];
    poll(&mut fds, PollTimeout::NONE).ok()?;
    if !fds[0]
        .revents()
        .is_some_and(|r| r.contains(PollFlags::POLLIN))
    {
        return None;
    }
    msg::receive_fd(sock.as_raw_fd()).ok()?.0
}

/// A NUL-terminated string at `addr` in thread `pid`'s memory (at most
/// PATH_MAX bytes), read page by page so a string near the end of a
/// mapping is still read.
fn read_string(pid: u32, addr: u64) -> Option<Vec<u8>> {
    use nix::sys::uio::{RemoteIoVec, process_vm_readv};
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < libc::PATH_MAX as usize {
        let len = (PAGE - at % PAGE) as usize;
        let mut page = [0u8; PAGE as usize];
        let buf = &mut page[..len];
        let n = process_vm_readv(
            Pid::from_raw(pid as i32),
            &mut [std::io::IoSliceMut::new(buf)],
            &[RemoteIoVec {
                base: at as usize,
                len,
            }],
        )
        .ok()?;
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
        if n == 0 {
            return None;
        }
    }
    None
}

/// What a call does with its path.
fn access_of(name: &str, args: [u64; 6]) -> Access {
    let open_flags = match name {
        "open" => Some(args[1]),
        "openat" => Some(args[2]),
        // openat2's flags sit in a struct; treat it as a read.
        _ => None,
    };
    match name {
        "execve" | "execveat" => Access::Exec,
        "chdir" => Access::List,
        "creat" | "mkdir" | "mkdirat" | "unlink" | "unlinkat" | "rmdir" | "rename" | "renameat"
        | "renameat2" | "truncate" => Access::Write,
        "open" | "openat" | "openat2" => {
            let f = open_flags.unwrap_or(0) as i32;
            if f & libc::O_ACCMODE != libc::O_RDONLY || f & (libc::O_CREAT | libc::O_TRUNC) != 0 {
                Access::Write
            } else if f & libc::O_DIRECTORY != 0 {
                Access::List
            } else {
                Access::Read
            }
        }
        _ => Access::Stat,
    }
}

/// The path made absolute against the caller's working directory or the
/// directory descriptor, as the sandbox names them.
fn absolute(pid: u32, raw: &[u8], dirfd: Option<i32>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let p = Path::new(std::ffi::OsStr::from_bytes(raw));
    if p.is_absolute() {
        return Some(p.to_path_buf());
    }
    if raw.is_empty() {
        // AT_EMPTY_PATH: the descriptor itself, not a name.
        return None;
    }
    let base = match dirfd {
        None | Some(libc::AT_FDCWD) => std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?,
        Some(fd) => std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?,
    };
    base.is_absolute().then(|| base.join(p))
}

/// Whether the view refuses `path` for `access`: the path it lacks (the
/// path itself, or for a new name the directory it goes in), why, and
/// what the host has there: absent from the view while the host has it,
/// or read-only in the view for a write.
fn judge(root: BorrowedFd<'_>, path: &Path, access: Access) -> Option<Verdict> {
    use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
    // The view's own lookup: inside the sandbox's root, whose absolute
    // symlinks mean the sandbox's paths, never the host's.
    let in_view = |p: &Path| {
        let rel = p.strip_prefix("/").unwrap_or(p);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        openat2(
            root,
            rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .ok()
    };
    let host_kind = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| {
            if m.is_dir() {
                HostKind::Dir
            } else if m.is_file() {
                HostKind::File
            } else {
                HostKind::Other
            }
        })
    };
    // The sandbox's /proc answers for the sandbox's pid namespace, and
    // names like /proc/self mean the caller: judged from here they would
    // mean the tracer. Not judged at all.
    if path.starts_with("/proc") {
        return None;
    }
    let found = in_view(path);
    if found.is_none() {
        if let Some(kind) = host_kind(path) {
            return Some((path.to_path_buf(), Why::Absent, kind));
        }
        if access != Access::Write {
            return None;
        }
        // A new name in a directory the host has and the view lacks: the
        // directory is what was missing.
        let parent = path.parent()?;
        if in_view(parent).is_none() && host_kind(parent).is_some() {
            return Some((parent.to_path_buf(), Why::Absent, HostKind::Dir))
                .filter(|_| parent != Path::new("/"));
        }
    }
    if access == Access::Write {
        // A new name is written in its directory.
        let target = match found {
            Some(fd) => fd,
            None => in_view(path.parent()?)?,
        };
        let st = rustix::fs::fstatvfs(&target).ok()?;
        if st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
            let kind = host_kind(path).unwrap_or(HostKind::Missing);
            return Some((path.to_path_buf(), Why::ReadOnly, kind));
        }
    }
    None
}

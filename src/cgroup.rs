//! Delegated cgroup v2: one leaf per sandbox, under a cgroup the user owns
//! (systemd's `Delegate=yes` convention: the directory and its
//! cgroup.procs / cgroup.subtree_control belong to the user, the limits of
//! the delegated cgroup itself stay root's).
//!
//! Where the leaf goes, in order:
//! 1. next to our own cgroup, when its parent is delegated to us and
//!    already enables the controllers the limits need (a delegated subtree
//!    whose processes live in leaves, as a service manager arranges);
//! 2. below our own cgroup, when it is delegated and holds no process but
//!    ours (a `systemd-run --scope`): we move into a sub-leaf of our own
//!    (the no-internal-process rule), enable the controllers, and undo
//!    both at teardown;
//! 3. otherwise, with a systemd user manager running, nook re-executes
//!    itself in a transient scope with delegation, asked of that manager
//!    over D-Bus by `systemd-run --user --scope -p Delegate=yes`.
//!
//! Teardown writes cgroup.kill, waits for the leaf to empty, reads the
//! figures for `--stats`, and removes it: nothing survives the sandbox.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Context, Step, StepError};
use crate::spec::limits::CgroupLimits;

/// Where the cgroup v2 hierarchy is mounted, from /proc/self/mountinfo
/// text: /sys/fs/cgroup on a unified system, /sys/fs/cgroup/unified on a
/// hybrid one.
pub fn parse_mount_point(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

/// The environment variable that marks the re-executed nook inside its
/// systemd scope, so it never asks twice.
pub const IN_SCOPE: &str = "NOOK_IN_SYSTEMD_SCOPE";

/// Our cgroup v2 path ("/user.slice/..."), from /proc/self/cgroup text.
pub fn parse_own(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn write(path: &Path, value: &str) -> Result<(), StepError> {
    std::fs::write(path, value)
        .step(Step::Write, Some(path))
        .map_err(|e| e.detail(format!("'{value}' to")))
}

/// The cgroup v2 situation of this process, for `run` and `doctor`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Situation {
    /// /sys/fs/cgroup is not a cgroup v2 (unified) hierarchy.
    NoUnified,
    /// Our cgroup, with what we may do there.
    Unified {
        own: PathBuf,
        /// Controllers our cgroup's parent enables for its children, if the
        /// parent is delegated to us (strategy 1).
        parent_delegated: Option<Vec<String>>,
        /// Our cgroup is delegated to us and holds only us (strategy 2);
        /// the controllers it could enable.
        own_delegated_alone: Option<Vec<String>>,
        /// Controllers the root of the hierarchy has at all.
        available: Vec<String>,
    },
}

fn owned_by(path: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    ["", "cgroup.procs", "cgroup.subtree_control"]
        .iter()
        .all(|f| std::fs::metadata(path.join(f)).is_ok_and(|m| m.uid() == uid))
}

fn words(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

pub fn situation(uid: u32) -> Situation {
    let Some(root) = read(Path::new("/proc/self/mountinfo")).and_then(|t| parse_mount_point(&t))
    else {
        return Situation::NoUnified;
    };
    let root = root.as_path();
    let Some(own) = read(Path::new("/proc/self/cgroup")).and_then(|t| parse_own(&t)) else {
        return Situation::NoUnified;
    };
    let own_dir = root.join(own.trim_start_matches('/'));
    let parent_delegated = own_dir
        .parent()
        .filter(|p| p.starts_with(root) && *p != root && owned_by(p, uid))
        .map(|p| words(read(&p.join("cgroup.subtree_control"))));
    let alone = words(read(&own_dir.join("cgroup.procs"))) == [std::process::id().to_string()];
    let own_delegated_alone = (owned_by(&own_dir, uid) && alone)
        .then(|| words(read(&own_dir.join("cgroup.controllers"))));
    Situation::Unified {
        own: own_dir,
        parent_delegated,
        own_delegated_alone,
        available: words(read(&root.join("cgroup.controllers"))),
    }
}

/// Why limits can't be had here, and what to do, for a 125 exit.
pub fn refusal(s: &Situation, needed: &[&str]) -> StepError {
    let (what, hint) = match s {
        Situation::NoUnified => (
            "no cgroup v2 hierarchy is mounted".to_string(),
            "limits need the unified hierarchy: boot with systemd.unified_cgroup_hierarchy=1 (and cgroup_no_v1=all), or drop the cgroup limits (rlimits, --timeout and --disk-quota work without)".to_string(),
        ),
        Situation::Unified { own, .. } => {
            let missing = s.missing(needed);
            if !missing.is_empty() {
                (
                    format!(
                        "the cgroup v2 hierarchy has no {} controller{}",
                        missing.join(", "),
                        if missing.len() > 1 { "s" } else { "" }
                    ),
                    "they are held by cgroup v1 or not built in: boot with cgroup_no_v1=all, or drop those limits".to_string(),
                )
            } else {
                (
                    format!("your cgroup {} is not delegated to you", own.display()),
                    "run nook in a systemd user session (it then asks for a delegated scope itself), or start it as `systemd-run --user --scope -p Delegate=yes nook ...`".to_string(),
                )
            }
        }
    };
    StepError::failed(Step::SetLimits, None)
        .detail(what)
        .hint(hint)
}

/// Run this nook again inside a transient systemd scope with delegation
/// (systemd-run asks the user's manager over D-Bus, StartTransientUnit);
/// returns only on failure.
pub fn exec_in_scope(systemd_run: &Path) -> StepError {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let e = std::process::Command::new(systemd_run)
        .args([
            "--user",
            "--scope",
            "--quiet",
            "--collect",
            "-p",
            "Delegate=yes",
            "--",
        ])
        .arg(&exe)
        .args(std::env::args_os().skip(1))
        .env(IN_SCOPE, "1")
        .exec();
    StepError::io(Step::AskSystemd, Some(systemd_run), &e)
}

/// True when a systemd user manager can be asked for a scope.
pub fn systemd_user_available(host: &crate::host::Host) -> Option<PathBuf> {
    if host.env.contains_key(IN_SCOPE) {
        return None;
    }
    let runtime = host.env.get("XDG_RUNTIME_DIR")?;
    let private = Path::new(runtime).join("systemd/private");
    let bus = Path::new(runtime).join("bus");
    if !private.exists() && !bus.exists() {
        return None;
    }
    host.find_program("systemd-run")
}

/// A leaf cgroup holding one sandbox.
pub struct Leaf {
    pub path: PathBuf,
    /// Strategy 2: where we moved ourselves and what we enabled.
    moved: Option<(PathBuf, PathBuf, Vec<String>)>,
    done: bool,
}

/// What the kernel counted for the sandbox.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub memory_peak: Option<u64>,
    pub cpu_usec: Option<u64>,
    pub cpu_user_usec: Option<u64>,
    pub cpu_system_usec: Option<u64>,
    pub pids_peak: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub oom_kills: u64,
}

impl Leaf {
    /// Make the leaf and set the limits. `None` when no leaf can be had
    /// and none is needed (only `--stats` asked).
    pub fn create(
        limits: &CgroupLimits,
        situation: &Situation,
        required: bool,
    ) -> Result<Option<Leaf>, StepError> {
        let needed = limits.controllers();
        let name = format!("nook-{}", std::process::id());
        let has_all = |have: &[String]| needed.iter().all(|c| have.iter().any(|h| h == c));
        let (path, moved) = match place(situation, &needed) {
            Some(Place::Beside(parent)) => (parent.join(&name), None),
            Some(Place::Below(own, controllers)) => {
                // Move out of our own cgroup first: one with processes can't
                // enable controllers for children.
                let sup = own.join(format!("{name}-supervisor"));
                std::fs::create_dir(&sup).step(Step::CreateCgroup, Some(&sup))?;
                write(&sup.join("cgroup.procs"), &std::process::id().to_string())?;
                // Every controller we may: the figures for --stats too.
                let mut enabled = Vec::new();
                for c in controllers {
                    if write(&own.join("cgroup.subtree_control"), &format!("+{c}")).is_ok() {
                        enabled.push(c.clone());
                    }
                }
                if !has_all(&enabled) {
                    let _ = Self::undo_move(own, &sup, &enabled);
                    return Err(refusal(situation, &needed));
                }
                (own.join(&name), Some((own.to_path_buf(), sup, enabled)))
            }
            None if required => return Err(refusal(situation, &needed)),
            None => return Ok(None),
        };
        std::fs::create_dir(&path).step(Step::CreateCgroup, Some(&path))?;
        let leaf = Leaf {
            path,
            moved,
            done: false,
        };
        for (file, value) in limits.files() {
            // Dropping the leaf removes it again.
            write(&leaf.path.join(file), &value)?;
        }
        Ok(Some(leaf))
    }

    fn undo_move(own: &Path, sup: &Path, enabled: &[String]) -> Result<(), StepError> {
        for c in enabled {
            let _ = write(&own.join("cgroup.subtree_control"), &format!("-{c}"));
        }
        write(&own.join("cgroup.procs"), &std::process::id().to_string())?;
        std::fs::remove_dir(sup).step(Step::RemoveCgroup, Some(sup))
    }

    /// Put a process (the setup child, before it makes its cgroup
    /// namespace) in the leaf.
    pub fn add(&self, pid: nix::unistd::Pid) -> Result<(), StepError> {
        write(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    /// Kill every process in the leaf.
    pub fn kill(&self) {
        if write(&self.path.join("cgroup.kill"), "1").is_err() {
            // Before Linux 5.14: one by one (the sandbox is in its own pid
            // namespace, so killing its init ends the rest anyway).
            for pid in words(read(&self.path.join("cgroup.procs"))) {
                if let Ok(p) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }

    fn populated(&self) -> bool {
        read(&self.path.join("cgroup.events"))
            .map(|t| t.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    }

    pub fn usage(&self) -> Usage {
        let kv = |file: &str| -> Vec<(String, u64)> {
            read(&self.path.join(file))
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .chunks(2)
                .filter_map(|c| Some((c.first()?.to_string(), c.get(1)?.parse().ok()?)))
                .collect()
        };
        let one = |file: &str| read(&self.path.join(file)).and_then(|t| t.trim().parse().ok());
        let field =
            |pairs: &[(String, u64)], k: &str| pairs.iter().find(|(n, _)| n == k).map(|p| p.1);
        let cpu = kv("cpu.stat");
        let mut read_b = None;
        let mut write_b = None;
        for line in read(&self.path.join("io.stat")).unwrap_or_default().lines() {
            for kv in line.split_whitespace().skip(1) {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v: u64 = v.parse().unwrap_or(0);
                match k {
                    "rbytes" => *read_b.get_or_insert(0) += v,
                    "wbytes" => *write_b.get_or_insert(0) += v,
                    _ => {}
                }
            }
        }
        if read_b.is_none() && self.path.join("io.stat").exists() {
            read_b = Some(0);
            write_b = Some(0);
        }
        Usage {
            memory_peak: one("memory.peak"),
            cpu_usec: field(&cpu, "usage_usec"),
            cpu_user_usec: field(&cpu, "user_usec"),
            cpu_system_usec: field(&cpu, "system_usec"),
            pids_peak: one("pids.peak"),
            io_read_bytes: read_b,
            io_write_bytes: write_b,
            oom_kills: field(&kv("memory.events"), "oom_kill").unwrap_or(0),
        }
    }

    /// Kill what is left, wait for the leaf to empty, and return its
    /// figures; then remove it.
    pub fn finish(&mut self) -> Usage {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.populated() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let usage = self.usage();
        self.remove();
        usage
    }

    fn remove(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        // rmdir fails while a dying process is still counted; retry briefly.
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::remove_dir(&self.path).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some((own, sup, enabled)) = &self.moved {
            let _ = Self::undo_move(own, sup, enabled);
        }
    }
}

impl Drop for Leaf {
    /// Every path out of a run, errors included, ends the sandbox's
    /// processes and removes the leaf.
    fn drop(&mut self) {
        if !self.done {
            self.finish();
        }
    }
}

/// Where a leaf with `needed` can go here without help (the strategies of
/// the module's comment, in order).
enum Place<'a> {
    /// Beside our own cgroup, in this delegated parent.
    Beside(&'a Path),
    /// Below our own cgroup, after moving out of it; it may enable these.
    Below(&'a Path, &'a [String]),
}

fn place<'a>(s: &'a Situation, needed: &[&str]) -> Option<Place<'a>> {
    let Situation::Unified {
        own,
        parent_delegated,
        own_delegated_alone,
        ..
    } = s
    else {
        return None;
    };
    let has_all = |have: &[String]| needed.iter().all(|c| have.iter().any(|h| h == c));
    match (parent_delegated, own_delegated_alone) {
        (Some(enabled), _) if has_all(enabled) => own.parent().map(Place::Beside),
        (_, Some(controllers)) if has_all(controllers) => Some(Place::Below(own, controllers)),
        _ => None,
    }
}

/// Whether a leaf for `needed` can be made here without help.
pub fn placeable(s: &Situation, needed: &[&str]) -> bool {
    place(s, needed).is_some()
}

impl Situation {
    /// The controllers of `needed` the hierarchy lacks altogether.
    pub fn missing<'a>(&self, needed: &[&'a str]) -> Vec<&'a str> {
        match self {
            Situation::NoUnified => needed.to_vec(),
            Situation::Unified { available, .. } => needed
                .iter()
                .copied()
                .filter(|c| !available.iter().any(|a| a == c))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_is_the_unified_line() {
        let text = "12:pids:/x\n1:name=systemd:/y\n0::/user.slice/user-1000.slice/app.scope\n";
        assert_eq!(
            parse_own(text).as_deref(),
            Some("/user.slice/user-1000.slice/app.scope")
        );
        assert_eq!(parse_own("4:memory:/a\n"), None);
    }

    #[test]
    fn refusal_names_what_is_missing() {
        let s = Situation::Unified {
            own: "/sys/fs/cgroup/a".into(),
            parent_delegated: None,
            own_delegated_alone: None,
            available: vec!["cpu".into(), "pids".into()],
        };
        let e = refusal(&s, &["memory", "pids"]);
        assert!(e.to_string().contains("no memory controller"), "{e}");
        let s = Situation::Unified {
            own: "/sys/fs/cgroup/a".into(),
            parent_delegated: None,
            own_delegated_alone: None,
            available: vec!["memory".into()],
        };
        let e = refusal(&s, &["memory"]);
        assert!(e.to_string().contains("is not delegated to you"), "{e}");
        assert!(
            refusal(&Situation::NoUnified, &[])
                .to_string()
                .contains("no cgroup v2")
        );
    }

    #[test]
    fn mount_point_of_the_unified_hierarchy() {
        let hybrid = "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_mount_point(hybrid),
            Some("/sys/fs/cgroup/unified".into())
        );
        assert_eq!(
            parse_mount_point("1 0 0:1 / / rw - ext4 /dev/vda rw\n"),
            None
        );
    }
}

//! The cgroup v2 situation of this process: where the unified hierarchy
//! is, which cgroup we are in, and what is delegated to us. Read once per
//! run (`Host::cgroup`), by `run` and `doctor`.
//!
//! Where a sandbox's leaf can go, in order:
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

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Step, StepError};

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

/// A cgroup file's text; `None` when it can't be read.
pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
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

/// The words of a cgroup file (controllers, pids).
pub fn words(text: Option<String>) -> Vec<String> {
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

/// True when a systemd user manager can be asked for a scope.
pub fn systemd_user_available(host: &super::Host) -> Option<PathBuf> {
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

/// Where a leaf with `needed` can go here without help (the strategies of
/// the module's comment, in order).
pub enum Place<'a> {
    /// Beside our own cgroup, in this delegated parent.
    Beside(&'a Path),
    /// Below our own cgroup, after moving out of it; it may enable these.
    Below(&'a Path, &'a [String]),
}

pub fn place<'a>(s: &'a Situation, needed: &[&str]) -> Option<Place<'a>> {
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

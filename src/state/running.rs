//! Running sandboxes, for `ps`, `exec`, `stop`, `kill` and `logs`:
//! `$XDG_RUNTIME_DIR/nook/` (mode 0700, the user's own) holds one
//! `NAME.json` per running sandbox, written by its supervisor once init
//! runs and removed when it ends. A record whose supervisor is gone (it
//! was SIGKILLed) is recognised by the process start time recorded with
//! the pid, and removed instead of shown. Records are written whole
//! (temporary file and rename), so a reader never sees half of one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Step, StepError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub supervisor: i32,
    /// Start time of the supervisor and init (clock ticks after boot,
    /// /proc/PID/stat field 22): a pid alone may be reused.
    pub supervisor_start: u64,
    pub init: i32,
    pub init_start: u64,
    /// Seconds since the epoch.
    pub started: f64,
    pub profiles: Vec<String>,
    pub command: Vec<String>,
    pub cgroup: Option<PathBuf>,
    pub log: Option<PathBuf>,
    /// What `nook exec` restricts a joining process with.
    pub join: crate::plan::ExecStage,
}

/// `$XDG_RUNTIME_DIR/nook` when that is the user's own directory, else
/// `$XDG_STATE_HOME/nook/running` (`~/.local/state/nook/running`).
pub fn dir(env: &std::collections::BTreeMap<String, String>, uid: u32, home: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    // $XDG_RUNTIME_DIR only when it really is the user's own directory: a
    // sandbox, a container or `su` often leave the variable pointing at
    // one that isn't there. Otherwise under the user's home, where no
    // other user can make the directory first (unlike a fixed name in a
    // shared /tmp).
    env.get("XDG_RUNTIME_DIR")
        .filter(|d| d.starts_with('/'))
        .filter(|d| std::fs::metadata(d).is_ok_and(|m| m.is_dir() && m.uid() == uid))
        .map(|d| Path::new(d).join("nook"))
        .unwrap_or_else(|| {
            env.get("XDG_STATE_HOME")
                .filter(|d| d.starts_with('/'))
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".local/state"))
                .join("nook/running")
        })
}

/// The directory, made if missing; refused unless it is ours and private.
pub fn ensure(dir: &Path, uid: u32) -> Result<(), StepError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // Parents too (~/.local/state may not exist yet), private like it.
    if let Err(e) = std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)
    {
        return Err(StepError::io(Step::CreateStateDir, Some(dir), &e));
    }
    let m = std::fs::symlink_metadata(dir).step(Step::Inspect, Some(dir))?;
    if !m.is_dir() || m.uid() != uid || m.permissions().mode() & 0o077 != 0 {
        return Err(
            StepError::new(Step::UseStateDir, Some(dir), nix::errno::Errno::EPERM)
                .hint("it must be a directory of yours with mode 0700"),
        );
    }
    // It may be there and still not writable (a read-only bind of the
    // home in another sandbox).
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK)
        .map_err(|e| StepError::new(Step::UseStateDir, Some(dir), crate::error::from_rustix(e)))?;
    Ok(())
}

/// A process's parent pid and start time (/proc/PID/stat, readable by
/// anyone), or `None` when it is gone.
pub fn proc_stat(pid: i32) -> Option<(i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // from the last ')'. Then state, ppid (4), ..., starttime (22).
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// A process's start time, or `None` when it is gone.
pub fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|s| s.1)
}

fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

pub fn write(dir: &Path, e: &Entry) -> Result<(), StepError> {
    let p = path(dir, &e.name);
    let tmp = dir.join(format!(".{}.json.{}", e.name, std::process::id()));
    let text = serde_json::to_string(e).expect("Entry serializes");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &p))
        .step(Step::Write, Some(&p))
}

pub fn remove(dir: &Path, name: &str) {
    let _ = std::fs::remove_file(path(dir, name));
}

impl Entry {
    pub fn alive(&self) -> bool {
        start_time(self.supervisor) == Some(self.supervisor_start)
            && start_time(self.init) == Some(self.init_start)
    }
}

/// Every running sandbox; records of dead ones are removed.
pub fn list(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for f in rd.flatten() {
        let p = f.path();
        if p.extension().is_none_or(|x| x != "json")
            || f.file_name().to_string_lossy().starts_with('.')
        {
            continue;
        }
        let Some(e) = std::fs::read_to_string(&p)
            .ok()
            .and_then(|t| serde_json::from_str::<Entry>(&t).ok())
        else {
            continue;
        };
        if e.alive() {
            out.push(e);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The running sandbox called `name`, or one clear line.
pub fn find(dir: &Path, name: &str) -> Result<Entry, Error> {
    crate::state::layers::check_name(name).map_err(|e| Error::usage("sandbox name", name, e))?;
    list(dir)
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| {
            Error::usage(
                "sandbox name",
                name,
                "expected a running sandbox (nook ps lists them)",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_reads_past_odd_command_names() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(i32::MAX), None);
    }
}

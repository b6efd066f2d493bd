//! Named sandboxes on disk: `$XDG_DATA_HOME/nook/sandboxes/NAME/` holds
//! `sandbox.json` (when it was made and which host directories it
//! overlays) and one `layers/KEY/{upper,work}` pair per overlay. A run
//! holds `NAME/lock` (flock) for its whole life, so two runs on one name
//! are refused instead of racing; the kernel drops the lock with the
//! process, however it dies.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Expected, Step};
use crate::plan::KeptLayer;
use crate::plan::layers::{upper, work};

/// Where a run keeps its layers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SandboxDir {
    pub name: String,
    pub dir: PathBuf,
    /// Named by nook, not by the user (said at the end of the run).
    pub auto: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// Seconds since the epoch when the sandbox was first run: host files
    /// changed after this conflict at commit.
    pub created: f64,
    pub layers: Vec<KeptLayer>,
    /// The sandbox's `protect` and `unprotect` patterns, which its review
    /// applies too (the last run's).
    #[serde(default)]
    pub protect: Vec<String>,
    #[serde(default)]
    pub unprotect: Vec<String>,
}

/// `$XDG_DATA_HOME/nook/sandboxes` (default `~/.local/share/...`).
pub fn root(env: &std::collections::BTreeMap<String, String>, home: &Path) -> PathBuf {
    env.get("XDG_DATA_HOME")
        .filter(|d| d.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".local/share"))
        .join("nook/sandboxes")
}

pub fn check_name(name: &str) -> Result<(), Expected> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err("expected a name of 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit".into())
    }
}

/// A name for a run that overlays without `--name`: the local time it
/// started and our pid, e.g. `run-20261201-0302-4711`.
pub fn auto_name(now: SystemTime, pid: u32) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400);
    format!(
        "run-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{pid}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm), in UTC.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The lock a run holds on its sandbox.
pub struct Lock {
    _file: File,
}

/// Take the sandbox's lock, or say who holds it.
pub fn lock(dir: &Path, name: &str) -> Result<Lock, Error> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .step(Step::OpenLock, Some(&path))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(Error::usage(
                "--name",
                name,
                format!(
                    "expected a sandbox not in use, but nook pid {} is running it",
                    holder.trim()
                ),
            ));
        }
        other => other.step(Step::Lock, Some(&path))?,
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    Ok(Lock { _file: file })
}

/// Make the sandbox's directories, take its lock, and record its layers
/// (keeping the first run's creation time).
pub fn open(
    sb: &SandboxDir,
    layers: &[KeptLayer],
    patterns: &crate::plan::ProtectPatterns,
) -> Result<Lock, Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&sb.dir)
        .step(Step::CreateSandboxDir, Some(&sb.dir))?;
    let lock = lock(&sb.dir, &sb.name)?;
    let path = sb.dir.join("sandbox.json");
    let mut record = load_record(&sb.dir)?.unwrap_or(Record {
        name: sb.name.clone(),
        created: crate::host::unix_now(),
        layers: Vec::new(),
        protect: Vec::new(),
        unprotect: Vec::new(),
    });
    record.protect = patterns.protect.clone();
    record.unprotect = patterns.unprotect.clone();
    for l in layers {
        if !record.layers.iter().any(|r| r.key == l.key) {
            record.layers.push(l.clone());
        }
        let up = upper(&sb.dir, &l.key);
        let fresh = !up.exists();
        for d in [&up, &work(&sb.dir, &l.key)] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .step(Step::CreateLayer, Some(d))?;
        }
        // The overlay's root takes the upper directory's mode: give it the
        // host directory's (the layers/ directory above stays private).
        if fresh && let Ok(m) = std::fs::metadata(&l.lower) {
            use std::os::unix::fs::PermissionsExt;
            let mode = m.permissions().mode() & 0o7777;
            let _ = std::fs::set_permissions(&up, std::fs::Permissions::from_mode(mode));
        }
    }
    let text = serde_json::to_string_pretty(&record).expect("Record serializes");
    let tmp = sb.dir.join("sandbox.json.tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|()| std::fs::rename(&tmp, &path))
        .step(Step::Write, Some(&path))?;
    Ok(lock)
}

/// After a run: a sandbox that never had an overlay keeps nothing, so its
/// directory goes. One nook named itself goes too when nothing was
/// written; else its name is returned, to say how to review what was.
pub fn after_run(sb: &SandboxDir, layers: &[crate::plan::KeptLayer]) -> Option<String> {
    if matches!(load_record(&sb.dir), Ok(Some(r)) if r.layers.is_empty()) {
        let _ = crate::overlay::remove_dir_tree(&sb.dir);
        return None;
    }
    if !sb.auto {
        return None;
    }
    let written = layers.iter().any(|l| {
        std::fs::read_dir(upper(&sb.dir, &l.key))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    });
    if written {
        Some(sb.name.clone())
    } else {
        let _ = crate::overlay::remove_dir_tree(&sb.dir);
        None
    }
}

/// The sandbox's record; `None` when there is no sandbox in `dir`.
pub fn load_record(dir: &Path) -> Result<Option<Record>, Error> {
    let path = dir.join("sandbox.json");
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.step(Step::ReadRecord, Some(&path))?,
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::At {
            at: path.display().to_string(),
            what: format!("not a sandbox record ({e}); nook rm removes the sandbox"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "web-1", "x.y_z", "2026"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", ".", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_names_carry_the_date() {
        // 2026-12-01 03:02:05 UTC
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_796_094_125);
        assert_eq!(auto_name(t, 42), "run-20261201-030205-42");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}

//! What a traced run (`nook run --trace`, `nook learn`) asked for and did
//! not get, kept after the sandbox ends for `nook why` and `nook learn`:
//! `$XDG_STATE_HOME/nook/traces/NAME.json`, and `last.json` for the newest
//! run (an anonymous run keeps only that one, until the next).
//!
//! It is a report, not a security record: the paths come from watching the
//! command's system calls as they go by, which a hostile command can race.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Step, StepError};

/// Bumped whenever a field changes meaning; an older or newer file is
/// refused with one line.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Trace {
    pub version: u32,
    /// The sandbox's name (an anonymous run's generated one).
    pub name: String,
    pub command: Vec<String>,
    pub profiles: Vec<String>,
    /// Seconds since the epoch.
    pub started: f64,
    pub exit_status: i32,
    pub paths: Vec<PathDenial>,
    pub syscalls: Vec<SyscallDenial>,
    pub network: Vec<NetDenial>,
    pub limits: Vec<LimitHit>,
}

/// What the command did with a path.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// stat, access, readlink: looked at it.
    Stat,
    /// Opened it for reading.
    Read,
    /// Listed it (opened a directory).
    List,
    /// Ran it.
    Exec,
    /// Opened it for writing, created, removed or renamed it.
    Write,
}

/// Why the sandbox's view did not give it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// Not in the view at all, though the host has it.
    Absent,
    /// In the view, but read-only there, and the command wrote.
    ReadOnly,
}

/// What the host has at that path.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum HostKind {
    File,
    Dir,
    Other,
    /// Nothing: the command made a new name (a write).
    Missing,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PathDenial {
    /// As the command named it, made absolute (inside the sandbox, which
    /// for a path absent from the view is the host's same path); bytes
    /// that are not UTF-8 are replaced (U+FFFD), so a hostile name can't
    /// stop the trace from being kept.
    pub path: PathBuf,
    pub access: Access,
    pub why: Why,
    pub host: HostKind,
    /// A secret (keys, tokens, credentials): never to be proposed as a
    /// plain bind.
    pub secret: bool,
    pub count: u32,
    /// Seconds after the start of the first time.
    pub first: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyscallDenial {
    pub name: String,
    pub count: u32,
}

/// A DNS lookup or connection the egress gate refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetDenial {
    pub lookup: bool,
    /// NAME for a lookup, NAME:PORT or ADDRESS:PORT for a connection.
    pub dest: String,
    pub reason: String,
    pub count: u32,
}

/// A limit the run ran into.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LimitHit {
    /// `memory`, `pids`, `timeout`, `fsize`...
    pub what: String,
    /// The flag that sets it, with the value the run had, e.g. `--memory 50M`.
    pub setting: String,
}

/// Where traces live.
pub fn dir(env: &std::collections::BTreeMap<String, String>, home: &Path) -> PathBuf {
    env.get("XDG_STATE_HOME")
        .filter(|d| d.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".local/state"))
        .join("nook/traces")
}

/// The file of a named run's trace, or of the newest (`None`).
pub fn file(dir: &Path, name: Option<&str>) -> PathBuf {
    dir.join(format!("{}.json", name.unwrap_or("last")))
}

/// Keep `t` as the newest trace, and as its sandbox's when it has a name
/// the user gave.
pub fn save(dir: &Path, t: &Trace, named: bool) -> Result<(), StepError> {
    std::fs::create_dir_all(dir).step(Step::CreateStateDir, Some(dir))?;
    let body = serde_json::to_vec_pretty(t).map_err(|e| {
        StepError::failed(Step::Write, Some(dir)).hint(format!("the trace did not serialize: {e}"))
    })?;
    let mut targets = vec![file(dir, None)];
    if named {
        targets.push(file(dir, Some(&t.name)));
    }
    for target in targets {
        let tmp = target.with_extension(format!("json.{}", std::process::id()));
        std::fs::write(&tmp, &body).step(Step::Write, Some(&tmp))?;
        std::fs::rename(&tmp, &target).step(Step::Write, Some(&target))?;
    }
    Ok(())
}

/// A kept trace; one clear line when it is missing, corrupt or from
/// another version of nook.
pub fn load(path: &Path) -> Result<Trace, String> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{}: no trace kept; run the command with `nook run --trace` (or `nook learn`) first",
            path.display()
        ),
        _ => format!("{}: cannot read the trace: {e}", path.display()),
    })?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a nook trace (corrupt JSON: {e})", path.display()))?;
    match v.get("version").and_then(|v| v.as_u64()) {
        Some(n) if n == u64::from(VERSION) => {}
        Some(n) => {
            return Err(format!(
                "{}: a trace of format {n}, but this nook reads format {VERSION}; run the command again to trace it anew",
                path.display()
            ));
        }
        None => return Err(format!("{}: not a nook trace (no version)", path.display())),
    }
    serde_json::from_value(v).map_err(|e| format!("{}: not a nook trace: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_round_trip_and_bad_files_say_one_line() {
        let dir = std::env::temp_dir().join(format!("nook-trace-test-{}", std::process::id()));
        let t = Trace {
            version: VERSION,
            name: "sb-1".into(),
            command: vec!["cat".into()],
            paths: vec![PathDenial {
                path: "/home/ana/.config/app/conf".into(),
                access: Access::Read,
                why: Why::Absent,
                host: HostKind::File,
                secret: false,
                count: 2,
                first: 0.01,
            }],
            ..Default::default()
        };
        save(&dir, &t, false).unwrap();
        assert_eq!(load(&file(&dir, None)).unwrap(), t);
        std::fs::write(file(&dir, Some("bad")), "{not json").unwrap();
        let e = load(&file(&dir, Some("bad"))).unwrap_err();
        assert!(e.contains("corrupt JSON") && !e.contains('\n'), "{e}");
        std::fs::write(file(&dir, Some("old")), r#"{"version": 99}"#).unwrap();
        let e = load(&file(&dir, Some("old"))).unwrap_err();
        assert!(e.contains("format 99"), "{e}");
        let e = load(&file(&dir, Some("none"))).unwrap_err();
        assert!(e.contains("no trace kept"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The commands on named sandboxes: `ls`, `rm`, and the review of their
//! overlay layers, `diff`, `commit` and `discard` (the logic is in
//! `overlay::review`; this module finds the sandbox and its layers, maps
//! host paths to layers, and prints).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cli::Command;
use crate::error::{Error, StepError};
use crate::host::Host;
use crate::store;

pub fn command(cmd: Command, host: &Host) -> Result<i32, Error> {
    let root = store::root(&host.env, &host.home);
    match cmd {
        Command::Ls { json } => ls(&root, json),
        Command::Rm { names } => {
            for n in &names {
                let dir = existing(&root, n)?;
                // Not while a run holds it.
                let lock = store::lock(&dir, n)?;
                store::remove_tree(&dir).map_err(|e| io("removing", &dir, e))?;
                drop(lock);
            }
            Ok(0)
        }
        other => review(other, &root, host),
    }
}

fn io(step: &str, path: &Path, e: std::io::Error) -> Error {
    StepError::new(
        step,
        Some(path),
        nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    )
    .into()
}

/// The directory of an existing sandbox, or a usage error naming it.
fn existing(root: &Path, name: &str) -> Result<PathBuf, Error> {
    store::check_name(name).map_err(|e| Error::usage("sandbox name", name, e))?;
    let dir = root.join(name);
    if store::load_record(&dir).is_none() {
        return Err(Error::usage(
            "sandbox name",
            name,
            format!(
                "expected an existing sandbox, but there is none in {} (nook ls lists them)",
                root.display()
            ),
        ));
    }
    Ok(dir)
}

/// Bytes under `path`, not following symlinks.
fn du(path: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

fn ls(root: &Path, json: bool) -> Result<i32, Error> {
    let mut rows = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let dir = e.path();
            let Some(rec) = store::load_record(&dir) else {
                continue;
            };
            let age = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
                - rec.created;
            rows.push(serde_json::json!({
                "name": rec.name,
                "size_bytes": du(&dir.join("layers")),
                "age_seconds": age.max(0.0).round(),
                "overlays": rec.layers.iter().map(|l| l.lower.display().to_string()).collect::<Vec<_>>(),
            }));
        }
    }
    rows.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    if json {
        crate::out(&format!("{}\n", serde_json::Value::Array(rows)));
        return Ok(0);
    }
    for r in rows {
        let age = r["age_seconds"].as_f64().unwrap_or(0.0);
        let age = match age as u64 {
            s if s < 120 => format!("{s}s"),
            s if s < 7200 => format!("{}m", s / 60),
            s if s < 172_800 => format!("{}h", s / 3600),
            s => format!("{}d", s / 86400),
        };
        crate::out(&format!(
            "{:<32} {:>10} {:>5}  {}\n",
            r["name"].as_str().unwrap_or(""),
            crate::limits::human_bytes(r["size_bytes"].as_u64().unwrap_or(0)),
            age,
            r["overlays"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        ));
    }
    Ok(0)
}

fn review(_cmd: Command, _root: &Path, _host: &Host) -> Result<i32, Error> {
    Err(Error::usage("nook", "diff", "not built yet"))
}

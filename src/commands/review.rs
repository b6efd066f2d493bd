//! The commands on named sandboxes: `ls`, `rm`, and the review of their
//! overlay layers, `diff`, `commit` and `discard` (the logic is in
//! `overlay::review`; this module finds the sandbox and its layers, maps
//! host paths to layers, and prints). The names in an upper layer are the
//! sandbox's: every one is printed through `escape`, and so are the
//! reasons of the flags `risk` puts on changes that would run later on the
//! host (they quote git config values and symlink targets).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::risk;
use crate::cli::ReviewCommand;
use crate::error::Error;
use crate::escape;
use crate::host::Host;
use crate::state::layers;

pub fn command(cmd: ReviewCommand, host: &Host) -> Result<i32, Error> {
    use crate::overlay::review;
    let root = layers::root(&host.env, &host.home);
    match cmd {
        ReviewCommand::Ls { json } => ls(&root, json),
        ReviewCommand::Rm { names } => {
            for n in &names {
                // Not while a run holds it.
                let (dir, lock, _) = locked(&root, n)?;
                crate::overlay::remove_dir_tree(&dir)?;
                drop(lock);
            }
            Ok(0)
        }
        ReviewCommand::Diff {
            name,
            paths,
            stat,
            patch,
            json,
        } => {
            let (dir, rec) = existing(&root, &name)?;
            // A patch is the sandbox's bytes: exact into a file or a pipe,
            // escaped on a terminal.
            let tty = std::io::stdout().is_terminal();
            let mut text = String::new();
            let mut all = Vec::new();
            let mut flagged = 0;
            for (l, upper, only) in layers_for(&dir, &rec, &paths, &host.cwd)? {
                let changes = review::changes(&l.lower, &upper, &only)?;
                let protection =
                    risk::protection(&l.lower, &host.home, &rec.protect, &rec.unprotect);
                let risks = risk::assess(&l.lower, &upper, &changes, &protection);
                for (c, risks) in changes.into_iter().zip(risks) {
                    let host_path = l.lower.join(&c.path);
                    if !risks.is_empty() {
                        flagged += 1;
                    }
                    if json {
                        let mut v =
                            serde_json::to_value(json_paths(&c)).expect("Change serializes");
                        v["host_path"] = serde_json::Value::String(host_path.display().to_string());
                        v["risks"] = serde_json::to_value(&risks).expect("Risk serializes");
                        all.push(v);
                        continue;
                    }
                    let mut line = format!("{} {}", c.kind.letter(), escape::path(&host_path));
                    if c.file_type == review::FileType::Dir {
                        line.push('/');
                    }
                    if stat {
                        match (c.size, c.metadata_only) {
                            (_, true) => line.push_str("  (mode only)"),
                            (Some(s), _) => {
                                line.push_str(&format!("  {}", crate::spec::units::human_bytes(s)))
                            }
                            _ => {}
                        }
                    }
                    if !risks.is_empty() {
                        line.push_str(&format!("  ! {}", escape::line(&risk::shown(&risks))));
                    }
                    text.push_str(&line);
                    text.push('\n');
                    if patch && c.file_type == review::FileType::File && !c.metadata_only {
                        let p = review::patch(&l.lower, &upper, &c)?;
                        text.push_str(&if tty { escape::text(&p) } else { p.into() });
                    }
                }
            }
            if json {
                text = format!("{}\n", escape::json(&serde_json::Value::Array(all)));
            } else if flagged > 0 {
                text.push_str(&format!(
                    "{flagged} change(s) would run later on the host (!): nook commit refuses them unless each is named with --allow PATH, or --allow-risky is given\n"
                ));
            }
            super::out(&text);
            Ok(0)
        }
        ReviewCommand::Commit {
            name,
            paths,
            force,
            allow,
            allow_risky,
        } => {
            // The layers must not change under a mounted overlay; the lock
            // also keeps them as reviewed here until they are applied.
            let (dir, _lock, rec) = locked(&root, &name)?;
            let since = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(rec.created);
            let allowed: Vec<PathBuf> = allow
                .iter()
                .map(|a| crate::spec::normalize(&host.cwd.join(a)))
                .collect();
            let mut planned = Vec::new();
            let mut risky = Vec::new();
            let mut used = vec![false; allowed.len()];
            for (l, upper, only) in layers_for(&dir, &rec, &paths, &host.cwd)? {
                let changes = review::changes(&l.lower, &upper, &only)?;
                if !allow_risky {
                    let protection =
                        risk::protection(&l.lower, &host.home, &rec.protect, &rec.unprotect);
                    let risks = risk::assess(&l.lower, &upper, &changes, &protection);
                    for (c, risks) in changes.iter().zip(risks) {
                        if risks.is_empty() {
                            continue;
                        }
                        let host_path = l.lower.join(&c.path);
                        match allowed.iter().position(|a| host_path.starts_with(a)) {
                            Some(i) => used[i] = true,
                            None => risky.push((c.kind, host_path, risks)),
                        }
                    }
                }
                planned.push((l, upper, changes));
            }
            for (a, used) in allow.iter().zip(used) {
                if !used && !allow_risky {
                    eprint(&format!(
                        "nook: warning: --allow {}: no flagged change there\n",
                        escape::line(a)
                    ));
                }
            }
            // All or nothing: one flagged change keeps the whole commit
            // back, unless the user named paths to commit.
            if !risky.is_empty() {
                let mut msg = format!(
                    "nook: commit refused: {} change(s) would run later on the host; nothing was applied:\n",
                    risky.len()
                );
                for (kind, path, risks) in &risky {
                    msg.push_str(&format!(
                        "  {} {}  ! {}\n",
                        kind.letter(),
                        escape::path(path),
                        escape::line(&risk::shown(risks))
                    ));
                }
                msg.push_str(&format!(
                    "nook: hint: allow one with --allow PATH, all with --allow-risky, or commit only other paths with nook commit {} PATH...\n",
                    escape::name(&name)
                ));
                eprint(&msg);
                return Ok(1);
            }
            let mut text = String::new();
            let mut refused = 0;
            for (l, upper, changes) in planned {
                let r = review::commit(&l.lower, &upper, &changes, since, force)?;
                for c in &r.applied {
                    text.push_str(&format!(
                        "{} {}\n",
                        c.kind.letter(),
                        escape::path(&l.lower.join(&c.path))
                    ));
                }
                for n in &r.conflicts {
                    if force {
                        text.push_str(&format!(
                            "nook: overwrote {}: {}\n",
                            escape::path(&l.lower.join(&n.path)),
                            escape::line(&n.why)
                        ));
                    } else {
                        refused += 1;
                        text.push_str(&format!(
                            "nook: conflict: {}: {}\n",
                            escape::path(&l.lower.join(&n.path)),
                            escape::line(&n.why)
                        ));
                    }
                }
                for n in r.skipped.iter().chain(&r.notes) {
                    text.push_str(&format!(
                        "nook: {}: {}\n",
                        escape::path(&l.lower.join(&n.path)),
                        escape::line(&n.why)
                    ));
                }
            }
            super::out(&text);
            if refused > 0 {
                eprint(&format!(
                    "nook: commit refused: {refused} host file(s) changed after the sandbox started; nothing in their overlay was applied (--force overwrites them)\n"
                ));
                return Ok(1);
            }
            Ok(0)
        }
        ReviewCommand::Discard { name, paths } => {
            let (dir, _lock, rec) = locked(&root, &name)?;
            let mut n = 0;
            for (l, upper, only) in layers_for(&dir, &rec, &paths, &host.cwd)? {
                n += review::discard(&l.lower, &upper, &only)?;
            }
            super::out(&format!(
                "nook: discarded {n} change(s) in sandbox '{}'\n",
                escape::name(&name)
            ));
            Ok(0)
        }
    }
}

/// An existing sandbox's directory and record, or a usage error naming it
/// (a record that can't be read is an error of its own, never "none").
fn existing(root: &Path, name: &str) -> Result<(PathBuf, layers::Record), Error> {
    layers::check_name(name).map_err(|e| Error::usage("sandbox name", name, e))?;
    let dir = root.join(name);
    match layers::load_record(&dir)? {
        Some(rec) => Ok((dir, rec)),
        None => Err(Error::usage(
            "sandbox name",
            name,
            format!(
                "expected an existing sandbox, but there is none in {} (nook ls lists them)",
                root.display()
            ),
        )),
    }
}

/// An existing sandbox, locked against runs and other changes for as long
/// as the lock is held, with its record read under the lock.
fn locked(root: &Path, name: &str) -> Result<(PathBuf, layers::Lock, layers::Record), Error> {
    let (dir, _) = existing(root, name)?;
    let lock = layers::lock(&dir, name)?;
    let (dir, rec) = existing(root, name)?;
    Ok((dir, lock, rec))
}

/// The change with its paths made UTF-8 for JSON (each byte that is not
/// valid UTF-8 becomes U+FFFD, as in `host_path`): serde refuses other
/// paths, and a file name is the sandbox's to choose.
fn json_paths(c: &crate::overlay::review::Change) -> crate::overlay::review::Change {
    let lossy = |p: &Path| PathBuf::from(p.to_string_lossy().into_owned());
    let mut c = c.clone();
    c.path = lossy(&c.path);
    c.renamed_from = c.renamed_from.as_deref().map(lossy);
    c.target = c.target.as_deref().map(lossy);
    c
}

/// Write to stderr, whole; a closed stderr is not an error.
fn eprint(text: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
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
            let rec = match layers::load_record(&dir) {
                Ok(Some(rec)) => rec,
                Ok(None) => continue,
                Err(e) => {
                    eprintln!("nook: warning: {}", escape::line(&e.to_string()));
                    continue;
                }
            };
            let age = crate::host::unix_now() - rec.created;
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
        super::out(&format!(
            "{}\n",
            escape::json(&serde_json::Value::Array(rows))
        ));
        return Ok(0);
    }
    for r in rows {
        let age = crate::spec::units::human_age(r["age_seconds"].as_f64().unwrap_or(0.0) as u64);
        super::out(&format!(
            "{:<32} {:>10} {:>5}  {}\n",
            escape::name(r["name"].as_str().unwrap_or("")),
            crate::spec::units::human_bytes(r["size_bytes"].as_u64().unwrap_or(0)),
            age,
            r["overlays"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|x| x.as_str())
                    .map(escape::name)
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        ));
    }
    Ok(0)
}

/// The sandbox's layers, each with the paths of `args` that fall in it
/// (relative to its root); all layers when `args` is empty.
fn layers_for(
    dir: &Path,
    rec: &layers::Record,
    args: &[String],
    cwd: &Path,
) -> Result<Vec<(crate::plan::KeptLayer, PathBuf, Vec<PathBuf>)>, Error> {
    let mut out: Vec<(crate::plan::KeptLayer, PathBuf, Vec<PathBuf>)> = rec
        .layers
        .iter()
        .map(|l| {
            (
                l.clone(),
                crate::plan::layers::upper(dir, &l.key),
                Vec::new(),
            )
        })
        .collect();
    if args.is_empty() {
        return Ok(out);
    }
    let mut used = vec![false; out.len()];
    for a in args {
        let p = crate::spec::normalize(&cwd.join(a));
        let hit = out.iter_mut().enumerate().find_map(|(i, (l, _, only))| {
            let rel = p.strip_prefix(&l.lower).ok()?;
            only.push(rel.to_path_buf());
            Some(i)
        });
        match hit {
            Some(i) => used[i] = true,
            None => {
                let lowers: Vec<String> = rec
                    .layers
                    .iter()
                    .map(|l| l.lower.display().to_string())
                    .collect();
                return Err(Error::usage(
                    "path",
                    a,
                    format!(
                        "expected a path under one of the sandbox's overlays: {}",
                        lowers.join(", ")
                    ),
                ));
            }
        }
    }
    // Layers no argument named are left out; an empty `only` would mean all.
    Ok(out
        .into_iter()
        .zip(used)
        .filter_map(|(l, u)| u.then_some(l))
        .collect())
}

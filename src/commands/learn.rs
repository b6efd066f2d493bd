//! `nook learn [--profile BASE] [--output FILE] [--name NAME] -- CMD...`:
//! run CMD traced in the sandbox of BASE, through `nook run` itself
//! (nothing runs outside a sandbox), then write a profile that extends
//! BASE and adds what the run was refused and [`super::advice`] proposes,
//! each entry under a comment saying why. What it does not propose
//! (secrets, over-wide paths, paths only looked at, bare addresses, limits)
//! is listed as comments at the end, for the user to decide.
//!
//! With an existing FILE the run is under FILE itself (which extends its
//! base), and the proposal is merged into it: `toml_edit` keeps the user's
//! comments, layout and entries; lists only grow, and an entry an existing
//! one already covers is not added. So each round learns what the previous
//! one let the command get to.
//!
//! The proposal is checked as `nook profile check` would before anything
//! is written. Exit status 0 when a proposal was written; the command's
//! own status is said on stderr.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, TableLike, Value};

use super::advice::{self, Advice, Entry, Grant, Refused};
use crate::cli::{LearnArgs, RunRequest};
use crate::error::{Context, Error, Step};
use crate::escape;
use crate::host::Host;
use crate::profile::{self, Catalogue, Vars};
use crate::settings::Key;
use crate::state::trace;

pub fn command(a: LearnArgs) -> Result<i32, Error> {
    if let Some(n) = &a.name {
        // Before it names a trace file.
        crate::state::layers::check_name(n).map_err(|e| Error::usage("--name", n, e))?;
    }
    let host = Host::detect();
    let catalogue = Catalogue::new(&host);
    // A symlink is followed: the file it names is the one to merge into.
    let output = a.output.as_deref().map(|o| {
        let p = host.cwd.join(o);
        std::fs::canonicalize(&p).unwrap_or(p)
    });
    let existing = match &output {
        Some(p) if p.exists() => Some(std::fs::read_to_string(p).map_err(|e| Error::At {
            at: p.display().to_string(),
            what: format!("cannot read the profile: {e}"),
        })?),
        _ => None,
    };
    // Before the run, not after it.
    if let (Some(o), Some(p), None) = (&a.output, &output, &existing)
        && !p.parent().is_some_and(Path::is_dir)
    {
        return Err(Error::usage(
            "--output",
            o,
            "expected a file in an existing directory",
        ));
    }
    let (profiles, extends) = match (&output, &existing) {
        (Some(out), Some(text)) => {
            if let Some(p) = &a.profile {
                check_base(&catalogue, out, text, p)?;
            }
            (vec![out.display().to_string()], String::new())
        }
        _ => {
            let base = a
                .profile
                .clone()
                .unwrap_or_else(|| catalogue.implicit(&a.command[0]));
            let src = find(&catalogue, &base)?;
            // A file by its absolute path: `extends` names are looked up
            // from the current directory, wherever the profile is.
            let extends = match src.kind {
                profile::Kind::File => std::fs::canonicalize(&src.path)
                    .unwrap_or(src.path)
                    .display()
                    .to_string(),
                _ => base.clone(),
            };
            (vec![base], extends)
        }
    };

    let file = trace::file(&trace::dir(&host.env, &host.home), a.name.as_deref());
    let before = file_id(&file);
    let ran = super::run::run(RunRequest {
        profiles: profiles.clone(),
        trace: true,
        // Learning wants every look, whatever it costs.
        trace_stat: true,
        name: a.name.clone(),
        command: a.command.clone(),
        ..Default::default()
    });
    // Only a trace this run saved: `trace::save` renames a new file over
    // the old, so a fresh one is a different inode.
    let fresh = file_id(&file).is_some_and(|id| Some(id) != before);
    let t = fresh
        .then(|| trace::load(&file).ok())
        .flatten()
        .filter(|t| t.command == a.command);
    let Some(t) = t else {
        return Err(match ran {
            Err(e) => e,
            Ok(_) => Error::Input(format!(
                "{}: the run kept no trace; nothing to learn from",
                file.display()
            )),
        });
    };
    if let Err(e) = &ran {
        // The command failed in the sandbox; what it was refused on the
        // way is still worth proposing.
        super::report_error(e);
    }

    let advice = advice::advise(&t, &host.home);
    let p = propose(
        existing.as_deref(),
        &extends,
        &t,
        &advice,
        &host.home,
        catalogue.vars(),
    )
    .map_err(|what| Error::At {
        at: output
            .as_ref()
            .map_or("the proposal".into(), |o| o.display().to_string()),
        what,
    })?;
    let check_path = output
        .clone()
        .unwrap_or_else(|| PathBuf::from("<proposed profile>"));
    check(&catalogue, &host, &p.text, &check_path, &a.command)?;
    match &output {
        Some(path) => write_over(path, &p.text)?,
        None => super::out(&p.text),
    }

    let command = escape::line(&advice::command_line(&a.command)).into_owned();
    let mut msg = format!(
        "nook: learn: `{}` exited with status {} under {}\n",
        command,
        t.exit_status,
        escape::line(&profiles.join(", "))
    );
    let noted = if p.noted > 0 {
        format!(
            "; {} more refusal(s) listed as comments for you to decide",
            p.noted
        )
    } else {
        String::new()
    };
    match &output {
        Some(path) => {
            let shown = escape::path(path);
            msg.push_str(&format!(
                "nook: learn: {} entr{} added to {shown}{noted}\n",
                p.added,
                if p.added == 1 { "y" } else { "ies" },
            ));
            msg.push_str(&format!(
                "nook: hint: review it, then `nook run --profile {shown} -- {}`\n",
                command
            ));
        }
        None => msg.push_str(&format!(
            "nook: learn: {} entr{} proposed{noted}\n",
            p.added,
            if p.added == 1 { "y" } else { "ies" },
        )),
    }
    eprint(&msg);
    Ok(0)
}

fn eprint(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn find(catalogue: &Catalogue<'_>, name: &str) -> Result<profile::Source, Error> {
    catalogue.find(name)?.ok_or_else(|| {
        Error::usage(
            "--profile",
            name,
            "expected a profile name or a path to a .toml file",
        )
        .with_hint("'nook profile list' shows the profiles nook can find")
    })
}

/// `--profile BASE` with an existing FILE: BASE must be FILE or one of
/// its parents, since the run is under FILE and the proposal goes into it.
fn check_base(catalogue: &Catalogue<'_>, out: &Path, text: &str, base: &str) -> Result<(), Error> {
    let src = find(catalogue, base)?;
    if src.path == out || std::fs::canonicalize(&src.path).is_ok_and(|c| c == out) {
        return Ok(());
    }
    let parents = extends_of(text);
    let is_base = |n: &String| {
        catalogue
            .find(n)
            .ok()
            .flatten()
            .is_some_and(|s| s.path == src.path)
    };
    if parents.iter().any(is_base) {
        return Ok(());
    }
    Err(Error::usage(
        "--profile",
        base,
        format!(
            "expected a profile that {} extends ({}): an existing --output file is merged into, and its own parents stay; choose another --output to learn under {base}",
            out.display(),
            if parents.is_empty() {
                "none".to_string()
            } else {
                parents.join(", ")
            }
        ),
    ))
}

/// The `extends` list of a profile's text (empty when it has none or is
/// not TOML: the run under it will say what is wrong).
fn extends_of(text: &str) -> Vec<String> {
    let Ok(doc) = text.parse::<DocumentMut>() else {
        return Vec::new();
    };
    doc.get("extends")
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn file_id(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// What `nook profile check` does, on the text about to be written.
fn check(
    catalogue: &Catalogue<'_>,
    host: &Host,
    text: &str,
    path: &Path,
    command: &[String],
) -> Result<(), Error> {
    let failed = |e: Error| Error::At {
        at: "nook learn".into(),
        what: format!("the proposed profile does not check: {e}; nothing was written"),
    };
    let layer = catalogue.check_text(text, path).map_err(failed)?;
    let name = path.display().to_string();
    crate::spec::resolve(
        &layer,
        &crate::spec::Request {
            command,
            profiles: std::slice::from_ref(&name),
        },
        host,
    )
    .map_err(failed)?;
    Ok(())
}

/// Replace `path` by a file holding `text`, through a temporary file and a
/// rename, with the old file's mode.
fn write_over(path: &Path, text: &str) -> Result<(), Error> {
    let name = path
        .file_name()
        .map_or("profile".into(), |n| n.to_string_lossy());
    let tmp = path.with_file_name(format!(".{name}.nook-learn.{}", std::process::id()));
    std::fs::write(&tmp, text).step(Step::Write, Some(&tmp))?;
    if let Ok(m) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, m.permissions());
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        crate::error::StepError::io(Step::Rename, Some(path), &e)
    })?;
    Ok(())
}

/// A proposed profile: its text, how many entries it added, and how many
/// refusals it listed as comments.
#[derive(Debug)]
pub struct Proposal {
    pub text: String,
    pub added: usize,
    pub noted: usize,
}

/// The line above the comments listing what was not proposed.
const NOT_PROPOSED: &str = "# Not proposed by nook learn; decide yourself:";

/// At most this many reasons above one entry.
const MAX_NOTES: usize = 5;

/// The profile that adds what `advice` proposes to `existing`, or to a new
/// file extending `extends`; what it does not propose goes in comments at
/// the end. Pure: `home` and `vars` say how `~` and variables expand.
pub fn propose(
    existing: Option<&str>,
    extends: &str,
    t: &trace::Trace,
    advice: &[Advice],
    home: &Path,
    vars: &Vars,
) -> Result<Proposal, String> {
    let mut doc: DocumentMut = match existing {
        Some(text) => text.parse().map_err(|e: toml_edit::TomlError| {
            format!(
                "not a TOML file: {}",
                e.to_string().lines().next().unwrap_or("")
            )
        })?,
        None => header(t, extends)
            .parse()
            .map_err(|e: toml_edit::TomlError| format!("the new profile's header: {e}"))?,
    };
    let have = granted(&doc, vars);
    let new: Vec<(Entry, Vec<String>)> = proposals(advice, home)
        .into_iter()
        .filter(|(e, _)| {
            let g = grant(e, home);
            !have.iter().any(|h| covers(h, &g))
        })
        .collect();
    for (entry, notes) in &new {
        add(&mut doc, entry, notes)?;
    }

    // What was not proposed, unless an entry covers it or an earlier
    // round listed it already.
    let all: Vec<Granted> = have
        .into_iter()
        .chain(new.iter().map(|(e, _)| grant(e, home)))
        .collect();
    let text = doc.to_string();
    let mut lines = Vec::new();
    for a in advice {
        match &a.grant {
            Grant::Propose(_) => continue,
            Grant::Mention(e, _) if all.iter().any(|h| covers(h, &grant(e, home))) => continue,
            _ => {}
        }
        let line = format!("#   {}", escape::line(&a.line(home)));
        if !text.contains(&line) && !lines.contains(&line) {
            lines.push(line);
        }
    }
    if !lines.is_empty() {
        let mut trailing = doc.trailing().as_str().unwrap_or("").to_string();
        if !text.contains(NOT_PROPOSED) {
            trailing.push('\n');
            trailing.push_str(NOT_PROPOSED);
            trailing.push('\n');
        }
        for l in &lines {
            trailing.push_str(l);
            trailing.push('\n');
        }
        doc.set_trailing(trailing);
    }
    Ok(Proposal {
        text: doc.to_string(),
        added: new.len(),
        noted: lines.len(),
    })
}

/// The top of a new profile: what made it, and its parent.
fn header(t: &trace::Trace, extends: &str) -> String {
    let command = escape::line(&advice::command_line(&t.command)).into_owned();
    format!(
        "# Learned by `nook learn` from a run of `{}`\n\
         # under the profile {} (exit status {}). Each entry says what the run\n\
         # was refused. Review every line before you rely on it: a trace reports\n\
         # what the command asked for, not what it should get. Secrets and\n\
         # over-wide paths are never proposed; what was not is listed at the end.\n\
         extends = [{}]\n",
        command,
        escape::line(&t.profiles.join(", ")),
        t.exit_status,
        toml::Value::String(extends.to_string())
    )
}

/// Why an entry is proposed: what was refused, how often, the first time.
fn note(a: &Advice, home: &Path) -> String {
    let first = match a.refused {
        Refused::Path { first, .. } => format!(", first after {first:.2} s"),
        _ => String::new(),
    };
    escape::line(&format!(
        "{}{first}: {}",
        a.refused.subject(a.count, home),
        a.refused.reason()
    ))
    .into_owned()
}

/// The proposed entries, each once with every reason, in table order
/// (the most frequent first within a key); an entry another proposed one
/// covers gives its reasons to that one.
fn proposals(advice: &[Advice], home: &Path) -> Vec<(Entry, Vec<String>)> {
    let mut groups: Vec<(Entry, Vec<String>)> = Vec::new();
    for a in advice {
        let Grant::Propose(e) = &a.grant else {
            continue;
        };
        let n = note(a, home);
        match groups.iter_mut().find(|(g, _)| g == e) {
            Some((_, notes)) => notes.push(n),
            None => groups.push((e.clone(), vec![n])),
        }
    }
    let mut i = 0;
    while i < groups.len() {
        let this = &groups[i].0;
        let g = grant(this, home);
        let by = (0..groups.len()).find(|&j| {
            let other = &groups[j].0;
            j != i
                && if this.key == Key::NetAllow {
                    // A lookup's NAME gives way to a connection's
                    // NAME:PORT, which lets the lookup through too.
                    other.key == Key::NetAllow && with_port(&other.value, &this.value)
                } else {
                    covers(&grant(other, home), &g)
                }
        });
        match by {
            Some(j) => {
                let (_, notes) = groups.remove(i);
                let j = if j > i { j - 1 } else { j };
                groups[j].1.extend(notes);
            }
            None => i += 1,
        }
    }
    let rank = |k: Key| Key::ALL.iter().position(|&x| x == k);
    groups.sort_by_key(|(e, _)| rank(e.key));
    groups
}

/// `dest` is `name` with a port.
fn with_port(dest: &str, name: &str) -> bool {
    dest.strip_prefix(name)
        .and_then(|r| r.strip_prefix(':'))
        .is_some_and(|p| p.parse::<u16>().is_ok())
}

/// What an entry grants, for telling whether another covers it.
#[derive(Debug, Clone, PartialEq)]
enum Granted {
    /// A host path shown at the same place, read-only or writable.
    Fs {
        path: PathBuf,
        rw: bool,
    },
    Other {
        key: Key,
        value: String,
    },
}

fn grant(e: &Entry, home: &Path) -> Granted {
    match (e.path(home), e.key) {
        (Some(path), Key::Bind | Key::BindTry) => Granted::Fs { path, rw: true },
        (Some(path), Key::RoBind | Key::RoBindTry) => Granted::Fs { path, rw: false },
        _ => Granted::Other {
            key: e.key,
            value: e.value.clone(),
        },
    }
}

/// `a` already gives what `b` would: a path at or above it, writable if
/// `b` is; the same value; a destination without a port for one with.
fn covers(a: &Granted, b: &Granted) -> bool {
    match (a, b) {
        (Granted::Fs { path: pa, rw: wa }, Granted::Fs { path: pb, rw: wb }) => {
            pb.starts_with(pa) && (*wa || !*wb)
        }
        (Granted::Other { key: ka, value: va }, Granted::Other { key: kb, value: vb }) => {
            ka == kb && (va == vb || (*ka == Key::NetAllow && with_port(vb, va)))
        }
        _ => false,
    }
}

/// What the file grants already (binds of a path to the same place,
/// allowed destinations and system calls), variables expanded.
fn granted(doc: &DocumentMut, vars: &Vars) -> Vec<Granted> {
    let mut out = Vec::new();
    for key in [
        Key::RoBind,
        Key::RoBindTry,
        Key::Bind,
        Key::BindTry,
        Key::NetAllow,
        Key::SeccompAllow,
    ] {
        let table: Option<&dyn TableLike> = match key.def().section.table() {
            None => Some(doc.as_table()),
            Some(t) => doc.get(t).and_then(Item::as_table_like),
        };
        let Some(values) = table
            .and_then(|t| t.get(key.name()))
            .and_then(Item::as_array)
        else {
            continue;
        };
        for v in values.iter().filter_map(Value::as_str) {
            out.push(match key.fs() {
                Some(_) => {
                    // SRC:DST shows SRC elsewhere: not this path.
                    let Ok(path) = vars.expand(v, true) else {
                        continue;
                    };
                    if path.contains(':') {
                        continue;
                    }
                    Granted::Fs {
                        path: crate::spec::normalize(Path::new(&path)),
                        rw: matches!(key, Key::Bind | Key::BindTry),
                    }
                }
                None => Granted::Other {
                    key,
                    value: v.to_string(),
                },
            });
        }
    }
    out
}

/// Add `entry` to its list (made when missing), one value a line, under
/// its reasons.
fn add(doc: &mut DocumentMut, entry: &Entry, notes: &[String]) -> Result<(), String> {
    let name = entry.key.name();
    let table: &mut dyn TableLike = match entry.key.def().section.table() {
        None => doc.as_table_mut(),
        Some(section) => doc
            .as_table_mut()
            .entry(section)
            .or_insert_with(toml_edit::table)
            .as_table_like_mut()
            .ok_or_else(|| format!("`{section}` is not a table"))?,
    };
    let list = table
        .entry(name)
        .or_insert(Item::Value(Value::Array(Array::new())))
        .as_array_mut()
        .ok_or_else(|| format!("`{name}` is not a list"))?;
    // One value a line, so that each can carry its comment.
    for v in list.iter_mut() {
        let on_own_line = v
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .is_some_and(|p| p.contains('\n'));
        if !on_own_line {
            v.decor_mut().set_prefix("\n    ");
        }
    }
    let mut prefix = String::from("\n");
    for n in notes.iter().take(MAX_NOTES) {
        prefix.push_str(&format!("    # {n}\n"));
    }
    if notes.len() > MAX_NOTES {
        prefix.push_str(&format!("    # ... and {} more\n", notes.len() - MAX_NOTES));
    }
    prefix.push_str("    ");
    let mut v = Value::from(entry.value.as_str());
    v.decor_mut().set_prefix(prefix);
    list.push_formatted(v);
    list.set_trailing_comma(true);
    if !list.trailing().as_str().is_some_and(|t| t.contains('\n')) {
        list.set_trailing("\n");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::trace::{
        Access, HostKind, LimitHit, NetDenial, PathDenial, SyscallDenial, Trace, Why,
    };

    fn host() -> Host {
        Host::fake()
    }

    fn d(path: &str, access: Access, host: HostKind, count: u32) -> PathDenial {
        PathDenial {
            path: path.into(),
            access,
            why: Why::Absent,
            host,
            secret: false,
            count,
            first: 0.25,
        }
    }

    fn sample() -> Trace {
        use Access::*;
        use HostKind::*;
        Trace {
            version: trace::VERSION,
            name: "sb-1".into(),
            command: vec!["app".into()],
            profiles: vec!["default".into()],
            exit_status: 1,
            paths: vec![
                d("/home/ana/.config/app/conf", Read, File, 3),
                d("/home/ana/.config/app/themes", List, Dir, 1),
                d("/home/ana/.cache/app/db", Write, File, 2),
                d("/home/ana/.cache/app/db", Read, File, 2),
                d("/home/ana/.ssh/id_ed25519", Read, File, 1),
                d("/home/ana", List, Dir, 1),
                d("/home/ana/.local/share/fonts", Stat, Dir, 7),
                d("/home/ana/.config/app/extra", Stat, File, 1),
            ],
            syscalls: vec![SyscallDenial {
                name: "ptrace".into(),
                count: 1,
            }],
            network: vec![
                NetDenial {
                    lookup: true,
                    dest: "api.example.com".into(),
                    reason: crate::runtime::gate::NOT_ALLOWED.into(),
                    count: 1,
                },
                NetDenial {
                    lookup: false,
                    dest: "api.example.com:443".into(),
                    reason: crate::runtime::gate::NOT_ALLOWED.into(),
                    count: 2,
                },
            ],
            limits: vec![LimitHit {
                what: "timeout".into(),
                setting: "--timeout 1s".into(),
            }],
            ..Default::default()
        }
    }

    fn learn(existing: Option<&str>, t: &Trace) -> Proposal {
        let h = host();
        let cat = Catalogue::new(&h);
        propose(
            existing,
            "default",
            t,
            &advice::advise(t, &h.home),
            &h.home,
            cat.vars(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The text parses and resolves as a profile, as `nook profile check`
    /// would have it; its merged layer.
    fn checks(text: &str) -> crate::settings::Layer {
        let h = host();
        let cat = Catalogue::new(&h);
        cat.check_text(text, Path::new("/p/learned.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn values(layer: &crate::settings::Layer, key: Key) -> Vec<String> {
        layer.list::<String>(key).into_iter().map(|v| v.v).collect()
    }

    #[test]
    fn a_new_proposal_extends_the_base_and_adds_what_was_needed() {
        let p = learn(None, &sample());
        let text = &p.text;
        let parsed: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed["extends"][0].as_str(), Some("default"), "{text}");
        let list = |k: &str| -> Vec<&str> {
            parsed
                .get(k)
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default()
        };
        assert_eq!(list("ro-bind-try"), ["~/.config/app"], "{text}");
        assert_eq!(list("bind-try"), ["~/.cache/app"], "{text}");
        assert_eq!(list("seccomp-allow"), ["ptrace"], "{text}");
        assert_eq!(
            parsed["network"]["net-allow"].as_array().unwrap().len(),
            1,
            "the lookup gives way to the connection\n{text}"
        );
        assert_eq!(
            parsed["network"]["net-allow"][0].as_str(),
            Some("api.example.com:443")
        );
        assert_eq!(p.added, 4);
        // Each entry under its reasons: access, count, first use.
        assert!(
            text.contains(
                "    # ~/.config/app/conf (read, 3 times), first after 0.25 s: not in the view\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("~/.config/app/themes (list, 1 time)"),
            "{text}"
        );
        // Not proposed, as comments: the secret, $HOME, the stat of fonts,
        // the limit; the stat of ~/.config/app/extra is covered.
        for word in [
            "~/.ssh/id_ed25519 (read, 1 time): not in the view; a secret: not proposed",
            "#   ~ (list, 1 time): not in the view; ~ is too wide",
            "#   ~/.local/share/fonts (stat, 7 times)",
            "#   limit timeout: the run hit --timeout 1s",
        ] {
            assert!(text.contains(word), "{word}\n{text}");
        }
        assert!(!text.contains("extra"), "{text}");
        assert_eq!(p.noted, 4);
        assert!(
            !text.contains("\"~/.ssh") && !text.contains("\"~\""),
            "{text}"
        );
        let layer = checks(text);
        assert_eq!(values(&layer, Key::RoBindTry), ["/home/ana/.config/app"]);
        assert_eq!(values(&layer, Key::BindTry), ["/home/ana/.cache/app"]);
    }

    #[test]
    fn merging_keeps_the_file_and_adds_only_what_is_new() {
        let existing = "\
# my app, my comments
extends = [\"default\"]
ro-bind-try = [\"~/.config/app\", \"/opt/x\"]  # mine
setenv = [\"A=1\"]

[network]
net = \"user\"
# the API
net-allow = [\"api.example.com:443\"]

# my trailing words
";
        let p = learn(Some(existing), &sample());
        let text = &p.text;
        for kept in [
            "# my app, my comments\n",
            "# mine",
            "# the API\n",
            "# my trailing words\n",
            "setenv = [\"A=1\"]",
        ] {
            assert!(text.contains(kept), "{kept}\n{text}");
        }
        // ~/.config/app and api.example.com:443 were there: only the cache
        // and ptrace are new.
        assert_eq!(p.added, 2, "{text}");
        let layer = checks(text);
        // (Parents first by depth: /opt/x is shallower.)
        assert_eq!(
            values(&layer, Key::RoBindTry),
            ["/opt/x", "/home/ana/.config/app"]
        );
        assert_eq!(values(&layer, Key::BindTry), ["/home/ana/.cache/app"]);
        assert_eq!(values(&layer, Key::SeccompAllow), ["ptrace"]);
        assert_eq!(values(&layer, Key::NetAllow), ["api.example.com:443"]);
        // A second round with the same trace changes nothing.
        let again = learn(Some(text), &sample());
        assert_eq!(again.added, 0);
        assert_eq!(again.noted, 0);
        assert_eq!(&again.text, text);
    }

    #[test]
    fn a_wider_existing_grant_covers_a_new_one() {
        let existing = "extends = [\"default\"]\nbind-try = [\"${HOME}/.config\"]\n";
        let t = Trace {
            command: vec!["app".into()],
            paths: vec![d(
                "/home/ana/.config/app/conf",
                Access::Read,
                HostKind::File,
                1,
            )],
            ..Default::default()
        };
        let p = learn(Some(existing), &t);
        assert_eq!(p.added, 0, "{}", p.text);
        assert_eq!(p.text, existing);
    }

    #[test]
    fn names_from_the_sandbox_are_escaped_in_comments() {
        let t = Trace {
            command: vec!["app\n[evil]".into(), "\x1b[2J".into()],
            profiles: vec!["default".into()],
            paths: vec![
                d(
                    "/home/ana/.config/x\ny/conf",
                    Access::Read,
                    HostKind::File,
                    1,
                ),
                d(
                    "/home/ana/.config/ok\x7f/conf",
                    Access::Read,
                    HostKind::File,
                    1,
                ),
            ],
            ..Default::default()
        };
        let p = learn(None, &t);
        assert!(
            !p.text.chars().any(|c| c.is_control() && c != '\n'),
            "{:?}",
            p.text
        );
        // Every line is a comment, a key or inside a list: none forged.
        let parsed: toml::Table =
            toml::from_str(&p.text).unwrap_or_else(|e| panic!("{e}\n{}", p.text));
        assert!(!parsed.contains_key("evil"), "{}", p.text);
        assert_eq!(p.added, 0, "{}", p.text);
        checks(&p.text);
    }

    #[test]
    fn a_file_that_is_not_toml_is_one_line() {
        let e = {
            let h = host();
            let cat = Catalogue::new(&h);
            propose(
                Some("extends = [\n"),
                "default",
                &Trace::default(),
                &[],
                &h.home,
                cat.vars(),
            )
            .unwrap_err()
        };
        assert!(e.starts_with("not a TOML file") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn nothing_refused_gives_the_base_alone() {
        let t = Trace {
            command: vec!["true".into()],
            profiles: vec!["default".into()],
            ..Default::default()
        };
        let p = learn(None, &t);
        assert_eq!((p.added, p.noted), (0, 0));
        assert!(p.text.ends_with("extends = [\"default\"]\n"), "{}", p.text);
        checks(&p.text);
    }
}

//! From a traced run's refusals to the settings that would have allowed
//! them: the rules `nook why` shows and `nook learn` writes, in one place.
//! Pure: a kept `Trace` and the host's HOME in, [`Advice`] out.
//!
//! The rules, each refusal on its own:
//! - a path the command read, listed, ran or looked at (stat) and the view
//!   lacks: `ro-bind-try` of the nearest directory that holds it (a file's
//!   directory, a directory itself; a socket or device exactly); a write,
//!   or a write to what the view has read-only: `bind-try` the same way;
//! - that directory is replaced by the exact path when it is over-wide
//!   ([`over_wide`]: `/`, the top-level system directories, `$HOME`, its
//!   parents, `~/.config`, `~/.local/share`, `~/.cache`...), and nothing is
//!   proposed when the exact path is over-wide too;
//! - never proposed: a secret (the trace says so, or the path is in or
//!   under one of `profile::secrets`), a write to a protected path (git's
//!   hooks and config, `.envrc`... in a read-write share), a write to the
//!   system's files, a host `/proc` path, and a path a profile value can't
//!   name (`:`, `${`, a control character);
//! - a path only looked at (stat, never opened) is mentioned, not proposed:
//!   programs look for many files they do without;
//! - a system call the filter refused: `seccomp-allow`;
//! - a lookup the egress gate refused: `net-allow NAME`; a connection to a
//!   name: `net-allow NAME:PORT`; to a bare address: mentioned only (an
//!   address changes; the name is what to allow); a refusal for another
//!   reason than the allow-list (no server name, an encrypted ClientHello)
//!   is not something an entry changes;
//! - a limit the run hit: its setting, for the user to raise.
//!
//! The trace is a report of what the command asked for, not a verdict on
//! what it should get: everything here is a proposal for the user.

use std::path::{Path, PathBuf};

use crate::profile::{protected, secrets};
use crate::settings::{Key, Section};
use crate::state::trace::{Access, HostKind, Trace, Why};

/// What a run was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    Path {
        path: PathBuf,
        access: Access,
        why: Why,
        host: HostKind,
        /// Seconds after the start, the first time.
        first: f64,
    },
    Syscall(String),
    Net {
        lookup: bool,
        dest: String,
        reason: String,
    },
    Limit {
        what: String,
        setting: String,
    },
}

/// One profile entry: a key of the table and one value, written as a
/// profile writes it (`~/...` for paths under HOME).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    pub key: Key,
    pub value: String,
}

/// What to do about a refusal.
#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    /// This entry allows it; `nook learn` writes it.
    Propose(Entry),
    /// This entry would allow it, but `learn` only mentions it, for the
    /// reason given.
    Mention(Entry, &'static str),
    /// A limit: the user picks a larger value for this key.
    Raise(Key),
    /// Nothing is proposed, for this reason.
    Withhold(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub refused: Refused,
    pub count: u32,
    pub grant: Grant,
}

/// What `why` says of a secret, and `learn` writes beside it.
pub const SECRET: &str =
    "a secret: not proposed; bind it yourself only if the command must have it";

/// The advice for every refusal of `t`, limits first (a limit ends the
/// run), then the most frequent first.
pub fn advise(t: &Trace, home: &Path) -> Vec<Advice> {
    let mut out = Vec::new();
    for l in &t.limits {
        out.push(Advice {
            refused: Refused::Limit {
                what: l.what.clone(),
                setting: l.setting.clone(),
            },
            count: 1,
            grant: limit_key(&l.what).map_or_else(
                || Grant::Withhold(format!("nook has no setting named {}", l.what)),
                Grant::Raise,
            ),
        });
    }
    for d in &t.paths {
        let opened = t
            .paths
            .iter()
            .any(|o| o.path == d.path && o.access != Access::Stat);
        out.push(Advice {
            refused: Refused::Path {
                path: d.path.clone(),
                access: d.access,
                why: d.why,
                host: d.host,
                first: d.first,
            },
            count: d.count,
            grant: path_grant(d, opened, home),
        });
    }
    for s in &t.syscalls {
        out.push(Advice {
            refused: Refused::Syscall(s.name.clone()),
            count: s.count,
            grant: if crate::spec::syscalls::number(&s.name).is_some() {
                Grant::Propose(Entry {
                    key: Key::SeccompAllow,
                    value: s.name.clone(),
                })
            } else {
                Grant::Withhold(format!(
                    "not the name of an {} system call nook knows",
                    crate::spec::syscalls::ARCH_NAME
                ))
            },
        });
    }
    for n in &t.network {
        out.push(Advice {
            refused: Refused::Net {
                lookup: n.lookup,
                dest: n.dest.clone(),
                reason: n.reason.clone(),
            },
            count: n.count,
            grant: net_grant(n.lookup, &n.dest, &n.reason),
        });
    }
    // Stable: refusals of the same count keep the trace's order.
    out.sort_by_key(|a| {
        (
            !matches!(a.refused, Refused::Limit { .. }),
            std::cmp::Reverse(a.count),
        )
    });
    out
}

fn limit_key(what: &str) -> Option<Key> {
    const RLIMITS: [&str; 8] = [
        "nofile", "nproc", "fsize", "core", "cpu", "as", "stack", "memlock",
    ];
    Key::by_name(Section::Limits, what).or_else(|| RLIMITS.contains(&what).then_some(Key::Rlimit))
}

fn path_grant(d: &crate::state::trace::PathDenial, opened: bool, home: &Path) -> Grant {
    if !d.path.is_absolute() {
        return Grant::Withhold("not an absolute path".into());
    }
    let path = crate::spec::normalize(&d.path);
    if d.secret || is_secret(&path, home) {
        return Grant::Withhold(SECRET.into());
    }
    if path.starts_with("/proc") {
        return Grant::Withhold("the sandbox has its own /proc; the host's is not for it".into());
    }
    if path.starts_with("/sys") {
        return Grant::Withhold(
            "the host's kernel and device state: not proposed; bind it yourself only if the command must see the host's".into(),
        );
    }
    let write = d.access == Access::Write;
    if write
        && d.why == Why::ReadOnly
        && let Some(reason) = protected_reason(&path)
    {
        return Grant::Withhold(format!(
            "protected ({reason}): not proposed; --unprotect PATTERN releases it, if you must"
        ));
    }
    if write && is_system(&path) {
        return Grant::Withhold("a write to the system's files: not proposed".into());
    }
    let near = match d.host {
        // A new name: the directory it goes in.
        HostKind::File | HostKind::Missing => path
            .parent()
            .map_or_else(|| path.clone(), Path::to_path_buf),
        // A directory itself; a socket or a device exactly: its directory
        // holds others.
        HostKind::Dir | HostKind::Other => path.clone(),
    };
    let target = if over_wide(&near, home) {
        path.clone()
    } else {
        near
    };
    if over_wide(&target, home) {
        return Grant::Withhold(format!(
            "{} is too wide to grant: bind what the command needs below it",
            shown(&target, home)
        ));
    }
    let value = match profile_value(&target, home) {
        Ok(v) => v,
        Err(why) => return Grant::Withhold(why.into()),
    };
    let entry = Entry {
        key: if write { Key::BindTry } else { Key::RoBindTry },
        value,
    };
    if d.access == Access::Stat && !opened {
        Grant::Mention(
            entry,
            "only looked at, never opened: programs look for many files they can do without",
        )
    } else {
        Grant::Propose(entry)
    }
}

fn net_grant(lookup: bool, dest: &str, reason: &str) -> Grant {
    if reason != crate::runtime::gate::NOT_ALLOWED {
        return Grant::Withhold(format!(
            "{reason}: the gate admits connections by the name they carry, which no allow-list entry changes"
        ));
    }
    if crate::net::egress::parse(dest).is_err() {
        return Grant::Withhold("nothing an allow-list entry can name".into());
    }
    let entry = Entry {
        key: Key::NetAllow,
        value: dest.to_string(),
    };
    let bare_address = !lookup
        && (dest.parse::<std::net::SocketAddr>().is_ok()
            || dest.parse::<std::net::IpAddr>().is_ok());
    if bare_address {
        Grant::Mention(
            entry,
            "an address, without a name the gate could check: it may change; allow the name the program uses if you know it",
        )
    } else {
        Grant::Propose(entry)
    }
}

/// In or under one of the secrets nook hides.
pub fn is_secret(path: &Path, home: &Path) -> bool {
    secrets::paths(home).iter().any(|s| path.starts_with(s))
}

/// Too wide to grant as a whole: the root, the top-level system
/// directories and a few below them, `$HOME` and its parents, and the
/// directories under `$HOME` that every program shares.
pub fn over_wide(p: &Path, home: &Path) -> bool {
    const WIDE: &[&str] = &[
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/run/user",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/usr/bin",
        "/usr/lib",
        "/usr/lib64",
        "/usr/local",
        "/usr/sbin",
        "/usr/share",
        "/var",
        "/var/cache",
        "/var/lib",
        "/var/tmp",
    ];
    const WIDE_IN_HOME: &[&str] = &[
        ".config",
        ".local",
        ".local/share",
        ".local/state",
        ".local/bin",
        ".cache",
    ];
    WIDE.iter().any(|w| p == Path::new(w))
        || home.starts_with(p)
        || WIDE_IN_HOME.iter().any(|w| p == home.join(w))
        // $XDG_RUNTIME_DIR: every session's sockets.
        || p.parent() == Some(Path::new("/run/user"))
}

/// The system's own files, which no learned profile should make writable.
fn is_system(p: &Path) -> bool {
    [
        "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/opt",
        "/sys",
    ]
    .iter()
    .any(|s| p.starts_with(s))
}

/// Why writing `path` would run later on the host, judged as if any
/// directory above it were the root of a read-write share (the trace does
/// not say which share it was in).
fn protected_reason(path: &Path) -> Option<&'static str> {
    let protection = protected::Protection::new(&[], &[]).ok()?;
    path.ancestors()
        .skip(1)
        .filter_map(|a| path.strip_prefix(a).ok())
        .find_map(|rel| protection.reason(rel))
}

/// A path as the user reads it: `~` for HOME.
pub fn shown(p: &Path, home: &Path) -> String {
    if home != Path::new("/")
        && let Ok(rest) = p.strip_prefix(home)
    {
        if rest.as_os_str().is_empty() {
            return "~".into();
        }
        return format!("~/{}", rest.display());
    }
    p.display().to_string()
}

/// A path as a profile value (and a flag's), or why it can't be one.
fn profile_value(p: &Path, home: &Path) -> Result<String, &'static str> {
    let s = p
        .to_str()
        .ok_or("the path is not UTF-8, which a profile can't name")?;
    if s.contains(':') {
        return Err("the path holds ':', which a bind entry reads as SRC:DST");
    }
    if s.contains("${") {
        return Err("the path holds '${', which a profile reads as a variable");
    }
    if s.chars().any(char::is_control) {
        return Err("the path holds control characters");
    }
    Ok(shown(p, home))
}

impl Entry {
    /// `--ro-bind-try ~/.config/app`, quoted for a shell where needed.
    pub fn flag_line(&self) -> String {
        format!("{} {}", self.key.flag(), shell_word(&self.value))
    }

    /// `ro-bind-try = ["~/.config/app"]`, `[network] net-allow = [...]`.
    pub fn profile_line(&self) -> String {
        let value = toml::Value::String(self.value.clone()).to_string();
        let section = self
            .key
            .def()
            .section
            .table()
            .map_or(String::new(), |t| format!("[{t}] "));
        if self.key.def().list {
            format!("{section}{} = [{value}]", self.key.name())
        } else {
            format!("{section}{} = {value}", self.key.name())
        }
    }

    /// The path a filesystem entry grants, expanded as a profile would.
    pub fn path(&self, home: &Path) -> Option<PathBuf> {
        self.key.fs()?;
        Some(match self.value.strip_prefix('~') {
            Some("") => home.to_path_buf(),
            Some(rest) => home.join(rest.strip_prefix('/')?),
            None => PathBuf::from(&self.value),
        })
    }
}

/// `network.net-allow`, `limits.timeout`, `seccomp-allow`.
pub fn profile_key(key: Key) -> String {
    match key.def().section.table() {
        Some(t) => format!("{t}.{}", key.name()),
        None => key.name().to_string(),
    }
}

/// A path value as one shell word: as it is when it is plain, else quoted
/// after a leading `~/`, which the shell expands only unquoted.
fn shell_word(v: &str) -> String {
    match v.strip_prefix("~/") {
        Some(rest) if !plain(v) => format!("~/{}", quoted(rest)),
        _ => quoted(v),
    }
}

/// A command line as a shell would read it back (not yet escaped for the
/// terminal): `sh -c 'ls ~; exit 2'`.
pub fn command_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.starts_with('~') {
                in_quotes(a)
            } else {
                quoted(a)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%~".contains(c))
}

/// `s` as it is when it is plain, else in single quotes.
fn quoted(s: &str) -> String {
    if plain(s) {
        s.to_string()
    } else {
        in_quotes(s)
    }
}

fn in_quotes(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Refused {
    /// What was refused, as the user reads it: `~/.config/app/conf (read,
    /// 3 times)`.
    pub fn subject(&self, count: u32, home: &Path) -> String {
        let times = if count == 1 {
            "1 time".to_string()
        } else {
            format!("{count} times")
        };
        match self {
            Refused::Path { path, access, .. } => {
                format!("{} ({}, {times})", shown(path, home), access_word(*access))
            }
            Refused::Syscall(name) => format!("system call {name} ({times})"),
            Refused::Net {
                lookup: true, dest, ..
            } => format!("lookup of {dest} ({times})"),
            Refused::Net { dest, .. } => format!("connection to {dest} ({times})"),
            Refused::Limit { what, .. } => format!("limit {what}"),
        }
    }

    /// Why the sandbox refused it.
    pub fn reason(&self) -> String {
        match self {
            Refused::Path {
                why: Why::Absent, ..
            } => "not in the view".into(),
            Refused::Path {
                why: Why::ReadOnly, ..
            } => "read-only in the sandbox".into(),
            Refused::Syscall(_) => "refused by the seccomp filter".into(),
            Refused::Net { reason, .. } => reason.clone(),
            Refused::Limit { setting, .. } => format!("the run hit {setting}"),
        }
    }

    /// `path`, `syscall`, `network`, `limit`: for `--json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Refused::Path { .. } => "path",
            Refused::Syscall(_) => "syscall",
            Refused::Net { .. } => "network",
            Refused::Limit { .. } => "limit",
        }
    }
}

pub fn access_word(a: Access) -> &'static str {
    match a {
        Access::Stat => "stat",
        Access::Read => "read",
        Access::List => "list",
        Access::Exec => "exec",
        Access::Write => "write",
    }
}

impl Advice {
    /// The whole story in one line (not yet escaped): `~/.config/app/conf
    /// (read, 3 times): not in the view; allow it with ...`.
    pub fn line(&self, home: &Path) -> String {
        format!(
            "{}: {}; {}",
            self.refused.subject(self.count, home),
            self.refused.reason(),
            self.tail()
        )
    }

    /// What to do about it, after the reason: `allow it with ...`.
    pub fn tail(&self) -> String {
        match &self.grant {
            Grant::Propose(e) => format!(
                "allow it with {} (profile: {})",
                e.flag_line(),
                e.profile_line()
            ),
            Grant::Mention(e, note) => format!(
                "{note}; if it needs it: {} (profile: {})",
                e.flag_line(),
                e.profile_line()
            ),
            Grant::Raise(key) => {
                let d = key.def();
                let section = d
                    .section
                    .table()
                    .map_or(String::new(), |t| format!("[{t}] "));
                format!(
                    "raise it with {} {} (profile: {section}{})",
                    d.flag,
                    d.value_name,
                    d.name()
                )
            }
            Grant::Withhold(why) => why.clone(),
        }
    }

    /// For `--json`: {kind, refused, count, reason, advice, flag, value,
    /// profile_key, note}.
    pub fn to_json(&self, home: &Path) -> serde_json::Value {
        let (advice, entry, key, note): (&str, Option<&Entry>, Option<Key>, Option<String>) =
            match &self.grant {
                Grant::Propose(e) => ("propose", Some(e), Some(e.key), None),
                Grant::Mention(e, n) => ("mention", Some(e), Some(e.key), Some(n.to_string())),
                Grant::Raise(k) => ("raise", None, Some(*k), None),
                Grant::Withhold(w) => ("withhold", None, None, Some(w.clone())),
            };
        serde_json::json!({
            "kind": self.refused.kind(),
            "refused": self.refused.subject(self.count, home),
            "count": self.count,
            "reason": self.refused.reason(),
            "advice": advice,
            "flag": key.map(|k| k.flag()),
            "value": entry.map(|e| e.value.clone()),
            "profile_key": key.map(profile_key),
            "note": note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::trace::{LimitHit, NetDenial, PathDenial, SyscallDenial};

    const HOME: &str = "/home/ana";

    fn denial(path: &str, access: Access, why: Why, host: HostKind, count: u32) -> PathDenial {
        PathDenial {
            path: path.into(),
            access,
            why,
            host,
            secret: false,
            count,
            first: 0.5,
        }
    }

    fn one(d: PathDenial) -> Grant {
        let t = Trace {
            paths: vec![d],
            ..Default::default()
        };
        advise(&t, Path::new(HOME)).remove(0).grant
    }

    fn propose(key: Key, value: &str) -> Grant {
        Grant::Propose(Entry {
            key,
            value: value.into(),
        })
    }

    #[test]
    fn a_read_file_gets_its_directory_read_only() {
        use {Access::*, HostKind::*, Why::*};
        let cases = [
            (
                denial("/home/ana/.config/app/conf", Read, Absent, File, 3),
                propose(Key::RoBindTry, "~/.config/app"),
            ),
            (
                denial("/home/ana/.config/app", List, Absent, Dir, 1),
                propose(Key::RoBindTry, "~/.config/app"),
            ),
            (
                denial("/opt/tool/bin/tool", Exec, Absent, File, 1),
                propose(Key::RoBindTry, "/opt/tool/bin"),
            ),
            (
                denial("/home/ana/.cache/app/x", Write, Absent, File, 1),
                propose(Key::BindTry, "~/.cache/app"),
            ),
            (
                denial("/home/ana/data/out.txt", Write, ReadOnly, File, 1),
                propose(Key::BindTry, "~/data"),
            ),
            // A socket: exactly.
            (
                denial("/tmp/.X11-unix/X0", Write, Absent, Other, 1),
                propose(Key::BindTry, "/tmp/.X11-unix/X0"),
            ),
            // `..` in what the command named.
            (
                denial("/home/ana/x/../.config/app/conf", Read, Absent, File, 1),
                propose(Key::RoBindTry, "~/.config/app"),
            ),
        ];
        for (d, want) in cases {
            let path = d.path.clone();
            assert_eq!(one(d), want, "{}", path.display());
        }
    }

    #[test]
    fn over_wide_directories_give_the_exact_path_or_nothing() {
        use {Access::*, HostKind::*, Why::*};
        // The directory is $HOME, ~/.config, /etc: the file itself.
        assert_eq!(
            one(denial("/home/ana/.gitconfig", Read, Absent, File, 1)),
            propose(Key::RoBindTry, "~/.gitconfig")
        );
        assert_eq!(
            one(denial("/home/ana/.config/app.conf", Read, Absent, File, 1)),
            propose(Key::RoBindTry, "~/.config/app.conf")
        );
        assert_eq!(
            one(denial("/etc/app.conf", Read, Absent, File, 1)),
            propose(Key::RoBindTry, "/etc/app.conf")
        );
        // The exact path is over-wide too: nothing.
        for (p, host) in [
            ("/home/ana", Dir),
            ("/", Dir),
            ("/home", Dir),
            ("/usr", Dir),
            ("/run/user/1000", Dir),
            ("/home/ana/.local/share", Dir),
        ] {
            let g = one(denial(p, List, Absent, host, 1));
            assert!(
                matches!(&g, Grant::Withhold(w) if w.contains("too wide")),
                "{p}: {g:?}"
            );
        }
        for p in [
            "/",
            "/home",
            "/home/ana",
            "/etc",
            "/usr",
            "/home/ana/.config",
        ] {
            assert!(over_wide(Path::new(p), Path::new(HOME)), "{p}");
        }
        for p in ["/home/ana/src", "/opt/tool", "/home/ana/.config/app"] {
            assert!(!over_wide(Path::new(p), Path::new(HOME)), "{p}");
        }
    }

    #[test]
    fn secrets_are_never_proposed() {
        use {Access::*, HostKind::*, Why::*};
        let secret = Grant::Withhold(SECRET.into());
        // Under a listed secret, though the trace did not say so.
        assert_eq!(
            one(denial("/home/ana/.ssh/id_ed25519", Read, Absent, File, 1)),
            secret
        );
        assert_eq!(one(denial("/home/ana/.ssh", List, Absent, Dir, 1)), secret);
        assert_eq!(
            one(denial(
                "/home/ana/.config/gh/hosts.yml",
                Read,
                Absent,
                File,
                1
            )),
            secret
        );
        // The trace says so.
        let mut d = denial("/home/ana/work/token", Read, Absent, File, 1);
        d.secret = true;
        assert_eq!(one(d), secret);
        // A directory that holds a secret is fine: nook hides it inside.
        assert_eq!(
            one(denial(
                "/home/ana/.cargo/config.toml",
                Read,
                Absent,
                File,
                1
            )),
            propose(Key::RoBindTry, "~/.cargo")
        );
    }

    #[test]
    fn risky_writes_and_unnameable_paths_are_withheld() {
        use {Access::*, HostKind::*, Why::*};
        let withheld = |d: PathDenial, word: &str| {
            let g = one(d);
            assert!(
                matches!(&g, Grant::Withhold(w) if w.contains(word)),
                "{word}: {g:?}"
            );
        };
        withheld(
            denial(
                "/home/ana/proj/.git/hooks/pre-commit",
                Write,
                ReadOnly,
                File,
                1,
            ),
            "protected",
        );
        withheld(
            denial("/home/ana/proj/.envrc", Write, ReadOnly, File, 1),
            "protected",
        );
        // What node reads of the host's cgroup v1 limits.
        withheld(
            denial(
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                Read,
                Absent,
                File,
                2,
            ),
            "kernel",
        );
        withheld(
            denial("/usr/lib/app/state", Write, ReadOnly, File, 1),
            "system",
        );
        withheld(denial("/proc/1/environ", Read, Absent, File, 1), "/proc");
        withheld(denial("/home/ana/a:b/c", Read, Absent, File, 1), "':'");
        withheld(
            denial("/home/ana/${HOME}/c", Read, Absent, File, 1),
            "variable",
        );
        withheld(
            denial("/home/ana/x\x1b[2J/c", Read, Absent, File, 1),
            "control",
        );
        withheld(denial("relative/c", Read, Absent, File, 1), "absolute");
        // Reading a protected path is fine.
        assert_eq!(
            one(denial("/home/ana/other/.git/config", Read, Absent, File, 1)),
            propose(Key::RoBindTry, "~/other/.git")
        );
    }

    #[test]
    fn a_stat_alone_is_mentioned_and_with_a_read_proposed() {
        use {Access::*, HostKind::*, Why::*};
        let t = Trace {
            paths: vec![
                denial("/home/ana/.config/a/x", Stat, Absent, File, 9),
                denial("/home/ana/.config/b/y", Stat, Absent, File, 2),
                denial("/home/ana/.config/b/y", Read, Absent, File, 1),
            ],
            ..Default::default()
        };
        let a = advise(&t, Path::new(HOME));
        assert!(
            matches!(&a[0].grant, Grant::Mention(e, _) if e.value == "~/.config/a"),
            "{a:?}"
        );
        assert_eq!(a[1].grant, propose(Key::RoBindTry, "~/.config/b"));
        assert_eq!(a[2].grant, propose(Key::RoBindTry, "~/.config/b"));
    }

    #[test]
    fn syscalls_network_and_limits() {
        let t = Trace {
            syscalls: vec![
                SyscallDenial {
                    name: "ptrace".into(),
                    count: 2,
                },
                SyscallDenial {
                    name: "no_such_call".into(),
                    count: 1,
                },
            ],
            network: vec![
                NetDenial {
                    lookup: true,
                    dest: "example.com".into(),
                    reason: crate::runtime::gate::NOT_ALLOWED.into(),
                    count: 4,
                },
                NetDenial {
                    lookup: false,
                    dest: "api.example.com:443".into(),
                    reason: crate::runtime::gate::NOT_ALLOWED.into(),
                    count: 3,
                },
                NetDenial {
                    lookup: false,
                    dest: "192.0.2.1:22".into(),
                    reason: crate::runtime::gate::NOT_ALLOWED.into(),
                    count: 1,
                },
                NetDenial {
                    lookup: false,
                    dest: "[2001:db8::1]:443".into(),
                    reason: "no server name".into(),
                    count: 1,
                },
            ],
            limits: vec![
                LimitHit {
                    what: "timeout".into(),
                    setting: "--timeout".into(),
                },
                LimitHit {
                    what: "fsize".into(),
                    setting: "--rlimit fsize=1m".into(),
                },
            ],
            ..Default::default()
        };
        let a = advise(&t, Path::new(HOME));
        let grants: Vec<&Grant> = a.iter().map(|a| &a.grant).collect();
        assert_eq!(grants[0], &Grant::Raise(Key::Timeout));
        assert_eq!(grants[1], &Grant::Raise(Key::Rlimit));
        // Then by count.
        assert_eq!(grants[2], &propose(Key::NetAllow, "example.com"));
        assert_eq!(grants[3], &propose(Key::NetAllow, "api.example.com:443"));
        assert_eq!(grants[4], &propose(Key::SeccompAllow, "ptrace"));
        assert!(matches!(grants[5], Grant::Withhold(w) if w.contains("system call")));
        assert!(matches!(grants[6], Grant::Mention(e, _) if e.value == "192.0.2.1:22"));
        assert!(matches!(grants[7], Grant::Withhold(w) if w.starts_with("no server name")));
    }

    #[test]
    fn entries_read_as_flags_and_profile_lines() {
        let e = Entry {
            key: Key::RoBindTry,
            value: "~/.config/my app".into(),
        };
        assert_eq!(e.flag_line(), "--ro-bind-try ~/'.config/my app'");
        assert_eq!(e.profile_line(), r#"ro-bind-try = ["~/.config/my app"]"#);
        assert_eq!(
            e.path(Path::new(HOME)),
            Some("/home/ana/.config/my app".into())
        );
        let n = Entry {
            key: Key::NetAllow,
            value: "example.com:443".into(),
        };
        assert_eq!(n.flag_line(), "--net-allow example.com:443");
        assert_eq!(
            n.profile_line(),
            r#"[network] net-allow = ["example.com:443"]"#
        );
        assert_eq!(profile_key(n.key), "network.net-allow");
        assert_eq!(
            command_line(&["sh".into(), "-c".into(), "ls ~; it's".into(), "~x".into()]),
            r"sh -c 'ls ~; it'\''s' '~x'"
        );
        assert_eq!(shown(Path::new("/home/ana"), Path::new(HOME)), "~");
        assert_eq!(
            shown(Path::new("/home/anab"), Path::new(HOME)),
            "/home/anab"
        );
        assert_eq!(
            shown(Path::new("/home/ana/x"), Path::new("/")),
            "/home/ana/x"
        );
    }
}

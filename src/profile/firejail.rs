//! `nook profile import-firejail`: translate a firejail profile into a nook
//! profile. Pure: the caller reads the files (`read` resolves includes).
//!
//! Much of what firejail profiles say is already nook's default (private
//! /dev, /tmp and $HOME, no network, no capabilities, no_new_privs, no
//! root); those lines translate to nothing and are listed as covered.
//! Lines with no nook equivalent are listed with the reason.
//!
//! firejail starts from the whole host and takes parts away; nook starts
//! from nothing and adds. So only `whitelist` (and its kin) shows a path;
//! `read-only` makes shown paths read-only and never shows one; a
//! blacklisted path stays hidden even when whitelisted, as in firejail;
//! and what `dbus-user none`, `x11 none` or `noprinters` cut off stays
//! unbound whatever an include whitelists. All of this is settled after
//! the last line is read: firejail applies these in fixed phases, not in
//! the order of the lines.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct Import {
    pub hostname: Option<String>,
    pub share_net: bool,
    pub tmpfs: Vec<String>,
    pub ro_bind_try: Vec<String>,
    pub bind_try: Vec<String>,
    pub hide: Vec<String>,
    pub setenv: Vec<String>,
    pub unsetenv: Vec<String>,
    noblacklist: BTreeSet<String>,
    /// `read-only` lines (`FILE:LINE: text`, path), resolved once every
    /// whitelist is known: firejail applies them after whitelisting.
    read_only: Vec<(String, String)>,
    /// Sockets the profile cuts off (`dbus-user none`, `noprinters`, ...),
    /// removed from the binds once every whitelist is known.
    blocked: BTreeSet<&'static str>,
    /// `FILE:LINE: text`, covered by nook's defaults.
    pub covered: Vec<String>,
    /// `FILE:LINE: text -- reason`, not translated.
    pub untranslated: Vec<(String, String)>,
}

/// Translate `path`; `read` returns a file's text (for includes too).
pub fn import(
    path: &Path,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> std::io::Result<Import> {
    let text = read(path)?;
    let mut imp = Import::default();
    let mut seen = vec![path.to_path_buf()];
    translate(path, &text, read, &mut imp, &mut seen);
    apply_read_only(&mut imp);
    apply_blocked(&mut imp);
    let nob = std::mem::take(&mut imp.noblacklist);
    imp.hide.retain(|h| !nob.contains(h));
    // In firejail a blacklist wins over a whitelist (noblacklist is how a
    // profile lets one through). In nook a bind below a hidden directory
    // would land on top of it, or fail to find its mount point.
    let hide = imp.hide.clone();
    for list in [&mut imp.bind_try, &mut imp.ro_bind_try] {
        list.retain(|p| !hide.iter().any(|h| is_under(p, h)));
    }
    for list in [
        &mut imp.hide,
        &mut imp.ro_bind_try,
        &mut imp.bind_try,
        &mut imp.tmpfs,
    ] {
        let mut seen = BTreeSet::new();
        list.retain(|x| seen.insert(x.clone()));
    }
    Ok(imp)
}

/// True when `path` is `dir` or below it (both in the importer's `~/...`
/// or absolute spelling).
fn is_under(path: &str, dir: &str) -> bool {
    path == dir || dir == "/" || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// firejail's `read-only` makes a path that the sandbox shows read-only; it
/// never shows anything. Firejail shows the whole host by default, nook
/// nothing that is not listed, so translating it to `ro-bind-try` would
/// expose what firejail's own profiles only protect (disable-common.inc
/// marks ~/.ssh/config, ~/.Xauthority and the shell start-up files
/// read-only). So: whitelisted paths at or below it become read-only; a
/// path inside a writable whitelisted directory gets a read-only bind of
/// its own; anything else is not shown in nook at all.
fn apply_read_only(imp: &mut Import) {
    for (at, p) in std::mem::take(&mut imp.read_only) {
        let (ro, rw): (Vec<String>, Vec<String>) =
            imp.bind_try.drain(..).partition(|b| is_under(b, &p));
        imp.bind_try = rw;
        let made_ro = !ro.is_empty();
        imp.ro_bind_try.extend(ro);
        let note = if imp.bind_try.iter().any(|b| is_under(&p, b)) {
            imp.ro_bind_try.push(p);
            None
        } else if made_ro {
            Some("the listed paths below it are bound read-only")
        } else if imp.ro_bind_try.iter().any(|b| is_under(&p, b)) {
            Some("shown read-only already")
        } else {
            Some("nook does not show it unless a profile lists it")
        };
        if let Some(why) = note {
            imp.covered.push(format!("{at} ({why})"));
        }
    }
}

/// What `dbus-user none` and the like cut off stays unbound even when an
/// include whitelists it (whitelist-runuser-common.inc lists the session
/// bus); when a directory above it is bound, it is hidden in it.
fn apply_blocked(imp: &mut Import) {
    for b in std::mem::take(&mut imp.blocked) {
        imp.bind_try.retain(|p| !is_under(p, b));
        imp.ro_bind_try.retain(|p| !is_under(p, b));
        if imp
            .bind_try
            .iter()
            .chain(&imp.ro_bind_try)
            .any(|p| is_under(b, p))
        {
            imp.hide.push(b.to_string());
        }
    }
}

/// firejail's path variables, in nook's terms; None when there is none.
fn path_var(p: &str) -> Result<String, &'static str> {
    let mut s = p.to_string();
    for (from, to) in [
        ("${HOME}", "~"),
        ("${DOWNLOADS}", "~/Downloads"),
        ("${DESKTOP}", "~/Desktop"),
        ("${DOCUMENTS}", "~/Documents"),
        ("${MUSIC}", "~/Music"),
        ("${PICTURES}", "~/Pictures"),
        ("${VIDEOS}", "~/Videos"),
        ("${RUNUSER}", "${XDG_RUNTIME_DIR}"),
        ("${CFG}", "/etc"),
    ] {
        s = s.replace(from, to);
    }
    if s.contains("${PATH}") {
        return Err("${PATH} stands for every directory in PATH; nook paths are single paths");
    }
    if s.contains('*') || s.contains('?') || s.contains('[') {
        return Err("nook paths are literal, without globs; list the matching paths by hand");
    }
    // ${RUNUSER} became nook's own ${XDG_RUNTIME_DIR} above.
    if s.replace("${XDG_RUNTIME_DIR}", "").contains("${") {
        return Err("a firejail variable nook has no equivalent for");
    }
    if !(s.starts_with('/') || s == "~" || s.starts_with("~/") || s.starts_with("${XDG_")) {
        return Err("a relative path; nook profiles use absolute paths");
    }
    match s.trim_end_matches('/') {
        "" => Ok("/".to_string()),
        t => Ok(t.to_string()),
    }
}

/// Paths that are symlinks on current systems, which firejail whitelists
/// to keep the link. nook binds what a link points to, so binding these
/// would show all of /run, or the host's /dev/shm over the sandbox's own.
const SYMLINKS: &[(&str, &str)] = &[
    (
        "/var/run",
        "a symlink to /run; the /run paths a profile needs are listed on their own",
    ),
    (
        "/var/lock",
        "a symlink to /run/lock, which nook does not show unless listed",
    ),
    (
        "/run/shm",
        "a symlink to /dev/shm; nook's /dev/shm is the sandbox's own",
    ),
];

/// The sockets behind `dbus-user`, `dbus-system`, `x11` and `noprinters`,
/// as the importer spells paths.
const SESSION_BUS: &str = "${XDG_RUNTIME_DIR}/bus";
const SYSTEM_BUS: &[&str] = &[
    "/run/dbus/system_bus_socket",
    "/var/run/dbus/system_bus_socket",
];
const X11: &[&str] = &["/tmp/.X11-unix", "~/.Xauthority"];
const PRINTERS: &[&str] = &["/run/cups", "/var/run/cups"];

/// A path the profile shows: bound writable under $HOME, /tmp and the
/// runtime directory (unless `read_only`), read-only elsewhere.
fn whitelist(imp: &mut Import, at: &str, p: String, read_only: bool) {
    if p == "/usr" || p.starts_with("/usr/") {
        imp.covered
            .push(format!("{at} (all of /usr is visible read-only)"));
    } else if let Some((_, why)) = SYMLINKS.iter().find(|(l, _)| *l == p) {
        imp.covered.push(format!("{at} ({why})"));
    } else if !read_only && (p.starts_with('~') || p.starts_with("${XDG_") || p.starts_with("/tmp"))
    {
        imp.bind_try.push(p);
    } else {
        imp.ro_bind_try.push(p);
    }
}

fn translate(
    file: &Path,
    text: &str,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
    imp: &mut Import,
    seen: &mut Vec<PathBuf>,
) {
    let name = file
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (i, raw) in text.lines().enumerate() {
        // firejail drops everything from the first '#' (comments may
        // follow a command on its line).
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("{name}:{}: {line}", i + 1);
        let (cmd, arg) = match line.split_once(char::is_whitespace) {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        let mut not = |why: &str| imp.untranslated.push((at.clone(), why.to_string()));
        if cmd.starts_with('?') {
            not("conditional lines (?HAS_...) depend on firejail's own options");
            continue;
        }
        match cmd {
            "include" => {
                if arg.ends_with(".local") {
                    imp.covered
                        .push(format!("{at} (local override files are not imported)"));
                    continue;
                }
                let inc = file
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .join(arg.replace("${CFG}/", ""));
                if seen.contains(&inc) {
                    continue;
                }
                match read(&inc) {
                    Ok(t) => {
                        seen.push(inc.clone());
                        translate(&inc, &t, read, imp, seen);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        not("the included file was not found next to this one")
                    }
                    Err(_) => not("the included file could not be read"),
                }
            }
            "blacklist" | "blacklist-nolog" => match path_var(arg) {
                Ok(p) => imp.hide.push(p),
                Err(why) => not(why),
            },
            "noblacklist" => match path_var(arg) {
                Ok(p) => {
                    imp.noblacklist.insert(p);
                }
                Err(why) => not(why),
            },
            "whitelist" | "read-write" => match path_var(arg) {
                Ok(p) => whitelist(imp, &at, p, false),
                Err(why) => not(why),
            },
            "nowhitelist" => imp
                .covered
                .push(format!("{at} (nothing is visible unless listed)")),
            "whitelist-ro" => match path_var(arg) {
                Ok(p) => whitelist(imp, &at, p, true),
                Err(why) => not(why),
            },
            "read-only" => match path_var(arg) {
                Ok(p) => imp.read_only.push((at.clone(), p)),
                Err(why) => not(why),
            },
            "tmpfs" => match path_var(arg) {
                Ok(p) => imp.tmpfs.push(p),
                Err(why) => not(why),
            },
            "private-etc" => {
                imp.tmpfs.push("/etc".into());
                for f in arg.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if f.contains('*') {
                        not("nook paths are literal, without globs");
                    } else {
                        imp.ro_bind_try.push(format!("/etc/{f}"));
                    }
                }
            }
            "private-opt" | "private-srv" => {
                let dir = if cmd == "private-opt" { "/opt" } else { "/srv" };
                imp.tmpfs.push(dir.into());
                for f in arg.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    imp.ro_bind_try.push(format!("{dir}/{f}"));
                }
            }
            "private" if arg.is_empty() => imp
                .covered
                .push(format!("{at} ($HOME is empty by default)")),
            "private-dev" | "private-tmp" | "private-cache" | "disable-mnt" => {
                imp.covered.push(format!("{at} (nook's default view)"))
            }
            "private-bin" | "private-lib" => {
                not("nook shows all of /usr read-only; use --hide for programs that must not run")
            }
            "net" if arg == "none" => imp
                .covered
                .push(format!("{at} (no network is the default)")),
            "net" => {
                imp.share_net = true;
                imp.covered
                    .push(format!("{at} (as share-net: the host's network)"));
            }
            "caps.drop" if arg == "all" => imp.covered.push(format!("{at} (no capabilities)")),
            "dbus-user" | "dbus-system" | "x11" if arg == "none" => {
                let sockets: &[&'static str] = match cmd {
                    "dbus-user" => &[SESSION_BUS],
                    "dbus-system" => SYSTEM_BUS,
                    _ => X11,
                };
                imp.blocked.extend(sockets);
                imp.covered
                    .push(format!("{at} (nook's default: its socket is not bound)"))
            }
            "noprinters" => {
                imp.blocked.extend(PRINTERS);
                imp.covered.push(format!(
                    "{at} (nook's default: the CUPS socket is not bound)"
                ))
            }
            "caps"
            | "caps.drop"
            | "seccomp"
            | "nonewprivs"
            | "noroot"
            | "nogroups"
            | "nosound"
            | "no3d"
            | "novideo"
            | "nodvd"
            | "notv"
            | "nou2f"
            | "noinput"
            | "shell"
            | "restrict-namespaces"
            | "ipc-namespace"
            | "quiet" => imp.covered.push(format!("{at} (nook's default)")),
            "hostname" => imp.hostname = Some(arg.to_string()),
            "env" => imp.setenv.push(arg.to_string()),
            "rmenv" => imp.unsetenv.push(arg.to_string()),
            "mkdir" | "mkfile" => imp.covered.push(format!(
                "{at} (not needed: the -try binds skip missing paths)"
            )),
            "caps.keep" => not("nook keeps no capabilities"),
            "seccomp.drop"
            | "seccomp.keep"
            | "seccomp.block-secondary"
            | "seccomp.32"
            | "seccomp.32.drop"
            | "seccomp.32.keep"
            | "seccomp-error-action"
            | "protocol"
            | "memory-deny-write-execute" => {
                not("seccomp customization is not supported by nook profiles yet")
            }
            "apparmor" | "apparmor-replace" => not("nook does not load AppArmor profiles"),
            // `filter` and its rules (dbus-user.talk ...): nook cannot filter,
            // so the bus is cut off rather than opened.
            c if c.starts_with("dbus-user") || c.starts_with("dbus-system") => {
                imp.blocked.extend(if c.starts_with("dbus-user") {
                    &[SESSION_BUS][..]
                } else {
                    SYSTEM_BUS
                });
                not("nook has no D-Bus filter; the bus socket is not bound")
            }
            "x11" => not("nook does not start X servers; the browser profile shares the display"),
            "netfilter" | "dns" | "ip" | "defaultgw" | "netns" => {
                not("network filters come with nook's user-mode networking")
            }
            "machine-id" => not("nook shows the host's /etc/machine-id read-only"),
            "noexec" => not("nook has no per-path noexec"),
            "ignore"
            | "join-or-start"
            | "allow-debuggers"
            | "tracelog"
            | "writable-etc"
            | "writable-var"
            | "writable-var-log"
            | "writable-run-user"
            | "keep-dev-shm"
            | "keep-var-tmp"
            | "keep-config-pulse"
            | "deterministic-shutdown"
            | "timeout"
            | "rlimit-as"
            | "rlimit-nproc"
            | "rlimit-nofile"
            | "rlimit-fsize"
            | "rlimit-cpu"
            | "cpu"
            | "nice"
            | "name"
            | "bind"
            | "overlay"
            | "private"
            | "allusers"
            | "keep-fd"
            | "tab"
            | "private-cwd" => not("no nook equivalent in a profile"),
            _ => not("unknown firejail command"),
        }
    }
}

impl Import {
    /// The nook profile, with the covered and untranslated lines as
    /// comments at its end.
    pub fn to_toml(&self, source: &Path) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# imported from {} by nook profile import-firejail.\n# Review it: firejail and nook differ (see the notes at the end).",
            source.display()
        );
        use crate::settings::{Key, Layer};
        let mut layer = Layer::default();
        if let Some(h) = &self.hostname {
            layer = layer.with(Key::Hostname, h.clone());
        }
        if self.share_net {
            layer = layer.with(Key::ShareNet, true);
        }
        for (key, items) in [
            (Key::Tmpfs, &self.tmpfs),
            (Key::RoBindTry, &self.ro_bind_try),
            (Key::BindTry, &self.bind_try),
            (Key::Hide, &self.hide),
            (Key::Setenv, &self.setenv),
            (Key::Unsetenv, &self.unsetenv),
        ] {
            for i in items {
                layer = layer.with(key, i.clone());
            }
        }
        o.push_str(&crate::settings::to_toml(&layer, &["default".to_string()]));
        if !self.covered.is_empty() {
            let _ = writeln!(o, "\n# Covered by nook's defaults:");
            for c in &self.covered {
                let _ = writeln!(o, "#   {c}");
            }
        }
        if !self.untranslated.is_empty() {
            let _ = writeln!(o, "\n# Not translated:");
            for (at, why) in &self.untranslated {
                let _ = writeln!(o, "#   {at} -- {why}");
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_common_lines_and_lists_the_rest() {
        let files = |p: &Path| -> std::io::Result<String> {
            let text: Option<String> = match p.to_str().unwrap_or_default() {
                "/fj/app.profile" => Some(
                    "# app\ninclude app.local\ninclude disable-common.inc\nnoblacklist ${HOME}/.ssh\n\
                     whitelist ${HOME}/.config/app\nwhitelist /usr/share/app\nread-only ${HOME}/.config/app/x\n\
                     private-etc fonts,hosts\nprivate-dev\nnet none\ncaps.drop all\nseccomp\nnonewprivs\n\
                     blacklist /opt/*\napparmor\nprotocol unix,inet\nhostname app\nenv A=1\n?HAS_X11: ignore x11\n"
                        .into(),
                ),
                "/fj/disable-common.inc" => {
                    Some("blacklist ${HOME}/.ssh\nblacklist ${HOME}/.gnupg\n".into())
                }
                _ => None,
            };
            text.ok_or_else(|| std::io::ErrorKind::NotFound.into())
        };
        let imp = import(Path::new("/fj/app.profile"), &files).unwrap();
        assert_eq!(imp.hide, vec!["~/.gnupg"]);
        assert_eq!(imp.bind_try, vec!["~/.config/app"]);
        assert_eq!(imp.tmpfs, vec!["/etc"]);
        // read-only is resolved after every whitelist, as firejail does.
        assert_eq!(
            imp.ro_bind_try,
            vec!["/etc/fonts", "/etc/hosts", "~/.config/app/x"]
        );
        assert_eq!(imp.hostname.as_deref(), Some("app"));
        let why: Vec<&str> = imp.untranslated.iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(why.len(), 4, "{:?}", imp.untranslated);
        assert!(
            imp.untranslated[0]
                .0
                .starts_with("app.profile:14: blacklist /opt/*")
        );
        let text = imp.to_toml(Path::new("/fj/app.profile"));
        assert!(text.contains(
            "# Not translated:\n#   app.profile:14: blacklist /opt/* -- nook paths are literal"
        ));
    }

    fn one(text: &'static str) -> Import {
        import(Path::new("/fj/one.profile"), &|p: &Path| {
            (p == Path::new("/fj/one.profile"))
                .then(|| text.to_string())
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        })
        .unwrap()
    }

    #[test]
    fn read_only_never_shows_what_no_whitelist_shows() {
        // disable-common.inc marks these read-only; nook must not bind them.
        let imp = one(
            "read-only ${HOME}/.ssh/config\nread-only ${HOME}/.Xauthority\n\
             read-only /var/log/apt/history.log\n",
        );
        assert!(imp.ro_bind_try.is_empty(), "{:?}", imp.ro_bind_try);
        assert!(imp.bind_try.is_empty());
        assert_eq!(imp.covered.len(), 3);
        assert!(
            imp.covered[0].ends_with("(nook does not show it unless a profile lists it)"),
            "{:?}",
            imp.covered
        );
    }

    #[test]
    fn read_only_applies_to_whitelists_in_any_order() {
        let imp = one(
            "read-only ${HOME}\nwhitelist ${HOME}/.config/app\nwhitelist ${HOME}/.w3m\n\
             whitelist ${HOME}/.mozilla\nread-only ${HOME}/.mozilla/firefox/profiles.ini\n\
             whitelist /tmp/.X11-unix\n",
        );
        // Everything whitelisted under $HOME is read-only; the rest stays.
        assert_eq!(imp.bind_try, vec!["/tmp/.X11-unix"]);
        assert_eq!(
            imp.ro_bind_try,
            vec!["~/.config/app", "~/.w3m", "~/.mozilla"]
        );
        let imp =
            one("whitelist ${HOME}/.mozilla\nread-only ${HOME}/.mozilla/firefox/profiles.ini\n");
        assert_eq!(imp.bind_try, vec!["~/.mozilla"]);
        assert_eq!(imp.ro_bind_try, vec!["~/.mozilla/firefox/profiles.ini"]);
        // `read-only /` makes every whitelisted path read-only.
        let imp = one("whitelist ${HOME}/.config/app\nread-only /\n");
        assert_eq!(imp.ro_bind_try, vec!["~/.config/app"]);
        assert!(imp.bind_try.is_empty());
    }

    #[test]
    fn trailing_comments_are_dropped() {
        let imp = one(
            "blacklist ${HOME}/Applications # used for storing AppImages\n\
             whitelist /run/opengl-driver\t# NixOS\nwhitelist-ro ${HOME}/.config/vlc\n\
             ipc-namespace\n",
        );
        assert_eq!(imp.hide, vec!["~/Applications"]);
        assert_eq!(imp.ro_bind_try, vec!["/run/opengl-driver", "~/.config/vlc"]);
        assert!(imp.untranslated.is_empty(), "{:?}", imp.untranslated);
    }

    #[test]
    fn cut_off_sockets_stay_unbound_whatever_the_includes_whitelist() {
        let imp = one(
            "whitelist /tmp/.X11-unix\nwhitelist /run/dbus/system_bus_socket\n\
             whitelist /run/cups/cups.sock\nwhitelist /run/media\n\
             x11 none\ndbus-system filter\nnoprinters\n",
        );
        assert!(imp.bind_try.is_empty(), "{:?}", imp.bind_try);
        assert_eq!(imp.ro_bind_try, vec!["/run/media"]);
        assert!(imp.hide.is_empty(), "{:?}", imp.hide);
        // Filter rules alone cut the bus off too: nook cannot filter.
        let imp = one(
            "whitelist ${RUNUSER}/bus\nwhitelist ${RUNUSER}/pulse/native\ndbus-user.talk org.x\n",
        );
        assert_eq!(imp.bind_try, vec!["${XDG_RUNTIME_DIR}/pulse/native"]);
        // A directory above the socket stays bound, the socket is hidden.
        let imp = one("whitelist /run/dbus\ndbus-system none\n");
        assert_eq!(imp.ro_bind_try, vec!["/run/dbus"]);
        assert_eq!(imp.hide, vec!["/run/dbus/system_bus_socket"]);
    }

    #[test]
    fn blacklists_win_over_whitelists_and_symlinks_are_not_followed() {
        let imp = one(
            "blacklist ${RUNUSER}\nwhitelist ${RUNUSER}/dconf\nblacklist ${HOME}/.ssh\n\
             whitelist ${HOME}/.ssh/config\nnoblacklist ${HOME}/.gnupg\nblacklist ${HOME}/.gnupg\n\
             whitelist ${HOME}/.gnupg\nwhitelist /var/run\nwhitelist /var/lock\nwhitelist /run/shm\n",
        );
        assert_eq!(imp.hide, vec!["${XDG_RUNTIME_DIR}", "~/.ssh"]);
        assert_eq!(imp.bind_try, vec!["~/.gnupg"]);
        assert!(imp.ro_bind_try.is_empty(), "{:?}", imp.ro_bind_try);
        assert_eq!(imp.covered.len(), 3, "{:?}", imp.covered);
        assert!(imp.covered[0].ends_with(
            "(a symlink to /run; the /run paths a profile needs are listed on their own)"
        ));
    }
}

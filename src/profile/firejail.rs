//! `nook profile import-firejail`: translate a firejail profile into a nook
//! profile. Pure: the caller reads the files (`read` resolves includes).
//!
//! Much of what firejail profiles say is already nook's default (private
//! /dev, /tmp and $HOME, no network, no capabilities, no_new_privs, no
//! root); those lines translate to nothing and are listed as covered.
//! Lines with no nook equivalent are listed with the reason.

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
    /// `FILE:LINE: text`, covered by nook's defaults.
    pub covered: Vec<String>,
    /// `FILE:LINE: text -- reason`, not translated.
    pub untranslated: Vec<(String, String)>,
}

/// Translate `path`; `read` returns a file's text (for includes too).
pub fn import(path: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Option<Import> {
    let text = read(path)?;
    let mut imp = Import::default();
    let mut seen = vec![path.to_path_buf()];
    translate(path, &text, read, &mut imp, &mut seen);
    let nob = std::mem::take(&mut imp.noblacklist);
    imp.hide.retain(|h| !nob.contains(h));
    for list in [
        &mut imp.hide,
        &mut imp.ro_bind_try,
        &mut imp.bind_try,
        &mut imp.tmpfs,
    ] {
        let mut seen = BTreeSet::new();
        list.retain(|x| seen.insert(x.clone()));
    }
    Some(imp)
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
    if s.contains("${") {
        return Err("a firejail variable nook has no equivalent for");
    }
    if !(s.starts_with('/') || s == "~" || s.starts_with("~/") || s.starts_with("${XDG_")) {
        return Err("a relative path; nook profiles use absolute paths");
    }
    Ok(s.trim_end_matches('/').to_string())
}

fn translate(
    file: &Path,
    text: &str,
    read: &dyn Fn(&Path) -> Option<String>,
    imp: &mut Import,
    seen: &mut Vec<PathBuf>,
) {
    let name = file
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
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
                    Some(t) => {
                        seen.push(inc.clone());
                        translate(&inc, &t, read, imp, seen);
                    }
                    None => not("the included file was not found next to this one"),
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
                Ok(p) if p.starts_with("/usr/") || p == "/usr" => imp
                    .covered
                    .push(format!("{at} (all of /usr is visible read-only)")),
                Ok(p) if p.starts_with('~') || p.starts_with("${XDG_") || p.starts_with("/tmp") => {
                    imp.bind_try.push(p)
                }
                Ok(p) => imp.ro_bind_try.push(p),
                Err(why) => not(why),
            },
            "nowhitelist" => imp
                .covered
                .push(format!("{at} (nothing is visible unless listed)")),
            "read-only" => match path_var(arg) {
                Ok(p) => imp.ro_bind_try.push(p),
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
                imp.covered.push(format!("{at} (nook's default)"))
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
            | "protocol"
            | "memory-deny-write-execute" => {
                not("seccomp customization is not supported by nook profiles yet")
            }
            "apparmor" => not("nook does not load AppArmor profiles"),
            "dbus-user" | "dbus-system" => {
                not("nook has no D-Bus filter; the session bus is not reachable")
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
            | "private-cwd" => not("no nook equivalent in a profile"),
            _ => not("unknown firejail command"),
        }
    }
}

fn toml_list(o: &mut String, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(o, "{key} = [");
    for i in items {
        let _ = writeln!(o, "    {},", serde_json::to_string(i).unwrap_or_default());
    }
    let _ = writeln!(o, "]");
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
        let _ = writeln!(o, "extends = [\"default\"]");
        if let Some(h) = &self.hostname {
            let _ = writeln!(
                o,
                "hostname = {}",
                serde_json::to_string(h).unwrap_or_default()
            );
        }
        if self.share_net {
            let _ = writeln!(o, "share-net = true");
        }
        toml_list(&mut o, "tmpfs", &self.tmpfs);
        toml_list(&mut o, "ro-bind-try", &self.ro_bind_try);
        toml_list(&mut o, "bind-try", &self.bind_try);
        toml_list(&mut o, "hide", &self.hide);
        toml_list(&mut o, "setenv", &self.setenv);
        toml_list(&mut o, "unsetenv", &self.unsetenv);
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
        let files = |p: &Path| -> Option<String> {
            match p.to_str()? {
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
            }
        };
        let imp = import(Path::new("/fj/app.profile"), &files).unwrap();
        assert_eq!(imp.hide, vec!["~/.gnupg"]);
        assert_eq!(imp.bind_try, vec!["~/.config/app"]);
        assert_eq!(imp.tmpfs, vec!["/etc"]);
        assert_eq!(
            imp.ro_bind_try,
            vec!["~/.config/app/x", "/etc/fonts", "/etc/hosts"]
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
}

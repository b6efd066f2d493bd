//! `nook profile import-firejail` over the profiles Debian ships in
//! firejail-profiles (/etc/firejail), through the real binary as the
//! unprivileged test user: every one imports, and what it makes is a
//! profile nook accepts; a few are checked key by key and then run.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::*;

/// `require` that returns from the test when the feature is missing.
macro_rules! require {
    ($feature:expr, $($reason:tt)+) => {
        if !require($feature, &format!($($reason)+)) {
            return;
        }
    };
}

const FIREJAIL: &str = "/etc/firejail";

fn have_profiles() -> bool {
    Path::new(FIREJAIL).join("firefox.profile").exists()
}

/// One `nook profile import-firejail` run, taken apart.
struct Imported {
    out: Output,
    /// (`FILE:LINE: text`, reason), from stderr.
    untranslated: Vec<(String, String)>,
}

impl Imported {
    /// The profile as TOML (only the focused tests need it).
    fn toml(&self) -> toml::Table {
        self.out
            .stdout
            .parse()
            .expect("the imported profile is TOML")
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.toml()
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().expect("strings").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The reason given for the untranslated line that starts with `at`.
    fn why(&self, at: &str) -> Option<&str> {
        self.untranslated
            .iter()
            .find(|(a, _)| a.starts_with(at))
            .map(|(_, w)| w.as_str())
    }

    /// The comment line for `at` in the "Covered by nook's defaults" part.
    fn covered(&self, at: &str) -> Option<&str> {
        self.out
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("#   "))
            .find(|l| l.starts_with(at) && !l.contains(" -- "))
    }
}

/// Import `profile` (a path) and check what came out is well formed:
/// exit 0, TOML, the source named in the header, each untranslated line
/// on stderr with a reason and again among the comments at the end.
/// Errors are returned, not panicked, so the sweep can collect them all.
fn import(env: &TestEnv, profile: &Path) -> Result<Imported, String> {
    let p = profile.display().to_string();
    let out = env.nook(&["profile", "import-firejail", &p]).output();
    if out.code() != 0 {
        return Err(format!("import exited {}\n{}", out.code(), out.stderr));
    }
    let header = format!("# imported from {p} by nook profile import-firejail.\n");
    if !out.stdout.starts_with(&header) {
        return Err(format!(
            "no header naming the source: {:?}",
            out.stdout.lines().next()
        ));
    }
    let comments: HashSet<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .collect();
    let mut untranslated = Vec::new();
    for line in out.stderr.lines() {
        let rest = line
            .strip_prefix("nook: not translated: ")
            .ok_or_else(|| format!("unexpected stderr line {line:?}"))?;
        let (at, why) = rest
            .rsplit_once(" -- ")
            .ok_or_else(|| format!("no reason on {line:?}"))?;
        if why.trim().is_empty() {
            return Err(format!("empty reason on {line:?}"));
        }
        if !comments.contains(rest) {
            return Err(format!("{rest:?} is not among the profile's comments"));
        }
        untranslated.push((at.to_string(), why.to_string()));
    }
    let commented = out
        .stdout
        .split("\n# Not translated:\n")
        .nth(1)
        .map_or(0, |t| t.lines().filter(|l| l.starts_with("#   ")).count());
    if commented != untranslated.len() {
        return Err(format!(
            "{} untranslated lines on stderr, {commented} in the profile",
            untranslated.len()
        ));
    }
    Ok(Imported { out, untranslated })
}

/// Write the imported profile as `NAME.toml` in the work directory.
fn save(env: &TestEnv, name: &str, imp: &Imported) -> String {
    let file = env.path(&format!("{name}.toml"));
    env.write(&file, &imp.out.stdout);
    file.display().to_string()
}

fn check(env: &TestEnv, file: &str) -> Result<(), String> {
    let out = env.nook(&["profile", "check", file]).output();
    if out.code() != 0 || out.stdout != format!("{file}: ok\n") {
        return Err(format!("profile check failed\n{out}"));
    }
    Ok(())
}

#[test]
fn every_debian_firejail_profile_imports_and_checks() {
    let env = TestEnv::new("firejail-all");
    require!(
        have_profiles(),
        "{FIREJAIL}/firefox.profile missing (package firejail-profiles)"
    );
    let mut profiles: Vec<PathBuf> = fs::read_dir(FIREJAIL)
        .expect("read /etc/firejail")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "profile"))
        .collect();
    profiles.sort();
    assert!(profiles.len() > 1000, "only {} profiles", profiles.len());

    // Each import and check is its own nook process; spread them over the
    // CPUs (the sweep is most of this file's run time).
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let reasons = Mutex::new(BTreeMap::<String, usize>::new());
    let started = Instant::now();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(p) = profiles.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                    let result = import(&env, p).and_then(|imp| {
                        let mut r = reasons.lock().unwrap();
                        for (_, why) in &imp.untranslated {
                            *r.entry(why.clone()).or_default() += 1;
                        }
                        drop(r);
                        check(&env, &save(&env, &name, &imp))
                    });
                    if let Err(e) = result {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{}: {e}", p.display()));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} profiles failed:\n{}",
        failures.len(),
        profiles.len(),
        failures.join("\n")
    );
    // What is not translated, and why (shown with --nocapture).
    let reasons = reasons.into_inner().unwrap();
    println!(
        "{} profiles imported and checked in {:.1?}; untranslated lines by reason:",
        profiles.len(),
        started.elapsed()
    );
    for (why, n) in &reasons {
        println!("{n:>8}  {why}");
    }
    // Every command Debian's profiles use is one the importer knows.
    assert!(
        !reasons.contains_key("unknown firejail command"),
        "{reasons:#?}"
    );
}

#[test]
fn firefox_profile_keys() {
    let env = TestEnv::new("firejail-firefox");
    require!(
        have_profiles(),
        "{FIREJAIL}/firefox.profile missing (package firejail-profiles)"
    );
    let imp = import(&env, &Path::new(FIREJAIL).join("firefox.profile")).unwrap();
    let toml = imp.toml();
    assert_eq!(toml["extends"].as_array().unwrap().len(), 1);
    assert_eq!(toml["extends"][0].as_str(), Some("default"));
    assert!(toml.get("share-net").is_none(), "netfilter is not net");
    let bind = imp.list("bind-try");
    let ro = imp.list("ro-bind-try");
    let hide = imp.list("hide");
    // whitelist, under $HOME: writable binds (noblacklist lets them past
    // disable-programs.inc's blacklist of the same paths).
    for p in [
        "~/.mozilla",
        "~/.cache/mozilla/firefox",
        "~/Downloads",
        "~/.pki",
    ] {
        assert!(bind.contains(&p.to_string()), "{p} in bind-try: {bind:?}");
        assert!(
            !hide.contains(&p.to_string()),
            "{p} noblacklisted: {hide:?}"
        );
    }
    // whitelist outside $HOME: read-only; under /usr: there already.
    assert!(
        ro.contains(&"/var/lib/ca-certificates".to_string()),
        "{ro:?}"
    );
    assert!(
        imp.covered("firefox.profile:38: whitelist /usr/share/mozilla")
            .is_some_and(|c| c.ends_with("(all of /usr is visible read-only)")),
        "{}",
        imp.out.stdout
    );
    // read-only of a whitelisted path (the two lines in different files):
    // a read-only bind instead of a writable one.
    for p in ["~/.config/kdeglobals", "~/.config/user-dirs.dirs"] {
        assert!(ro.contains(&p.to_string()), "{p} in ro-bind-try: {ro:?}");
        assert!(
            !bind.contains(&p.to_string()),
            "{p} not in bind-try: {bind:?}"
        );
    }
    // blacklist: hidden, from the profile and from its includes.
    for p in ["/usr/libexec", "~/.ssh", "~/.gnupg", "~/.aws"] {
        assert!(hide.contains(&p.to_string()), "{p} in hide: {hide:?}");
    }
    // disable-common.inc marks these read-only; firejail shows them, nook
    // must not start to.
    for p in ["~/.ssh/config", "~/.Xauthority", "~/.bashrc", "~/.profile"] {
        assert!(
            !ro.contains(&p.to_string()) && !bind.contains(&p.to_string()),
            "{p} exposed"
        );
    }
    // dbus-system none beats whitelist-run-common.inc's system bus socket;
    // /var/run and /run/shm (symlinks) are not bound.
    for p in [
        "/run/dbus/system_bus_socket",
        "/var/run",
        "/var/lock",
        "/run/shm",
    ] {
        assert!(!ro.contains(&p.to_string()), "{p} bound: {ro:?}");
    }
    assert!(
        imp.covered("firefox-common.profile:72: dbus-system none")
            .is_some(),
        "{}",
        imp.out.stdout
    );
    assert!(
        imp.covered("firefox-common.profile:63: private-tmp")
            .is_some_and(|c| c.ends_with("(nook's default view)")),
        "{}",
        imp.out.stdout
    );
    // Untranslated, with the reason.
    for (at, why) in [
        (
            "firefox-common.profile:37: apparmor",
            "nook does not load AppArmor profiles",
        ),
        (
            "firefox-common.profile:43: netfilter",
            "network filters come with nook's user-mode networking",
        ),
        (
            "firefox-common.profile:65: blacklist ${PATH}/curl",
            "${PATH} stands for every directory in PATH; nook paths are single paths",
        ),
        (
            "firefox.profile:51: dbus-user filter",
            "nook has no D-Bus filter; the bus socket is not bound",
        ),
    ] {
        assert_eq!(imp.why(at), Some(why), "{at}\n{}", imp.out.stderr);
    }
    check(&env, &save(&env, "firefox", &imp)).unwrap();
}

#[test]
fn small_profile_keys_net_none_private_tmp_and_read_only_home() {
    // devilspie.profile: one whitelist under $HOME, `read-only ${HOME}`,
    // `net none`, `private-tmp`, `private-etc`, `x11 none`.
    let env = TestEnv::new("firejail-devilspie");
    require!(
        have_profiles(),
        "{FIREJAIL}/devilspie.profile missing (package firejail-profiles)"
    );
    let imp = import(&env, &Path::new(FIREJAIL).join("devilspie.profile")).unwrap();
    let ro = imp.list("ro-bind-try");
    // whitelist + read-only ${HOME}: the whitelisted directory, read-only;
    // $HOME itself is not bound.
    assert!(
        imp.list("bind-try").iter().all(|p| !p.starts_with('~')),
        "{:?}",
        imp.list("bind-try")
    );
    assert!(ro.contains(&"~/.devilspie".to_string()), "{ro:?}");
    assert!(!ro.contains(&"~".to_string()), "{ro:?}");
    assert!(
        imp.covered("devilspie.profile:58: read-only ${HOME}")
            .is_some_and(|c| c.ends_with("(the listed paths below it are bound read-only)")),
        "{}",
        imp.out.stdout
    );
    // private-etc: a tmpfs /etc with the files listed.
    assert_eq!(imp.list("tmpfs"), ["/etc"]);
    for f in [
        "/etc/alternatives",
        "/etc/ld.so.cache",
        "/etc/ld.so.preload",
    ] {
        assert!(ro.contains(&f.to_string()), "{f}: {ro:?}");
    }
    // net none: no key, nook's default; private-tmp likewise.
    assert!(imp.toml().get("share-net").is_none());
    for at in [
        "devilspie.profile:30: net none",
        "devilspie.profile:52: private-tmp",
        "devilspie.profile:44: x11 none",
    ] {
        assert!(imp.covered(at).is_some(), "{at}\n{}", imp.out.stdout);
    }
    assert_eq!(
        imp.why("devilspie.profile:9: blacklist ${RUNUSER}/wayland-*"),
        Some("nook paths are literal, without globs; list the matching paths by hand")
    );
    assert_eq!(
        imp.why("devilspie.profile:47: private-bin devilspie"),
        Some("nook shows all of /usr read-only; use --hide for programs that must not run")
    );
    check(&env, &save(&env, "devilspie", &imp)).unwrap();
}

#[test]
fn imported_profiles_run_and_show_what_they_say() {
    // Run the imports with a HOME of their own, holding what the profiles
    // whitelist and what they must not show.
    let mut env = TestEnv::new("firejail-run");
    require!(
        have_profiles(),
        "{FIREJAIL}/firefox.profile missing (package firejail-profiles)"
    );
    let home = PathBuf::from(format!("{}-home", env.dir_str()));
    env.mkdir(&home);
    env.cleanup_later(home.clone());
    for d in [".mozilla", ".config", ".devilspie", ".ssh"] {
        env.mkdir(&home.join(d));
    }
    env.write(&home.join(".mozilla/prefs.js"), "// prefs\n");
    env.write(&home.join(".config/user-dirs.dirs"), "XDG_DOWNLOAD_DIR=x\n");
    env.write(&home.join(".devilspie/rules.ds"), "(begin)\n");
    env.write(&home.join(".ssh/config"), "Host secret-host\n");
    env.write(&home.join(".ssh/id_ed25519"), "SECRET KEY\n");
    env.write(&home.join(".Xauthority"), "SECRET COOKIE\n");
    env.write(&home.join(".bashrc"), "# rc\n");
    let h = home.display().to_string();
    let run = |name: &str, script: &str| {
        let imp = import(&env, &Path::new(FIREJAIL).join(format!("{name}.profile"))).unwrap();
        let file = save(&env, name, &imp);
        let out = env
            .run(&["--profile", &file, "--", "/bin/sh", "-c", script])
            .env("HOME", &h)
            .output();
        out.ok();
        assert!(
            !out.stdout.contains("SECRET") && !out.stderr.contains("SECRET"),
            "{out}"
        );
        out
    };
    let probe = "for f in .mozilla/prefs.js .config/user-dirs.dirs .devilspie/rules.ds \
                 .ssh/config .ssh/id_ed25519 .Xauthority .bashrc; do \
                   if test -e ~/$f; then \
                     if (echo >> ~/$f) 2>/dev/null; then echo \"$f rw\"; else echo \"$f ro\"; fi; \
                   else echo \"$f -\"; fi; \
                 done; \
                 touch /dev/shm/x && echo shm: own; \
                 sed -n '3,$s/:.*//p' /proc/net/dev | tr -d ' '";
    let out = run("firefox", probe);
    assert_eq!(
        out.stdout,
        ".mozilla/prefs.js rw\n.config/user-dirs.dirs ro\n.devilspie/rules.ds -\n.ssh/config -\n\
         .ssh/id_ed25519 -\n.Xauthority -\n.bashrc -\nshm: own\nlo\n",
        "{out}"
    );
    let out = run("devilspie", probe);
    assert_eq!(
        out.stdout,
        ".mozilla/prefs.js -\n.config/user-dirs.dirs ro\n.devilspie/rules.ds ro\n.ssh/config -\n\
         .ssh/id_ed25519 -\n.Xauthority -\n.bashrc -\nshm: own\nlo\n",
        "{out}"
    );
}

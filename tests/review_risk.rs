//! The review flags what would run later on the host (issue 14, point 5),
//! through the real binary as the unprivileged test user: a sandbox that
//! plants `core.fsmonitor` in the overlaid repository's `.git/config`, adds
//! a hook, makes a file executable and plants a symlink to /etc is flagged
//! by `nook diff` (text and JSON), refused by `nook commit` with the host
//! unchanged, still refused with one path allowed, and applied with
//! `--allow-risky`: the control, where `git status` on the host then runs
//! the planted command. An innocent change commits as before.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::overlay::{DRIVERS, fuse_ready, nook, run};
use common::{TestEnv, require, which};

/// A git repository on the host, made by the test user, with a text file
/// and a script that is not executable yet.
fn repo(env: &TestEnv) -> PathBuf {
    let p = env.path("proj");
    env.mkdir(&p);
    env.write(&p.join("readme.txt"), "hello\n");
    env.write(&p.join("tool.sh"), "#!/bin/sh\necho tool\n");
    env.sh("git init -q proj").output().ok();
    p
}

/// Every entry below `dir`: type, permission bits, content or target.
fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let m = fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", fs::read_link(&p).unwrap().display()));
            } else if m.is_dir() {
                out.push(format!("{rel}/ {mode:o}"));
                walk(base, &p, out);
            } else {
                let content = fs::read(&p).unwrap();
                out.push(format!(
                    "{rel} {mode:o} {}",
                    String::from_utf8_lossy(&content)
                ));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// The attack, from inside: each write is one a host program obeys later.
/// The fsmonitor value is quoted (`;` starts a comment in git config) and
/// ends in `:` so that git's arguments go to `:`, not to touch.
const ATTACK: &str = r#"cd "$P" \
  && printf '[core]\n\tfsmonitor = "touch %s; :"\n' "$PWNED" >> .git/config \
  && printf '#!/bin/sh\ntouch "%s"\n' "$PWNED" > .git/hooks/pre-commit \
  && chmod +x .git/hooks/pre-commit tool.sh \
  && ln -s /etc etc-link \
  && echo more >> readme.txt"#;

#[test]
fn diff_flags_and_commit_refuses_what_would_run_later() {
    if !require(
        which("git"),
        "git is needed to make and check the repository",
    ) {
        return;
    }
    for driver in DRIVERS {
        let env = TestEnv::new(&format!("risk-{driver}"));
        if driver == "fuse" && !fuse_ready() {
            return;
        }
        let p = repo(&env);
        let ps = p.display().to_string();
        let pwned = env.path("pwned");
        let pwned_s = pwned.display().to_string();
        run(
            &env,
            &[
                "--name",
                "r",
                "--overlay-driver",
                driver,
                "--overlay",
                &ps,
                "--",
                "sh",
                "-c",
                ATTACK,
            ],
        )
        .env("P", &ps)
        .env("PWNED", &pwned_s)
        .output()
        .ok();
        let before = snapshot(&p);

        // diff: each flagged with its reason, the innocent edit not.
        let out = nook(&env, &["diff", "r"]).output();
        out.ok();
        let lines: Vec<String> = out.lines().iter().map(|l| l.replace(&ps, "P")).collect();
        let line = |start: &str| -> String {
            lines
                .iter()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("{driver}: no line {start:?}: {out}"))
                .clone()
        };
        assert!(
            line("M P/.git/config  ! ").starts_with(&format!(
                "M P/.git/config  ! core.fsmonitor = touch {pwned_s}; :: git runs it"
            )),
            "{driver}: {out}"
        );
        let hook = line("A P/.git/hooks/pre-commit  ! ");
        assert!(hook.contains("protected: git runs the hooks"), "{hook}");
        assert!(hook.contains("new executable file (mode 0755)"), "{hook}");
        assert_eq!(
            line("M P/tool.sh"),
            "M P/tool.sh  ! made executable (mode 0644 to 0755)"
        );
        assert_eq!(
            line("A P/etc-link"),
            "A P/etc-link  ! symlink to /etc, outside the tree"
        );
        assert_eq!(line("M P/readme.txt"), "M P/readme.txt", "not flagged");
        assert!(
            lines
                .last()
                .unwrap()
                .starts_with("4 change(s) would run later on the host"),
            "{out}"
        );

        // --json: a risks array per change.
        let out = nook(&env, &["diff", "r", "--json"]).output();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("diff --json");
        let by_path = |path: &str| -> serde_json::Value {
            v.as_array()
                .unwrap()
                .iter()
                .find(|c| c["path"] == path)
                .unwrap_or_else(|| panic!("{driver}: no {path}: {out}"))["risks"]
                .clone()
        };
        let config = by_path(".git/config");
        assert_eq!(config[0]["kind"], "git-config", "{config}");
        assert_eq!(config[0]["key"], "core.fsmonitor", "{config}");
        let kinds = |r: serde_json::Value| -> Vec<String> {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x["kind"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            kinds(by_path(".git/hooks/pre-commit")),
            ["protected", "executable"]
        );
        assert_eq!(kinds(by_path("tool.sh")), ["executable"]);
        assert_eq!(kinds(by_path("etc-link")), ["symlink-outside"]);
        assert_eq!(by_path("readme.txt"), serde_json::json!([]));

        // commit: refused, listing each with the ways out; nothing applied.
        let out = nook(&env, &["commit", "r"]).output();
        out.expect_code(1);
        let err = out.stderr.replace(&ps, "P");
        assert!(
            err.contains(
                "commit refused: 4 change(s) would run later on the host; nothing was applied"
            ),
            "{driver}: {out}"
        );
        for flagged in [
            "M P/.git/config  ! core.fsmonitor",
            "A P/.git/hooks/pre-commit  ! protected",
            "M P/tool.sh  ! made executable",
            "A P/etc-link  ! symlink to /etc",
        ] {
            assert!(err.contains(flagged), "{driver}: {flagged}: {out}");
        }
        assert!(
            err.contains("--allow PATH") && err.contains("--allow-risky"),
            "{out}"
        );
        assert_eq!(out.stdout, "", "nothing applied: {out}");
        assert_eq!(snapshot(&p), before, "{driver}: the host is unchanged");

        // One path allowed (relative to the current directory, the work
        // directory holding proj/): the others still refuse the commit.
        let out = nook(&env, &["commit", "r", "--allow", "proj/.git/config"]).output();
        out.expect_code(1);
        assert!(out.stderr.contains("3 change(s) would run later"), "{out}");
        assert!(!out.stderr.contains("core.fsmonitor"), "{out}");
        assert_eq!(snapshot(&p), before, "{driver}: the host is unchanged");
        // `git status` on the host runs nothing yet.
        env.sh(&format!("cd {ps} && git status --short >/dev/null"))
            .output()
            .ok();
        assert!(!pwned.exists(), "{driver}: the review kept the attack out");

        // A partial commit considers only the named paths.
        let out = nook(&env, &["commit", "r", &format!("{ps}/readme.txt")]).output();
        out.ok();
        assert_eq!(out.stdout.replace(&ps, "P"), "M P/readme.txt\n", "{out}");
        assert_eq!(
            fs::read_to_string(p.join("readme.txt")).unwrap(),
            "hello\nmore\n"
        );

        // The control: with --allow-risky everything lands, and the host's
        // next `git status` runs the planted command.
        let out = nook(&env, &["commit", "r", "--allow-risky"]).output();
        out.ok();
        let mode = |rel: &str| fs::metadata(p.join(rel)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("tool.sh"), 0o755);
        assert_eq!(mode(".git/hooks/pre-commit"), 0o755);
        assert_eq!(
            fs::read_link(p.join("etc-link")).unwrap(),
            Path::new("/etc")
        );
        let got = env
            .sh(&format!("cd {ps} && git config core.fsmonitor"))
            .output();
        assert_eq!(got.stdout.trim(), format!("touch {pwned_s}; :"), "{got}");
        env.sh(&format!("cd {ps} && git status --short >/dev/null"))
            .output();
        assert!(
            pwned.exists(),
            "{driver}: without the review, the host's git runs the sandbox's command"
        );
        let out = nook(&env, &["diff", "r"]).output();
        assert_eq!(out.stdout, "", "{driver}: nothing left: {out}");
        nook(&env, &["rm", "r"]).output().ok();
    }
}

#[test]
fn an_innocent_change_commits_as_before() {
    if !require(which("git"), "git is needed to make the repository") {
        return;
    }
    let env = TestEnv::new("risk-innocent");
    let p = repo(&env);
    let ps = p.display().to_string();
    // An edit, a new file, a link inside the tree, a directory, and a
    // harmless git config change (what `git branch -u` writes).
    let script = r#"cd "$P" && echo more >> readme.txt && echo new > new.txt \
        && mkdir -p docs && echo d > docs/d.txt && ln -s ../readme.txt docs/readme \
        && printf '[branch "main"]\n\tremote = origin\n\tmerge = refs/heads/main\n' >> .git/config"#;
    run(
        &env,
        &["--name", "i", "--overlay", &ps, "--", "sh", "-c", script],
    )
    .env("P", &ps)
    .output()
    .ok();
    let out = nook(&env, &["diff", "i"]).output();
    out.ok();
    assert!(!out.stdout.contains('!'), "nothing flagged: {out}");
    assert!(!out.stdout.contains("would run later"), "{out}");
    let out = nook(&env, &["commit", "i"]).output();
    out.ok();
    assert_eq!(out.stderr, "", "{out}");
    assert_eq!(fs::read_to_string(p.join("new.txt")).unwrap(), "new\n");
    assert_eq!(
        fs::read_to_string(p.join("docs/readme")).unwrap(),
        "hello\nmore\n"
    );
    let got = env
        .sh(&format!("cd {ps} && git config branch.main.remote"))
        .output();
    assert_eq!(got.stdout.trim(), "origin", "{got}");
    nook(&env, &["rm", "i"]).output().ok();
}

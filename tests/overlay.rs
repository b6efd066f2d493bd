//! Copy-on-write views through the real binary, as the unprivileged test
//! user, with both drivers (native overlayfs in the user namespace, and
//! fuse-overlayfs): the host never changes, named sandboxes continue where
//! they left off, one run per name at a time, nothing written is lost when
//! nook is killed, and diff / commit / discard review the changes.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::TestEnv;
use common::overlay::{DRIVERS, fuse_ready, nook, run};

/// A project directory on the host with a few files.
fn project(env: &TestEnv) -> std::path::PathBuf {
    let p = env.path("proj");
    env.mkdir(&p);
    env.write(&p.join("keep.txt"), "keep\n");
    env.write(&p.join("edit.txt"), "line 1\n");
    env.write(&p.join("gone.txt"), "bye\n");
    env.write(&p.join("old-name.txt"), "renamed\n");
    env.mkdir(&p.join("sub"));
    env.write(&p.join("sub/deep.txt"), "deep\n");
    p
}

fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if p.is_dir() {
                out.push((rel.clone(), "<dir>".into()));
                walk(base, &p, out);
            } else {
                out.push((rel, fs::read_to_string(&p).unwrap_or_default()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

const CHANGES: &str = "cd \"$P\" && echo 'line 2' >> edit.txt && rm gone.txt && mv old-name.txt new-name.txt \
     && mkdir -p newdir/inner && echo fresh > newdir/inner/f.txt && echo added > added.txt && rm -r sub \
     && ls -1 | tr '\\n' ' '";

#[test]
fn writes_inside_an_overlay_never_reach_the_host() {
    for driver in DRIVERS {
        let env = TestEnv::new(&format!("ov-host-{driver}"));
        if driver == "fuse" && !fuse_ready() {
            return;
        }
        let p = project(&env);
        let before = snapshot(&p);
        let ps = p.display().to_string();
        let out = run(
            &env,
            &[
                "--name",
                "t1",
                "--overlay-driver",
                driver,
                "--overlay",
                &ps,
                "--",
                "sh",
                "-c",
                CHANGES,
            ],
        )
        .env("P", &ps)
        .output();
        out.ok();
        assert_eq!(
            out.stdout.trim(),
            "added.txt edit.txt keep.txt new-name.txt newdir",
            "{driver}: the sandbox saw its changes: {out}"
        );
        assert_eq!(snapshot(&p), before, "{driver}: the host is untouched");
        // The next run on the name continues on top of them.
        let out = run(
            &env,
            &[
                "--name",
                "t1",
                "--overlay-driver",
                driver,
                "--overlay",
                &ps,
                "--",
                "sh",
                "-c",
                "cd \"$P\" && cat edit.txt newdir/inner/f.txt && ls",
            ],
        )
        .env("P", &ps)
        .output();
        out.ok();
        assert_eq!(
            out.lines(),
            [
                "line 1",
                "line 2",
                "fresh",
                "added.txt",
                "edit.txt",
                "keep.txt",
                "new-name.txt",
                "newdir"
            ],
            "{driver}: {out}"
        );
        nook(&env, &["rm", "t1"]).output().ok();
    }
}

#[test]
fn tmp_overlay_throws_its_writes_away() {
    let env = TestEnv::new("ov-tmp");
    let p = project(&env);
    let before = snapshot(&p);
    let ps = p.display().to_string();
    let out = run(&env, &["--tmp-overlay", &ps, "--", "sh", "-c", CHANGES])
        .env("P", &ps)
        .output();
    out.ok();
    assert!(out.stdout.contains("added.txt"), "{out}");
    assert_eq!(snapshot(&p), before);
    let out = nook(&env, &["ls"]).output();
    out.ok();
    assert_eq!(out.stdout, "", "nothing kept");
}

#[test]
fn an_unnamed_overlay_run_keeps_its_changes_under_a_printed_name() {
    let env = TestEnv::new("ov-auto");
    let p = project(&env);
    let ps = p.display().to_string();
    let out = run(
        &env,
        &["--overlay", &ps, "--", "sh", "-c", "echo x > \"$P/x\""],
    )
    .env("P", &ps)
    .output();
    out.ok();
    let name = out
        .stderr
        .split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no name said: {out}"))
        .to_string();
    assert!(name.starts_with("run-"), "{out}");
    let ls = nook(&env, &["ls"]).output();
    assert!(ls.stdout.starts_with(&name), "{ls}");
    // A run that writes nothing leaves nothing behind.
    let out = run(&env, &["--overlay", &ps, "--", "true"]).output();
    out.ok();
    assert_eq!(out.stderr, "");
    assert_eq!(nook(&env, &["ls"]).output().stdout.lines().count(), 1);
}

#[test]
fn two_runs_on_one_name_are_refused() {
    let env = TestEnv::new("ov-lock");
    let p = project(&env);
    let ps = p.display().to_string();
    let mut first = run(
        &env,
        &[
            "--name",
            "busy",
            "--overlay",
            &ps,
            "--",
            "sh",
            "-c",
            "echo up; sleep 30",
        ],
    )
    .spawn();
    first.wait_for_line("up", Duration::from_secs(10));
    let out = run(&env, &["--name", "busy", "--overlay", &ps, "--", "true"]).output();
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("--name 'busy': expected a sandbox not in use, but nook pid"),
        "{out}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    let out = nook(&env, &["rm", "busy"]).output();
    out.expect_code(125);
    first.signal("TERM");
    let _ = first.wait(Duration::from_secs(10));
    nook(&env, &["rm", "busy"]).output().ok();
}

#[test]
fn sigkill_of_nook_loses_nothing_already_written() {
    for driver in DRIVERS {
        let env = TestEnv::new(&format!("ov-kill-{driver}"));
        if driver == "fuse" && !fuse_ready() {
            return;
        }
        let p = project(&env);
        let ps = p.display().to_string();
        let mut running = run(
            &env,
            &[
                "--name",
                "k",
                "--overlay-driver",
                driver,
                "--overlay",
                &ps,
                "--",
                "sh",
                "-c",
                "cd \"$P\"; i=0; while [ $i -lt 200 ]; do echo line $i >> log.txt; i=$((i+1)); done; \
                 echo written; sleep 30",
            ])
            .env("P", &ps)
            .spawn();
        running.wait_for_line("written", Duration::from_secs(15));
        running.signal("KILL");
        let _ = running.wait(Duration::from_secs(10));
        assert!(
            !p.join("log.txt").exists(),
            "{driver}: the host is untouched"
        );
        let out = run(
            &env,
            &[
                "--name",
                "k",
                "--overlay-driver",
                driver,
                "--overlay",
                &ps,
                "--",
                "sh",
                "-c",
                "wc -l < \"$P/log.txt\"",
            ],
        )
        .env("P", &ps)
        .output();
        out.ok();
        assert_eq!(out.stdout.trim(), "200", "{driver}: {out}");
        nook(&env, &["rm", "k"]).output().ok();
    }
}

#[test]
fn bad_overlay_input_is_one_clear_line() {
    let env = TestEnv::new("ov-bad");
    let f = env.path("file");
    env.write(&f, "x");
    for (args, needle) in [
        (
            vec!["--overlay".to_string(), f.display().to_string()],
            "expected a directory".to_string(),
        ),
        (
            vec!["--overlay".into(), "/nonexistent-dir".into()],
            "expected an existing source".into(),
        ),
        (
            vec!["--name".into(), "../up".into()],
            "--name '../up': expected a name".into(),
        ),
        (
            vec![
                "--overlay-driver".into(),
                "zfs".into(),
                "--tmp-overlay".into(),
                "/usr".into(),
            ],
            "expected auto, native or fuse".into(),
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--".into(), "true".into()]);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = run(&env, &all).output();
        out.expect_code(125);
        assert!(out.stderr.contains(&needle), "{args:?}: {out}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out}");
    }
    let out = nook(&env, &["diff", "no-such"]).output();
    out.expect_code(125);
    assert!(out.stderr.contains("expected an existing sandbox"), "{out}");
}

/// What a tree looks like, one line per entry: from the sandbox's view
/// (inside nook) or the host's (outside), so the two compare.
const LIST: &str = "cd \"$P\" && find . -mindepth 1 | sort | while read -r f; do \
     if [ -L \"$f\" ]; then echo \"$f -> $(readlink \"$f\")\"; \
     elif [ -d \"$f\" ]; then echo \"$f/ $(stat -c %a \"$f\")\"; \
     else echo \"$f $(stat -c %a \"$f\") $(cat \"$f\")\"; fi; done";

#[test]
fn diff_lists_the_changes_and_commit_makes_the_host_match() {
    for driver in DRIVERS {
        let env = TestEnv::new(&format!("ov-commit-{driver}"));
        if driver == "fuse" && !fuse_ready() {
            return;
        }
        let p = project(&env);
        let ps = p.display().to_string();
        let ov = ["--name", "c", "--overlay-driver", driver, "--overlay", &ps];
        let with = |extra: &[&str]| -> Vec<String> {
            ov.iter().chain(extra).map(|s| s.to_string()).collect()
        };
        let args = with(&["--", "sh", "-c", &format!("{CHANGES}; chmod 600 keep.txt")]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&env, &args).env("P", &ps).output().ok();

        let out = nook(&env, &["diff", "c"]).output();
        out.ok();
        let mut got: Vec<String> = out.lines().iter().map(|l| l.replace(&ps, "P")).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "A P/added.txt",
                "A P/new-name.txt",
                "A P/newdir/",
                "A P/newdir/inner/",
                "A P/newdir/inner/f.txt",
                "D P/gone.txt",
                "D P/old-name.txt",
                "D P/sub/",
                "D P/sub/deep.txt",
                "M P/edit.txt",
                "M P/keep.txt",
            ],
            "{driver}: {out}"
        );
        let out = nook(&env, &["diff", "c", "--stat", &format!("{ps}/keep.txt")]).output();
        assert_eq!(
            out.stdout.trim().replace(&ps, "P"),
            "M P/keep.txt  (mode only)",
            "{out}"
        );
        let out = nook(&env, &["diff", "c", "--patch", &format!("{ps}/edit.txt")]).output();
        assert!(out.stdout.contains("+line 2"), "{out}");
        let out = nook(&env, &["diff", "c", "--json"]).output();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("diff --json");
        assert_eq!(v.as_array().map(Vec::len), Some(11), "{out}");

        // What the sandbox sees, then commit, then the host must show it.
        let args = with(&["--", "sh", "-c", LIST]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let seen = run(&env, &args).env("P", &ps).output();
        seen.ok();
        let out = nook(&env, &["commit", "c"]).output();
        out.ok();
        let host = env.sh(LIST).env("P", &ps).output();
        host.ok();
        assert_eq!(
            host.stdout, seen.stdout,
            "{driver}: the host matches the sandbox's view"
        );
        let out = nook(&env, &["diff", "c"]).output();
        assert_eq!(out.stdout, "", "{driver}: nothing left to commit: {out}");
        nook(&env, &["rm", "c"]).output().ok();
    }
}

#[test]
fn commit_refuses_files_the_host_changed_since_the_sandbox_started() {
    let env = TestEnv::new("ov-conflict");
    let p = project(&env);
    let ps = p.display().to_string();
    run(
        &env,
        &[
            "--name",
            "x",
            "--overlay",
            &ps,
            "--",
            "sh",
            "-c",
            "echo sandbox > \"$P/edit.txt\"; echo new > \"$P/new.txt\"",
        ],
    )
    .env("P", &ps)
    .output()
    .ok();
    std::thread::sleep(Duration::from_millis(20));
    env.sh("echo host > \"$P/edit.txt\"")
        .env("P", &ps)
        .output()
        .ok();
    let out = nook(&env, &["commit", "x"]).output();
    out.expect_code(1);
    assert!(
        out.stdout
            .contains(&format!("nook: conflict: {ps}/edit.txt")),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("commit refused: 1 host file(s) changed"),
        "{out}"
    );
    assert_eq!(fs::read_to_string(p.join("edit.txt")).unwrap(), "host\n");
    assert!(!p.join("new.txt").exists(), "all or nothing");
    let out = nook(&env, &["commit", "x", "--force"]).output();
    out.ok();
    assert_eq!(fs::read_to_string(p.join("edit.txt")).unwrap(), "sandbox\n");
    assert_eq!(fs::read_to_string(p.join("new.txt")).unwrap(), "new\n");
}

#[test]
fn a_planted_symlink_cannot_make_commit_write_outside() {
    let env = TestEnv::new("ov-symlink");
    let p = project(&env);
    let ps = p.display().to_string();
    // Stands for ~/.ssh or /etc: a directory outside the overlay.
    let outside = env.path("outside");
    env.mkdir(&outside);
    let os = outside.display().to_string();
    // 1. The sandbox plants a link; commit makes it a link on the host
    //    (a link, as the sandbox saw it, never followed).
    run(
        &env,
        &[
            "--name",
            "s",
            "--overlay",
            &ps,
            "--",
            "sh",
            "-c",
            "ln -s \"$O\" \"$P/keys\"",
        ],
    )
    .env("P", &ps)
    .env("O", &os)
    .output()
    .ok();
    //    The review flags a link out of the tree; this test is about what
    //    commit does once the user allows it.
    nook(&env, &["commit", "s", "--allow-risky"]).output().ok();
    assert_eq!(fs::read_link(p.join("keys")).unwrap(), outside);
    // 2. It writes "through" it: in the sandbox the link now leads to the
    //    sandbox's own view, so it replaces the link with a directory.
    run(&env, &["--name", "s", "--overlay", &ps, "--", "sh", "-c",
        "rm \"$P/keys\" && mkdir \"$P/keys\" && echo pwned > \"$P/keys/authorized_keys\" && mkdir -p \"$P/sub\" && echo x > \"$P/sub/deep.txt\""])
        .env("P", &ps)
        .output()
        .ok();
    // 3. And on the host, before the commit, sub becomes a link outside too.
    fs::remove_dir_all(p.join("sub")).unwrap();
    std::os::unix::fs::symlink(&outside, p.join("sub")).unwrap();
    let out = nook(&env, &["commit", "s", "--force"]).output();
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "commit wrote outside the overlay: {:?}\n{out}",
        fs::read_dir(&outside)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect::<Vec<_>>()
    );
}

#[test]
fn discard_drops_changes_and_commit_waits_for_the_run() {
    let env = TestEnv::new("ov-discard");
    let p = project(&env);
    let ps = p.display().to_string();
    run(
        &env,
        &["--name", "d", "--overlay", &ps, "--", "sh", "-c", CHANGES],
    )
    .env("P", &ps)
    .output()
    .ok();
    let out = nook(&env, &["discard", "d", &format!("{ps}/newdir")]).output();
    out.ok();
    let diff = nook(&env, &["diff", "d"]).output();
    assert!(!diff.stdout.contains("newdir"), "{diff}");
    assert!(diff.stdout.contains("added.txt"), "{diff}");
    let out = nook(&env, &["diff", "d", "/usr"]).output();
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("expected a path under one of the sandbox's overlays"),
        "{out}"
    );
    // While a run holds the sandbox, its layers can't change under it.
    let mut busy = run(
        &env,
        &[
            "--name",
            "d",
            "--overlay",
            &ps,
            "--",
            "sh",
            "-c",
            "echo up; sleep 30",
        ],
    )
    .spawn();
    busy.wait_for_line("up", Duration::from_secs(10));
    nook(&env, &["commit", "d"]).output().expect_code(125);
    nook(&env, &["discard", "d"]).output().expect_code(125);
    busy.signal("TERM");
    let _ = busy.wait(Duration::from_secs(10));
    nook(&env, &["discard", "d"]).output().ok();
    assert_eq!(nook(&env, &["diff", "d"]).output().stdout, "");
    // The sandbox sees the host again.
    let out = run(&env, &["--name", "d", "--overlay", &ps, "--", "ls", &ps]).output();
    assert_eq!(
        out.lines(),
        ["edit.txt", "gone.txt", "keep.txt", "old-name.txt", "sub"],
        "{out}"
    );
}

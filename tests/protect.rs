//! Protected paths in read-write shares (issue 14): what a host program
//! runs or obeys later (git hooks and config, direnv's .envrc, editor and
//! build tool configs) stays read-only inside while the rest of the share
//! is writable. Each attack is tried from inside the sandbox and its effect
//! checked on the host, beside the same write succeeding with the
//! protection released (`--unprotect '**'`).
//! Run as the unprivileged test user like every integration test.

mod common;

use common::TestEnv;

/// A git repository in the work directory, made by the test user, with
/// one commit, and the files a developer's checkout often has.
fn repo(env: &TestEnv) {
    env.sh("set -e
         git init -q -b main .
         git config user.email t@example.org
         git config user.name t
         mkdir -p .vscode .cargo
         echo '{}' > .vscode/tasks.json
         echo '[build]' > .cargo/config.toml
         echo 'echo hi' > .envrc
         echo one > file
         git add -A
         git commit -q -m one")
        .output()
        .ok();
}

/// Run `script` in a sandbox over the work directory; its exit status.
fn inside(env: &TestEnv, extra: &[&str], script: &str) -> i32 {
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--", "sh", "-c", script]);
    env.run(&args).output().code()
}

fn host_file(env: &TestEnv, rel: &str) -> String {
    std::fs::read_to_string(env.path(rel)).unwrap_or_default()
}

#[test]
fn git_config_and_hooks_are_read_only_inside_and_writable_unprotected() {
    let env = TestEnv::new("protect-git");
    repo(&env);
    let attack = "git config core.fsmonitor 'touch /tmp/pwned'; \
                  printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > .git/hooks/pre-commit; \
                  chmod +x .git/hooks/pre-commit; exit 0";
    inside(&env, &[], attack);
    assert!(
        !host_file(&env, ".git/config").contains("fsmonitor"),
        "core.fsmonitor reached the host's .git/config"
    );
    assert!(
        !env.path(".git/hooks/pre-commit").exists(),
        "a hook reached the host"
    );
    // The control: the same attack with the protection released lands.
    inside(&env, &["--unprotect", "**"], attack);
    assert!(host_file(&env, ".git/config").contains("fsmonitor"));
    assert!(env.path(".git/hooks/pre-commit").exists());
}

#[test]
fn project_configs_that_run_later_are_read_only_inside() {
    let env = TestEnv::new("protect-files");
    repo(&env);
    for (rel, attack) in [
        (".envrc", "echo 'touch /tmp/pwned' >> .envrc"),
        (
            ".vscode/tasks.json",
            "echo '{\"x\":1}' > .vscode/tasks.json",
        ),
        (
            ".cargo/config.toml",
            "printf '[build]\\nrustc-wrapper = \"/tmp/w\"\\n' > .cargo/config.toml",
        ),
    ] {
        let before = host_file(&env, rel);
        let code = inside(&env, &[], attack);
        assert_ne!(code, 0, "{rel}: the write inside succeeded");
        assert_eq!(host_file(&env, rel), before, "{rel} changed on the host");
        // Control.
        assert_eq!(inside(&env, &["--unprotect", "**"], attack), 0, "{rel}");
        assert_ne!(host_file(&env, rel), before, "{rel}: control");
    }
}

#[test]
fn ordinary_work_and_git_commit_keep_working() {
    let env = TestEnv::new("protect-commit");
    repo(&env);
    let code = inside(
        &env,
        &[],
        "set -e; echo two > file; echo new > other; git add -A; git commit -q -m two; \
         git checkout -q -b topic; git checkout -q main",
    );
    assert_eq!(code, 0, "git commit inside failed");
    assert_eq!(host_file(&env, "file"), "two\n");
    let log = env.sh("git log --oneline | wc -l").output();
    assert_eq!(log.stdout.trim(), "2", "{log}");
}

#[test]
fn a_profile_protects_more_and_a_flag_releases_one() {
    let env = TestEnv::new("protect-keys");
    repo(&env);
    env.write(&env.path("Makefile"), "all:\n");
    let prof = env.path("p.toml");
    env.write(&prof, "protect = [\"Makefile\"]\n");
    let p = prof.display().to_string();
    assert_ne!(
        inside(&env, &["--profile", &p], "echo x >> Makefile"),
        0,
        "a protected pattern from a profile is writable"
    );
    assert_eq!(host_file(&env, "Makefile"), "all:\n");
    // Released one by one: .envrc only.
    assert_eq!(
        inside(&env, &["--unprotect", ".envrc"], "echo x >> .envrc"),
        0
    );
    assert_ne!(
        inside(
            &env,
            &["--unprotect", ".envrc"],
            "echo x >> .vscode/tasks.json"
        ),
        0
    );
}

#[test]
fn a_worktree_s_git_directory_elsewhere_is_shared_and_protected() {
    let env = TestEnv::new("protect-worktree");
    repo(&env);
    env.sh("git worktree add -q ../wt-$$ -b wt && basename ../wt-$$ > wt-name")
        .output()
        .ok();
    let name = host_file(&env, "wt-name").trim().to_string();
    let mut env = env;
    let wt = env.dir.parent().unwrap().join(&name);
    env.cleanup_later(wt.clone());
    let wt_s = wt.display().to_string();
    // Inside the worktree: commits work, hooks and config do not change.
    let out = env
        .sh(&format!(
            "cd {wt_s} && \"$NOOK\" run -- sh -c 'set -e; echo w > wfile; git add wfile; git commit -q -m w; \
             git config core.fsmonitor x || true; echo x > \"$(git rev-parse --git-common-dir)/hooks/post-checkout\" || true'"
        ))
        .output();
    out.ok();
    let log = env.sh("git log --oneline wt | wc -l").output();
    assert_eq!(log.stdout.trim(), "2", "commit in the worktree: {log}");
    assert!(!host_file(&env, ".git/config").contains("fsmonitor"));
    assert!(!env.path(".git/hooks/post-checkout").exists());
}

#[test]
fn a_submodule_s_git_directory_is_protected() {
    let env = TestEnv::new("protect-submodule");
    repo(&env);
    env.sh("set -e
         mkdir ../sub-src-$$ && cd ../sub-src-$$ && git init -q -b main . && \
           git -c user.email=t@e -c user.name=t commit -q --allow-empty -m s && cd - >/dev/null
         git -c protocol.file.allow=always submodule -q add ../sub-src-$$ sub
         rm -rf ../sub-src-$$")
        .output()
        .ok();
    assert!(env.path(".git/modules/sub/config").exists(), "setup");
    inside(
        &env,
        &[],
        "git -C sub config core.fsmonitor x; echo x > .git/modules/sub/hooks/pre-commit; exit 0",
    );
    assert!(!host_file(&env, ".git/modules/sub/config").contains("fsmonitor"));
    assert!(!env.path(".git/modules/sub/hooks/pre-commit").exists());
}

#[test]
fn protected_names_created_inside_are_reported_at_exit() {
    let env = TestEnv::new("protect-new");
    repo(&env);
    std::fs::remove_file(env.path(".envrc")).unwrap();
    let events = env.path("events.jsonl");
    let ev = events.display().to_string();
    let attack = "echo 'touch /tmp/pwned' > .envrc; mkdir -p .idea; echo x > .idea/workspace.xml";
    let out = env
        .run(&["--events", &ev, "--", "sh", "-c", attack])
        .output();
    out.ok();
    // It could not be stopped (the name did not exist), but it is named.
    assert!(env.path(".envrc").exists(), "setup: the new file landed");
    for name in [".envrc", ".idea"] {
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(&format!("{}/{name}:", env.dir_str())))
            .unwrap_or_else(|| panic!("no warning for {name}\n{out}"));
        assert!(
            line.starts_with("nook: warning: the sandbox created "),
            "{line}"
        );
    }
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"event\":\"risky-file\"") && l.contains(".envrc")),
        "{text}"
    );
    // Control: with the protection released, nothing is said.
    std::fs::remove_file(env.path(".envrc")).unwrap();
    let out = env
        .run(&["--unprotect", "**", "--", "sh", "-c", attack])
        .output();
    out.ok();
    assert!(!out.stderr.contains("the sandbox created"), "{out}");
}

#[test]
fn share_cwd_overlay_holds_every_write_for_review() {
    let mut env = TestEnv::new("protect-overlay");
    repo(&env);
    // Beside the work directory: the layers must not live in what they
    // overlay.
    let d = format!("{}-data", env.dir_str());
    env.cleanup_later(std::path::PathBuf::from(&d));
    let out = env
        .run(&[
            "--share-cwd",
            "overlay",
            "--",
            "sh",
            "-c",
            "git config core.fsmonitor x && echo new > newfile && echo 'echo hi' > .envrc",
        ])
        .env("XDG_DATA_HOME", &d)
        .output();
    out.ok();
    assert!(!host_file(&env, ".git/config").contains("fsmonitor"));
    assert!(!env.path("newfile").exists(), "a write reached the host");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("nook: changes kept in sandbox '"))
        .unwrap_or_else(|| panic!("no review line\n{out}"));
    let name = line.split('\'').nth(1).unwrap().to_string();
    let diff = env.nook(&["diff", &name]).env("XDG_DATA_HOME", &d).output();
    diff.ok();
    assert!(diff.stdout.contains("newfile"), "{diff}");
    assert!(diff.stdout.contains(".git/config"), "{diff}");
    env.nook(&["rm", &name])
        .env("XDG_DATA_HOME", &d)
        .output()
        .ok();
    // Control: read-write with the protection released, the same lands.
    env.run(&[
        "--unprotect",
        "**",
        "--",
        "sh",
        "-c",
        "git config core.fsmonitor x && echo new > newfile",
    ])
    .output()
    .ok();
    assert!(host_file(&env, ".git/config").contains("fsmonitor"));
    assert!(env.path("newfile").exists());
}

#[test]
fn a_protected_path_made_anew_under_a_renamed_parent_is_reported() {
    let env = TestEnv::new("protect-rename");
    repo(&env);
    let out = env
        .run(&[
            "--",
            "sh",
            "-c",
            "mv .git .git.old && mkdir -p .git/hooks && echo x > .git/hooks/pre-commit",
        ])
        .output();
    out.ok();
    assert!(
        env.path(".git/hooks/pre-commit").exists(),
        "setup: the rename worked"
    );
    assert!(
        out.stderr.contains(&format!(
            "the sandbox created {}/.git/hooks:",
            env.dir_str()
        )),
        "{out}"
    );
}

#[test]
fn the_review_applies_the_sandbox_s_own_patterns() {
    let mut env = TestEnv::new("protect-review-keys");
    repo(&env);
    env.write(&env.path("Makefile"), "all:\n");
    let d = format!("{}-data", env.dir_str());
    env.cleanup_later(std::path::PathBuf::from(&d));
    let flagged = |extra: &[&str]| -> bool {
        let mut args = vec!["--share-cwd", "overlay"];
        args.extend_from_slice(extra);
        args.extend(["--", "sh", "-c", "echo x >> Makefile"]);
        let out = env.run(&args).env("XDG_DATA_HOME", &d).output();
        out.ok();
        let name = out
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("nook: changes kept in sandbox '"))
            .and_then(|l| l.split('\'').next())
            .unwrap_or_else(|| panic!("no review line\n{out}"))
            .to_string();
        let diff = env.nook(&["diff", &name]).env("XDG_DATA_HOME", &d).output();
        diff.ok();
        env.nook(&["rm", &name])
            .env("XDG_DATA_HOME", &d)
            .output()
            .ok();
        let line = diff
            .stdout
            .lines()
            .find(|l| l.contains("Makefile"))
            .unwrap_or_else(|| panic!("no Makefile change\n{diff}"))
            .to_string();
        line.contains('!')
    };
    assert!(
        flagged(&["--protect", "Makefile"]),
        "a protect pattern is not flagged"
    );
    assert!(!flagged(&[]), "control: Makefile flagged without a pattern");
}

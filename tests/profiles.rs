//! Profiles through the real binary, as the unprivileged test user: which
//! profile applies, how files override, what bad files say, and the
//! secrets that no profile shows unless it names them.

mod common;

use common::TestEnv;

/// `nook run --print-spec ARGS` as JSON.
fn spec(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--print-spec"];
    all.extend_from_slice(args);
    let out = env.run(&all).output();
    out.ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON: {e}\n{out}"))
}

#[test]
fn profile_named_like_the_command_applies_implicitly() {
    let env = TestEnv::new("implicit");
    let s = spec(&env, &["--", "python3", "-c", "1"]);
    assert_eq!(s["profiles"], serde_json::json!(["python3"]));
    assert_eq!(s["env"]["PYTHONDONTWRITEBYTECODE"], "1");
    let s = spec(&env, &["--", "ls"]);
    assert_eq!(s["profiles"], serde_json::json!(["default"]));
    let s = spec(&env, &["--profile", "strict", "--", "python3"]);
    assert_eq!(s["profiles"], serde_json::json!(["strict"]));
}

#[test]
fn a_profile_in_the_current_directory_is_never_applied_implicitly() {
    // A cloned repository must not be able to loosen its own sandbox.
    let env = TestEnv::new("cwd-profile");
    env.write(&env.path("python3.toml"), "share-net = true\n");
    env.write(&env.path("ls.toml"), "share-net = true\n");
    for cmd in ["python3", "ls", "./ls.toml"] {
        let s = spec(&env, &["--", cmd]);
        assert_eq!(s["namespaces"]["net"], true, "{cmd}: network stays private");
    }
    // Named explicitly, it is the user's choice.
    let s = spec(&env, &["--profile", "./ls.toml", "--", "ls"]);
    assert_eq!(s["namespaces"]["net"], false);
}

#[test]
fn user_profiles_override_shipped_ones_and_flags_come_last() {
    let env = TestEnv::new("user-profile");
    let cfg = env.path("config");
    env.mkdir(&cfg.join("nook/profiles"));
    env.write(
        &cfg.join("nook/profiles/make.toml"),
        "# mine\nextends = [\"default\"]\nhostname = \"from-profile\"\nsetenv = [\"WHO=profile\"]\n",
    );
    let cfg_s = cfg.display().to_string();
    let out = env
        .run(&["--", "sh", "-c", "hostname; echo $WHO"])
        .env("XDG_CONFIG_HOME", &cfg_s)
        .output();
    out.ok();
    // `sh` has no profile: default.
    assert_ne!(out.stdout.lines().next(), Some("from-profile"), "{out}");
    let out = env
        .run(&["--profile", "make", "--", "sh", "-c", "hostname; echo $WHO"])
        .env("XDG_CONFIG_HOME", &cfg_s)
        .output();
    out.ok();
    assert_eq!(out.stdout, "from-profile\nprofile\n", "{out}");
    let out = env
        .run(&[
            "--profile",
            "make",
            "--hostname",
            "from-flag",
            "--setenv",
            "WHO=flag",
            "--",
            "sh",
            "-c",
            "hostname; echo $WHO",
        ])
        .env("XDG_CONFIG_HOME", &cfg_s)
        .output();
    out.ok();
    assert_eq!(out.stdout, "from-flag\nflag\n", "{out}");
    let out = env
        .nook(&["profile", "list"])
        .env("XDG_CONFIG_HOME", &cfg_s)
        .output();
    out.ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("make") && l.contains("yours")),
        "{out}"
    );
}

#[test]
fn bad_profiles_give_file_line_column() {
    let env = TestEnv::new("bad-profiles");
    let dir = env.dir_str();
    let cases: &[(&str, &str, String)] = &[
        (
            "syntax.toml",
            "uid = 1\nshare-net = \n",
            format!("{dir}/syntax.toml:2:13: "),
        ),
        (
            "unknown.toml",
            "uid = 1\nshare-network = true\n",
            format!("{dir}/unknown.toml:2:1: unknown field `share-network`, expected one of"),
        ),
        (
            "type.toml",
            "share-net = \"yes\"\n",
            format!("{dir}/type.toml:1:13: invalid type: string \"yes\", expected a boolean\n"),
        ),
        (
            "parent.toml",
            "extends = [\"default\", \"no-such-parent\"]\n",
            format!(
                "{dir}/parent.toml:1:23: extends: unknown parent profile 'no-such-parent', expected a shipped or user profile name\n"
            ),
        ),
        (
            "relative.toml",
            "ro-bind = [\"/usr\", \"lib/x\"]\n",
            format!(
                "{dir}/relative.toml:1:20: ro-bind: relative path 'lib/x' in 'lib/x', expected an absolute path, ~/..., or one starting with ${{HOME}}, ${{CWD}} or another variable\n"
            ),
        ),
        (
            "variable.toml",
            "tmpfs = [\"${SHELL}/x\"]\n",
            format!(
                "{dir}/variable.toml:1:10: tmpfs: unknown variable ${{SHELL}}, expected one of"
            ),
        ),
    ];
    for (name, text, want) in cases {
        env.write(&env.path(name), text);
        let out = env.nook(&["profile", "check", name]).output();
        out.expect_code(125);
        let got = out
            .stderr
            .strip_prefix("nook: error: ")
            .unwrap_or(&out.stderr);
        assert!(
            got.starts_with(want.as_str()),
            "{name}\n got: {got}\nwant: {want}"
        );
        assert_eq!(got.lines().count(), 1, "one line\n{out}");
        // The same file used for a run fails the same way, before anything runs.
        let out = env
            .run(&["--profile", &format!("./{name}"), "--", "touch", "ran"])
            .output();
        out.expect_code(125);
        assert!(!env.path("ran").exists());
    }
}

#[test]
fn inheritance_cycles_are_refused() {
    let env = TestEnv::new("cycle");
    let cfg = env.path("config");
    env.mkdir(&cfg.join("nook/profiles"));
    env.write(&cfg.join("nook/profiles/a.toml"), "extends = [\"b\"]\n");
    env.write(&cfg.join("nook/profiles/b.toml"), "\nextends = [\"a\"]\n");
    let out = env
        .nook(&["profile", "check", "a"])
        .env("XDG_CONFIG_HOME", &cfg.display().to_string())
        .output();
    out.expect_code(125);
    let p = cfg.join("nook/profiles").display().to_string();
    assert_eq!(
        out.stderr,
        format!(
            "nook: error: {p}/b.toml:2:12: extends: 'a' extends itself through {p}/a.toml -> {p}/b.toml -> {p}/a.toml; expected a chain without cycles\n"
        )
    );
}

#[test]
fn every_shipped_profile_shows_explains_and_checks() {
    let env = TestEnv::new("shipped");
    let out = env.nook(&["profile", "list"]).output();
    out.ok();
    let names: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    for required in [
        "default",
        "strict",
        "shell",
        "python",
        "pip",
        "node",
        "npm",
        "cargo",
        "git",
        "make",
        "installer",
        "ai-agent",
        "browser",
    ] {
        assert!(names.iter().any(|n| n == required), "{required} shipped");
    }
    for n in &names {
        env.nook(&["profile", "show", n]).output().ok();
        let out = env.nook(&["profile", "explain", n]).output();
        out.ok();
        assert!(out.stdout.contains("network:"), "{out}");
        env.nook(&["profile", "check", n]).output().ok();
    }
    let out = env.nook(&["profile", "explain", "default"]).output();
    assert!(
        out.stdout
            .contains("none: its own network namespace with only loopback"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&format!("  - {}\n", env.dir_str())),
        "{out}"
    );
}

#[test]
fn credential_variables_are_dropped_unless_kept() {
    let env = TestEnv::new("secret-env");
    let script = "echo T=${GITHUB_TOKEN:-none} S=${SSH_AUTH_SOCK:-none} K=${AWS_SECRET_ACCESS_KEY:-none} X=$PLAIN";
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--", "sh", "-c", script]);
        let out = env
            .run(&args)
            .env("GITHUB_TOKEN", "gh-secret")
            .env("SSH_AUTH_SOCK", "/run/agent")
            .env("AWS_SECRET_ACCESS_KEY", "aws-secret")
            .env("PLAIN", "ok")
            .output();
        out.ok();
        out.stdout
    };
    assert_eq!(run(&[]), "T=none S=none K=none X=ok\n");
    assert_eq!(
        run(&["--keep-env", "GITHUB_*"]),
        "T=gh-secret S=none K=none X=ok\n"
    );
    assert_eq!(
        run(&["--setenv", "SSH_AUTH_SOCK=/explicit"]),
        "T=none S=/explicit K=none X=ok\n"
    );
}

#[test]
fn secrets_stay_hidden_when_home_is_bound_wholesale() {
    let env = TestEnv::new("secret-home");
    // A fake $HOME for this test, so the planted secrets are its own.
    let home = env.path("home");
    env.mkdir(&home.join(".aws"));
    env.write(&home.join(".aws/credentials"), "AWS-SECRET\n");
    env.write(&home.join(".netrc"), "NETRC-SECRET\n");
    env.write(&home.join("notes.txt"), "plain\n");
    let h = home.display().to_string();
    let out = env
        .run(&[
            "--ro-bind",
            &h,
            "--",
            "sh",
            "-c",
            "cat ~/notes.txt; cat ~/.aws/credentials; cat ~/.netrc; ls -A ~/.aws; true",
        ])
        .env("HOME", &h)
        .output();
    out.ok();
    assert!(out.stdout.starts_with("plain\n"), "{out}");
    assert!(!out.stdout.contains("SECRET"), "{out}");
    assert!(out.stderr.contains("Permission denied"), "{out}");
    // Without the feature (naming the secret explicitly) the same read works.
    let out = env
        .run(&[
            "--ro-bind",
            &h,
            "--ro-bind",
            &format!("{h}/.netrc"),
            "--",
            "cat",
            &format!("{h}/.netrc"),
        ])
        .env("HOME", &h)
        .output();
    out.ok();
    assert_eq!(out.stdout, "NETRC-SECRET\n", "{out}");
}

//! `nook why` and `nook learn`, run as the unprivileged test user: what a
//! traced run was refused, said in one line each with the flag that would
//! allow it, and a profile learned from a run that checks and runs.
//!
//! Each test keeps its traces in its own `XDG_STATE_HOME` (under its work
//! directory), so tests running at once never read each other's.
//! Some tests of `why` use traces written by hand in the kept format (to
//! pin its exact lines); the tests of `learn` trace real runs.

mod common;

use std::path::PathBuf;

use common::{Output, TestEnv};

/// A test's own state directory, and the environment that points nook at
/// it.
fn state(env: &TestEnv) -> PathBuf {
    let dir = env.path("state");
    env.mkdir(&dir.join("nook/traces"));
    dir
}

fn nook(env: &TestEnv, args: &[&str]) -> Output {
    env.nook(args)
        .env("XDG_STATE_HOME", &env.path("state").display().to_string())
        .output()
}

/// One line on stderr, nothing on stdout, exit status 1.
#[track_caller]
fn one_line_exit_1(out: &Output) -> &str {
    out.expect_code(1);
    assert!(out.stdout.is_empty(), "nothing on stdout\n{out}");
    assert_eq!(out.stderr.lines().count(), 1, "one line\n{out}");
    assert!(out.stderr.starts_with("nook: error: "), "{out}");
    &out.stderr
}

fn write_trace(env: &TestEnv, name: &str, json: &str) {
    let file = state(env).join(format!("nook/traces/{name}.json"));
    env.write(&file, json);
}

/// A trace as the runtime keeps it, with these paths.
fn trace_json(env: &TestEnv, paths: &str) -> String {
    format!(
        r#"{{"version": 1, "name": "sb-42", "command": ["app", "--go"], "profiles": ["default"],
            "started": 0, "exit_status": 2, "paths": [{paths}], "syscalls": [],
            "network": [], "limits": []}}"#
    )
    .replace("HOME", &env.user.home.display().to_string())
}

#[test]
fn why_without_a_trace_says_so_in_one_line() {
    let env = TestEnv::new("why-none");
    state(&env);
    let out = nook(&env, &["why"]);
    let line = one_line_exit_1(&out);
    assert!(
        line.contains("no trace kept; run the command with `nook run --trace`"),
        "{out}"
    );
    let out = nook(&env, &["why", "web"]);
    let line = one_line_exit_1(&out);
    assert!(line.contains("traces/web.json: no trace kept"), "{out}");
    // A name is a name, not a path.
    let out = nook(&env, &["why", "../x"]);
    out.expect_code(125);
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

#[test]
fn a_corrupt_trace_or_one_of_another_version_is_one_line() {
    let env = TestEnv::new("why-corrupt");
    write_trace(&env, "last", "{\"version\": 1, \"paths\": [");
    let out = nook(&env, &["why"]);
    assert!(
        one_line_exit_1(&out).contains("not a nook trace (corrupt JSON"),
        "{out}"
    );
    write_trace(&env, "last", "{\"version\": 99, \"paths\": 7}");
    let out = nook(&env, &["why", "--json"]);
    assert!(
        one_line_exit_1(&out)
            .contains("a trace of format 99, but this nook reads format 1; run the command again"),
        "{out}"
    );
    // The right version with the wrong shape.
    write_trace(&env, "last", "{\"version\": 1, \"paths\": 7}");
    let out = nook(&env, &["why"]);
    assert!(one_line_exit_1(&out).contains("not a nook trace"), "{out}");
}

#[test]
fn a_traced_timeout_is_named_with_its_setting() {
    let env = TestEnv::new("why-timeout");
    state(&env);
    let out = env
        .run(&["--trace", "--timeout", "1s", "--", "sleep", "5"])
        .env("XDG_STATE_HOME", &env.path("state").display().to_string())
        .output();
    out.expect_code(124);
    let out = nook(&env, &["why"]);
    out.ok();
    let lines = out.lines();
    assert!(
        lines[0].starts_with("`sleep 5` (sb-")
            && lines[0].ends_with(", profile default) exited with status 124"),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "  limit timeout: the run hit --timeout; raise it with --timeout DURATION (profile: [limits] timeout)"
        )),
        "{out}"
    );
    let out = nook(&env, &["why", "--last", "--json"]);
    out.ok();
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(v["version"], 1);
    assert_eq!(v["command"][0], "sleep");
    assert_eq!(v["exit_status"], 124);
    assert_eq!(v["limits"][0]["what"], "timeout");
    let s = &v["suggestions"][0];
    assert_eq!(s["kind"], "limit", "{out}");
    assert_eq!(s["flag"], "--timeout", "{out}");
    assert_eq!(s["profile_key"], "limits.timeout", "{out}");
    assert_eq!(s["advice"], "raise", "{out}");
}

#[test]
fn a_hidden_config_read_is_named_with_the_bind_of_its_directory() {
    let env = TestEnv::new("why-paths");
    let d = |path: &str, access: &str, host: &str, count: u32| {
        format!(
            r#"{{"path": "{path}", "access": "{access}", "why": "absent", "host": "{host}",
                "secret": false, "count": {count}, "first": 0.5}}"#
        )
    };
    let paths = [
        d("HOME/.ssh/id_ed25519", "read", "file", 1),
        d("HOME/.config/app/conf", "read", "file", 3),
        d("HOME", "list", "dir", 2),
        d("HOME/.cache/app/x\\u001b[2J", "write", "file", 1),
    ]
    .join(",");
    write_trace(&env, "last", &trace_json(&env, &paths));
    let out = nook(&env, &["why"]);
    out.ok();
    let lines = out.lines();
    assert_eq!(
        lines[0], "`app --go` (sb-42, profile default) exited with status 2",
        "{out}"
    );
    assert_eq!(
        lines[1], "4 refusals, limits first, then the most frequent:",
        "{out}"
    );
    assert_eq!(
        lines[2],
        r#"  ~/.config/app/conf (read, 3 times): not in the view; allow it with --ro-bind-try ~/.config/app (profile: ro-bind-try = ["~/.config/app"])"#,
        "{out}"
    );
    assert_eq!(
        lines[3],
        "  ~ (list, 2 times): not in the view; ~ is too wide to grant: bind what the command needs below it",
        "{out}"
    );
    assert_eq!(
        lines[4],
        "  ~/.ssh/id_ed25519 (read, 1 time): not in the view; a secret: not proposed; bind it yourself only if the command must have it",
        "{out}"
    );
    assert!(
        lines[5].starts_with(r"  ~/.cache/app/x\x1b[2J (write, 1 time): not in the view; allow it with --bind-try ~/.cache/app"),
        "{out}"
    );
    assert!(
        !out.stdout.contains('\x1b'),
        "a raw escape reached the terminal\n{out}"
    );
    assert!(
        lines[6].starts_with("`nook learn --output FILE -- app --go`"),
        "{out}"
    );

    // The same, as JSON, and under a run's name.
    write_trace(&env, "web", &trace_json(&env, &paths));
    let out = nook(&env, &["why", "web", "--json"]);
    out.ok();
    assert!(!out.stdout.contains('\x1b'), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let s = &v["suggestions"];
    assert_eq!(s[0]["flag"], "--ro-bind-try", "{out}");
    assert_eq!(s[0]["value"], "~/.config/app", "{out}");
    assert_eq!(s[0]["profile_key"], "ro-bind-try", "{out}");
    assert_eq!(s[0]["reason"], "not in the view", "{out}");
    assert_eq!(s[2]["advice"], "withhold", "{out}");
    assert!(s[2]["flag"].is_null(), "a secret gets no flag\n{out}");
    assert_eq!(v["paths"].as_array().map(Vec::len), Some(4), "{out}");
}

/// `nook learn -- CMD` whose command needs nothing more than its base.
#[test]
fn learn_writes_a_profile_that_extends_the_base_checks_and_runs() {
    let env = TestEnv::new("learn-plain");
    state(&env);
    let out = nook(
        &env,
        &[
            "learn",
            "--output",
            "learned.toml",
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    out.ok();
    assert!(out.stdout.is_empty(), "{out}");
    assert!(
        out.stderr
            .contains("nook: learn: `sh -c 'exit 3'` exited with status 3 under default\n"),
        "{out}"
    );
    assert!(out.stderr.contains("0 entries added to "), "{out}");
    let text = std::fs::read_to_string(env.path("learned.toml")).expect("learned.toml written");
    assert!(text.starts_with("# Learned by `nook learn`"), "{text}");
    assert!(text.ends_with("extends = [\"default\"]\n"), "{text}");
    nook(&env, &["profile", "check", "learned.toml"]).ok();
    let out = nook(
        &env,
        &["run", "--profile", "./learned.toml", "--", "echo", "ran"],
    );
    out.ok();
    assert_eq!(out.stdout, "ran\n", "{out}");
    // The trace of the learning run is kept for `nook why`.
    let out = nook(&env, &["why"]);
    out.ok();
    assert!(out.stdout.contains("exited with status 3"), "{out}");
    assert!(out.stdout.contains("nothing was refused"), "{out}");

    // Without --output the profile goes to stdout.
    let out = nook(&env, &["learn", "--", "true"]);
    out.ok();
    assert!(out.stdout.ends_with("extends = [\"default\"]\n"), "{out}");
    assert!(out.stderr.contains("0 entries proposed"), "{out}");
}

/// A limit is not something learn can size: it says so in a comment, and
/// the profile still extends the base it ran under (a file, by its
/// absolute path).
#[test]
fn learn_lists_a_limit_hit_as_a_comment() {
    let env = TestEnv::new("learn-limit");
    state(&env);
    env.write(
        &env.path("base.toml"),
        "extends = [\"default\"]\n[limits]\ntimeout = \"1s\"\n",
    );
    let out = nook(
        &env,
        &["learn", "--profile", "./base.toml", "--", "sleep", "5"],
    );
    out.ok();
    assert!(out.stderr.contains("exited with status 124"), "{out}");
    let base = env.path("base.toml").display().to_string();
    assert!(
        out.stdout.contains(&format!("extends = [\"{base}\"]\n")),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("#   limit timeout: the run hit --timeout; raise it with --timeout DURATION"),
        "{out}"
    );
    env.write(&env.path("l.toml"), &out.stdout);
    nook(&env, &["profile", "check", "l.toml"]).ok();
}

/// An existing --output file is run under and merged into: the user's
/// comments and entries stay; a --profile it does not extend is refused
/// before anything runs.
#[test]
fn learn_merges_into_an_existing_file() {
    let env = TestEnv::new("learn-merge");
    state(&env);
    let mine = "# mine: my words\nextends = [\"default\"]\nsetenv = [\"MINE=1\"]  # keep\n";
    env.write(&env.path("mine.toml"), mine);
    let out = nook(
        &env,
        &[
            "learn",
            "--output",
            "mine.toml",
            "--",
            "sh",
            "-c",
            "echo $MINE",
        ],
    );
    out.ok();
    // It ran under the file.
    assert_eq!(out.stdout, "1\n", "{out}");
    assert!(out.stderr.contains("mine.toml"), "{out}");
    let text = std::fs::read_to_string(env.path("mine.toml")).unwrap();
    assert_eq!(text, mine, "nothing to add: the file is as it was");
    nook(&env, &["profile", "check", "mine.toml"]).ok();

    let out = nook(
        &env,
        &[
            "learn",
            "--profile",
            "strict",
            "--output",
            "mine.toml",
            "--",
            "true",
        ],
    );
    out.expect_code(125);
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr
            .contains("--profile 'strict': expected a profile that"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("mine.toml")).unwrap(),
        mine
    );
    // Its own parent is fine.
    nook(
        &env,
        &[
            "learn",
            "--profile",
            "default",
            "--output",
            "mine.toml",
            "--",
            "true",
        ],
    )
    .ok();
}

#[test]
fn learn_without_a_command_is_one_line() {
    let env = TestEnv::new("learn-usage");
    let out = nook(&env, &["learn", "--output", "x.toml"]);
    out.expect_code(125);
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr
            .starts_with("nook: error: missing <COMMAND>...; usage: nook learn "),
        "{out}"
    );
    assert!(!env.path("x.toml").exists());
    // An output that can't be written is refused before anything runs.
    let out = nook(
        &env,
        &["learn", "--output", "no/such/dir/x.toml", "--", "true"],
    );
    out.expect_code(125);
    assert_eq!(
        out.stderr,
        "nook: error: --output 'no/such/dir/x.toml': expected a file in an existing directory\n",
        "{out}"
    );
}

/// A config file under $HOME,
/// absent from the view, read by the command; learn proposes its
/// directory, and the learned profile lets the same command read it.
#[test]
fn learn_proposes_the_directory_of_a_hidden_config_and_the_command_then_runs() {
    let mut env = TestEnv::new("learn-paths");
    state(&env);
    let app = format!("nook-learn-{}", std::process::id());
    let conf_dir = env.user.home.join(".config").join(&app);
    env.mkdir(&conf_dir);
    env.cleanup_later(conf_dir.clone());
    env.write(&conf_dir.join("conf"), "hello\n");
    let conf = conf_dir.join("conf").display().to_string();
    let out = nook(&env, &["run", "--", "cat", &conf]);
    assert_ne!(out.code(), 0, "the view lacks it\n{out}");
    let out = nook(&env, &["learn", "--output", "app.toml", "--", "cat", &conf]);
    out.ok();
    let text = std::fs::read_to_string(env.path("app.toml")).unwrap();
    assert!(
        text.contains(&format!("\"~/.config/{app}\"")),
        "{text}\n{out}"
    );
    assert!(text.contains("(read, 1 time)"), "{text}");
    nook(&env, &["profile", "check", "app.toml"]).ok();
    let out = nook(
        &env,
        &["run", "--profile", "./app.toml", "--", "cat", &conf],
    );
    out.ok();
    assert_eq!(out.stdout, "hello\n", "{out}");
    let out = nook(&env, &["why"]);
    assert!(
        out.stdout
            .contains(&format!("allow it with --ro-bind-try ~/.config/{app}")),
        "{out}"
    );
}

/// A command that writes into a directory the view lacks: learn proposes
/// that directory read-write, and the learned profile lets the write
/// through; a secret read on the way is listed, never proposed.
#[test]
fn learn_proposes_a_written_directory_read_write_and_never_a_secret() {
    let mut env = TestEnv::new("learn-write");
    state(&env);
    let out_dir = env
        .user
        .home
        .join(format!("nook-learn-out-{}", std::process::id()));
    env.mkdir(&out_dir);
    env.cleanup_later(out_dir.clone());
    let ssh = env.user.home.join(".ssh");
    if !ssh.exists() {
        env.mkdir(&ssh);
        env.cleanup_later(ssh.clone());
    }
    let key = ssh.join(format!("id_learn_{}", std::process::id()));
    env.write(&key, "secret\n");
    env.cleanup_later(key.clone());
    let script = format!(
        "cat {} 2>/dev/null; echo made > {}/new.txt",
        key.display(),
        out_dir.display()
    );
    let out = nook(
        &env,
        &["learn", "--output", "w.toml", "--", "sh", "-c", &script],
    );
    out.ok();
    let text = std::fs::read_to_string(env.path("w.toml")).unwrap();
    let rel = out_dir
        .strip_prefix(&env.user.home)
        .unwrap()
        .display()
        .to_string();
    let bind = text
        .split_once("bind-try = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("no bind-try proposed:\n{text}"));
    assert!(bind.contains(&format!("\"~/{rel}\"")), "{text}");
    // The key is named in a comment, and in no proposed line.
    let key_name = key.file_name().unwrap().to_str().unwrap();
    assert!(
        text.lines()
            .filter(|l| l.contains(key_name))
            .all(|l| l.trim_start().starts_with('#')),
        "{text}"
    );
    assert!(
        text.contains(key_name),
        "the secret is listed for the user: {text}"
    );
    let out = nook(
        &env,
        &["run", "--profile", "./w.toml", "--", "sh", "-c", &script],
    );
    out.ok();
    assert_eq!(
        std::fs::read_to_string(out_dir.join("new.txt")).unwrap(),
        "made\n"
    );
}

/// The shipped catalogue's programs, learned under their own profiles
/// (the ones `nook run` picks): nothing is proposed beyond the shipped
/// profile, so a learned profile is never wider than it.
#[test]
fn learning_the_catalogues_programs_proposes_nothing_beyond_their_profiles() {
    let env = TestEnv::new("learn-catalogue");
    state(&env);
    let commands: &[&[&str]] = &[
        &[
            "python3",
            "-c",
            "import json, ssl, sqlite3; print(json.dumps([1]))",
        ],
        &["git", "--version"],
        &["node", "-e", "require('fs').readdirSync('.')"],
        &["cargo", "--version"],
        &["sh", "-c", "ls / >/dev/null"],
    ];
    for cmd in commands {
        if !common::which(cmd[0]) {
            // .ci/setup installs them all; a machine without one still
            // checks the others.
            assert!(!common::strict(), "{} is missing: run .ci/setup", cmd[0]);
            continue;
        }
        let mut args = vec!["learn", "--"];
        args.extend_from_slice(cmd);
        let out = nook(&env, &args);
        out.ok();
        assert!(
            out.stderr.contains("0 entries proposed"),
            "learn proposed more than {}'s shipped profile:\n{out}",
            cmd[0]
        );
    }
}

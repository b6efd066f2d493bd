//! Bad input never half-works: exit 125 and exactly one line naming the
//! flag, the value and what is expected; a refusal from the kernel names
//! the step, the path and the errno, with a hint line. Run as the
//! unprivileged test user like every integration test.

mod common;

use common::TestEnv;

/// Run `nook ARGS` and return its stderr, checking exit status 125.
fn fails_125(env: &TestEnv, args: &[&str]) -> String {
    let out = env.nook(args).output();
    out.expect_code(125);
    assert!(out.stdout.is_empty(), "nothing on stdout\n{out}");
    out.stderr
}

#[test]
fn usage_errors_are_one_exact_line() {
    let env = TestEnv::new("usage-errors");
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--bogus", "true"],
            "nook: error: unknown option '--bogus'; see 'nook run --help' for the options\n",
        ),
        (
            &["run"],
            "nook: error: missing COMMAND; usage: nook run [OPTIONS] [--] COMMAND [ARGS...]\n",
        ),
        (
            &["run", "--ro-bind", "/nonexistent-nook-src", "--", "true"],
            "nook: error: --ro-bind '/nonexistent-nook-src': expected an existing source, but /nonexistent-nook-src: No such file or directory; use --ro-bind-try to make it optional\n",
        ),
        (
            &["run", "--bind", "/usr:relative/dst", "--", "true"],
            "nook: error: --bind '/usr:relative/dst': expected an absolute path, got 'relative/dst'\n",
        ),
        (
            &["run", "--tmpfs", "tmp", "--", "true"],
            "nook: error: --tmpfs 'tmp': expected an absolute path, got 'tmp'\n",
        ),
        (
            &["run", "--tmpfs", "/t:size=lots", "--", "true"],
            "nook: error: --tmpfs '/t:size=lots': expected DST[:size=N] with N a positive number of bytes and an optional k, m or g suffix\n",
        ),
        (
            &["run", "--chdir", "here", "--", "true"],
            "nook: error: --chdir 'here': expected an absolute path, got 'here'\n",
        ),
        (
            &["run", "--setenv", "NOVALUE", "--", "true"],
            "nook: error: --setenv 'NOVALUE': expected NAME=VALUE\n",
        ),
        (
            &["run", "--symlink", "only-target", "--", "true"],
            "nook: error: --symlink 'only-target': expected TARGET:LINK with LINK an absolute path\n",
        ),
        (
            &["run", "--uid", "abc", "--", "true"],
            "nook: error: invalid value 'abc' for '--uid <N>': invalid digit found in string\n",
        ),
        (
            &["run", "--share-uts", "--hostname", "box", "--", "true"],
            "nook: error: --hostname 'box': needs its own UTS namespace; drop --share-uts\n",
        ),
    ];
    for (args, want) in cases {
        let got = fails_125(&env, args);
        assert_eq!(&got, want, "nook {}", args.join(" "));
    }
}

#[test]
fn kernel_refusal_names_step_path_errno_and_hint() {
    let env = TestEnv::new("kernel-refusal");
    // /etc is read-only in the default view, so a new file can't get a
    // mount point there.
    let got = fails_125(
        &env,
        &["run", "--file", "/etc/nook-new-file:x", "--", "true"],
    );
    assert_eq!(
        got,
        "nook: error: creating mount point /etc/nook-new-file: EROFS (Read-only file system)\n\
         nook: hint: the parent is read-only in the sandbox; mount a --tmpfs or --dir at the parent first, or pick another path\n"
    );
}

#[test]
fn missing_working_directory_is_reported_by_the_supervisor() {
    let env = TestEnv::new("missing-chdir");
    let got = fails_125(&env, &["run", "--chdir", "/nonexistent-dir", "--", "true"]);
    assert_eq!(
        got,
        "nook: error: changing to the working directory /nonexistent-dir: ENOENT (No such file or directory)\n\
         nook: hint: the directory must exist inside the sandbox; --chdir picks another\n"
    );
}

#[test]
fn command_not_found_and_not_executable() {
    let env = TestEnv::new("exec-errors");
    let out = env
        .run(&["nosuchcommand-nook"])
        .env("PATH", "/usr/bin:/bin")
        .output();
    out.expect_code(127);
    assert_eq!(
        out.stderr,
        "nook: error: executing nosuchcommand-nook: ENOENT (No such file or directory)\n\
         nook: hint: not found in PATH inside the sandbox (/usr/bin:/bin); is its directory part of the sandbox's view?\n",
        "{out}"
    );
    env.write(&env.path("data.txt"), "not a program\n");
    let out = env.run(&["./data.txt"]).output();
    out.expect_code(126);
    assert!(
        out.stderr
            .starts_with("nook: error: executing ./data.txt: EACCES (Permission denied)\n"),
        "{out}"
    );
}

#[test]
fn print_spec_and_plan_run_nothing() {
    let env = TestEnv::new("print");
    let out = env
        .run(&["--print-spec", "--", "touch", "made-it"])
        .output();
    out.ok();
    let spec: serde_json::Value = serde_json::from_str(&out.stdout).expect("spec is JSON");
    assert_eq!(spec["command"], serde_json::json!(["touch", "made-it"]));
    assert_eq!(spec["chdir"], serde_json::json!(env.dir_str()));
    let out = env
        .run(&["--print-plan", "--", "touch", "made-it"])
        .output();
    out.ok();
    assert!(out.stdout.contains("ro-bind /usr -> /usr"), "{out}");
    assert!(
        out.stdout
            .contains(&format!("bind {0} -> {0}", env.dir_str())),
        "{out}"
    );
    assert!(!env.path("made-it").exists(), "nothing ran");
}

//! nook starts where its runtime directory is missing or unusable: the
//! real binary as the unprivileged test user.

mod common;

use common::TestEnv;

/// XDG_RUNTIME_DIR names a directory that isn't there (as under `su`, or
/// in another sandbox): the record goes under the user's own state
/// directory, and the run is listed as usual.
#[test]
fn a_missing_runtime_dir_falls_back_to_the_users_state_dir() {
    let env = TestEnv::new("starts-runtime");
    let state = env.dir.join("state");
    let out = env
        .run(&["--", "true"])
        .env("XDG_RUNTIME_DIR", "/nonexistent/run")
        .env("XDG_STATE_HOME", state.to_str().unwrap())
        .output();
    out.ok();
    assert_eq!(out.stderr, "", "{out}");
    assert!(state.join("nook/running").is_dir(), "{out}");
}

/// No usable place for the record at all: an anonymous foreground run
/// goes on with one warning; a named one, which needs it, is refused with
/// one line.
#[test]
fn no_place_for_the_record_warns_once_or_refuses_a_named_run() {
    let env = TestEnv::new("starts-noplace");
    let nowhere = "/proc/nook-no-such-dir";
    let out = env
        .run(&["--", "echo", "ran"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("XDG_STATE_HOME", nowhere)
        .output();
    out.ok();
    assert_eq!(out.stdout, "ran\n", "{out}");
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(
        warnings[0].starts_with(
            "nook: warning: creating the state directory /proc/nook-no-such-dir/nook/running"
        ) && warnings[0].ends_with("this run is not listed by `nook ps`"),
        "{out}"
    );
    let out = env
        .run(&["--name", "needs-a-record", "--", "true"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("XDG_STATE_HOME", nowhere)
        .output();
    assert_eq!(out.code(), 125, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

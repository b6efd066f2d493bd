//! Running sandboxes through the real binary, as the unprivileged test
//! user: `run -d`, `ps`, `exec`, `stop`, `kill`, `logs`, and `--events`.
//! Each test keeps its records in its own XDG_RUNTIME_DIR.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Cmd, TestEnv, host_pids_with_cmdline};

fn runtime_dir(env: &TestEnv) -> String {
    let d = env.path("rt");
    if !d.exists() {
        env.mkdir(&d);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    d.display().to_string()
}

fn nook<'a>(env: &'a TestEnv, args: &[&str]) -> Cmd<'a> {
    env.nook(args)
        .env("XDG_RUNTIME_DIR", &runtime_dir(env))
        .env("XDG_DATA_HOME", &env.path("data").display().to_string())
}

fn ps(env: &TestEnv) -> Vec<serde_json::Value> {
    let out = nook(env, &["ps", "--json"]).output();
    out.ok();
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("ps --json ({e}): {out}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn detached_sandbox_is_listed_joined_and_stopped() {
    let env = TestEnv::new("manage-detach");
    let out = nook(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--hostname",
            "box",
            "--rlimit",
            "nofile=77",
            "--",
            "sh",
            "-c",
            "echo serving; exec sleep 61.5",
        ],
    )
    .output();
    out.ok();
    assert_eq!(out.stdout, "web\n", "{out}");
    let list = ps(&env);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["name"], "web");
    assert_eq!(list[0]["command"][2], "echo serving; exec sleep 61.5");

    // Inside: the same namespaces, limits and hardening as the command.
    let probe = "hostname; ulimit -n; cat /proc/1/cmdline | tr '\\0' ' '; echo; \
                 grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status | tr -s '\\t' ' '; \
                 unshare -U true 2>/dev/null && echo userns=yes || echo userns=no; \
                 ls -A ~/.ssh 2>&1 | head -n1 | cut -d: -f1; \
                 cat /proc/2/cmdline | tr '\\0' ' '";
    let out = nook(&env, &["exec", "web", "--", "sh", "-c", probe]).output();
    out.ok();
    let l = out.lines();
    assert_eq!(l[0], "box", "{out}");
    assert_eq!(l[1], "77", "{out}");
    assert!(l[2].contains("nook run"), "pid 1 is nook's init: {out}");
    assert_eq!(
        &l[3..6],
        ["CapEff: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2"],
        "{out}"
    );
    assert_eq!(
        l[6], "userns=no",
        "seccomp and the userns limit hold: {out}"
    );
    assert_eq!(l[7], "ls", "no ~/.ssh inside: {out}");
    assert!(
        l[8].starts_with("sleep 61.5"),
        "the command is there too: {out}"
    );

    // Two at once.
    let a = nook(
        &env,
        &["exec", "web", "--", "sh", "-c", "sleep 0.5; echo a"],
    )
    .spawn();
    let b = nook(
        &env,
        &["exec", "web", "--", "sh", "-c", "sleep 0.5; echo b"],
    )
    .spawn();
    let (mut a, mut b) = (a, b);
    assert_eq!(a.wait(Duration::from_secs(10)).stdout, "a\n");
    assert_eq!(b.wait(Duration::from_secs(10)).stdout, "b\n");
    // An exec'd command's status comes back.
    nook(&env, &["exec", "web", "sh", "-c", "exit 7"])
        .output()
        .expect_code(7);

    let out = nook(&env, &["logs", "web"]).output();
    assert_eq!(out.stdout, "serving\n", "{out}");

    let out = nook(&env, &["stop", "web", "--time", "5"]).output();
    out.ok();
    assert!(ps(&env).is_empty());
    wait_until("every process to end", Duration::from_secs(5), || {
        host_pids_with_cmdline("sleep 61.5").is_empty()
    });
}

#[test]
fn a_sandbox_whose_supervisor_was_killed_leaves_ps() {
    let env = TestEnv::new("manage-killed");
    nook(&env, &["run", "-d", "--name", "k", "--", "sleep", "62.5"])
        .output()
        .ok();
    let list = ps(&env);
    let pid = list[0]["pid"].as_i64().unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    wait_until("the sandbox to go", Duration::from_secs(5), || {
        ps(&env).is_empty()
    });
    wait_until("its processes to end", Duration::from_secs(5), || {
        host_pids_with_cmdline("sleep 62.5").is_empty()
    });
    let left: Vec<_> = std::fs::read_dir(runtime_dir(&env) + "/nook")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().ends_with(".json")),
        "{left:?}"
    );
}

#[test]
fn kill_passes_a_signal_and_logs_follow() {
    let env = TestEnv::new("manage-kill");
    nook(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "s",
            "--",
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 3' USR1; echo ready; while :; do sleep 0.1; done",
        ],
    )
    .output()
    .ok();
    let mut follow = nook(&env, &["logs", "s", "-f"]).spawn();
    follow.wait_for_line("ready", Duration::from_secs(10));
    nook(&env, &["kill", "s", "--signal", "USR1"]).output().ok();
    let out = follow.wait(Duration::from_secs(10));
    assert_eq!(out.stdout, "ready\ngot-usr1\n", "{out}");
    wait_until("the sandbox to end", Duration::from_secs(5), || {
        ps(&env).is_empty()
    });
}

#[test]
fn a_named_sandbox_in_the_foreground_is_joinable() {
    let env = TestEnv::new("manage-fg");
    let mut fg = nook(
        &env,
        &["run", "--name", "fg", "--", "sh", "-c", "echo up; sleep 30"],
    )
    .spawn();
    fg.wait_for_line("up", Duration::from_secs(10));
    let out = nook(&env, &["exec", "fg", "--", "cat", "/proc/2/cmdline"]).output();
    out.ok();
    assert!(out.stdout.starts_with("sh"), "{out}");
    nook(&env, &["stop", "fg", "--time", "2"]).output().ok();
    let _ = fg.wait(Duration::from_secs(10));
}

#[test]
fn bad_names_are_one_clear_line() {
    let env = TestEnv::new("manage-bad");
    for args in [
        vec!["exec", "nope", "true"],
        vec!["stop", "nope"],
        vec!["kill", "nope"],
        vec!["logs", "nope"],
        vec!["exec", "../x", "true"],
    ] {
        let out = nook(&env, &args).output();
        out.expect_code(125);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out}");
        assert!(
            out.stderr.starts_with("nook: error: sandbox name"),
            "{args:?}: {out}"
        );
    }
    nook(&env, &["run", "-d", "--name", "sig", "--", "sleep", "5"])
        .output()
        .ok();
    let out = nook(&env, &["kill", "sig", "--signal", "STOP"]).output();
    out.expect_code(125);
    assert!(out.stderr.contains("expected TERM, INT"), "{out}");
    nook(&env, &["stop", "sig", "--time", "1"]).output().ok();
}

#[test]
fn events_are_json_lines_in_order() {
    let env = TestEnv::new("manage-events");
    let file = env.path("events.jsonl");
    let fs = file.display().to_string();
    nook(
        &env,
        &[
            "run", "--events", &fs, "--net", "none", "--", "sh", "-c", "exit 4",
        ],
    )
    .output()
    .expect_code(4);
    let text = std::fs::read_to_string(&file).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["started", "namespaces", "payload", "exited"],
        "{text}"
    );
    assert_eq!(events[3]["status"], 4);
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["time"].as_f64() <= w[1]["time"].as_f64())
    );
    // To an inherited descriptor, and a failure is an event too.
    let out = env
        .sh("$NOOK run --events 3 --chdir /nonexistent -- true 3>&1 >/dev/null 2>/dev/null")
        .env("XDG_RUNTIME_DIR", &runtime_dir(&env))
        .output();
    let last: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().unwrap_or("{}")).unwrap();
    assert_eq!(last["event"], "failed", "{out}");
}

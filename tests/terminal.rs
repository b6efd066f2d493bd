//! A terminal of the sandbox's own: the real binary on a pseudo-terminal
//! the test makes (tests/common/terminal_driver.py), as the unprivileged test user.

mod common;

use common::{Output, TestEnv};

const DRIVER: &str = include_str!("common/terminal_driver.py");

/// What the driver saw: the terminal's output, the exit status, and
/// whether the terminal was left cooked (canonical, echo).
struct Seen {
    output: String,
    status: Option<i64>,
    cooked: bool,
}

/// Run `script` (sh, `$NOOK` set) on a terminal of 40x100, doing
/// `actions` (tests/common/terminal_driver.py says which) while it runs.
#[track_caller]
fn on_terminal(env: &TestEnv, actions: &str, script: &str) -> (Seen, Output) {
    env.write(&env.path("terminal_driver.py"), DRIVER);
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let out = env
        .sh(&format!(
            "exec python3 terminal_driver.py {} sh -c {}",
            quote(actions),
            quote(script)
        ))
        .timeout(std::time::Duration::from_secs(60))
        .output();
    assert_eq!(out.code(), 0, "the driver failed: {out}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("driver's JSON");
    (
        Seen {
            output: v["output"].as_str().unwrap_or_default().to_string(),
            status: v["status"].as_i64(),
            cooked: v["cooked"].as_bool().unwrap_or(false),
        },
        out,
    )
}

/// On a terminal, the command gets a pty of its own, inside the
/// sandbox's devpts, sized like the user's; the exit status comes
/// through and the terminal is left as it was.
#[test]
fn the_command_gets_a_terminal_of_its_own() {
    let env = TestEnv::new("tty-own");
    let (seen, out) = on_terminal(
        &env,
        "[]",
        r#""$NOOK" run -- sh -c 'tty; stty size; readlink /proc/self/fd/1; exit 3'"#,
    );
    assert_eq!(seen.status, Some(3), "{out}");
    assert_eq!(
        seen.output, "/dev/pts/0\r\n40 100\r\n/dev/pts/0\r\n",
        "{out}"
    );
    assert!(seen.cooked, "{out}");
    // --no-tty: the caller's terminal as it is, not the sandbox's.
    let (seen, out) = on_terminal(&env, "[]", r#""$NOOK" run --no-tty -- tty"#);
    assert_eq!(seen.output, "not a tty\r\n", "{out}");
}

/// The window size follows the user's terminal.
#[test]
fn resizing_reaches_the_sandbox() {
    let env = TestEnv::new("tty-resize");
    let (seen, out) = on_terminal(
        &env,
        r#"[["wait", "ready"], ["resize", 50, 120]]"#,
        r#""$NOOK" run -- sh -c 'trap "stty size; exit 0" WINCH; echo ready; while :; do sleep 0.05; done'"#,
    );
    assert_eq!(seen.status, Some(0), "{out}");
    assert!(seen.output.ends_with("ready\r\n50 120\r\n"), "{out}");
}

/// ^Z and ^C are keys for the sandbox's own line discipline: job control
/// works inside, in an interactive bash.
#[test]
fn job_control_works_inside() {
    let env = TestEnv::new("tty-jobs");
    let (seen, out) = on_terminal(
        &env,
        r#"[["wait", "$ "], ["send", "sleep 30\r"], ["sleep", 0.3], ["send", "\u001a"],
            ["wait", "Stopped"], ["send", "fg\r"], ["sleep", 0.3], ["send", "\u0003"],
            ["sleep", 0.3], ["send", "echo back-at-$((6*7))\r"], ["wait", "back-at-42"],
            ["send", "exit 5\r"]]"#,
        r#"exec "$NOOK" run --setenv PS1='$ ' -- bash --norc --noprofile -i"#,
    );
    assert!(seen.output.contains("Stopped"), "{out}");
    assert!(seen.output.contains("back-at-42"), "{out}");
    assert_eq!(seen.status, Some(5), "{out}");
    assert!(seen.cooked, "{out}");
}

/// TIOCSTI (here with nook's own filter off, which refuses it anyway) can
/// only push keys into the sandbox's own terminal: nothing is left for the
/// user's shell to run after nook. Without a terminal of its own
/// (--no-tty), the same attack leaves the command in the user's terminal.
#[test]
fn injected_keys_stay_in_the_sandbox() {
    let env = TestEnv::new("tty-inject");
    let inject = r#"import fcntl, termios
for c in b"echo INJECTED\n":
    fcntl.ioctl(0, termios.TIOCSTI, bytes([c]))"#;
    env.write(&env.path("inject.py"), inject);
    // After nook: whatever is waiting in the user's terminal, read
    // without waiting for a line.
    let after = "; stty -icanon min 0 time 5; echo left=$(head -c 100)";
    let (seen, out) = on_terminal(
        &env,
        "[]",
        &format!(r#""$NOOK" run --seccomp off -- python3 inject.py{after}"#),
    );
    assert!(seen.output.contains("left=\r\n"), "{out}");
    let (seen, out) = on_terminal(
        &env,
        "[]",
        &format!(r#""$NOOK" run --no-tty --seccomp off -- python3 inject.py{after}"#),
    );
    assert!(seen.output.contains("left=echo INJECTED"), "{out}");
}

/// nook killed outright: its guardian gives the terminal its settings
/// back (raw while nook ran, canonical after).
#[test]
fn the_terminal_is_restored_when_nook_is_killed() {
    let env = TestEnv::new("tty-kill");
    let mode = r#"stty -a | grep -o -- '-\?icanon' | head -n1"#;
    let (seen, out) = on_terminal(
        &env,
        "[]",
        &format!(
            // A background job of a script reads /dev/null unless told.
            r#""$NOOK" run -- sh -c 'echo inside; sleep 30' </dev/tty & for _ in $(seq 200); do stty -a | grep -q -- -icanon && break; sleep 0.05; done; echo while=$({mode}); kill -9 $!; sleep 0.5; echo after=$({mode})"#
        ),
    );
    assert!(seen.output.contains("while=-icanon"), "{out}");
    assert!(seen.output.contains("after=icanon"), "{out}");
    assert!(seen.cooked, "{out}");
}

/// Pipes stay pipes: with stdout a pipe there is no terminal, and the
/// bytes are the command's own; -t forces one, fed from a pipe.
#[test]
fn pipes_stay_pipes_and_t_forces_a_terminal() {
    let env = TestEnv::new("tty-pipes");
    let out = env.run(&["--", "sh", "-c", "tty; printf 'a\\nb'"]).output();
    out.ok();
    assert_eq!(out.stdout, "not a tty\na\nb", "{out}");
    let out = env
        .run(&["-t", "--", "sh", "-c", "tty; read line; echo got=$line"])
        .stdin("hello\n")
        .output();
    out.ok();
    assert!(out.stdout.starts_with("/dev/pts/0\r\n"), "{out}");
    assert!(out.stdout.contains("got=hello"), "{out}");
    let out = env.run(&["-t", "--no-tty", "--", "true"]).output();
    assert_eq!(out.code(), 125, "{out}");
    assert!(
        out.stderr
            .contains("'--tty' cannot be used with '--no-tty'"),
        "{out}"
    );
}

/// `run -d -t`: the command runs on its own terminal in the background;
/// `nook attach` connects yours to it, ctrl-p ctrl-q leaves it running, a
/// second attach at the same time is refused, a later one picks it up
/// again, and `nook logs` has kept what it printed.
#[test]
fn attach_detach_and_attach_again() {
    let env = TestEnv::new("tty-attach");
    let out = env
        .run(&[
            "-d",
            "-t",
            "--name",
            "sess",
            "--setenv",
            "PS1=$ ",
            "--",
            "bash",
            "--norc",
            "--noprofile",
            "-i",
        ])
        .output();
    out.ok();
    assert_eq!(out.stdout, "sess\n", "{out}");
    let (seen, out) = on_terminal(
        &env,
        r#"[["send", "\r"], ["wait", "$ "], ["send", "stty size; echo attached-$((1+1))\r"],
            ["wait", "attached-2"], ["send", "\u0010\u0011"]]"#,
        r#"exec "$NOOK" attach sess"#,
    );
    assert_eq!(seen.status, Some(0), "{out}");
    assert!(seen.output.contains("40 100\r\nattached-2"), "{out}");
    assert!(seen.output.contains("nook: detached from sess"), "{out}");
    assert!(seen.cooked, "{out}");
    // One attach at a time.
    let (seen, out) = on_terminal(
        &env,
        "[]",
        r#""$NOOK" attach sess </dev/tty >/dev/null 2>&1 & sleep 1; "$NOOK" attach sess; echo second=$?; kill $!; wait"#,
    );
    assert!(
        seen.output.contains("another nook attach holds") && seen.output.contains("second=125"),
        "{out}"
    );
    let logs = env.nook(&["logs", "sess"]).output();
    assert!(logs.stdout.contains("attached-2"), "{logs}");
    // Attached again, the session goes on where it was; its end ends the
    // attach.
    let (seen, out) = on_terminal(
        &env,
        r#"[["send", "\r"], ["wait", "$ "], ["send", "echo again; exit 3\r"]]"#,
        r#"exec "$NOOK" attach sess"#,
    );
    assert_eq!(seen.status, Some(0), "{out}");
    assert!(seen.output.contains("again"), "{out}");
}

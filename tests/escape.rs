//! No raw control character reaches the user's terminal from what the
//! sandbox chose, through the real binary as the unprivileged test user:
//! file names in `diff` and `commit`, a record's name in `ls`, a command
//! line in `ps`, a log on a terminal, an error line. Each attack is paired
//! with its control: the raw bytes really are there (on the host after a
//! commit, in `--json`, in a log read through a pipe), so only the
//! escaping keeps them off the terminal; run against nook before the
//! escaping (6615443), each test fails at its no-raw-control assertion.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Cmd, TestEnv, require, which};

/// Sets the terminal's title.
const TITLE: &str = "t\x1b]0;pwned\x07";
/// Erases the line it is on: what came before it on the line is not seen.
const ERASE: &str = "e\x1b[2K\r";
/// Makes a line of its own in a listing, to look like another change.
const NEWLINE: &str = "n\nD important.txt";
/// CSI as one C1 character (U+009B): a control sequence on some terminals.
const CSI: &str = "c\u{9b}31m";

/// Each test keeps its sandboxes and records in its own directories.
fn nook<'a>(env: &'a TestEnv, args: &[&str]) -> Cmd<'a> {
    let rt = env.path("rt");
    if !rt.exists() {
        env.mkdir(&rt);
        fs::set_permissions(&rt, fs::Permissions::from_mode(0o700)).unwrap();
    }
    env.nook(args)
        .env("XDG_DATA_HOME", &env.path("data").display().to_string())
        .env("XDG_RUNTIME_DIR", &rt.display().to_string())
}

/// True when `s` holds a character a terminal acts on, other than a
/// newline (C0, DEL, C1).
fn raw_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n')
}

/// Stops a detached sandbox when dropped, even when an assertion failed.
struct Stop<'a>(&'a TestEnv, &'a str);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = nook(self.0, &["stop", self.1, "--time", "2"]).output();
    }
}

/// Run `nook ARGS` on a pseudo-terminal (script(1)), what it printed there.
fn on_terminal(env: &TestEnv, args: &str) -> String {
    let out = env
        .sh(&format!("script -qec '\"$NOOK\" {args}' /dev/null"))
        .env("XDG_DATA_HOME", &env.path("data").display().to_string())
        .env("XDG_RUNTIME_DIR", &env.path("rt").display().to_string())
        .output();
    out.ok();
    out.stdout
}

/// A sandbox `name` whose overlay of `proj` holds files named with the
/// attacks (and a backslash, and a byte that is not UTF-8), one of them
/// with an erasing line in its content.
fn planted(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let proj = env.path("proj");
    env.mkdir(&proj);
    let ps = proj.display().to_string();
    let script = "cd \"$P\" && for n in \"$@\"; do echo x > \"$n\" || exit 1; done \
                  && printf 'evil\\n\\033[2K\\rok\\n' > \"$2\" \
                  && : > \"$(printf 'bad\\377name')\"";
    nook(
        env,
        &[
            "run",
            "--name",
            name,
            "--overlay",
            &ps,
            "--",
            "sh",
            "-c",
            script,
            "sh",
            TITLE,
            ERASE,
            CSI,
            NEWLINE,
            "back\\slash",
        ],
    )
    .env("P", &ps)
    .output()
    .ok();
    proj
}

#[test]
fn diff_shows_names_from_the_sandbox_escaped() {
    let env = TestEnv::new("esc-diff");
    let proj = planted(&env, "d");
    let p = proj.display();

    let out = nook(&env, &["diff", "d"]).output();
    out.ok();
    assert!(!raw_control(&out.stdout), "no raw control: {out:?}");
    let mut lines = out.lines();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!(r"A {p}/back\\slash"),
            format!(r"A {p}/bad\xffname"),
            format!(r"A {p}/c\u{{9b}}31m"),
            format!(r"A {p}/e\x1b[2K\x0d"),
            format!(r"A {p}/n\x0aD important.txt"),
            format!(r"A {p}/t\x1b]0;pwned\x07"),
        ],
        "one line per file, each name spelled once: {out}"
    );

    // The control: the names really are the raw ones, as --json carries
    // them (JSON-escaped, with DEL and C1 too; the bad byte as U+FFFD).
    let out = nook(&env, &["diff", "d", "--json"]).output();
    out.ok();
    assert!(!raw_control(&out.stdout), "--json: {out:?}");
    assert!(out.stdout.contains(r"c\u009b31m"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json is JSON");
    let mut paths: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["back\\slash", "bad\u{fffd}name", CSI, ERASE, NEWLINE, TITLE],
        "{out}"
    );
}

#[test]
fn a_patch_is_exact_in_a_pipe_and_escaped_on_a_terminal() {
    let env = TestEnv::new("esc-patch");
    if !require(
        which("script"),
        "script(1) (util-linux) gives nook a terminal",
    ) {
        return;
    }
    planted(&env, "pt");
    // The control: into a pipe, the patch is the file's bytes.
    let out = nook(&env, &["diff", "pt", "--patch"]).output();
    out.ok();
    assert!(out.stdout.contains("+\x1b[2K\r"), "exact: {out:?}");
    // On a terminal, the line that would erase "+evil" is shown.
    let shown = on_terminal(&env, "diff pt --patch");
    assert!(!raw_control(&shown.replace("\r\n", "\n")), "{shown:?}");
    assert!(shown.contains(r"+\x1b[2K\x0d"), "{shown:?}");
    assert!(shown.contains("+evil"), "{shown:?}");
}

#[test]
fn commit_shows_names_escaped_and_writes_the_real_ones() {
    let env = TestEnv::new("esc-commit");
    let proj = planted(&env, "c");
    let out = nook(&env, &["commit", "c"]).output();
    out.ok();
    assert!(!raw_control(&out.stdout), "{out:?}");
    assert!(!raw_control(&out.stderr), "{out:?}");
    let p = proj.display();
    for shown in [
        r"t\x1b]0;pwned\x07",
        r"e\x1b[2K\x0d",
        r"n\x0aD important.txt",
        r"bad\xffname",
    ] {
        assert!(
            out.lines().contains(&format!("A {p}/{shown}").as_str()),
            "{shown}: {out}"
        );
    }
    // The control: the host now has the files under their raw names.
    let mut names: Vec<Vec<u8>> = fs::read_dir(&proj)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    names.sort();
    let mut want: Vec<Vec<u8>> = ["back\\slash", CSI, ERASE, NEWLINE, TITLE]
        .iter()
        .map(|n| n.as_bytes().to_vec())
        .chain([b"bad\xffname".to_vec()])
        .collect();
    want.sort();
    assert_eq!(names, want);
    assert!(proj.join(OsStr::from_bytes(ERASE.as_bytes())).is_file());
}

#[test]
fn ls_escapes_a_name_from_an_edited_record() {
    let env = TestEnv::new("esc-ls");
    planted(&env, "l");
    // Names are checked when a sandbox is made; a record can be edited.
    let rec = env.path("data/nook/sandboxes/l/sandbox.json");
    let text = fs::read_to_string(&rec).unwrap_or_else(|e| panic!("{}: {e}", rec.display()));
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["name"] = ERASE.into();
    fs::write(&rec, v.to_string()).unwrap();

    let out = nook(&env, &["ls"]).output();
    out.ok();
    assert!(!raw_control(&out.stdout), "{out:?}");
    assert!(out.stdout.starts_with(r"e\x1b[2K\x0d "), "{out}");
    // The control: the record's raw name is what ls read.
    let out = nook(&env, &["ls", "--json"]).output();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v[0]["name"], ERASE, "{out}");
}

#[test]
fn ps_escapes_a_command_line_and_logs_are_exact_only_in_a_pipe() {
    let env = TestEnv::new("esc-ps");
    // $0 of the shell is the attack; the log gets an erasing line.
    let out = nook(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "p",
            "--",
            "sh",
            "-c",
            "printf 'secret\\033[2K\\rok\\n'; exec sleep 63.25",
            TITLE,
        ],
    )
    .output();
    out.ok();
    let _stop = Stop(&env, "p");

    let out = nook(&env, &["ps"]).output();
    out.ok();
    assert!(!raw_control(&out.stdout), "{out:?}");
    let row = out
        .lines()
        .into_iter()
        .find(|l| l.starts_with("p "))
        .unwrap_or_else(|| panic!("a row for p: {out}"))
        .to_string();
    assert!(
        row.ends_with(r"exec sleep 63.25 t\x1b]0;pwned\x07"),
        "{row}"
    );
    // The control: the record holds the raw argument.
    let out = nook(&env, &["ps", "--json"]).output();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v[0]["command"][3], TITLE, "{out}");

    // Through a pipe, the log is byte for byte what the sandbox wrote.
    let mut log = String::new();
    for _ in 0..100 {
        log = nook(&env, &["logs", "p"]).output().stdout;
        if log.ends_with('\n') {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(log, "secret\x1b[2K\rok\n");
    // On a terminal, escaped: "secret" is not erased.
    if require(
        which("script"),
        "script(1) (util-linux) gives nook a terminal",
    ) {
        let shown = on_terminal(&env, "logs p");
        assert_eq!(shown, "secret\\x1b[2K\\x0dok\r\n");
    }
}

#[test]
fn an_error_naming_a_path_is_one_escaped_line() {
    let env = TestEnv::new("esc-error");
    planted(&env, "er");
    let bad = format!("{}/x{ERASE}\nnook: hint: all is well", env.dir_str());
    let out = nook(&env, &["diff", "er", &bad]).output();
    out.expect_code(125);
    assert!(!raw_control(&out.stderr), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {out}");
    // The control: the path is in the message, escaped.
    assert!(
        out.stderr
            .contains(r"/xe\x1b[2K\x0d\x0anook: hint: all is well"),
        "{out}"
    );
}

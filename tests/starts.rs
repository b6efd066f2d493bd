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

/// The directory of the binary under test, to bind into an outer sandbox
/// at the same path.
fn nook_dir() -> String {
    std::path::Path::new(common::NOOK)
        .parent()
        .expect("the binary has a directory")
        .display()
        .to_string()
}

/// The warning a nested nook gives once: its new /proc was refused.
const PARENT_PROC: &str = "nook: warning: a new /proc was refused (nook runs inside another sandbox or container whose /proc has covered parts): the sandbox has the parent's /proc, which lists the parent's processes (--strict makes this an error)";

/// What the inner sandbox says about itself: its uid map, its own mount
/// view (a private /tmp), no new privileges, then exit 7.
const INSIDE: &str = "echo map=$(xargs < /proc/self/uid_map); touch /tmp/inner; ls /tmp; grep NoNewPrivs /proc/self/status; exit 7";

/// nook in nook: the outer allows nested user namespaces (and so their
/// mounts); the inner runs with its own namespaces and view, and only
/// its /proc is its parent's, said in one warning.
#[test]
fn nook_runs_inside_nook() {
    let env = TestEnv::new("starts-nested");
    let dir = nook_dir();
    let out = env
        .run(&[
            "--allow-userns",
            "--ro-bind",
            &dir,
            "--",
            common::NOOK,
            "run",
            "--",
            "sh",
            "-c",
            INSIDE,
        ])
        .output();
    assert_eq!(out.code(), 7, "{out}");
    let uid = env.user.uid;
    assert!(out.stdout.contains(&format!("map={uid} {uid} 1")), "{out}");
    assert!(out.stdout.contains("inner\nNoNewPrivs:\t1"), "{out}");
    assert_eq!(out.stderr.trim_end(), PARENT_PROC, "{out}");
    // --strict: what nesting weakens (the nested user namespace limit,
    // the borrowed /proc) is an error, not a warning.
    let out = env
        .run(&[
            "--allow-userns",
            "--ro-bind",
            &dir,
            "--",
            common::NOOK,
            "run",
            "--strict",
            "--",
            "true",
        ])
        .output();
    assert_eq!(out.code(), 125, "{out}");
    assert!(
        out.stderr.starts_with("nook: error: ") && out.stderr.contains("EPERM"),
        "{out}"
    );
    // Without --allow-userns the outer refuses, and the inner names the
    // fix.
    let out = env
        .run(&["--ro-bind", &dir, "--", common::NOOK, "run", "--", "true"])
        .output();
    assert_eq!(out.code(), 125, "{out}");
    assert!(
        out.stderr
            .contains("forbids nested user namespaces; start the outer sandbox with nested user namespaces allowed (nook: --allow-userns"),
        "{out}"
    );
}

/// nook inside bubblewrap, with a read-only home and a fresh /run (so
/// XDG_RUNTIME_DIR is missing and the state directory read-only): one
/// warning, and the run goes on.
#[test]
fn nook_runs_inside_bubblewrap() {
    let env = TestEnv::new("starts-bwrap");
    if !common::require(
        common::which("bwrap"),
        "bwrap is not installed: run .ci/setup",
    ) {
        return;
    }
    let dir = nook_dir();
    let script = format!(
        "exec bwrap --unshare-all --ro-bind / / --tmpfs /run --dev /dev --proc /proc --tmpfs /tmp --ro-bind {dir} {dir} -- \"$NOOK\" run -- sh -c '{INSIDE}'"
    );
    let out = env
        .sh(&script)
        .env("XDG_RUNTIME_DIR", &format!("/run/user/{}", env.user.uid))
        .output();
    assert_eq!(out.code(), 7, "{out}");
    assert!(out.stdout.contains("inner\nNoNewPrivs:\t1"), "{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("nook: warning: using the state directory")
            && lines[0]
                .ends_with("EROFS (Read-only file system); this run is not listed by `nook ps`"),
        "{out}"
    );
}

/// nook under `unshare -r` (mapped to root in a user namespace of one
/// id): it maps that root to itself inside.
#[test]
fn nook_runs_under_unshare_r() {
    let env = TestEnv::new("starts-unshare");
    let out = env
        .sh(&format!(
            "exec unshare -r \"$NOOK\" run -- sh -c '{INSIDE}'"
        ))
        .output();
    assert_eq!(out.code(), 7, "{out}");
    assert!(out.stdout.contains("map=0 0 1"), "{out}");
    assert!(out.stdout.contains("inner\nNoNewPrivs:\t1"), "{out}");
    assert_eq!(out.stderr, "", "{out}");
}

/// nook run by root itself: root stays root inside, in a user namespace
/// of its own, with no more power than the view gives.
#[test]
fn nook_runs_as_root() {
    if !common::require(
        common::TestEnv::new("starts-root-probe").as_root,
        "the tests run as an ordinary user, so nook can't be run as root here",
    ) {
        return;
    }
    let home = tempdir("starts-root");
    let out = std::process::Command::new(common::NOOK)
        .args(["run", "--", "sh", "-c", INSIDE])
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/bin:/bin")
        .current_dir(&home)
        .output()
        .expect("run nook");
    let _ = std::fs::remove_dir_all(&home);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(stdout.contains("map=0 0 1"), "{stdout}");
    assert!(stdout.contains("inner\nNoNewPrivs:\t1"), "{stdout}");
    assert_eq!(stderr, "");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("nook-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).expect("make a temporary home");
    d
}

/// Install a seccomp filter of the kind container engines install, then
/// exec the rest of the command line: keyctl, add_key and request_key
/// get EPERM, clone3 ENOSYS (as Docker's and podman's default profiles
/// do); with `userns`, clone and unshare with CLONE_NEWUSER get EPERM too
/// (as Docker's does for a container without CAP_SYS_ADMIN).
const FILTER_PY: &str = r#"
import ctypes, os, platform, struct, sys
assert platform.machine() == "x86_64", "the filter is written for x86-64"
userns = sys.argv[1] == "userns"
LD, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06
ALLOW, ERRNO = 0x7fff0000, 0x00050000
def op(code, k, jt=0, jf=0):
    return struct.pack("HBBI", code, jt, jf, k)
prog = [op(LD, 4), op(JEQ, 0xc000003e, 1, 0), op(RET, ALLOW), op(LD, 0)]
for nr in (250, 248, 249):
    prog += [op(JEQ, nr, 0, 1), op(RET, ERRNO | 1)]
prog += [op(JEQ, 435, 0, 1), op(RET, ERRNO | 38)]
if userns:
    for nr in (56, 272):
        prog += [op(JEQ, nr, 0, 3), op(LD, 16), op(JSET, 0x10000000, 0, 1), op(RET, ERRNO | 1)]
        prog += [op(LD, 0)]
prog += [op(RET, ALLOW)]
buf = ctypes.create_string_buffer(b"".join(prog))
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Fprog(len(prog), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0, os.strerror(ctypes.get_errno())
os.execv(sys.argv[2], sys.argv[2:])
"#;

/// nook under an inherited seccomp filter like a container engine's: the
/// keyring refusal is no weaker layer (the payload is refused the same),
/// clone3's ENOSYS falls back to clone; and where the filter refuses user
/// namespaces, the error names the filter and its fix.
#[test]
fn nook_runs_under_an_inherited_seccomp_filter() {
    let env = TestEnv::new("starts-seccomp");
    env.write(&env.path("filter.py"), FILTER_PY);
    let out = env
        .sh(&format!(
            "exec python3 filter.py engine \"$NOOK\" run -- sh -c '{INSIDE}'"
        ))
        .output();
    assert_eq!(out.code(), 7, "{out}");
    assert!(out.stdout.contains("inner\nNoNewPrivs:\t1"), "{out}");
    assert_eq!(out.stderr, "", "{out}");
    // The attack the keyring layer stops is stopped by the inherited
    // filter: keyctl is refused inside.
    let out = env
        .sh("exec python3 filter.py engine \"$NOOK\" run --seccomp off -- keyctl show @s")
        .output();
    assert_ne!(out.code(), 0, "{out}");
    let out = env
        .sh("exec python3 filter.py userns \"$NOOK\" run -- true")
        .output();
    assert_eq!(out.code(), 125, "{out}");
    assert!(
        out.stderr.contains("EPERM")
            && out
                .stderr
                .contains("a seccomp filter nook inherited refuses user namespaces")
            && out.stderr.contains("--security-opt seccomp=unconfined"),
        "{out}"
    );
}

/// `nook doctor` knows when it runs nested and what that costs, and which
/// network driver `--net user` takes here and why.
#[test]
fn doctor_says_where_nook_runs_and_which_driver() {
    let env = TestEnv::new("starts-doctor");
    let dir = nook_dir();
    let out = env
        .run(&[
            "--allow-userns",
            "--ro-bind",
            &dir,
            "--",
            common::NOOK,
            "doctor",
        ])
        .output();
    out.ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("where nook runs"))
        .unwrap_or_else(|| panic!("no 'where nook runs' line: {out}"));
    assert!(
        line.starts_with("degraded")
            && line.contains("in a user namespace (uid map")
            && line.contains("under a seccomp filter it inherited")
            && line.contains("a new /proc is refused"),
        "{out}"
    );
    let out = env.nook(&["doctor"]).output();
    let driver = out
        .stdout
        .lines()
        .find(|l| l.contains("network driver"))
        .unwrap_or_else(|| panic!("no 'network driver' line: {out}"));
    assert!(driver.contains("--net user takes "), "{out}");
}

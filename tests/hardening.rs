//! Hardening every sandbox gets whatever its profile: each test tries the
//! attack from inside and shows it blocked, and the same attack working
//! without nook.

mod common;

use common::TestEnv;

#[test]
fn nested_user_namespaces_are_refused() {
    let env = TestEnv::new("nested-userns");
    // Outside, as the same unprivileged user, it works.
    let out = env.sh("unshare -U true && echo outside-ok").output();
    out.ok();
    assert_eq!(out.stdout, "outside-ok\n", "{out}");
    let attempt = "unshare -U true; echo rc=$?; echo 100 > /proc/sys/user/max_user_namespaces; cat /proc/sys/user/max_user_namespaces";
    // Inside, seccomp refuses the namespace flags...
    let out = env.run(&["--", "sh", "-c", attempt]).output();
    out.ok();
    assert_eq!(out.stdout, "rc=1\n0\n", "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    // ...and without the filter, the limit of zero nested namespaces still
    // does, and it can't be raised again.
    let out = env
        .run(&["--seccomp", "off", "--", "sh", "-c", attempt])
        .output();
    out.ok();
    assert_eq!(out.stdout, "rc=1\n0\n", "{out}");
    assert!(out.stderr.contains("No space left on device"), "{out}");
    // A profile that allows them (as browsers need) gets them.
    let out = env
        .run(&[
            "--allow-userns",
            "--",
            "sh",
            "-c",
            "unshare -U true; echo rc=$?",
        ])
        .output();
    out.ok();
    assert_eq!(out.stdout, "rc=0\n", "{out}");
    // --uid 0 changes nothing: no capabilities either way.
    let out = env
        .run(&["--uid", "0", "--", "unshare", "-Ur", "true"])
        .output();
    out.expect_code(1);
}

/// Raw system calls from python3 inside the sandbox: prints `NAME ERR`
/// where ERR is `ok` or the errno's name.
const SYSCALLS_PY: &str = r#"
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *args)
    e = ctypes.get_errno()
    print(name, "ok" if r >= 0 else errno.errorcode[e])
call("bpf", 321, 9999, None, 0)
call("perf_event_open", 298, None, 0, -1, -1, 0)
call("userfaultfd", 323, 1)
call("open_by_handle_at", 304, -100, None, 0)
call("io_uring_setup", 425, 1, None)
call("clone3", 435, None, 0)
call("x32_getpid", 0x40000000 | 39)
call("mount", 165, b"none", b"/tmp", b"tmpfs", 0, None)
call("keyctl", 250, 0, -3, 0)
call("personality", 135, 0x0040000)
"#;

fn syscall_results(env: &TestEnv, extra: &[&str]) -> Vec<(String, String)> {
    env.write(&env.path("sc.py"), SYSCALLS_PY);
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--", "python3", "sc.py"]);
    let out = env.run(&args).output();
    out.ok();
    out.stdout
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect()
}

#[test]
fn seccomp_refuses_the_kernel_attack_surface() {
    let env = TestEnv::new("seccomp-calls");
    let on = syscall_results(&env, &[]);
    let off = syscall_results(&env, &["--seccomp", "off"]);
    let get = |v: &[(String, String)], k: &str| {
        v.iter()
            .find(|(n, _)| n == k)
            .map(|(_, e)| e.clone())
            .unwrap()
    };
    for call in [
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "open_by_handle_at",
        "io_uring_setup",
        "x32_getpid",
        "keyctl",
        "personality",
    ] {
        assert_eq!(get(&on, call), "EPERM", "{call} with the filter: {on:?}");
        // Without the filter the call reaches the kernel and gets its own
        // answer, so the test can tell the difference.
        assert_ne!(
            get(&off, call),
            "EPERM",
            "{call} without the filter: {off:?}"
        );
    }
    // clone3 answers ENOSYS so that libc falls back to clone.
    assert_eq!(get(&on, "clone3"), "ENOSYS");
    assert_ne!(get(&off, "clone3"), "ENOSYS");
    // Mounting fails either way: no capabilities (EPERM from the kernel).
    assert_eq!(get(&on, "mount"), "EPERM");
    assert_eq!(get(&off, "mount"), "EPERM");
}

#[test]
fn foreign_abi_calls_kill_the_caller() {
    // `mov eax, 20; int 0x80; ret`: i386 getpid from a 64-bit process.
    let py = r#"
import ctypes, mmap
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(bytes([0xb8, 0x14, 0, 0, 0, 0xcd, 0x80, 0xc3]))
f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
print("i386 getpid returned", f())
"#;
    let env = TestEnv::new("seccomp-i386");
    let off = env
        .run(&["--seccomp", "off", "--", "python3", "-c", py])
        .output();
    off.ok();
    assert!(off.stdout.starts_with("i386 getpid returned"), "{off}");
    let on = env.run(&["--", "python3", "-c", py]).output();
    on.expect_code(128 + 31); // SIGSYS
    assert!(on.stdout.is_empty(), "{on}");
}

#[test]
fn keystroke_injection_is_refused_on_a_terminal() {
    // TIOCSTI, also with bits above the low 32 set in the request (the
    // kernel ignores them, so the filter must too).
    let py = r##"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for req in (0x5412, 0x100005412):
    r = libc.ioctl(0, ctypes.c_ulong(req), ctypes.c_char_p(b"#"))
    print(hex(req), "injected" if r == 0 else "refused %d" % ctypes.get_errno())
"##;
    let env = TestEnv::new("tiocsti");
    env.write(&env.path("sti.py"), py);
    let under_tty = |flags: &str| {
        let out = env
            .sh(&format!(
                "script -qec '\"$NOOK\" run {flags} -- python3 sti.py' /dev/null < /dev/null"
            ))
            .output();
        out.ok();
        out.stdout.replace('\r', "")
    };
    let on = under_tty("");
    assert!(on.contains("0x5412 refused 1"), "{on}");
    assert!(on.contains("0x100005412 refused 1"), "{on}");
    let off = under_tty("--seccomp off");
    assert!(off.contains("0x5412 injected"), "{off}");
    assert!(off.contains("0x100005412 injected"), "{off}");
}

#[test]
fn the_launchers_keys_are_out_of_reach() {
    let env = TestEnv::new("keyring");
    let script = r#"keyctl new_session >/dev/null
keyctl add user nook-test-key LAUNCHER-SECRET @s >/dev/null
keyctl print %user:nook-test-key
"$NOOK" run -- keyctl print %user:nook-test-key; echo "rc=$?"
"$NOOK" run --seccomp off -- keyctl print %user:nook-test-key; echo "rc=$?""#;
    let out = env.sh(script).output();
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    // Outside, the key is readable; inside, the keyring calls are refused,
    // and even without the filter the fresh session keyring hides it.
    assert_eq!(lines, ["LAUNCHER-SECRET", "rc=1", "rc=1"], "{out}");
    // With the filter keyctl can't even search; without it, the key's
    // description is visible (same uid) but reading needs possession,
    // which the fresh session keyring took away.
    assert!(out.stderr.contains("Can't find"), "{out}");
    assert!(out.stderr.contains("Permission denied"), "{out}");
}

#[test]
fn landlock_blocks_a_path_the_mounts_would_allow() {
    // A directory descriptor passed in from outside reaches host files
    // that no mount shows; Landlock still refuses them.
    let env = TestEnv::new("landlock-fd");
    let outside = env.path("outside");
    env.mkdir(&outside);
    env.write(&outside.join("file"), "HOST-FILE\n");
    let script = format!(
        "exec 3< {}; \"$NOOK\" run --pass-fd 3 --share-cwd no -- cat /proc/self/fd/3/file; echo rc=$?; \
         \"$NOOK\" run --landlock off --pass-fd 3 --share-cwd no -- cat /proc/self/fd/3/file",
        outside.display()
    );
    let out = env.sh(&script).output();
    out.ok();
    assert_eq!(out.stdout, "rc=1\nHOST-FILE\n", "{out}");
    assert!(out.stderr.contains("Permission denied"), "{out}");
}

#[test]
fn landlock_scopes_abstract_sockets_and_signals() {
    let env = TestEnv::new("landlock-scope");
    let name = format!("nook-test-{}", std::process::id());
    // A host process listening on an abstract socket; the sandbox shares
    // the network namespace (so only Landlock stands between them).
    let script = format!(
        "socat ABSTRACT-LISTEN:{name},fork SYSTEM:'echo hello-from-host' & srv=$!; sleep 0.3
\"$NOOK\" run --share-net -- socat -u ABSTRACT-CONNECT:{name} -; echo rc=$?
\"$NOOK\" run --share-net --landlock off -- socat -u ABSTRACT-CONNECT:{name} -; echo rc=$?
sleep 1000 & victim=$!
\"$NOOK\" run --share-pid -- kill $victim; echo rc=$?
kill -0 $victim && echo alive
\"$NOOK\" run --share-pid --landlock off -- kill $victim; echo rc=$?
sleep 0.1; kill -0 $victim 2>/dev/null || echo gone
kill $srv"
    );
    let out = env.sh(&script).output();
    assert_eq!(
        out.stdout, "rc=1\nhello-from-host\nrc=0\nrc=1\nalive\nrc=0\ngone\n",
        "{out}"
    );
}

#[test]
fn payload_has_no_capabilities_and_locked_securebits() {
    let env = TestEnv::new("caps");
    let out = env
        .run(&[
            "--uid",
            "0",
            "--",
            "sh",
            "-c",
            "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; grep -E '^Cap(Eff|Prm)' /proc/1/status",
        ])
        .output();
    out.ok();
    for line in out.stdout.lines() {
        if line.starts_with("Cap") {
            assert!(line.ends_with("0000000000000000"), "{out}");
        }
    }
    assert!(out.stdout.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    // Outside nook, the same "fake root" holds every capability.
    let out = env.sh("unshare -Ur grep CapEff /proc/self/status").output();
    out.ok();
    assert!(!out.stdout.contains("0000000000000000"), "{out}");
}

#[test]
fn doctor_reports_every_check_and_says_run_works() {
    let env = TestEnv::new("doctor");
    let out = env.nook(&["doctor", "--json"]).output();
    out.ok();
    let checks: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let names: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for want in [
        "user namespaces",
        "seccomp",
        "landlock",
        "overlayfs in a user namespace",
        "fuse-overlayfs",
        "pasta",
        "slirp4netns",
        "subordinate ids",
        "cgroup v2",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    for c in checks.as_array().unwrap() {
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "degraded", "missing"].contains(&status), "{c}");
        if status != "ok" {
            assert!(c["fix"].is_string(), "a fix for {c}");
        }
    }
    let out = env.nook(&["doctor"]).output();
    out.ok();
    assert!(
        out.stdout
            .contains("ok       user namespaces: an unprivileged user namespace can be created"),
        "{out}"
    );
    assert!(
        out.stdout
            .ends_with("nook run works here with the default profile.\n"),
        "{out}"
    );
}

//! Capabilities in the sandbox's user namespace: a fake root that can do
//! what root does to its own view, and nothing more. The real binary as
//! the unprivileged test user.

mod common;

use common::TestEnv;

/// What a fake root does to its own files, and what it is still refused.
const ROOT_WORK: &str = "touch /tmp/f; chown 1000:1000 /tmp/f && echo chown=ok; \
    stat -c owner=%u:%g /tmp/f; \
    mknod /tmp/null c 1 3 2>/dev/null; echo mknod=$?; \
    grep CapEff /proc/self/status";

/// `--subids --uid 0 --gid 0` holds the fake root's set: chown works
/// (on ids mapped into the sandbox), device nodes stay refused (the kernel
/// allows none in a user namespace). The same command without the
/// capabilities (--cap-drop of chown) can't chown.
#[test]
fn a_fake_root_holds_its_set_and_can_chown() {
    let env = TestEnv::new("caps-root");
    if !common::require(
        !common::subid_lines("/etc/subuid", &env.user).is_empty(),
        "the test user has no /etc/subuid range: run .ci/setup",
    ) {
        return;
    }
    let root = ["--subids", "--uid", "0", "--gid", "0"];
    let mut args: Vec<&str> = root.to_vec();
    args.extend(["--", "sh", "-c", ROOT_WORK]);
    let out = env.run(&args).output();
    out.ok();
    assert!(out.stdout.contains("chown=ok\nowner=1000:1000\n"), "{out}");
    assert!(out.stdout.contains("mknod=1\n"), "{out}");
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
    // NET_BIND_SERVICE SETFCAP.
    assert!(out.stdout.contains("CapEff:\t00000000800004fb"), "{out}");
    let mut args: Vec<&str> = root.to_vec();
    args.extend(["--cap-drop", "CAP_CHOWN", "--", "sh", "-c", ROOT_WORK]);
    let out = env.run(&args).output();
    out.ok();
    assert!(!out.stdout.contains("chown=ok"), "{out}");
    assert!(out.stdout.contains("CapEff:\t00000000800004fa"), "{out}");
    // Not a fake root (no subordinate ids): nothing is held unless asked.
    let out = env
        .run(&["--uid", "0", "--", "grep", "CapEff", "/proc/self/status"])
        .output();
    out.ok();
    assert_eq!(out.stdout, "CapEff:\t0000000000000000\n", "{out}");
    let out = env
        .run(&[
            "--cap-add",
            "net_bind_service",
            "--",
            "grep",
            "CapEff",
            "/proc/self/status",
        ])
        .output();
    out.ok();
    assert_eq!(out.stdout, "CapEff:\t0000000000000400\n", "{out}");
}

/// Raw system calls a fake root might try, each with its errno name.
const ATTEMPTS_PY: &str = r#"
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *args)
    print(name, "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()])
call("mount", 165, b"none", b"/tmp", b"tmpfs", 0, None)
call("unshare_user", 272, 0x10000000)
call("bpf", 321, 9999, None, 0)
call("keyctl", 250, 0, -3, 0)
call("init_module", 175, None, 0, b"")
call("setns", 308, 0, 0)
call("kill_init", 62, 1, 9)
try:
    open("/proc/sys/kernel/hostname", "w").write("x")
    print("proc_sys ok")
except OSError as e:
    print("proc_sys", errno.errorcode[e.errno])
try:
    os.chown("/etc/hostname", 0, 0)
    print("chown_host_file ok")
except OSError as e:
    print("chown_host_file", errno.errorcode[e.errno])
"#;

/// The hardening tests' escape attempts, repeated with the fake root's
/// set held: each is still refused (seccomp, the user namespace's limits,
/// read-only views, init out of reach).
#[test]
fn a_fake_root_is_still_refused_what_the_sandbox_refuses() {
    let env = TestEnv::new("caps-escapes");
    if !common::require(
        !common::subid_lines("/etc/subuid", &env.user).is_empty(),
        "the test user has no /etc/subuid range: run .ci/setup",
    ) {
        return;
    }
    env.write(&env.path("attempts.py"), ATTEMPTS_PY);
    let out = env
        .run(&[
            "--subids",
            "--uid",
            "0",
            "--gid",
            "0",
            "--cap-add",
            "sys_chroot",
            "--",
            "python3",
            "attempts.py",
        ])
        .output();
    out.ok();
    for line in [
        "mount EPERM",
        "unshare_user EPERM",
        "bpf EPERM",
        "keyctl EPERM",
        "init_module EPERM",
        "setns EPERM",
        "proc_sys EROFS",
        "chown_host_file EROFS",
        // init, nook's pid 1, is not the command's to signal.
        "kill_init EPERM",
    ] {
        assert!(out.stdout.contains(line), "{line} in {out}");
    }
}

/// Capabilities that can't act in a user namespace, or would undo a
/// layer, are refused with one line and exit 125.
#[test]
fn capabilities_that_must_stay_out_are_refused() {
    let env = TestEnv::new("caps-refused");
    for (cap, says) in [
        (
            "CAP_SYS_MODULE",
            "acts only in the host's own user namespace",
        ),
        ("sys_admin", "CAP_SYS_ADMIN is refused"),
        ("sys_ptrace", "CAP_SYS_PTRACE is refused"),
        ("cap_fly", "expected a capability name"),
    ] {
        let out = env.run(&["--cap-add", cap, "--", "true"]).output();
        assert_eq!(out.code(), 125, "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert!(
            out.stderr.contains(&format!("--cap-add '{cap}'")) && out.stderr.contains(says),
            "{out}"
        );
    }
    let out = env
        .run(&[
            "--net",
            "user",
            "--net-allow",
            "pypi.org",
            "--cap-add",
            "net_admin",
            "--",
            "true",
        ])
        .output();
    assert_eq!(out.code(), 125, "{out}");
    assert!(out.stderr.contains("egress allow-list"), "{out}");
}

/// Built by `.ci/setup` (tests/common/rootfs.sh): Debian bookworm with apt,
/// owned by the test user and its subordinate ids as a fake root maps
/// them.
const ROOTFS: &str = "/var/cache/nook-tests/podman-rootfs";

fn rootfs_ready(env: &TestEnv) -> bool {
    use std::os::unix::fs::MetadataExt;
    let owned = std::fs::metadata(format!("{ROOTFS}/usr/bin/apt-get"))
        .is_ok_and(|m| m.uid() == env.user.uid);
    common::require(
        owned && !common::subid_lines("/etc/subuid", &env.user).is_empty(),
        &format!(
            "the root filesystem {ROOTFS} with apt, made for the test user, and its subordinate ids: run .ci/setup"
        ),
    )
}

/// `--rootfs DIR` is the sandbox's system: its /etc names the users, it is
/// read-only, and /proc, /dev, /tmp are nook's.
#[test]
fn a_root_filesystem_is_the_sandboxs_system() {
    let env = TestEnv::new("rootfs-view");
    if !rootfs_ready(&env) {
        return;
    }
    let out = env
        .run(&[
            "--rootfs",
            ROOTFS,
            "--",
            "sh",
            "-c",
            "cat /etc/debian_version; grep -c '^_apt:' /etc/passwd; touch /usr/x 2>/dev/null; echo touch=$?; ls /tmp | wc -l; test -e /proc/self/status && echo proc",
        ])
        .output();
    out.ok();
    assert!(out.stdout.starts_with("12."), "{out}");
    assert!(out.stdout.contains("\n1\ntouch=1\n0\nproc\n"), "{out}");
}

/// A throw-away system to change: the fake root installs a package from
/// Debian's archive with apt-get into `--tmp-overlay /` of a root
/// filesystem, through --net user; the root filesystem is untouched after.
#[test]
fn apt_installs_into_a_throw_away_system() {
    let env = TestEnv::new("rootfs-apt");
    if !rootfs_ready(&env) {
        return;
    }
    let out = env
        .run(&[
            "--rootfs",
            ROOTFS,
            "--tmp-overlay",
            "/",
            "--subids",
            "--uid",
            "0",
            "--gid",
            "0",
            "--net",
            "user",
            "--",
            "sh",
            "-c",
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends sl >/dev/null && test -x /usr/games/sl && echo installed",
        ])
        .timeout(std::time::Duration::from_secs(300))
        .output();
    out.ok();
    assert!(out.stdout.ends_with("installed\n"), "{out}");
    assert!(
        !std::path::Path::new(&format!("{ROOTFS}/usr/games/sl")).exists(),
        "the root filesystem changed"
    );
}

/// Bad input: each one line, exit 125.
#[test]
fn bad_root_filesystems_are_one_line() {
    let env = TestEnv::new("rootfs-bad");
    env.mkdir(&env.path("empty"));
    for (args, says) in [
        (
            vec!["--rootfs", "/nonexistent-rootfs"],
            "expected a directory holding a root filesystem",
        ),
        (
            vec!["--rootfs", "empty"],
            "expected a root filesystem with /bin/sh",
        ),
        (vec!["--tmp-overlay", "/"], "an overlay of / needs --rootfs"),
    ] {
        let mut all = args.clone();
        all.extend(["--", "true"]);
        let out = env.run(&all).output();
        assert_eq!(out.code(), 125, "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert!(out.stderr.contains(says), "{out}");
    }
}

/// A fake root over the host's own system can't change it (the host's
/// root is not mapped, and some of its files, like apt's locks, are not
/// even readable): one warning names the way that works.
#[test]
fn a_fake_root_over_the_hosts_system_is_told_why_it_cant() {
    let env = TestEnv::new("caps-hostsys");
    if !common::require(
        !common::subid_lines("/etc/subuid", &env.user).is_empty(),
        "the test user has no /etc/subuid range: run .ci/setup",
    ) {
        return;
    }
    let out = env
        .run(&[
            "--subids",
            "--uid",
            "0",
            "--gid",
            "0",
            "--tmp-overlay",
            "/var",
            "--",
            "sh",
            "-c",
            "touch /var/lib/dpkg/lock-frontend 2>/dev/null; echo touch=$?",
        ])
        .output();
    out.ok();
    assert_eq!(out.stdout, "touch=1\n", "{out}");
    assert_eq!(
        out.stderr,
        "nook: warning: /var belongs to the host's root, which the sandbox can't map: the fake root can't change it; a package manager needs a root filesystem (--rootfs DIR --tmp-overlay /)\n",
        "{out}"
    );
}

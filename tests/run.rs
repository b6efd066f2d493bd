//! Integration tests for `nook run`: the real binary, run as an unprivileged
//! user (see tests/common/mod.rs), checked from inside the sandbox with the
//! tools in /usr (sh, cat, id, ls, grep, stat, touch, dd, mount, ip).
//!
//! Each test owns a fresh working directory; they run in parallel.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// `require` that returns from the test when the feature is missing.
macro_rules! require {
    ($feature:expr, $($reason:tt)+) => {
        if !require($feature, &format!($($reason)+)) {
            return;
        }
    };
}

/// Parse `/proc/self/uid_map`-style text into (inside, outside, count).
fn id_map(text: &str) -> Vec<(u64, u64, u64)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .map(|n| n.parse().unwrap_or_else(|_| panic!("bad map line {l:?}")))
                .collect();
            assert_eq!(f.len(), 3, "bad map line {l:?}");
            (f[0], f[1], f[2])
        })
        .collect()
}

/// The text between `start` and `end` marker lines in `s`.
fn section<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let a = s
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {s:?}"))
        + start.len();
    let b = s[a..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} in {s:?}"))
        + a;
    s[a..b].trim_matches('\n')
}

/// The value after `key=` on a line of `s` (e.g. `rc=1 ...` -> "1 ...").
fn field<'a>(s: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    s.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{s}"))
}

/// Status and message of a shell step printed as `KEY=STATUS MESSAGE`.
fn step_rc(s: &str, key: &str) -> i32 {
    field(s, key)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no status for {key} in:\n{s}"))
}

// ---------------------------------------------------------------- identity

#[test]
fn ids_default_to_own_uid_and_gid() {
    let env = TestEnv::new("ids-default");
    let out = env
        .run(&["--", "sh", "-c", "id -u; id -g"])
        .output()
        .ok()
        .clone();
    assert_eq!(
        out.lines(),
        vec![env.user.uid.to_string(), env.user.gid.to_string()],
        "{out}"
    );
}

#[test]
fn uid_map_is_one_line_for_own_uid() {
    let env = TestEnv::new("uid-map");
    let out = env
        .run(&[
            "--",
            "sh",
            "-c",
            "echo @uid; cat /proc/self/uid_map; echo @gid; cat /proc/self/gid_map; \
             echo @setgroups; cat /proc/self/setgroups; echo @end",
        ])
        .output();
    out.ok();
    let (uid, gid) = (env.user.uid as u64, env.user.gid as u64);
    assert_eq!(
        id_map(section(&out.stdout, "@uid", "@gid")),
        vec![(uid, uid, 1)],
        "{out}"
    );
    assert_eq!(
        id_map(section(&out.stdout, "@gid", "@setgroups")),
        vec![(gid, gid, 1)],
        "{out}"
    );
    assert_eq!(
        section(&out.stdout, "@setgroups", "@end").trim(),
        "deny",
        "{out}"
    );
}

#[test]
fn uid_0_gid_0_gives_fake_root() {
    let env = TestEnv::new("uid0");
    let out = env
        .run(&[
            "--uid",
            "0",
            "--gid",
            "0",
            "--",
            "sh",
            "-c",
            "id -u; id -g; echo @uid; cat /proc/self/uid_map; echo @end",
        ])
        .output();
    out.ok();
    let lines = out.lines();
    assert_eq!(&lines[..2], &["0", "0"], "{out}");
    assert_eq!(
        id_map(section(&out.stdout, "@uid", "@end")),
        vec![(0, env.user.uid as u64, 1)],
        "{out}"
    );
}

#[test]
fn subids_map_the_subordinate_range() {
    let env = TestEnv::new("subids");
    let helpers = ["newuidmap", "newgidmap"]
        .iter()
        .all(|h| find_tool(&[&format!("/usr/bin/{h}"), &format!("/usr/sbin/{h}")]).is_some());
    require!(
        helpers,
        "newuidmap/newgidmap not installed (package uidmap)"
    );
    require!(
        !subid_lines("/etc/subuid", &env.user).is_empty()
            && !subid_lines("/etc/subgid", &env.user).is_empty(),
        "no /etc/subuid and /etc/subgid range for {}",
        env.user.name
    );
    let out = env
        .run(&[
            "--subids",
            "--uid",
            "0",
            "--",
            "sh",
            "-c",
            "id -u; echo @uid; cat /proc/self/uid_map; echo @gid; cat /proc/self/gid_map; echo @end",
        ])
        .output();
    out.ok();
    assert_eq!(out.lines()[0], "0", "{out}");
    for (start, end) in [("@uid", "@gid"), ("@gid", "@end")] {
        // The range may be split around the user's own id, so count every
        // line that maps ids other than the user's own.
        let map = id_map(section(&out.stdout, start, end));
        let own = if start == "@uid" {
            env.user.uid as u64
        } else {
            env.user.gid as u64
        };
        let subordinate: u64 = map
            .iter()
            .filter(|&&(_, outside, _)| outside != own)
            .map(|&(_, _, count)| count)
            .sum();
        assert!(
            subordinate >= 65536,
            "{start} map covers {subordinate} subordinate ids, expected >= 65536: {map:?}\n{out}"
        );
    }
}

// -------------------------------------------------------------- namespaces

#[test]
fn pid_namespace_shows_only_the_sandbox() {
    let env = TestEnv::new("pidns");
    let out = env
        .run(&["--", "sh", "-c", "echo self=$$; ls /proc"])
        .output();
    out.ok();
    let me: u32 = field(&out.stdout, "self").trim().parse().expect("pid");
    assert!(
        me <= 10,
        "shell pid inside should be small, got {me}\n{out}"
    );
    let pids: BTreeSet<u32> = out.lines().iter().filter_map(|l| l.parse().ok()).collect();
    assert!(pids.contains(&1), "no pid 1 in /proc\n{out}");
    assert!(
        pids.len() <= 5,
        "too many processes visible (host pids leaking?): {pids:?}\n{out}"
    );
    let runner = std::process::id();
    if runner > 10 {
        assert!(!pids.contains(&runner), "the test runner is visible\n{out}");
    }
}

#[test]
fn hostname_is_set() {
    let env = TestEnv::new("hostname");
    let out = env
        .run(&[
            "--hostname",
            "box",
            "--",
            "cat",
            "/proc/sys/kernel/hostname",
        ])
        .output();
    out.ok();
    assert_eq!(out.stdout.trim(), "box", "{out}");
}

#[test]
fn share_uts_keeps_host_hostname() {
    let env = TestEnv::new("share-uts");
    let host = fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let out = env
        .run(&["--share-uts", "--", "cat", "/proc/sys/kernel/hostname"])
        .output();
    out.ok();
    assert_eq!(out.stdout.trim(), host.trim(), "{out}");
}

fn ip_tool() -> Option<String> {
    find_tool(&["/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip", "/bin/ip"])
}

#[test]
fn network_default_has_only_loopback_up() {
    let env = TestEnv::new("net-none");
    let out = env.run(&["--", "cat", "/proc/net/dev"]).output();
    out.ok();
    assert_eq!(net_dev_names(&out.stdout), vec!["lo"], "{out}");

    let ip = ip_tool();
    require!(ip.is_some(), "ip (package iproute2) not installed");
    let ip = ip.unwrap();
    let out = env.run(&["--", &ip, "-o", "link", "show"]).output();
    out.ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "expected only lo\n{out}");
    let flags = lines[0]
        .split('<')
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap_or("");
    assert!(
        lines[0].contains(" lo:") && flags.split(',').any(|f| f == "UP"),
        "lo is not up: {:?}\n{out}",
        lines[0]
    );
    let out = env.run(&["--", &ip, "-o", "addr", "show", "lo"]).output();
    out.ok();
    assert!(
        out.stdout.contains("127.0.0.1"),
        "lo has no 127.0.0.1\n{out}"
    );
}

#[test]
fn share_net_sees_host_interfaces() {
    let env = TestEnv::new("share-net");
    let host = net_dev_names(&fs::read_to_string("/proc/net/dev").expect("/proc/net/dev"));
    require!(
        host.len() > 1,
        "the host has no network interface besides lo"
    );
    let out = env
        .run(&["--share-net", "--", "cat", "/proc/net/dev"])
        .output();
    out.ok();
    assert_eq!(net_dev_names(&out.stdout), host, "{out}");
}

// --------------------------------------------------------------- read-only

const EROFS: &str = "Read-only file system";

#[test]
fn default_view_usr_and_etc_are_read_only() {
    let env = TestEnv::new("ro-default");
    let out = env
        .run(&[
            "--",
            "sh",
            "-c",
            "e=$(touch /usr/nook-x 2>&1); echo \"usr=$? $e\"; \
             e=$(touch /etc/nook-x 2>&1); echo \"etc=$? $e\"; \
             e=$(mkdir /usr/bin/nook-d 2>&1); echo \"usrbin=$? $e\"",
        ])
        .output();
    out.ok();
    for key in ["usr", "etc", "usrbin"] {
        assert_ne!(step_rc(&out.stdout, key), 0, "{key} writable\n{out}");
        assert!(
            field(&out.stdout, key).contains(EROFS),
            "{key}: not EROFS\n{out}"
        );
    }
    assert!(!Path::new("/usr/nook-x").exists());
}

#[test]
fn ro_bind_is_read_only() {
    let env = TestEnv::new("ro-bind");
    let data = env.path("data");
    env.mkdir(&data);
    env.write(&data.join("present.txt"), "present\n");
    let out = env
        .run(&[
            "--ro-bind",
            &format!("{}:/data", data.display()),
            "--",
            "sh",
            "-c",
            "cat /data/present.txt; e=$(touch /data/x 2>&1); echo \"touch=$? $e\"; \
             e=$(sh -c 'echo y >> /data/present.txt' 2>&1); echo \"append=$? $e\"",
        ])
        .output();
    out.ok();
    assert_eq!(out.lines()[0], "present", "{out}");
    for key in ["touch", "append"] {
        assert_ne!(step_rc(&out.stdout, key), 0, "{out}");
        assert!(
            field(&out.stdout, key).contains(EROFS),
            "{key}: not EROFS\n{out}"
        );
    }
    assert!(!data.join("x").exists());
    assert_eq!(
        fs::read_to_string(data.join("present.txt")).unwrap(),
        "present\n"
    );
}

#[test]
fn later_ro_bind_covers_the_read_write_cwd() {
    // The cwd is bound read-write by the default view; a later --ro-bind of
    // a subdirectory of it must win (later operations cover earlier ones).
    let env = TestEnv::new("ro-over-rw");
    let sub = env.path("sub");
    env.mkdir(&sub);
    let out = env
        .run(&[
            "--ro-bind",
            &sub.display().to_string(),
            "--",
            "sh",
            "-c",
            "e=$(touch sub/x 2>&1); echo \"sub=$? $e\"; e=$(touch top 2>&1); echo \"top=$? $e\"",
        ])
        .output();
    out.ok();
    assert_ne!(step_rc(&out.stdout, "sub"), 0, "{out}");
    assert!(field(&out.stdout, "sub").contains(EROFS), "{out}");
    assert_eq!(step_rc(&out.stdout, "top"), 0, "{out}");
    assert!(env.path("top").exists());
    assert!(!sub.join("x").exists());
}

const REMOUNT_SCRIPT: &str = "\
e=$(mount -o remount,rw /usr 2>&1); echo \"remount=$? $e\"
e=$(mount -o remount,bind,rw /usr 2>&1); echo \"remount_bind=$? $e\"
e=$(touch /usr/nook-remount-x 2>&1); echo \"touch=$? $e\"
";

#[test]
fn remount_read_write_fails() {
    let env = TestEnv::new("remount");
    for extra in [&[][..], &["--uid", "0", "--gid", "0"][..]] {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--", "sh", "-c", REMOUNT_SCRIPT]);
        let out = env.run(&args).output();
        out.ok();
        assert_ne!(step_rc(&out.stdout, "remount"), 0, "remount worked\n{out}");
        assert_ne!(
            step_rc(&out.stdout, "remount_bind"),
            0,
            "remount worked\n{out}"
        );
        assert_ne!(step_rc(&out.stdout, "touch"), 0, "{out}");
        assert!(field(&out.stdout, "touch").contains(EROFS), "{out}");
    }
    assert!(!Path::new("/usr/nook-remount-x").exists());
}

#[test]
fn remount_from_a_nested_user_namespace_fails() {
    // A payload that makes its own user namespace gets every capability
    // there; the mounts it inherits must stay locked read-only.
    let env = TestEnv::new("remount-nested");
    require!(
        find_tool(&["/usr/bin/unshare"]).is_some(),
        "unshare (util-linux) not installed"
    );
    let out = env
        .run(&[
            "--",
            "sh",
            "-c",
            "e=$(unshare -r -m sh -c 'mount -o remount,bind,rw /usr && echo REMOUNTED; \
               touch /usr/nook-nested-x' 2>&1); echo \"nested=$? $e\"",
        ])
        .output();
    out.ok();
    let line = field(&out.stdout, "nested");
    assert!(!line.contains("REMOUNTED"), "remount worked\n{out}");
    assert_ne!(step_rc(&out.stdout, "nested"), 0, "{out}");
    assert!(!Path::new("/usr/nook-nested-x").exists());
}

#[test]
fn read_only_is_recursive_dev_shm() {
    // Host /dev has a world-writable submount, /dev/shm: bound read-only,
    // it must be read-only too (EROFS, not written).
    let env = TestEnv::new("ro-recursive-shm");
    let shm_is_mount = host_mount_points().iter().any(|m| m == "/dev/shm");
    let shm_world_writable = fs::metadata("/dev/shm")
        .map(|m| m.permissions().mode() & 0o002 != 0)
        .unwrap_or(false);
    require!(
        shm_is_mount && shm_world_writable,
        "host /dev/shm is not a world-writable submount of /dev"
    );
    let name = format!("nook-recursive-{}", std::process::id());
    let host_file = Path::new("/dev/shm").join(&name);
    let out = env
        .run(&[
            "--ro-bind",
            "/dev:/hostdev",
            "--",
            "sh",
            "-c",
            &format!("e=$(touch /hostdev/shm/{name} 2>&1); echo \"touch=$? $e\""),
        ])
        .output();
    let written = host_file.exists();
    let _ = fs::remove_file(&host_file);
    out.ok();
    assert!(
        !written,
        "wrote {} through a read-only bind\n{out}",
        host_file.display()
    );
    assert_ne!(step_rc(&out.stdout, "touch"), 0, "{out}");
    assert!(field(&out.stdout, "touch").contains(EROFS), "{out}");
}

#[test]
fn read_only_is_recursive_sys() {
    let env = TestEnv::new("ro-recursive-sys");
    let sub = host_mount_points()
        .into_iter()
        .find(|m| m.starts_with("/sys/") && Path::new(m).is_dir());
    require!(sub.is_some(), "host /sys has no submount");
    let inside = format!("/s/{}", sub.unwrap().trim_start_matches("/sys/"));
    let out = env
        .run(&[
            "--ro-bind",
            "/sys:/s",
            "--",
            "sh",
            "-c",
            &format!("e=$(touch {inside}/nook-x 2>&1); echo \"touch=$? $e\""),
        ])
        .output();
    out.ok();
    assert_ne!(step_rc(&out.stdout, "touch"), 0, "{out}");
    assert!(
        field(&out.stdout, "touch").contains(EROFS),
        "submount {inside} not read-only (EROFS expected)\n{out}"
    );
}

// ---------------------------------------------------------- filesystem ops

#[test]
fn hide_file_and_directory() {
    let env = TestEnv::new("hide");
    let secret = env.path("secret.txt");
    let hidden = env.path("hidden");
    env.write(&secret, "TOPSECRET\n");
    env.mkdir(&hidden);
    env.write(&hidden.join("inner-file"), "INNER\n");
    let out = env
        .run(&[
            "--hide",
            &secret.display().to_string(),
            "--hide",
            &hidden.display().to_string(),
            "--",
            "sh",
            "-c",
            "cat secret.txt; echo \"cat=$?\"; ls -A hidden; echo \"ls=$?\"; \
             cat hidden/inner-file; echo \"inner=$?\"; \
             test -e secret.txt && echo secret-present; test -d hidden && echo hidden-present",
        ])
        .output();
    out.ok();
    assert!(
        !out.stdout.contains("TOPSECRET"),
        "hidden file readable\n{out}"
    );
    assert!(
        !out.stdout.contains("inner-file"),
        "hidden dir listed\n{out}"
    );
    assert!(!out.stdout.contains("INNER"), "hidden dir readable\n{out}");
    assert!(out.stdout.contains("secret-present"), "{out}");
    assert!(out.stdout.contains("hidden-present"), "{out}");
    // Hiding must not touch the host files.
    assert_eq!(fs::read_to_string(&secret).unwrap(), "TOPSECRET\n");
    assert!(hidden.join("inner-file").exists());
}

#[test]
fn hide_inside_read_only_system_dir() {
    let env = TestEnv::new("hide-etc");
    let out = env
        .run(&[
            "--hide",
            "/etc/passwd",
            "--",
            "sh",
            "-c",
            "cat /etc/passwd; echo \"cat=$?\"",
        ])
        .output();
    out.ok();
    assert!(
        !out.stdout.contains("root:"),
        "/etc/passwd still readable\n{out}"
    );
}

#[test]
fn tmpfs_size_limit() {
    let env = TestEnv::new("tmpfs-size");
    let out = env
        .run(&[
            "--tmpfs",
            "/t:size=1M",
            "--",
            "sh",
            "-c",
            "dd if=/dev/zero of=/t/small bs=1k count=512 2>/dev/null; echo \"small=$?\"; rm -f /t/small; \
             e=$(dd if=/dev/zero of=/t/big bs=1k count=2048 2>&1); echo \"big=$? $e\"",
        ])
        .output();
    out.ok();
    assert_eq!(step_rc(&out.stdout, "small"), 0, "cannot write 512k\n{out}");
    assert_ne!(step_rc(&out.stdout, "big"), 0, "wrote 2M into 1M\n{out}");
    assert!(
        field(&out.stdout, "big").contains("No space left on device"),
        "{out}"
    );
}

#[test]
fn dir_symlink_file_chdir() {
    let env = TestEnv::new("fs-ops");
    let out = env
        .run(&[
            "--dir",
            "/d",
            "--symlink",
            "usr/bin:/xbin",
            "--file",
            "/motd:hello",
            "--chdir",
            "/tmp",
            "--",
            "sh",
            "-c",
            "test -d /d && echo dir-ok; echo \"link=$(readlink /xbin)\"; /xbin/sh -c 'echo via-link'; \
             echo \"file=$(cat /motd)\"; echo \"pwd=$(pwd)\"",
        ])
        .output();
    out.ok();
    assert!(out.stdout.contains("dir-ok"), "{out}");
    assert_eq!(field(&out.stdout, "link"), "usr/bin", "{out}");
    assert!(out.stdout.contains("via-link"), "{out}");
    assert_eq!(field(&out.stdout, "file"), "hello", "{out}");
    assert_eq!(field(&out.stdout, "pwd"), "/tmp", "{out}");
}

#[test]
fn file_in_read_only_etc_needs_a_writable_parent() {
    // /etc comes read-only from the host and /etc/motd2 does not exist
    // there: no mount point can be made, and nook says so rather than
    // half-working (bwrap refuses the same). Under a --tmpfs it works.
    let env = TestEnv::new("file-etc");
    let out = env
        .run(&["--file", "/etc/motd2:hello", "--", "cat", "/etc/motd2"])
        .output();
    out.expect_code(125);
    assert!(
        out.stderr
            .starts_with("nook: error: creating mount point /etc/motd2: EROFS"),
        "{out}"
    );
    let out = env
        .run(&[
            "--tmpfs",
            "/opt/conf",
            "--file",
            "/opt/conf/motd2:hello",
            "--",
            "cat",
            "/opt/conf/motd2",
        ])
        .output();
    out.ok();
    assert_eq!(out.stdout.trim_end(), "hello", "{out}");
}

#[test]
fn file_replaces_existing_host_file() {
    let env = TestEnv::new("file-replace");
    let out = env
        .run(&[
            "--file",
            "/etc/hostname:sandbox-name",
            "--",
            "cat",
            "/etc/hostname",
        ])
        .output();
    out.ok();
    assert_eq!(out.stdout.trim(), "sandbox-name", "{out}");
}

#[test]
fn later_operations_cover_earlier_ones() {
    let env = TestEnv::new("order");
    let out = env
        .run(&[
            "--file",
            "/x:one",
            "--file",
            "/x:two",
            "--tmpfs",
            "/usr/share",
            "--",
            "sh",
            "-c",
            "echo \"x=$(cat /x)\"; echo \"share=$(ls -A /usr/share | wc -l)\"",
        ])
        .output();
    out.ok();
    assert_eq!(field(&out.stdout, "x"), "two", "{out}");
    assert_eq!(field(&out.stdout, "share").trim(), "0", "{out}");
}

#[test]
fn bind_try_missing_source_is_skipped() {
    let env = TestEnv::new("bind-try");
    let sub = env.path("sub");
    env.mkdir(&sub);
    env.write(&sub.join("f"), "F\n");
    let out = env
        .run(&[
            "--bind-try",
            "/nonexistent-nook-a:/x",
            "--ro-bind-try",
            "/nonexistent-nook-b:/y",
            "--ro-bind-try",
            &format!("{}:/z", sub.display()),
            "--",
            "sh",
            "-c",
            "test -e /x || echo x-absent; test -e /y || echo y-absent; cat /z/f",
        ])
        .output();
    out.ok();
    assert!(out.stdout.contains("x-absent"), "{out}");
    assert!(out.stdout.contains("y-absent"), "{out}");
    assert!(
        out.stdout.contains('F'),
        "existing --ro-bind-try source not bound\n{out}"
    );
}

#[test]
fn fs_flags_add_to_the_default_view() {
    let env = TestEnv::new("additive");
    let out = env
        .run(&[
            "--dir",
            "/extra",
            "--",
            "sh",
            "-c",
            "test -d /extra && echo extra; test -d /usr/bin && echo usr; test -f /etc/passwd && echo etc; \
             echo \"pwd=$(pwd)\"; touch in-cwd && echo cwd-rw",
        ])
        .output();
    out.ok();
    for w in ["extra", "usr", "etc", "cwd-rw"] {
        assert!(out.lines().contains(&w), "missing {w}\n{out}");
    }
    assert_eq!(field(&out.stdout, "pwd"), env.dir_str(), "{out}");
}

#[test]
fn no_default_view_starts_empty() {
    let env = TestEnv::new("no-default");
    let mut args: Vec<String> = vec![
        "--no-default-view".into(),
        "--ro-bind".into(),
        "/usr".into(),
    ];
    for link in ["/bin", "/sbin", "/lib", "/lib64"] {
        if let Ok(t) = fs::read_link(link) {
            args.extend(["--symlink".into(), format!("{}:{link}", t.display())]);
        }
    }
    args.extend(
        ["--chdir", "/", "--", "/usr/bin/ls", "-A", "/"]
            .iter()
            .map(|s| s.to_string()),
    );
    let out = env.run(&args).output();
    out.ok();
    let names = out.lines();
    assert!(names.contains(&"usr"), "{out}");
    for absent in ["etc", "home", "tmp", "proc", "dev"] {
        assert!(
            !names.contains(&absent),
            "/{absent} present without default view\n{out}"
        );
    }
}

// ------------------------------------------------------------ default view

#[test]
fn default_view_cwd_is_same_path_and_writable() {
    let env = TestEnv::new("cwd");
    let out = env
        .run(&["--", "sh", "-c", "pwd; echo inside > written.txt"])
        .output();
    out.ok();
    assert_eq!(out.lines()[0], env.dir_str(), "{out}");
    let written = env.path("written.txt");
    assert_eq!(
        fs::read_to_string(&written).unwrap_or_default(),
        "inside\n",
        "file written inside not visible outside\n{out}"
    );
    assert_eq!(
        fs::metadata(&written).unwrap().uid(),
        env.user.uid,
        "file written inside has the wrong owner"
    );
}

#[test]
fn default_view_home_is_empty_but_cwd() {
    let mut env = TestEnv::new("home");
    let home = env.user.home.clone();
    let secret = home.join(format!("nook-secret-{}.txt", std::process::id()));
    env.write(&secret, "SECRET\n");
    env.cleanup_later(secret.clone());
    let out = env
        .run(&[
            "--",
            "sh",
            "-c",
            &format!(
                "echo \"home=$HOME\"; test -d \"$HOME\" && echo home-dir; ls -A \"$HOME\"; \
                 cat {} 2>/dev/null; echo end",
                secret.display()
            ),
        ])
        .output();
    out.ok();
    assert_eq!(
        field(&out.stdout, "home"),
        home.display().to_string(),
        "{out}"
    );
    assert!(out.stdout.contains("home-dir"), "{out}");
    assert!(
        !out.stdout.contains("SECRET"),
        "secret in $HOME readable\n{out}"
    );
    let first = env
        .dir
        .strip_prefix(&home)
        .expect("work dir under HOME")
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let listed: Vec<&str> = section(&out.stdout, "home-dir", "end")
        .lines()
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        listed,
        vec![first.as_str()],
        "$HOME inside should hold only the path to the cwd\n{out}"
    );
}

#[test]
fn default_view_system_dirs_and_fresh_tmp() {
    let env = TestEnv::new("system");
    let name = format!("nook-inside-{}", std::process::id());
    let out = env
        .run(&[
            "--",
            "sh",
            "-c",
            &format!(
                "test -x /usr/bin/env && echo usr; test -f /etc/passwd && echo etc; \
                 /bin/sh -c 'echo bin-sh'; echo \"tmp=$(ls -A /tmp | wc -l)\"; \
                 touch /tmp/{name} && echo tmp-rw; test -c /dev/null && echo dev-null; \
                 test -r /proc/self/status && echo proc"
            ),
        ])
        .output();
    out.ok();
    for w in ["usr", "etc", "bin-sh", "tmp-rw", "dev-null", "proc"] {
        assert!(out.lines().contains(&w), "missing {w}\n{out}");
    }
    assert_eq!(
        field(&out.stdout, "tmp").trim(),
        "0",
        "/tmp not empty\n{out}"
    );
    assert!(
        !Path::new("/tmp").join(&name).exists(),
        "/tmp inside is the host's"
    );
}

// ------------------------------------------------------------- environment

#[test]
fn setenv_and_inherited_environment() {
    let env = TestEnv::new("setenv");
    let out = env
        .run(&[
            "--setenv",
            "FOO=bar",
            "--setenv",
            "EQ=a=b",
            "--",
            "sh",
            "-c",
            "echo \"foo=$FOO\"; echo \"eq=$EQ\"; echo \"outside=${NOOK_OUTSIDE-unset}\"",
        ])
        .env("NOOK_OUTSIDE", "kept")
        .output();
    out.ok();
    assert_eq!(field(&out.stdout, "foo"), "bar", "{out}");
    assert_eq!(field(&out.stdout, "eq"), "a=b", "{out}");
    assert_eq!(field(&out.stdout, "outside"), "kept", "{out}");
}

#[test]
fn unsetenv_removes_a_variable() {
    let env = TestEnv::new("unsetenv");
    let out = env
        .run(&[
            "--unsetenv",
            "NOOK_OUTSIDE",
            "--",
            "sh",
            "-c",
            "echo \"outside=${NOOK_OUTSIDE-unset}\"",
        ])
        .env("NOOK_OUTSIDE", "kept")
        .output();
    out.ok();
    assert_eq!(field(&out.stdout, "outside"), "unset", "{out}");
}

#[test]
fn clearenv_keeps_only_setenv() {
    let env = TestEnv::new("clearenv");
    let out = env
        .run(&["--clearenv", "--setenv", "A=1", "--", "/usr/bin/env"])
        .env("NOOK_OUTSIDE", "x")
        .output();
    out.ok();
    assert_eq!(out.stdout, "A=1\n", "{out}");
}

// --------------------------------------------------------------------- fds

#[test]
fn inherited_fds_are_closed() {
    let env = TestEnv::new("fds");
    env.write(&env.path("fd-source.txt"), "FDDATA\n");
    let out = env
        .sh("exec 7<fd-source.txt; exec \"$NOOK\" run -- ls /proc/self/fd")
        .output();
    out.ok();
    let fds: BTreeSet<&str> = out.lines().into_iter().collect();
    assert!(!fds.contains("7"), "fd 7 leaked into the sandbox\n{out}");
    // 0-2, plus the one ls opens to read the directory.
    let allowed: BTreeSet<&str> = ["0", "1", "2", "3"].into();
    assert!(fds.is_subset(&allowed), "stray fds: {fds:?}\n{out}");
}

#[test]
fn pass_fd_keeps_a_descriptor() {
    let env = TestEnv::new("pass-fd");
    env.write(&env.path("fd-source.txt"), "FDDATA\n");
    let out = env
        .sh("exec 7<fd-source.txt; exec \"$NOOK\" run --pass-fd 7 -- \
             sh -c 'ls /proc/self/fd; echo \"data=$(cat <&7)\"'")
        .output();
    out.ok();
    assert!(out.lines().contains(&"7"), "fd 7 not passed\n{out}");
    assert_eq!(field(&out.stdout, "data"), "FDDATA", "{out}");
}

// ----------------------------------------------------------------- signals

fn signal_is_forwarded(sig: &str) {
    let env = TestEnv::new(&format!("signal-{}", sig.to_lowercase()));
    let script =
        format!("trap 'echo got-{sig}; exit 3' {sig}; echo ready; while :; do sleep 0.1; done");
    let mut running = env.run(&["--", "sh", "-c", &script]).spawn();
    running.wait_for_line("ready", Duration::from_secs(15));
    running.signal(sig);
    let out = running.wait(Duration::from_secs(15));
    assert!(
        out.stdout.contains(&format!("got-{sig}")),
        "SIG{sig} not forwarded to the payload\n{out}"
    );
    out.expect_code(3);
}

#[test]
fn sigterm_is_forwarded() {
    signal_is_forwarded("TERM");
}

#[test]
fn sigint_is_forwarded() {
    signal_is_forwarded("INT");
}

#[test]
fn sighup_is_forwarded() {
    signal_is_forwarded("HUP");
}

#[test]
fn sigusr1_is_forwarded() {
    signal_is_forwarded("USR1");
}

#[test]
fn sigusr2_is_forwarded() {
    signal_is_forwarded("USR2");
}

#[test]
fn sigquit_is_forwarded() {
    signal_is_forwarded("QUIT");
}

#[test]
fn sigwinch_is_forwarded() {
    signal_is_forwarded("WINCH");
}

#[test]
fn sigcont_is_forwarded() {
    signal_is_forwarded("CONT");
}

// ----------------------------------------------------------------- zombies

#[test]
fn orphans_are_reaped() {
    let env = TestEnv::new("zombies");
    let script = r#"
pid=$(sh -c 'sleep 0.3 >/dev/null 2>&1 & echo $!')
echo "orphan=$pid"
grep PPid /proc/$pid/status
sleep 1.2
if [ -e /proc/$pid ]; then echo "state=$(grep State /proc/$pid/status)"; echo NOT-REAPED; fi
grep -l '^State:.Z' /proc/[0-9]*/status
true
"#;
    let out = env.run(&["--", "sh", "-c", script]).output();
    out.ok();
    assert!(
        !out.stdout.contains("NOT-REAPED"),
        "orphan not reaped\n{out}"
    );
    assert!(
        !out.stdout.contains("/status"),
        "zombie processes in the sandbox\n{out}"
    );
}

// -------------------------------------------------------------- exit codes

#[test]
fn exit_code_is_the_payloads() {
    let env = TestEnv::new("exit-code");
    env.run(&["--", "sh", "-c", "exit 7"])
        .output()
        .expect_code(7);
    env.run(&["--", "true"]).output().expect_code(0);
}

#[test]
fn exit_code_128_plus_signal() {
    let env = TestEnv::new("exit-signal");
    env.run(&["--", "sh", "-c", "kill -9 $$"])
        .output()
        .expect_code(137);
    env.run(&["--", "sh", "-c", "kill -TERM $$"])
        .output()
        .expect_code(143);
}

#[test]
fn exit_code_127_not_found() {
    let env = TestEnv::new("exit-127");
    let out = env.run(&["--", "/nonexistent-cmd"]).output();
    out.expect_code(127);
    assert!(out.stderr.contains("/nonexistent-cmd"), "{out}");
    let out = env.run(&["--", "nosuchcommand"]).output();
    out.expect_code(127);
    assert!(out.stderr.contains("nosuchcommand"), "{out}");
}

#[test]
fn exit_code_126_not_executable() {
    let env = TestEnv::new("exit-126");
    env.write(&env.path("file.txt"), "#!/bin/sh\necho ran\n");
    let out = env.run(&["--", "./file.txt"]).output();
    out.expect_code(126);
    assert!(!out.stdout.contains("ran"), "{out}");
    assert!(out.stderr.contains("file.txt"), "{out}");
    env.run(&["--", "/usr"]).output().expect_code(126);
}

/// Bad input: exit 125, nothing run, and one error line (plus at most a
/// hint line) naming each of `mentions`.
#[track_caller]
fn bad_input(env: &TestEnv, args: &[&str], mentions: &[&str]) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--", "sh", "-c", "echo PAYLOAD-RAN"]);
    let out = env.run(&all).output();
    out.expect_code(125);
    assert!(!out.stdout.contains("PAYLOAD-RAN"), "payload ran\n{out}");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!lines.is_empty(), "no error message\n{out}");
    assert!(
        lines.len() == 1 || (lines.len() == 2 && lines[1].contains("hint")),
        "expected one error line (and an optional hint)\n{out}"
    );
    for m in mentions {
        assert!(
            lines[0].contains(m),
            "error line does not name {m:?}\n{out}"
        );
    }
}

#[test]
fn exit_code_125_bad_input() {
    let env = TestEnv::new("exit-125");
    bad_input(&env, &["--bogus"], &["--bogus"]);
    bad_input(
        &env,
        &["--ro-bind", "/nonexistent-nook-src"],
        &["--ro-bind", "/nonexistent-nook-src"],
    );
    bad_input(
        &env,
        &["--tmpfs", "relative/dir"],
        &["--tmpfs", "relative/dir"],
    );
    bad_input(
        &env,
        &["--tmpfs", "/t:size=lots"],
        &["--tmpfs", "size=lots"],
    );
    bad_input(&env, &["--bind", "/usr:relative"], &["--bind", "relative"]);
    bad_input(&env, &["--uid", "abc"], &["--uid", "abc"]);
    // No command at all.
    let out = env.run(&[] as &[&str]).output();
    out.expect_code(125);
}

// ------------------------------------------------------------- diagnostics

#[test]
fn print_spec_and_plan_run_nothing() {
    let env = TestEnv::new("print");
    let out = env
        .run(&["--print-spec", "--", "touch", "created-by-payload"])
        .output();
    out.ok();
    assert!(out.stdout.trim_start().starts_with('{'), "{out}");
    let out = env
        .run(&["--print-plan", "--", "touch", "created-by-payload"])
        .output();
    out.ok();
    assert!(out.stdout.contains("/usr"), "{out}");
    assert!(!env.path("created-by-payload").exists(), "payload ran");
}

#[test]
fn verbose_traces_setup_to_stderr() {
    let env = TestEnv::new("verbose");
    let out = env.run(&["-v", "--", "true"]).output();
    out.ok();
    assert!(!out.stderr.trim().is_empty(), "-v printed nothing\n{out}");
    assert!(out.stdout.is_empty(), "trace went to stdout\n{out}");
}

// ------------------------------------------------------ nothing left behind

#[test]
fn nothing_left_after_sigkill_of_supervisor() {
    let env = TestEnv::new("sigkill");
    let marker = format!("1234.{}", std::process::id());
    let tmp_before = dir_entries_owned_by(Path::new("/tmp"), env.user.uid);
    let mut running = env
        .run(&[
            "--",
            "sh",
            "-c",
            &format!("sleep {marker} & sleep {marker}"),
        ])
        .spawn();
    let sleeping = |n: usize| {
        host_pids_with_cmdline(&format!("sleep {marker}"))
            .into_iter()
            .filter(|(_, c)| c == &format!("sleep {marker}"))
            .count()
            >= n
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !sleeping(2) {
        if Instant::now() > deadline {
            let out = running.wait(Duration::from_secs(1));
            panic!("payload never started\n{out}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    running.child.kill().expect("SIGKILL nook");
    let status = running.child.wait().expect("wait");
    assert!(status.code().is_none(), "nook was not killed: {status}");

    let deadline = Instant::now() + Duration::from_secs(3);
    let mut left = host_pids_with_cmdline(&format!("sleep {marker}"));
    while !left.is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        left = host_pids_with_cmdline(&format!("sleep {marker}"));
    }
    // Clean up survivors before failing, so they don't outlive the test.
    for (pid, _) in &left {
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", &pid.to_string()])
            .status();
    }
    assert!(
        left.is_empty(),
        "sandbox processes survived SIGKILL of the supervisor: {left:?}"
    );

    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leaked: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&env.dir_str()))
        .collect();
    assert!(leaked.is_empty(), "mounts left on the host: {leaked:?}");

    // Entries in /tmp owned by the test user that appeared and stay. Other
    // tests run in parallel, so give transient ones a moment to go.
    let mut new: Vec<String> = Vec::new();
    for _ in 0..3 {
        let after = dir_entries_owned_by(Path::new("/tmp"), env.user.uid);
        new = after
            .keys()
            .filter(|k| !tmp_before.contains_key(*k))
            .cloned()
            .collect();
        if new.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    assert!(new.is_empty(), "files left in /tmp: {new:?}");
}

#[test]
fn proc_and_dev_at_other_paths() {
    let env = TestEnv::new("proc-dev");
    let out = env
        .run(&[
            "--proc",
            "/p2",
            "--dev",
            "/d2",
            "--",
            "sh",
            "-c",
            "test -r /p2/1/status && echo proc; test -c /d2/null && echo null; \
             test -c /d2/zero && echo zero; test -c /d2/urandom && echo urandom; \
             test -d /d2/pts && echo pts; test -d /d2/shm && echo shm; \
             echo x > /d2/null && echo null-writable",
        ])
        .output();
    out.ok();
    for w in [
        "proc",
        "null",
        "zero",
        "urandom",
        "pts",
        "shm",
        "null-writable",
    ] {
        assert!(out.lines().contains(&w), "missing {w}\n{out}");
    }
}

#[test]
fn mount_targets_do_not_follow_symlinks_out_of_the_root() {
    // A target reached through a symlink must be resolved inside the new
    // root: nook must never create anything at the symlink's target on the
    // host. The host directory below is not visible in the sandbox ($HOME
    // is an empty tmpfs there), so anything appearing in it escaped.
    let mut env = TestEnv::new("symlink-escape");
    let escape = env
        .user
        .home
        .join(format!("nook-escape-{}", std::process::id()));
    env.mkdir(&escape);
    env.cleanup_later(escape.clone());
    let esc = escape.display().to_string();
    // 1. A symlink made by the plan itself.
    let out1 = env
        .run(&[
            "--symlink",
            &format!("{esc}:/lnk"),
            "--dir",
            "/lnk/made-by-dir",
            "--file",
            "/lnk/made-by-file:x",
            "--tmpfs",
            "/lnk/made-by-tmpfs",
            "--",
            "true",
        ])
        .output();
    // 2. A symlink that already sits in a host directory bound read-write.
    std::os::unix::fs::symlink(&escape, env.path("evil")).expect("symlink");
    let out2 = env
        .run(&[
            "--dir",
            &format!("{}/evil/made-by-dir2", env.dir_str()),
            "--file",
            &format!("{}/evil/made-by-file2:x", env.dir_str()),
            "--",
            "true",
        ])
        .output();
    let created: Vec<String> = fs::read_dir(&escape)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        created.is_empty(),
        "nook followed a symlink out of the new root and created {created:?} in {esc}\n{out1}\n{out2}"
    );
}

#[test]
fn payload_and_init_have_no_capabilities() {
    let env = TestEnv::new("caps");
    let out = env
        .run(&[
            "--uid",
            "0",
            "--",
            "sh",
            "-c",
            "grep -E '^(CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status; \
             echo @init; grep -E '^(CapPrm|CapEff|CapBnd|CapAmb):' /proc/1/status; echo @end",
        ])
        .output();
    out.ok();
    let payload = section(&out.stdout, "", "@init");
    for line in payload.lines().filter(|l| l.starts_with("Cap")) {
        assert!(
            line.ends_with("0000000000000000"),
            "payload keeps {line}\n{out}"
        );
    }
    assert!(
        payload.contains("NoNewPrivs:\t1"),
        "no_new_privs not set\n{out}"
    );
    let init = section(&out.stdout, "@init", "@end");
    assert_eq!(init.lines().count(), 4, "{out}");
    for line in init.lines() {
        assert!(
            line.ends_with("0000000000000000"),
            "init (pid 1) keeps {line}\n{out}"
        );
    }
}

#[test]
fn sandbox_root_is_read_only() {
    let env = TestEnv::new("root-ro");
    let out = env
        .run(&[
            "--",
            "sh",
            "-c",
            "e=$(touch /nook-x 2>&1); echo \"touch=$? $e\"",
        ])
        .output();
    out.ok();
    assert_ne!(step_rc(&out.stdout, "touch"), 0, "{out}");
    assert!(field(&out.stdout, "touch").contains(EROFS), "{out}");
}

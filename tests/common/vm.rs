//! The cgroup v2 test microVM: run a shell script as the test user (uid
//! 1001) inside a QEMU guest whose cgroup v2 hierarchy has controllers,
//! with a delegated subtree (see tests/vm/run.sh and tests/vm/guest.sh).
//!
//! The guest sees the host's filesystem read-only (as it was at boot: the
//! guest caches it), with tmpfs over /tmp, /var/tmp, /run, /dev/shm and
//! /home/nooktest; the binary under test is copied in and is `$NOOK` in
//! the script. Each call boots one VM (about 4 s, plus 3 s for
//! systemd_user): put many checks in one script. The guest's own console
//! (kernel messages such as OOM kills) is appended to the output with
//! VM_VERBOSE=1.
//!
//! - plain: the script runs in `/user.slice/u1001/test`, a leaf below
//!   `/user.slice/u1001`, which is delegated to uid 1001 (directory and the
//!   files in /sys/kernel/cgroup/delegate are the user's; its limits are
//!   root's) with `cpu io memory pids` enabled for its children.
//! - systemd_user: a `systemd --user` manager runs in the delegated
//!   `/user.slice/user-1001.slice/user@1001.service`; the script runs in the
//!   root-owned `/user.slice/user-1001.slice/session-1.scope` with
//!   XDG_RUNTIME_DIR=/run/user/1001, so only `systemd-run --user --scope -p
//!   Delegate=yes` gives it a delegated cgroup.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The harness script.
pub const RUN_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/run.sh");

/// What run.sh prints (and exits 125 with) when the VM itself failed.
const VM_ERROR: &str = "nook-vm: error:";

/// Why the VM cannot run on this host, if it cannot: the host packages
/// qemu-system-x86, linux-image-amd64, busybox-static and xz-utils.
pub fn vm_missing() -> Option<String> {
    let mut missing = Vec::new();
    if !super::which("qemu-system-x86_64") {
        missing.push("qemu-system-x86_64 (package qemu-system-x86)");
    }
    let kernel = std::fs::read_dir("/boot").ok().and_then(|rd| {
        rd.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-") && n.ends_with("-amd64"))
        })
    });
    if kernel.is_none_or(|k| std::fs::File::open(k).is_err()) {
        missing.push("a readable /boot/vmlinuz-*-amd64 (package linux-image-amd64)");
    }
    if !Path::new("/bin/busybox").exists() {
        missing.push("/bin/busybox (package busybox-static)");
    }
    if !super::which("xz") {
        missing.push("xz (package xz-utils)");
    }
    (!missing.is_empty()).then(|| {
        format!(
            "the cgroup v2 test VM needs {} (tests/vm/run.sh)",
            missing.join(", ")
        )
    })
}

/// [`super::require`] for the VM: true when it can run; otherwise fails the
/// test with the reason (or prints SKIP and returns false when skipping is
/// allowed).
pub fn require_vm() -> bool {
    match vm_missing() {
        None => true,
        Some(reason) => super::require(false, &reason),
    }
}

static SCRIPTS: AtomicUsize = AtomicUsize::new(0);

/// Run `script` with `sh` in the VM as uid 1001 (see the module docs for
/// the two setups), with `$NOOK` set to the binary under test, and return
/// its exit code and its stdout and stderr,
/// interleaved as they came. Fails the test if the VM did not boot, set up
/// or finish in time (VM_TIMEOUT, 300 s); the script failing is not a VM
/// failure. Call [`require_vm`] first.
pub fn run_in_vm(script: &str, systemd_user: bool) -> (i32, String) {
    let n = SCRIPTS.fetch_add(1, Ordering::SeqCst);
    let file: PathBuf =
        std::env::temp_dir().join(format!("nook-vm-script-{}-{n}.sh", std::process::id()));
    // $NOOK is the binary under test, as in [`super::TestEnv::sh`], copied
    // into the guest (run.sh's VM_BIN): the build may live under /tmp or a
    // home directory, which the guest covers.
    let text = format!("NOOK=/run/nook-vm/nook\nexport NOOK\n{script}");
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));

    let mut cmd = Command::new("bash");
    cmd.arg(RUN_SH).env("VM_BIN", super::NOOK);
    if systemd_user {
        cmd.arg("--systemd-user");
    }
    cmd.arg(&file);
    // One pipe for both streams keeps their order.
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone().expect("dup pipe"))
        .stderr(writer);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn bash {RUN_SH}: {e}"));
    // Drop the parent's copies of the write end (moved into `cmd`) so the
    // reader sees EOF when run.sh and QEMU are gone.
    drop(cmd);
    let collector = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = reader.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });

    // run.sh has its own VM_TIMEOUT; this deadline is only a backstop.
    let vm_timeout: u64 = std::env::var("VM_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let deadline = started + Duration::from_secs(vm_timeout + 60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for run.sh") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&file);
            panic!(
                "tests/vm/run.sh still running after {:?}; killed (script: {})",
                started.elapsed(),
                file.display()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    let output = collector.join().expect("output collector");
    let _ = std::fs::remove_file(&file);
    let code = status
        .code()
        .unwrap_or_else(|| panic!("tests/vm/run.sh killed by a signal ({status})\n{output}"));
    if code == 125 && output.contains(VM_ERROR) {
        panic!("the test VM failed (tests/vm/run.sh exit 125):\n{output}");
    }
    eprintln!(
        "vm: script ran in {:.1} s (boot included), exit {code}",
        started.elapsed().as_secs_f64()
    );
    (code, output)
}

/// The value of the first `key=value` line in `output`, if any.
pub fn vm_field<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::trim_end)
    })
}

//! Process-state tests (STYLE.md §11): the real seccomp program compiled by
//! `seccomp::Policy` and the real ruleset built by `enforce::enforce_landlock`,
//! installed the way the payload installs them, then probed with the
//! calls they must refuse. Each probe stands beside its control: the same
//! call in the same process before the layer went on, which must get a
//! different answer, so every test can fail.
//!
//! Never in the test runner's own process: each test runs itself again
//! (`CURRENT_EXE NAME --exact`) with `NOOK_PROBE_CHILD=NAME:VARIANT`. In
//! that child the test's body installs the layer on its own thread (no
//! TSYNC for seccomp, and Landlock's restrict_self is per thread: the
//! harness's other threads stay free), prints one `[probe] KEY VALUE` line
//! per probe and _exits; the parent reads the lines and the exit status.
//! The probes themselves are `sys::Probe`: fixed arguments, no pointers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use super::enforce;
use crate::plan::{landlock, seccomp};
use crate::sys::{self, Probe};

const CHILD: &str = "NOOK_PROBE_CHILD";
/// What starts a child's report line.
const MARK: &str = "[probe] ";
/// A directory the parent prepared, for the Landlock probes.
const DIR: &str = "NOOK_PROBE_DIR";

/// What a child reported.
struct Outcome {
    lines: BTreeMap<String, String>,
    status: ExitStatus,
    output: String,
}

impl Outcome {
    fn get(&self, key: &str) -> &str {
        self.lines
            .get(key)
            .unwrap_or_else(|| panic!("no probe {key} in the child's output:\n{}", self.output))
    }
}

/// In the child re-executed for `test`: the variant it is to run.
fn as_child(test: &str) -> Option<String> {
    let v = std::env::var(CHILD).ok()?;
    let (t, variant) = v.split_once(':')?;
    (t == test).then(|| variant.to_string())
}

/// Run `test` again in a child of this test binary, as `variant`.
fn spawn(test: &str, variant: &str, env: &[(&str, &Path)]) -> Outcome {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([
        &format!("{module}::{test}"),
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, format!("{test}:{variant}"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("re-executing the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        // The first line may follow the harness's "test NAME ... ".
        .filter_map(|l| l.split_once(MARK).map(|(_, rest)| rest))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Outcome {
        lines,
        status: out.status,
        output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// In a child: report one probe (a line at a time, so that what was said
/// before a kill survives it).
fn say(key: &str, value: impl std::fmt::Display) {
    println!("{MARK}{key} {value}");
}

/// A call's answer: `ok` or the errno's name.
fn answer(r: nix::Result<i64>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

/// In a child: done; skip the harness's own ending, which would run under
/// the layer.
fn finish() -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    sys::exit_now(0)
}

/// Install a policy's programs as the payload does: no_new_privs, then
/// every program in order.
fn install(policy: &seccomp::Policy) {
    let progs = policy.compile().expect("the policy compiles");
    rustix::thread::set_no_new_privs(true).expect("no_new_privs");
    enforce::install_seccomp(&progs).expect("installing the filter");
    say("installed", "yes");
}

/// A host feature a test needs. Missing, the test fails, unless
/// NOOK_TEST_ALLOW_SKIP=1 (and not NOOK_TEST_STRICT=1), which prints SKIP
/// and skips it: the rule of tests/common, which this crate can't import.
fn require(feature: bool, reason: &str) -> bool {
    let is_one = |k| std::env::var(k).is_ok_and(|v| v == "1");
    if feature {
        return true;
    }
    if is_one("NOOK_TEST_STRICT") || !is_one("NOOK_TEST_ALLOW_SKIP") {
        panic!("required host feature missing: {reason} (NOOK_TEST_ALLOW_SKIP=1 skips instead)");
    }
    println!("SKIP: {reason}");
    false
}

/// The calls probed before and after a filter, by name.
fn probes(devnull: i32) -> Vec<(&'static str, Probe)> {
    let v = vec![
        ("keyctl", Probe::Keyctl),
        ("bpf", Probe::Bpf),
        ("ptrace", Probe::Ptrace),
        ("io_uring_setup", Probe::IoUringSetup),
        ("mount", Probe::Mount),
        ("clone3", Probe::Clone3),
        ("clone_newuser", Probe::CloneNewUser),
        ("unshare_newuser", Probe::UnshareNewUser),
        ("personality", Probe::Personality),
        (
            "tiocsti",
            Probe::Tiocsti {
                fd: devnull,
                high: false,
            },
        ),
        (
            "tiocsti_high",
            Probe::Tiocsti {
                fd: devnull,
                high: true,
            },
        ),
    ];
    #[cfg(target_arch = "x86_64")]
    let v = [v, vec![("x32_getpid", Probe::X32Getpid)]].concat();
    v
}

/// In a child: every probe without the filter (`before.`), then with the
/// policy installed (`after.`).
fn before_and_after(policy: &seccomp::Policy) -> ! {
    let devnull = std::fs::File::open("/dev/null").expect("/dev/null");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&devnull);
    for (name, p) in probes(fd) {
        say(&format!("before.{name}"), answer(p.run()));
    }
    install(policy);
    for (name, p) in probes(fd) {
        say(&format!("after.{name}"), answer(p.run()));
    }
    // An ordinary call still works.
    say(
        "after.stat",
        match std::fs::metadata("/") {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        },
    );
    finish()
}

/// `after` must be `want` and `before` must not: the filter made the
/// difference.
fn refused(out: &Outcome, name: &str, want: &str) {
    let (before, after) = (
        out.get(&format!("before.{name}")),
        out.get(&format!("after.{name}")),
    );
    assert_eq!(after, want, "{name} under the filter:\n{}", out.output);
    assert_ne!(before, want, "{name} without the filter:\n{}", out.output);
}

/// The answer without the filter reached the kernel either way.
fn untouched(out: &Outcome, name: &str) {
    let (before, after) = (
        out.get(&format!("before.{name}")),
        out.get(&format!("after.{name}")),
    );
    assert_eq!(after, before, "{name} under the filter:\n{}", out.output);
}

#[test]
fn the_default_filter_refuses_the_attack_surface() {
    const T: &str = "the_default_filter_refuses_the_attack_surface";
    if as_child(T).is_some() {
        before_and_after(&seccomp::Policy::new(
            seccomp::Mode::Default,
            &[],
            &[],
            false,
        ));
    }
    let out = spawn(T, "on", &[]);
    assert!(out.status.success(), "{}", out.output);
    for call in [
        "keyctl",
        "bpf",
        "io_uring_setup",
        "mount",
        "clone_newuser",
        "unshare_newuser",
        "personality",
        "tiocsti",
        "tiocsti_high",
    ] {
        refused(&out, call, "EPERM");
    }
    // x32 numbers (bit 30 set) get EPERM from the prefilter; without it
    // the kernel answers the x32 getpid, or ENOSYS when it has no x32.
    #[cfg(target_arch = "x86_64")]
    refused(&out, "x32_getpid", "EPERM");
    // clone3 gets ENOSYS, so that libc falls back to clone, whose flags
    // the filter can see.
    refused(&out, "clone3", "ENOSYS");
    // ptrace is not on the default list: it reaches the kernel (ESRCH,
    // there is no process 0).
    untouched(&out, "ptrace");
    assert_eq!(out.get("after.stat"), "ok");
}

#[test]
fn allowed_user_namespaces_pass_the_default_filter() {
    const T: &str = "allowed_user_namespaces_pass_the_default_filter";
    if as_child(T).is_some() {
        before_and_after(&seccomp::Policy::new(
            seccomp::Mode::Default,
            &[],
            &[],
            true,
        ));
    }
    let out = spawn(T, "on", &[]);
    assert!(out.status.success(), "{}", out.output);
    untouched(&out, "clone_newuser");
    untouched(&out, "unshare_newuser");
    assert_eq!(out.get("after.clone_newuser"), "ok");
    // The rest of the list still holds.
    refused(&out, "keyctl", "EPERM");
}

#[test]
fn a_profile_can_add_ptrace_to_the_default_filter() {
    const T: &str = "a_profile_can_add_ptrace_to_the_default_filter";
    if as_child(T).is_some() {
        before_and_after(&seccomp::Policy::new(
            seccomp::Mode::Default,
            &[],
            &["ptrace".to_string()],
            false,
        ));
    }
    let out = spawn(T, "on", &[]);
    assert!(out.status.success(), "{}", out.output);
    refused(&out, "ptrace", "EPERM");
}

#[test]
fn the_strict_filter_refuses_what_it_does_not_list() {
    const T: &str = "the_strict_filter_refuses_what_it_does_not_list";
    if as_child(T).is_some() {
        before_and_after(&seccomp::Policy::new(
            seccomp::Mode::Strict,
            &[],
            &[],
            false,
        ));
    }
    let out = spawn(T, "on", &[]);
    assert!(out.status.success(), "{}", out.output);
    for call in [
        "keyctl",
        "bpf",
        "ptrace",
        "io_uring_setup",
        "mount",
        "clone_newuser",
        "unshare_newuser",
        "personality",
        "tiocsti",
        "tiocsti_high",
    ] {
        refused(&out, call, "EPERM");
    }
    #[cfg(target_arch = "x86_64")]
    refused(&out, "x32_getpid", "EPERM");
    refused(&out, "clone3", "ENOSYS");
    // What it lists still runs: the lines above were written under it.
    assert_eq!(out.get("after.stat"), "ok");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_calls_kill_the_process() {
    use std::os::unix::process::ExitStatusExt;
    const T: &str = "i386_calls_kill_the_process";
    if let Some(variant) = as_child(T) {
        if variant == "on" {
            install(&seccomp::Policy::new(
                seccomp::Mode::Default,
                &[],
                &[],
                false,
            ));
        }
        say("i386_getpid", answer(Probe::I386Getpid.run()));
        finish();
    }
    // Control: without the filter, `int 0x80` reaches the kernel's i386
    // entry and returns.
    let off = spawn(T, "off", &[]);
    if !require(
        off.status.success(),
        "i386 emulation (int 0x80 from a 64-bit process)",
    ) {
        return;
    }
    assert_eq!(off.get("i386_getpid"), "ok", "{}", off.output);
    // With it, the main filter's architecture check kills the process
    // (SECCOMP_RET_KILL_PROCESS: SIGSYS) before the call returns.
    let on = spawn(T, "on", &[]);
    assert_eq!(on.get("installed"), "yes", "{}", on.output);
    assert_eq!(on.status.signal(), Some(libc::SIGSYS), "{}", on.output);
    assert!(!on.lines.contains_key("i386_getpid"), "{}", on.output);
}

#[test]
fn a_failed_install_keeps_the_kernels_errno() {
    const T: &str = "a_failed_install_keeps_the_kernels_errno";
    if as_child(T).is_some() {
        // A jump past the end of the program: the kernel's checker refuses
        // it with EINVAL.
        let bad = vec![seccompiler::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JA) as u16,
            jt: 0,
            jf: 0,
            k: 5,
        }];
        match enforce::install_seccomp(&[bad]) {
            Ok(()) => say("install", "ok"),
            Err(e) => {
                say("install", format!("{:?}", e.errno));
                say("message", e.message.replace(' ', "_"));
            }
        }
        finish();
    }
    let out = spawn(T, "bad", &[]);
    assert_eq!(out.get("install"), "EINVAL", "{}", out.output);
    assert!(
        out.get("message").contains("Invalid_argument"),
        "{}",
        out.output
    );
}

/// A fresh directory tree for the Landlock probes: `rw/`, `ro/` and
/// `outside/`, each with a file `f`.
fn landlock_tree() -> PathBuf {
    let base = std::env::temp_dir().join(format!("nook-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    for d in ["rw", "ro", "outside"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
        std::fs::write(base.join(d).join("f"), "x").unwrap();
    }
    base
}

fn fs_answer<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.raw_os_error().map_or_else(
            || e.to_string(),
            |n| format!("{:?}", nix::errno::Errno::from_raw(n)),
        ),
    }
}

/// In a child: reads and writes in each directory.
fn fs_probes(phase: &str, base: &Path) {
    use std::fs::OpenOptions;
    for d in ["rw", "ro", "outside"] {
        let f = base.join(d).join("f");
        say(&format!("{phase}.read.{d}"), fs_answer(std::fs::read(&f)));
        say(
            &format!("{phase}.write.{d}"),
            fs_answer(OpenOptions::new().append(true).open(&f)),
        );
        say(
            &format!("{phase}.create.{d}"),
            fs_answer(std::fs::write(base.join(d).join(phase), "y")),
        );
    }
    say(
        &format!("{phase}.list.root"),
        fs_answer(std::fs::read_dir("/")),
    );
    say(
        &format!("{phase}.read.etc"),
        fs_answer(std::fs::read("/etc/passwd")),
    );
}

#[test]
fn landlock_confines_reads_and_writes_to_the_rules() {
    const T: &str = "landlock_confines_reads_and_writes_to_the_rules";
    if as_child(T).is_some() {
        let base = PathBuf::from(std::env::var_os(DIR).expect("NOOK_PROBE_DIR"));
        fs_probes("before", &base);
        let bind = |d: &str, read_only| crate::spec::Mount::Bind {
            src: base.join(d),
            dst: base.join(d),
            read_only,
            optional: false,
        };
        let rules = landlock::rules(
            landlock::Mode::Required,
            &[bind("rw", false), bind("ro", true)],
        );
        match enforce::enforce_landlock(&rules) {
            Ok(o) => say("enforced", o.fully),
            Err(e) => say("enforced", format!("{:?}", e.errno)),
        }
        fs_probes("after", &base);
        finish();
    }
    if !require(
        enforce::landlock_abi() >= 6,
        "Landlock ABI 6 or later (CONFIG_SECURITY_LANDLOCK, landlock in lsm=)",
    ) {
        return;
    }
    let base = landlock_tree();
    let out = spawn(T, "on", &[(DIR, &base)]);
    let _ = std::fs::remove_dir_all(&base);
    assert!(out.status.success(), "{}", out.output);
    assert_eq!(out.get("enforced"), "true", "{}", out.output);
    let both = |key: &str| {
        (
            out.get(&format!("before.{key}")).to_string(),
            out.get(&format!("after.{key}")).to_string(),
        )
    };
    let ok = || ("ok".to_string(), "ok".to_string());
    let denied = || ("ok".to_string(), "EACCES".to_string());
    // Inside the rules: read-write, and read-only.
    assert_eq!(both("read.rw"), ok(), "{}", out.output);
    assert_eq!(both("write.rw"), ok(), "{}", out.output);
    assert_eq!(both("create.rw"), ok(), "{}", out.output);
    assert_eq!(both("read.ro"), ok(), "{}", out.output);
    assert_eq!(both("write.ro"), denied(), "{}", out.output);
    assert_eq!(both("create.ro"), denied(), "{}", out.output);
    // Outside them: nothing, though the file modes allow it (and the
    // child may be root).
    assert_eq!(both("read.outside"), denied(), "{}", out.output);
    assert_eq!(both("write.outside"), denied(), "{}", out.output);
    assert_eq!(both("create.outside"), denied(), "{}", out.output);
    assert_eq!(both("read.etc"), denied(), "{}", out.output);
    // The root may be listed, nothing more.
    assert_eq!(both("list.root"), ok(), "{}", out.output);
}

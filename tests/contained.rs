//! nook inside a rootless podman container: the real binary, bind-mounted
//! into a Debian root filesystem, started by the unprivileged test user's
//! own `podman run`, and checked from inside.
//!
//! The podman command line, and why each part is there:
//! - `--runtime runc`: Debian 12's crun refuses this machine's hybrid
//!   cgroups, even with `--cgroups=disabled`.
//! - `--rootfs DIR:O`: no image registry is reachable; `.ci/setup` builds
//!   DIR with mmdebstrap. `:O` puts an overlay on it, so podman's mount
//!   points (/etc/hosts...) and the container's writes go to a throw-away
//!   upper layer, never into the shared directory.
//! - `-v $NOOK:/usr/local/bin/nook:ro`: the binary under test (static, so
//!   it needs nothing from the root filesystem).
//! - `--network=none`: nothing here needs a network; it spares slirp4netns.
//! - `--log-level=error`: keeps podman's '"/" is not a shared mount'
//!   warning off stderr, which is then nook's alone.
//!
//! Nothing else: podman's default seccomp profile lets clone and unshare
//! make user namespaces, and nook needs no capability, device or
//! `--privileged`. What podman's defaults cost nook is one layer, said in
//! one warning: its covered /proc paths (/proc/kcore, /proc/keys...) make
//! the kernel refuse a fresh procfs, so the sandbox gets the container's
//! /proc. `--security-opt unmask=...` gives nook its own /proc back.
//! (And podman's profile refuses sethostname without CAP_SYS_ADMIN, so
//! `--hostname` is refused inside.)

mod common;

use common::{Output, TestEnv, require, shell_quote, subid_lines, which};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Built by `.ci/setup` (tests/common/rootfs.sh).
const ROOTFS: &str = "/var/cache/nook-tests/podman-rootfs";

/// A podman run takes 0.2 s here; the first one also makes the user's
/// podman storage.
const PODMAN_TIMEOUT: Duration = Duration::from_secs(120);

const PROC_WARNING: &str = "nook: warning: a new /proc was refused (nook runs inside another sandbox or container whose /proc has covered parts): the sandbox has the parent's /proc, which lists the parent's processes (--strict makes this an error)";

/// Prints which /proc the shell sees: its own pid namespace's (the two
/// numbers equal) or the container's (`read` is a builtin, so
/// /proc/self is the shell itself, as the mounted procfs numbers it).
const WHICH_PROC: &str = r#"read -r self _ </proc/self/stat; echo "pid=$$ proc-self=$self""#;

/// From [`WHICH_PROC`]'s line: whether the /proc is the sandbox's own.
fn own_proc(line: &str) -> Option<bool> {
    let (pid, self_pid) = line.strip_prefix("pid=")?.split_once(" proc-self=")?;
    Some(pid == self_pid)
}

/// The test user's rootless podman, running scripts in containers of
/// the root filesystem with the binary under test.
struct Podman<'a> {
    env: &'a TestEnv,
    /// Podman's run root: `--rm` leaves each container's `:O` upper
    /// layer there (podman 4.3), which [`Podman::run`] removes.
    run_root: PathBuf,
}

impl<'a> Podman<'a> {
    /// None (after [`require`]'s message) when podman or the root
    /// filesystem is missing.
    fn new(env: &'a TestEnv) -> Option<Podman<'a>> {
        // Its files belong to whom the user's containers see as root.
        let owned =
            fs::metadata(Path::new(ROOTFS).join("bin/sh")).is_ok_and(|m| m.uid() == env.user.uid);
        if !require(
            which("podman") && which("runc") && owned,
            &format!(
                "rootless podman with runc, and the root filesystem {ROOTFS} made for {}",
                env.user.name
            ),
        ) {
            return None;
        }
        let out = env
            .sh("podman --log-level=error info --format '{{.Store.RunRoot}}'")
            .timeout(PODMAN_TIMEOUT)
            .output();
        out.ok();
        Some(Podman {
            env,
            run_root: PathBuf::from(out.stdout.trim()),
        })
    }

    /// Run `script` with `sh -c` in a container, with podman's `options`
    /// added to the ones every run needs.
    fn run(&self, options: &[&str], script: &str) -> Output {
        let cidfile = self.env.path("cid");
        let _ = fs::remove_file(&cidfile);
        let command = format!(
            "podman --log-level=error --runtime runc run --rm --network=none {} \
             --cidfile {} -v \"$NOOK\":/usr/local/bin/nook:ro --rootfs {ROOTFS}:O sh -c {}",
            options
                .iter()
                .map(|o| shell_quote(o))
                .collect::<Vec<_>>()
                .join(" "),
            shell_quote(&cidfile.display().to_string()),
            shell_quote(script)
        );
        let out = self.env.sh(&command).timeout(PODMAN_TIMEOUT).output();
        if let Ok(id) = fs::read_to_string(&cidfile)
            && !id.trim().is_empty()
        {
            let _ = fs::remove_dir_all(self.run_root.join("overlay-containers").join(id.trim()));
        }
        out
    }
}

/// A uid map's lines with their columns' padding squeezed.
fn squeezed(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Podman's defaults: nook runs, with the view, identity and restrictions
/// of its own sandbox, the exit status passed through both, and one
/// warning for the one weaker layer (the container's /proc), which
/// `--strict` refuses.
#[test]
fn nook_runs_in_a_default_rootless_podman_container() {
    let env = TestEnv::new("contained");
    let Some(podman) = Podman::new(&env) else {
        return;
    };
    // Podman maps the user's subordinate range (one line, from .ci/setup)
    // after its root.
    let range = subid_lines("/etc/subuid", &env.user);
    let (start, count) = range
        .first()
        .and_then(|l| l.split_once(':')?.1.split_once(':'))
        .unwrap_or_else(|| panic!("no /etc/subuid range for {} (.ci/setup)", env.user.name));

    // The container's own view first, then nook's from inside it.
    let inner = format!(
        "cat /proc/self/uid_map; echo \"tmp=[$(ls -A /tmp)]\"; \
         grep -E '^(NoNewPrivs|Seccomp_filters|CapEff):' /proc/self/status; \
         touch /usr/probe 2>&1; {WHICH_PROC}; exit 7"
    );
    let script = format!(
        "cat /proc/self/uid_map; touch /tmp/from-the-container /usr/probe && echo wrote; \
         grep -E '^(NoNewPrivs|Seccomp_filters):' /proc/self/status; \
         echo ---; exec nook run -- sh -c {}",
        shell_quote(&inner)
    );
    let out = podman.run(&[], &script);
    out.expect_code(7);
    let lines = out.lines();
    let split = lines.iter().position(|l| *l == "---").expect("---");
    let (outside, inside) = (&lines[..split], &lines[split + 1..]);
    // The container: the test user is root, its subordinate ids the rest;
    // podman's filter, and no no_new_privs.
    assert_eq!(
        squeezed(&outside[..2]),
        [
            format!("0 {} 1", env.user.uid),
            format!("1 {start} {count}")
        ],
        "{out}"
    );
    assert_eq!(
        outside[2..],
        ["wrote", "NoNewPrivs:\t0", "Seccomp_filters:\t1"],
        "{out}"
    );
    // The sandbox: the container's root maps to itself (nook keeps the
    // user's own uid), an empty private /tmp, no capabilities,
    // no_new_privs, nook's filter on podman's, /usr read-only; and the
    // container's /proc, as the warning says.
    assert_eq!(
        squeezed(&inside[..1]),
        ["0 0 1"],
        "nook's uid map inside the container\n{out}"
    );
    assert_eq!(
        inside[1..inside.len() - 1],
        [
            "tmp=[]",
            "CapEff:\t0000000000000000",
            "NoNewPrivs:\t1",
            "Seccomp_filters:\t2",
            "touch: cannot touch '/usr/probe': Read-only file system",
        ],
        "{out}"
    );
    assert_eq!(own_proc(inside[inside.len() - 1]), Some(false), "{out}");
    assert_eq!(out.stderr, format!("{PROC_WARNING}\n"), "{out}");

    // --strict: the weaker /proc is an error, and nothing runs.
    let out = podman.run(&[], "nook run --strict -- echo ran");
    out.expect_code(125);
    assert_eq!(out.stdout, "", "{out}");
    assert!(
        out.stderr.starts_with("nook: error: ")
            && out.stderr.lines().all(|l| l.starts_with("nook: ")),
        "{out}"
    );

    // podman's profile refuses sethostname without CAP_SYS_ADMIN: a
    // hostname asked for is refused, in one line naming the step.
    let out = podman.run(&[], "nook run --hostname inner -- hostname");
    out.expect_code(125);
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(
        out.stderr.lines().next(),
        Some("nook: error: setting hostname inner: EPERM (Operation not permitted)"),
        "{out}"
    );

    // nook doctor knows where it is.
    let out = podman.run(&[], "nook doctor");
    out.ok();
    assert!(
        out.lines().iter().any(|l| l
            .strip_prefix("degraded where nook runs: ")
            .is_some_and(|rest| rest.starts_with(&format!(
                "in a podman container, in a user namespace (uid map 0 {} 1, 1 {start} {count}), under a seccomp filter it inherited; a new /proc is refused",
                env.user.uid
            )))),
        "{out}"
    );
}

/// With podman's covered /proc paths uncovered (what `nook doctor`
/// advises, and the narrower `/proc/*`), nook mounts a /proc of its own:
/// no warning, and `--strict` runs.
#[test]
fn uncovered_proc_gives_the_sandbox_its_own_proc() {
    let env = TestEnv::new("contained-unmask");
    let Some(podman) = Podman::new(&env) else {
        return;
    };
    let inner = format!("{WHICH_PROC}; cat /proc/sys/user/max_user_namespaces");
    for unmask in ["--security-opt=unmask=ALL", "--security-opt=unmask=/proc/*"] {
        let script = format!("exec nook run --strict -- sh -c {}", shell_quote(&inner));
        let out = podman.run(&[unmask], &script);
        out.ok();
        // Its own pid namespace's /proc, where the nested-namespace limit
        // of nook's user namespace is 0.
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{unmask}\n{out}");
        assert_eq!(own_proc(lines[0]), Some(true), "{unmask}\n{out}");
        assert_eq!(lines[1], "0", "{unmask}\n{out}");
        assert_eq!(out.stderr, "", "{unmask}\n{out}");
    }
}

/// A container whose seccomp profile refuses user namespaces (as Docker's
/// default profile does, with EPERM): nook can't start, says why in one
/// error line and names podman's fix in one hint; with the fix it runs.
#[test]
fn a_filter_refusing_user_namespaces_is_named_with_its_fix() {
    let env = TestEnv::new("contained-seccomp");
    let Some(podman) = Podman::new(&env) else {
        return;
    };
    // clone3 gets ENOSYS, so that clone, whose flags a filter can read,
    // is used instead (what Docker's profile does).
    let profile = env.path("no-userns.json");
    env.write(
        &profile,
        r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
    {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
     "args": [{"index": 0, "value": 268435456, "valueTwo": 268435456, "op": "SCMP_CMP_MASKED_EQ"}]},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
  ]
}
"#,
    );
    let refusing = format!("--security-opt=seccomp={}", profile.display());
    let out = podman.run(&[&refusing], "nook run -- echo ran");
    out.expect_code(125);
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(
        out.stderr.lines().collect::<Vec<_>>(),
        [
            "nook: error: creating the namespaces (clone CLONE_NEWUSER): EPERM (Operation not permitted)",
            "nook: hint: a seccomp filter nook inherited refuses user namespaces; start the outer sandbox with nested user namespaces allowed (nook: --allow-userns; bubblewrap: without --disable-userns); for podman or docker: --security-opt seccomp=unconfined, or a profile that allows clone and unshare with CLONE_NEWUSER",
        ],
        "{out}"
    );
    // The fix the hint names.
    let out = podman.run(
        &["--security-opt=seccomp=unconfined"],
        "nook run -- echo ran",
    );
    out.ok();
    assert_eq!(out.stdout, "ran\n", "{out}");
    assert_eq!(out.stderr, format!("{PROC_WARNING}\n"), "{out}");
}

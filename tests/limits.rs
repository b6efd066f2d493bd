//! Limits that work on any host, through the real binary as the
//! unprivileged test user: rlimits, --timeout, the disk quota, --stats
//! from rusage, and a clear refusal of cgroup limits where no delegated
//! cgroup v2 exists (this host: its controllers are held by cgroup v1).
//! The cgroup limits themselves are proven in a microVM: tests/cgroup.rs.

mod common;

use std::time::{Duration, Instant};

use common::{TestEnv, host_pids_with_cmdline};

#[test]
fn rlimits_hold_and_cannot_be_raised_inside() {
    let env = TestEnv::new("rlimit");
    let script = "ulimit -Sn; ulimit -Hn; ulimit -n 4096 2>/dev/null && echo raised || echo stuck; \
                  python3 -c 'import os\nfs=[]\ntry:\n  [fs.append(os.open(\"/dev/null\", 0)) for _ in range(100)]\n  print(\"opened 100\")\nexcept OSError as e:\n  print(\"EMFILE\" if e.errno == 24 else e)'";
    let out = env
        .run(&["--rlimit", "nofile=32", "--", "sh", "-c", script])
        .output();
    out.ok();
    assert_eq!(out.lines(), ["32", "32", "stuck", "EMFILE"], "{out}");
    // The same attack without the limit.
    let out = env.run(&["--", "sh", "-c", script]).output();
    out.ok();
    assert_eq!(out.lines().last(), Some(&"opened 100"), "{out}");
}

#[test]
fn fsize_limit_stops_a_large_write() {
    let env = TestEnv::new("rlimit-fsize");
    let script =
        "dd if=/dev/zero of=/tmp/big bs=64k count=64 2>/dev/null; echo status=$?; wc -c < /tmp/big";
    let out = env
        .run(&["--rlimit", "fsize=1m", "--", "sh", "-c", script])
        .output();
    out.ok();
    assert_eq!(
        out.lines(),
        ["status=153", "1048576"],
        "SIGXFSZ at 1 MiB: {out}"
    );
    let out = env.run(&["--", "sh", "-c", script]).output();
    assert_eq!(out.lines(), ["status=0", "4194304"], "{out}");
}

#[test]
fn rlimit_above_the_hard_limit_is_refused_clearly() {
    let env = TestEnv::new("rlimit-hard");
    let out = env
        .run(&["--rlimit", "nofile=unlimited", "--", "true"])
        .output();
    out.expect_code(125);
    assert!(
        out.stderr.contains("setting rlimit nofile=")
            && out
                .stderr
                .contains("an unprivileged user can only lower it"),
        "{out}"
    );
}

#[test]
fn timeout_kills_the_whole_sandbox_and_exits_124() {
    let env = TestEnv::new("timeout");
    let start = Instant::now();
    // A background child in its own session, which would survive a plain
    // kill of the command: the pid namespace takes it down too.
    let out = env
        .run(&[
            "--timeout",
            "0.5s",
            "--",
            "sh",
            "-c",
            "setsid sleep 31.25 & sleep 31.5",
        ])
        .output();
    out.expect_code(124);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(host_pids_with_cmdline("sleep 31.25").is_empty());
    assert!(host_pids_with_cmdline("sleep 31.5").is_empty());
    // A command that ends in time keeps its own status.
    env.run(&["--timeout", "10s", "--", "sh", "-c", "exit 3"])
        .output()
        .expect_code(3);
}

#[test]
fn disk_quota_caps_every_scratch_area_together() {
    let env = TestEnv::new("quota");
    // The work directory is shared read-write in the default view; run
    // from a directory that is not, so /tmp and $HOME are scratch areas.
    let script = "cd /; dd if=/dev/zero of=/tmp/a bs=1M count=5 2>/dev/null; echo tmp=$?; \
                  dd if=/dev/zero of=$HOME/b bs=1M count=5 2>/dev/null; echo home=$?; \
                  dd if=/dev/zero of=/dev/shm/c bs=1M count=1 2>/dev/null; echo shm=$?; \
                  df -k /tmp | tail -n1 | awk '{print \"size=\" $2}'";
    let out = env
        .run(&[
            "--share-cwd",
            "no",
            "--disk-quota",
            "8m",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output();
    out.ok();
    assert_eq!(
        out.lines(),
        ["tmp=0", "home=1", "shm=1", "size=8192"],
        "the second write hits ENOSPC: {out}"
    );
    // Without the quota the same writes fit.
    let out = env
        .run(&["--share-cwd", "no", "--", "sh", "-c", script])
        .output();
    assert_eq!(&out.lines()[..3], ["tmp=0", "home=0", "shm=0"], "{out}");
}

#[test]
fn stats_report_what_the_sandbox_used() {
    let env = TestEnv::new("stats");
    let out = env
        .run(&[
            "--stats=json",
            "--",
            "python3",
            "-c",
            "import time\nb = bytearray(64 << 20)\nt = time.time()\nwhile time.time() - t < 0.3: pass",
        ])
        .output();
    out.ok();
    let line = out.stderr.lines().last().unwrap_or_default();
    let s: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["source"], "rusage", "no cgroup on this host: {s}");
    let cpu = s["cpu_seconds"].as_f64().unwrap();
    assert!((0.25..5.0).contains(&cpu), "{s}");
    let wall = s["wall_seconds"].as_f64().unwrap();
    assert!(wall >= 0.3 && wall >= cpu * 0.9, "{s}");
    let mem = s["memory_peak_bytes"].as_u64().unwrap();
    assert!((64 << 20..256 << 20).contains(&mem), "{s}");
    // Human form, on a timeout.
    let out = env
        .run(&["--stats", "--timeout", "0.2", "--", "sleep", "5"])
        .output();
    out.expect_code(124);
    assert!(out.stderr.contains("nook: stats (rusage):"), "{out}");
    assert!(out.stderr.contains("exit         124 (timed out)"), "{out}");
}

#[test]
fn cgroup_limits_without_delegation_are_refused_with_the_reason() {
    let env = TestEnv::new("nocgroup");
    let out = env
        .run(&["--memory", "50m", "--pids", "10", "--", "true"])
        .output();
    out.expect_code(125);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("nook: error: setting resource limits: "),
        "{out}"
    );
    assert!(out.stderr.contains("nook: hint: "), "{out}");
    // No limits asked: no cgroup needed, nothing said.
    let out = env.run(&["--", "true"]).output();
    out.ok();
    assert_eq!(out.stderr, "");
}

#[test]
fn bad_limit_values_name_the_flag_or_the_file_line() {
    let env = TestEnv::new("limits-bad");
    for (args, needle) in [
        (vec!["--memory", "lots"], "--memory 'lots': expected a size"),
        (vec!["--cpus", "0"], "--cpus '0': expected a number of CPUs"),
        (vec!["--rlimit", "files=1"], "'files' is not an rlimit"),
        (
            vec!["--timeout", "soon"],
            "--timeout 'soon': expected a duration",
        ),
        (vec!["--io-max", "8:0:speed=1"], "--io-max '8:0:speed=1'"),
        (vec!["--stats=xml"], "--stats 'xml': expected human or json"),
    ] {
        let mut all = args.clone();
        all.extend(["--", "true"]);
        let out = env.run(&all).output();
        out.expect_code(125);
        assert!(out.stderr.contains(needle), "{args:?}: {out}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out}");
    }
    let prof = env.path("p.toml");
    env.write(&prof, "[limits]\npids = 20\ndisk-quota = \"big\"\n");
    let out = env
        .run(&["--profile", prof.to_str().unwrap(), "--", "true"])
        .output();
    out.expect_code(125);
    assert!(
        out.stderr.contains(&format!(
            "{}:3:14: disk-quota 'big': expected a size",
            prof.display()
        )),
        "{out}"
    );
    env.write(&prof, "[limits]\nmemory-max = \"1g\"\n");
    let out = env
        .run(&["--profile", prof.to_str().unwrap(), "--", "true"])
        .output();
    out.expect_code(125);
    assert!(out.stderr.contains("unknown field `memory-max`"), "{out}");
}

#[test]
fn profile_limits_apply() {
    let env = TestEnv::new("limits-profile");
    let prof = env.path("p.toml");
    env.write(
        &prof,
        "[limits]\nrlimit = [\"nofile=40\", \"core=0\"]\ntimeout = \"0.3s\"\n",
    );
    let out = env
        .run(&[
            "--profile",
            prof.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "ulimit -n; ulimit -c; sleep 5",
        ])
        .output();
    out.expect_code(124);
    assert_eq!(out.lines(), ["40", "0"], "{out}");
}

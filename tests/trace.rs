//! `nook run --trace`: the real binary, as the unprivileged test user, with
//! the real seccomp listener: what the command asked for and did not get
//! is kept, and without --trace nothing is.

mod common;

use common::TestEnv;

fn trace_of(state: &std::path::Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(state.join("nook/traces/last.json")).expect("the run kept a trace");
    serde_json::from_str(&text).expect("the trace is JSON")
}

#[test]
fn trace_records_what_the_view_lacks_and_what_the_filter_refused() {
    let mut env = TestEnv::new("trace");
    // A config outside the default view (HOME is an empty tmpfs inside),
    // and a key the host treats as secret.
    let outside = env
        .user
        .home
        .join(format!("nook-trace-{}", std::process::id()));
    env.mkdir(&outside);
    env.cleanup_later(outside.clone());
    let conf = outside.join("conf");
    env.write(&conf, "x=1\n");
    let ssh = env.user.home.join(".ssh");
    let made_ssh = !ssh.exists();
    if made_ssh {
        env.mkdir(&ssh);
        env.cleanup_later(ssh.clone());
    }
    let key = ssh.join(format!("id_trace_{}", std::process::id()));
    env.write(&key, "secret\n");
    env.cleanup_later(key.clone());
    let state = env.dir.join("state");
    let script = format!(
        "cat {conf}; cat {key}; echo x > /usr/nook-trace; mkdir /tmp/a; echo status=$?",
        conf = conf.display(),
        key = key.display()
    );
    let args = |trace: bool| {
        let mut a: Vec<String> = vec!["--seccomp-deny".into(), "mkdir".into()];
        if trace {
            a.push("--trace".into());
        }
        a.extend(["--", "sh", "-c", &script].map(String::from));
        a
    };
    // Without --trace: the same refusals, and nothing kept.
    let plain = env
        .run(&args(false))
        .env("XDG_STATE_HOME", state.to_str().unwrap())
        .output();
    assert!(plain.stdout.contains("status=1"), "{}", plain);
    assert!(!state.join("nook/traces/last.json").exists());
    // With it: the command sees exactly the same...
    let traced = env
        .run(&args(true))
        .env("XDG_STATE_HOME", state.to_str().unwrap())
        .output();
    assert_eq!(traced.stdout, plain.stdout, "{}", traced);
    assert!(traced.stderr.contains("No such file"), "{}", traced);
    // ...and the trace says why.
    let t = trace_of(&state);
    let paths = t["paths"].as_array().expect("paths");
    let find = |p: &std::path::Path| {
        paths
            .iter()
            .find(|d| d["path"] == p.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not in the trace: {t:#}", p.display()))
    };
    let c = find(&conf);
    assert_eq!(
        (c["access"].as_str(), c["why"].as_str()),
        (Some("read"), Some("absent"))
    );
    assert_eq!(c["host"], "file");
    assert_eq!(c["secret"], false);
    assert_eq!(find(&key)["secret"], true, "{t:#}");
    let u = find(std::path::Path::new("/usr/nook-trace"));
    assert_eq!(
        (u["access"].as_str(), u["why"].as_str()),
        (Some("write"), Some("read-only"))
    );
    let calls = t["syscalls"].as_array().expect("syscalls");
    assert!(
        calls
            .iter()
            .any(|c| c["name"] == "mkdir" && c["count"] == 1),
        "{t:#}"
    );
    assert_eq!(t["version"], 1);
}

/// A scratch space filled to its --disk-quota is kept as a limit hit; a
/// run that stays below keeps none.
#[test]
fn trace_records_a_full_disk_quota() {
    let env = TestEnv::new("trace-quota");
    let state = env.dir.join("state");
    let limits = |script: &str| {
        env.run(&["--trace", "--disk-quota", "1M", "--", "sh", "-c", script])
            .env("XDG_STATE_HOME", state.to_str().unwrap())
            .output();
        trace_of(&state)["limits"].clone()
    };
    let full = limits("head -c 2000000 /dev/zero > ~/big 2>/dev/null; true");
    assert!(
        full.as_array()
            .unwrap()
            .iter()
            .any(|l| l["what"] == "disk-quota" && l["setting"] == "--disk-quota 1 MiB"),
        "{full:#}"
    );
    let below = limits("head -c 2000 /dev/zero > ~/small");
    assert_eq!(below, serde_json::json!([]));
}

//! User-mode networking through the real binary, as the unprivileged test
//! user, against real pasta/slirp4netns and real nftables.
//!
//! Each test builds its own "host" network, a [`Lab`] (tests/common/lab.rs
//! lists its addresses and servers), and runs nook inside it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::{Lab, probe};
use common::{TestEnv, host_pids_with_cmdline, parent_pid, require};

#[test]
fn default_is_loopback_only() {
    let env = TestEnv::new("net-none");
    let Some(lab) = Lab::new() else { return };
    let a = probe(
        &env,
        &lab,
        &[],
        "tcp remote 10.199.0.5:8001; tcp hostlo 127.0.0.1:8001; \
         echo links=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')",
    );
    assert_eq!(a["remote"], "refused");
    assert_eq!(a["hostlo"], "refused");
    assert_eq!(a["links"].trim(), "lo");
}

#[test]
fn user_network_reaches_out_over_tcp_and_udp() {
    let env = TestEnv::new("net-user");
    let Some(lab) = Lab::new() else { return };
    for (driver, dns) in [("pasta", "169.254.0.53"), ("slirp4netns", "10.0.2.3")] {
        let a = probe(
            &env,
            &lab,
            &["--net", "user", "--net-driver", driver],
            "tcp a 10.199.0.5:8001; tcp b 10.199.0.6:8001; udp u 10.199.0.5:8003; \
             echo dns=$(sed -n 's/^nameserver //p' /etc/resolv.conf)",
        );
        assert_eq!(a["a"], "tcp-10.199.0.5", "{driver}");
        assert_eq!(a["b"], "tcp-10.199.0.6", "{driver}");
        assert_eq!(a["u"], "udp-10.199.0.5", "{driver}");
        assert_eq!(a["dns"], dns, "resolv.conf names {driver}'s forwarder");
    }
}

#[test]
fn slirp4netns_driver_reaches_out_and_keeps_host_loopback_closed() {
    let env = TestEnv::new("net-slirp");
    let Some(lab) = Lab::new() else { return };
    if !require(
        common::which("slirp4netns"),
        "slirp4netns is not installed: run .ci/setup",
    ) {
        return;
    }
    let a = probe(
        &env,
        &lab,
        &["--net", "user", "--net-driver", "slirp4netns"],
        "tcp a 10.199.0.5:8001; udp u 10.199.0.5:8003; tcp gw 10.0.2.2:8001; tcp lo 127.0.0.1:8001",
    );
    assert_eq!(a["a"], "tcp-10.199.0.5");
    assert_eq!(a["u"], "udp-10.199.0.5");
    assert_eq!(
        a["gw"], "refused",
        "10.0.2.2 must not lead to the host's loopback"
    );
    assert_eq!(a["lo"], "refused");
    // The same gateway does lead there when asked.
    let a = probe(
        &env,
        &lab,
        &[
            "--net",
            "user",
            "--net-driver",
            "slirp4netns",
            "--allow-host-loopback",
        ],
        "tcp gw 10.0.2.2:8001",
    );
    assert_eq!(a["gw"], "tcp-127.0.0.1");
}

/// Every way a sandbox could reach the host's loopback services: its own
/// loopback, the gateway (which pasta can map to the host), the host's
/// own address, over IPv4 and IPv6.
const HOST_LOOPBACK_PROBES: &str = "tcp lo4 127.0.0.1:8001; tcp6 lo6 [::1]:8001; \
     tcp gw4 10.199.0.254:8001; tcp6 gw6 [fd99::fe]:8001; tcp own4 10.199.0.1:8001; tcp6 own6 [fd99::1]:8001";

#[test]
fn host_loopback_is_closed_by_default_over_every_address() {
    let env = TestEnv::new("net-hostlo");
    let Some(lab) = Lab::new() else { return };
    for driver in ["pasta", "slirp4netns"] {
        let a = probe(
            &env,
            &lab,
            &["--net", "user", "--net-driver", driver],
            HOST_LOOPBACK_PROBES,
        );
        for k in ["lo4", "lo6", "own4", "own6"] {
            assert_eq!(
                a[k], "refused",
                "{driver}: {k} reached a host loopback service: {a:?}"
            );
        }
        // The gateway leads to the gateway, not to the host's loopback.
        assert_eq!(a["gw4"], "tcp-gateway", "{driver}: {a:?}");
        // slirp4netns gives no IPv6 (README).
        let gw6 = if driver == "pasta" {
            "tcp-v6-gateway"
        } else {
            "refused"
        };
        assert_eq!(a["gw6"], gw6, "{driver}: {a:?}");
    }
    // Control: the host's loopback server is there, seen from the host.
    let out = lab.host_sh("socat -u TCP:127.0.0.1:8001 - | head -n1");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tcp-127.0.0.1");
}

#[test]
fn host_loopback_opens_when_allowed() {
    let env = TestEnv::new("net-hostlo-allow");
    let Some(lab) = Lab::new() else { return };
    let a = probe(
        &env,
        &lab,
        // pasta maps the gateway's own address; slirp4netns has 10.0.2.2
        // (its test above).
        &[
            "--net",
            "user",
            "--net-driver",
            "pasta",
            "--allow-host-loopback",
        ],
        HOST_LOOPBACK_PROBES,
    );
    assert_eq!(a["gw4"], "tcp-127.0.0.1", "{a:?}");
    assert_eq!(a["gw6"], "tcp-v6-loopback", "{a:?}");
}

/// One host port: it appears on the sandbox's own loopback, over IPv4 and
/// IPv6, and the rest of the host's loopback stays shut, with either
/// driver (pasta forwards it itself, nook relays it for slirp4netns,
/// whose gateway stays closed).
#[test]
fn single_host_port_opens_with_both_drivers() {
    let env = TestEnv::new("net-hostport");
    let Some(lab) = Lab::new() else { return };
    for driver in ["pasta", "slirp4netns"] {
        let a = probe(
            &env,
            &lab,
            &[
                "--net",
                "user",
                "--net-driver",
                driver,
                "--allow-host-port",
                "8001",
            ],
            &format!("{HOST_LOOPBACK_PROBES}; tcp other 127.0.0.1:8002; tcp slirpgw 10.0.2.2:8001"),
        );
        assert_eq!(a["lo4"], "tcp-127.0.0.1", "{driver}: {a:?}");
        assert_eq!(a["lo6"], "tcp-v6-loopback", "{driver}: {a:?}");
        assert_eq!(a["gw4"], "tcp-gateway", "{driver}: {a:?}");
        assert_eq!(a["other"], "refused", "{driver}: {a:?}");
        assert_ne!(a["slirpgw"], "tcp-127.0.0.1", "{driver}: {a:?}");
    }
}

#[test]
fn allow_list_refuses_other_addresses_and_ports() {
    let env = TestEnv::new("net-allow");
    let Some(lab) = Lab::new() else { return };
    let script = "tcp ok 10.199.0.5:8001; tcp port 10.199.0.5:8002; tcp addr 10.199.0.6:8001; \
                  udp udp 10.199.0.5:8003; tcp6 v6 [fd99::1]:8001; \
                  nft flush ruleset 2>/dev/null && echo flush=done || echo flush=denied; \
                  tcp after 10.199.0.6:8001";
    // Without the list, every probe gets through (the same attack works).
    let open = probe(&env, &lab, &["--net", "user"], script);
    assert_eq!(open["port"], "tcp-8002");
    assert_eq!(open["addr"], "tcp-10.199.0.6");
    assert_eq!(open["udp"], "udp-10.199.0.5");
    let a = probe(
        &env,
        &lab,
        &["--net", "user", "--net-allow", "10.199.0.5:8001"],
        script,
    );
    assert_eq!(a["ok"], "tcp-10.199.0.5", "{a:?}");
    assert_eq!(a["port"], "refused", "a denied port got through: {a:?}");
    assert_eq!(a["addr"], "refused", "a denied address got through: {a:?}");
    assert_eq!(a["udp"], "refused", "{a:?}");
    assert_eq!(a["v6"], "refused", "{a:?}");
    // The payload can't take the rules down: it holds no CAP_NET_ADMIN.
    assert_eq!(a["flush"], "denied", "{a:?}");
    assert_eq!(a["after"], "refused", "{a:?}");
    // UDP and a whole network, from a profile's [network] section.
    let prof = env.path("lab.toml");
    env.write(
        &prof,
        "[network]\nnet = \"user\"\nnet-allow = [\"10.199.0.0/29:8003\", \"10.199.0.6\"]\n",
    );
    let a = probe(
        &env,
        &lab,
        &["--profile", prof.to_str().unwrap()],
        "udp udp 10.199.0.5:8003; tcp tcp 10.199.0.5:8001; tcp six 10.199.0.6:8001",
    );
    assert_eq!(a["udp"], "udp-10.199.0.5", "{a:?}");
    assert_eq!(a["tcp"], "refused", "{a:?}");
    assert_eq!(a["six"], "tcp-10.199.0.6", "{a:?}");
}

/// `-p` with either driver: TCP served to the host, and UDP delivered.
/// pasta publishes itself; slirp4netns through its API socket.
#[test]
fn published_port_serves_the_host() {
    let env = TestEnv::new("net-publish");
    let Some(lab) = Lab::new() else { return };
    for (driver, tcp, udp) in [("pasta", 18080, 18053), ("slirp4netns", 18081, 18054)] {
        let (publish_tcp, publish_udp) =
            (format!("127.0.0.1:{tcp}:8080"), format!("{udp}:8053/udp"));
        let mut run = env
            .run(&[
                "--net",
                "user",
                "--net-driver",
                driver,
                "-p",
                &publish_tcp,
                "-p",
                &publish_udp,
                "--",
                "sh",
                "-c",
                "socat TCP-LISTEN:8080,reuseaddr SYSTEM:'echo served-from-sandbox' & \
                 socat -u UDP-RECV:8053 STDOUT & \
                 until grep -q ':1F90 00000000:0000 0A' /proc/net/tcp && \
                       grep -q ':1F75 00000000:0000 07' /proc/net/udp; do sleep 0.05; done; \
                 echo listening; wait",
            ])
            .in_netns(lab.pid())
            .timeout(Duration::from_secs(30))
            .spawn();
        run.wait_for_line("listening", Duration::from_secs(15));
        let out = lab.host_sh(&format!(
            "socat -u TCP:127.0.0.1:{tcp},connect-timeout=2 - | head -n1"
        ));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "served-from-sandbox",
            "{driver}"
        );
        // UDP one way: the pasta that Debian 12 ships delivers datagrams to
        // a published port but loses the sandbox's replies (README says so).
        lab.host_sh(&format!(
            "echo datagram-from-host | socat -u - UDP:127.0.0.1:{udp}"
        ));
        run.wait_for_line("datagram-from-host", Duration::from_secs(10));
        run.signal("TERM");
        let _ = run.wait(Duration::from_secs(10));
    }
}

#[test]
fn taken_port_is_a_clear_error() {
    let env = TestEnv::new("net-publish-taken");
    let Some(lab) = Lab::new() else { return };
    // 127.0.0.1:8001 is the lab's loopback server.
    let out = env
        .run(&["--net", "user", "-p", "127.0.0.1:8001:80", "--", "true"])
        .in_netns(lab.pid())
        .output();
    out.expect_code(125);
    assert!(
        out.stderr.contains("--publish '127.0.0.1:8001:80'")
            && out.stderr.contains("expected a free host port"),
        "{out}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

#[test]
fn killing_nook_leaves_no_helper() {
    let env = TestEnv::new("net-kill");
    let Some(lab) = Lab::new() else { return };
    // The published port marks this sandbox's helper on the command line;
    // a port of this test process's own, so that a suite running beside
    // this one has other markers (each lab is its own namespace, so any
    // port but the lab's servers' is free).
    let port = 20000 + std::process::id() % 20000;
    let marker = format!("127.0.0.1/{port}:80");
    let publish = format!("127.0.0.1:{port}:80");
    let mut run = env
        .run(&[
            "--net",
            "user",
            "--net-driver",
            "pasta",
            "-p",
            &publish,
            "--",
            "sh",
            "-c",
            "echo up; sleep 60",
        ])
        .in_netns(lab.pid())
        .spawn();
    run.wait_for_line("up", Duration::from_secs(15));
    // pasta does its work in the sandbox's namespaces in short-lived
    // clones of itself (clone(CLONE_VM | CLONE_VFORK), at start and now
    // and then), which show the same command line: those are part of the
    // one helper, nook's child.
    let found = host_pids_with_cmdline(&marker);
    let helpers: Vec<u32> = found
        .iter()
        .map(|(pid, _)| *pid)
        .filter(|pid| {
            let parent = parent_pid(*pid);
            !found.iter().any(|(other, _)| Some(*other) == parent)
        })
        .collect();
    assert_eq!(
        helpers.len(),
        1,
        "one helper while the sandbox runs: {found:?}"
    );
    assert_eq!(
        parent_pid(helpers[0]),
        Some(run.pid()),
        "the helper is nook's child: {found:?}"
    );
    // setpriv and nsenter exec, so this pid is the supervisor's.
    run.signal("KILL");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !host_pids_with_cmdline(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the helper outlived nook: {:?}",
            host_pids_with_cmdline(&marker)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = run.wait(Duration::from_secs(5));
}

#[test]
fn missing_helper_names_the_package() {
    let env = TestEnv::new("net-missing");
    for (driver, package) in [("pasta", "passt"), ("slirp4netns", "slirp4netns")] {
        // Only PATH is searched (and the sbin directories, where neither lives).
        let out = env
            .run(&["--net", "user", "--net-driver", driver, "--", "true"])
            .env("PATH", "/nonexistent")
            .output();
        out.expect_code(125);
        assert!(
            out.stderr.contains(&format!(
                "needs {driver}, which is not installed; install the '{package}' package"
            )),
            "{out}"
        );
    }
}

#[test]
fn dns_resolves_inside() {
    let env = TestEnv::new("net-dns");
    // The one test that uses the machine's own network: a name lookup
    // through the machine's resolver, as any user program does.
    let host = Command::new("getent")
        .args(["hosts", "deb.debian.org"])
        .output()
        .expect("getent");
    if !require(
        host.status.success(),
        "this machine can't resolve deb.debian.org itself, so DNS inside can't be shown",
    ) {
        return;
    }
    let out = env
        .run(&[
            "--net",
            "user",
            "--",
            "sh",
            "-c",
            "cat /etc/resolv.conf; getent hosts deb.debian.org",
        ])
        .output();
    out.ok();
    // pasta's forwarder or slirp4netns's, whichever `auto` took.
    assert!(
        out.stdout.contains("nameserver 169.254.0.53")
            || out.stdout.contains("nameserver 10.0.2.3"),
        "{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.ends_with("deb.debian.org") && !l.starts_with('#')),
        "{out}"
    );
}

#[test]
fn bad_network_input_is_one_clear_line() {
    let env = TestEnv::new("net-bad");
    for (args, needle) in [
        (
            vec!["--net", "wifi"],
            "--net 'wifi': expected none, host or user",
        ),
        (
            vec!["--net", "user", "-p", "80"],
            "expected [HOSTIP:]HOSTPORT:SANDBOXPORT",
        ),
        (
            vec!["--net", "user", "--net-allow", "10.0.0.0/40"],
            "prefix length",
        ),
        (
            vec!["-p", "8080:80"],
            "needs user-mode networking; add --net user",
        ),
        (
            vec!["--net", "none", "--share-net"],
            "conflicts with --share-net",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--", "true"]);
        let out = env.run(&all).output();
        out.expect_code(125);
        assert!(out.stderr.contains(needle), "{args:?}: {out}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out}");
    }
}

#[test]
fn strict_adds_landlock_tcp_port_rules_to_the_allow_list() {
    let env = TestEnv::new("net-landlock");
    let Some(lab) = Lab::new() else { return };
    // A server inside the sandbox on its own loopback, then a connection
    // to it: nftables lets loopback through, Landlock (ABI 4) does not
    // when the port is not on the list.
    // The probe starts once the server listens (0x270F is 9999), so that
    // a refusal is Landlock's, not a server not yet there.
    let script = "socat TCP-LISTEN:9999,bind=127.0.0.1,reuseaddr SYSTEM:'echo local' & \
                  until grep -q ':270F 00000000:0000 0A' /proc/net/tcp; do sleep 0.05; done; \
                  tcp local 127.0.0.1:9999; tcp ok 10.199.0.5:8001";
    let plain = probe(
        &env,
        &lab,
        &["--net", "user", "--net-allow", "10.199.0.5:8001"],
        script,
    );
    assert_eq!(plain["local"], "local", "{plain:?}");
    assert_eq!(plain["ok"], "tcp-10.199.0.5", "{plain:?}");
    let strict = probe(
        &env,
        &lab,
        &[
            "--strict",
            "--net",
            "user",
            "--net-allow",
            "10.199.0.5:8001",
        ],
        script,
    );
    assert_eq!(strict["local"], "refused", "{strict:?}");
    assert_eq!(strict["ok"], "tcp-10.199.0.5", "{strict:?}");
}

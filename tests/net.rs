//! User-mode networking through the real binary, as the unprivileged test
//! user, against real pasta/slirp4netns and real nftables.
//!
//! Each test builds its own "host" network: a network namespace made by
//! the test (never the machine's own), holding a veth link with the
//! addresses below, a default route, and servers:
//!
//! - 10.199.0.1: the lab host's first address (pasta copies it into the
//!   sandbox), 10.199.0.5 and 10.199.0.6: two "remote" servers,
//! - fd99::1 with a default route via fd99::fe for IPv6,
//! - the gateways 10.199.0.254 and fd99::fe answer TCP :8001 with
//!   their own names ("tcp-gateway", "tcp-v6-gateway"),
//! - TCP :8001 on 10.199.0.5, 10.199.0.6, 127.0.0.1 and [::1], each
//!   answering its own name; TCP :8002 on 10.199.0.5; UDP :8003 on
//!   10.199.0.5.
//!
//! nook runs inside that namespace (nsenter, then setpriv down to the test
//! user), so for it the lab is the host.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, host_pids_with_cmdline, parent_pid, require};

const LAB_SETUP: &str = r#"
set -e
ip link set lo up
ip link add lab0 type veth peer name lab1
ip link set lab1 up
ip addr add 10.199.0.1/24 dev lab0
ip addr add 10.199.0.5/24 dev lab0
ip addr add 10.199.0.6/24 dev lab0
ip -6 addr add fd99::1/64 dev lab0 nodad
ip link set lab0 up
ip route add default via 10.199.0.254
ip -6 route add default via fd99::fe
# The gateway answers :8001 with its own name (a server on :8009, which
# the lab's own connections to the gateway are sent to): a probe of the
# gateway that isn't mapped to the lab's loopback gets a positive answer
# that tells the two apart (a refusal can't be had here: Debian 12's
# pasta turns a connection the lab refuses into silence in the sandbox).
nft -f - <<'NFT'
table inet lab {
    chain output {
        type nat hook output priority -100; policy accept;
        ip daddr 10.199.0.254 tcp dport 8001 dnat ip to 10.199.0.5:8009
        ip6 daddr fd99::fe tcp dport 8001 dnat ip6 to [fd99::1]:8009
    }
}
NFT
socat TCP-LISTEN:8009,bind=10.199.0.5,fork,reuseaddr SYSTEM:"echo tcp-gateway" &
socat TCP6-LISTEN:8009,bind=[fd99::1],fork,reuseaddr SYSTEM:"echo tcp-v6-gateway" &
for a in 10.199.0.5 10.199.0.6 127.0.0.1; do
    socat TCP-LISTEN:8001,bind=$a,fork,reuseaddr SYSTEM:"echo tcp-$a" &
done
socat TCP6-LISTEN:8001,bind=[::1],fork,reuseaddr SYSTEM:"echo tcp-v6-loopback" &
socat TCP-LISTEN:8002,bind=10.199.0.5,fork,reuseaddr SYSTEM:"echo tcp-8002" &
# The reply waits for the datagram to be read: socat writes the datagram
# into the command's input, and a command that had already exited would
# make that write fail (EPIPE), and socat give up before relaying the reply.
socat UDP-RECVFROM:8003,bind=10.199.0.5,fork SYSTEM:"head -c1 >/dev/null; echo udp-10.199.0.5" &
# Ready once every server listens; a lab that never gets there says so
# rather than let the probes meet missing servers.
for i in $(seq 400); do
    n=$(ss -Hltn | grep -c ':800[129] ' || true)
    u=$(ss -Hlun | grep -c ':8003 ' || true)
    if [ "$n" -ge 7 ] && [ "$u" -ge 1 ]; then
        echo ready
        exec sleep 600
    fi
    sleep 0.05
done
echo "servers not listening after 20 s: tcp $n of 7, udp $u of 1"
exit 1
"#;

/// A network namespace with the lab's links and servers; torn down (with
/// every server) when dropped.
struct Lab {
    holder: Child,
}

impl Lab {
    fn new() -> Option<Lab> {
        if !require(
            common::euid() == 0,
            "the network lab needs root to create its namespace (run the tests as root; nook itself still runs unprivileged)",
        ) {
            return None;
        }
        if !require(
            common::which("socat") && common::which("pasta") && common::which("nsenter"),
            "socat, pasta (package passt) and nsenter are needed: run .ci/setup",
        ) {
            return None;
        }
        use std::os::unix::process::CommandExt;
        let mut holder = Command::new("unshare")
            .args(["--net", "sh", "-c", LAB_SETUP])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("start the lab namespace");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read lab output");
        assert_eq!(line.trim(), "ready", "the lab did not come up");
        Some(Lab { holder })
    }

    fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A shell command run as root in the lab (the "host" side).
    fn host_sh(&self, script: &str) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .args(["sh", "-c", script])
            .output()
            .expect("run in the lab")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The holder leads its own process group: the servers go with it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.holder.id())])
            .status();
        let _ = self.holder.wait();
    }
}

/// Shell functions for the sandbox side: each probe prints NAME=ANSWER,
/// where ANSWER is the server's first line, or what stopped it:
///
/// - `refused`: the sandbox's own kernel, the helper or the far end said
///   no (ECONNREFUSED, ECONNRESET, ENETUNREACH, EHOSTUNREACH, EACCES,
///   EPERM): a real refusal, never a timeout;
/// - `timeout`: no answer at all in 10 s (TCP connect, or UDP with the
///   datagram sent again every half second: one can be lost under load);
/// - `silent`: connected, but no line came in 5 s;
/// - `error-NAME`: any other failure.
///
/// TCP asks up to three times while the answer is `timeout` or `silent`.
///
/// So an allowed probe gets load-proof time, and a `refused` expected of a
/// denied one can't be a slow or lost answer.
const PROBES: &str = r#"
PROBE_PY='
import errno, socket, sys, time
kind, target = sys.argv[1], sys.argv[2]
host, port = target.rsplit(":", 1)
host = host.strip("[]")
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
REFUSED = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ENETUNREACH,
           errno.EHOSTUNREACH, errno.EACCES, errno.EPERM}
def fail(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if e.errno in REFUSED:
        return "refused"
    return "error-" + errno.errorcode.get(e.errno, str(e.errno))
def answer():
    if kind == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect((host, int(port)))
        except OSError as e:
            return fail(e)
        s.settimeout(5)
        data = b""
        try:
            while b"\n" not in data:
                chunk = s.recv(100)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        except OSError as e:
            if not data:
                return fail(e)
        line = data.decode(errors="replace").split("\n")[0].strip()
        return line or "silent"
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.connect((host, int(port)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s.send(b"x\n")
            s.settimeout(0.5)
            try:
                return s.recv(100).decode(errors="replace").split("\n")[0].strip()
            except socket.timeout:
                pass
        return "timeout"
    except OSError as e:
        return fail(e)
# A TCP answer lost on the way (the pasta of Debian 12 now and then loses
# a reply under load) is asked for again: what ends the loop is an
# answer or a refusal, never a third silence.
for attempt in range(3):
    result = answer()
    if kind == "udp" or result not in ("timeout", "silent"):
        break
print(result)
'
tcp() { echo "$1=$(python3 -c "$PROBE_PY" tcp "$2")"; }
tcp6() { tcp "$@"; }
udp() { echo "$1=$(python3 -c "$PROBE_PY" udp "$2")"; }
"#;

/// Run `script` (after the probes) in a sandbox in the lab with `args`;
/// returns NAME -> ANSWER.
fn probe(
    env: &TestEnv,
    lab: &Lab,
    args: &[&str],
    script: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--", "sh", "-c"].map(String::from));
    all.push(format!("{PROBES}\n{script}"));
    let out = env
        .run(&all)
        .in_netns(lab.pid())
        .timeout(Duration::from_secs(120))
        .output();
    out.ok();
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

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
    let a = probe(
        &env,
        &lab,
        &["--net", "user"],
        "tcp a 10.199.0.5:8001; tcp b 10.199.0.6:8001; udp u 10.199.0.5:8003; \
         echo dns=$(sed -n 's/^nameserver //p' /etc/resolv.conf)",
    );
    assert_eq!(a["a"], "tcp-10.199.0.5");
    assert_eq!(a["b"], "tcp-10.199.0.6");
    assert_eq!(a["u"], "udp-10.199.0.5");
    assert_eq!(
        a["dns"], "169.254.0.53",
        "resolv.conf names pasta's forwarder"
    );
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
    let a = probe(&env, &lab, &["--net", "user"], HOST_LOOPBACK_PROBES);
    for k in ["lo4", "lo6", "own4", "own6"] {
        assert_eq!(
            a[k], "refused",
            "{k} reached a host loopback service: {a:?}"
        );
    }
    // The gateway leads to the gateway, not to the host's loopback.
    assert_eq!(a["gw4"], "tcp-gateway", "{a:?}");
    assert_eq!(a["gw6"], "tcp-v6-gateway", "{a:?}");
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
        &["--net", "user", "--allow-host-loopback"],
        HOST_LOOPBACK_PROBES,
    );
    assert_eq!(a["gw4"], "tcp-127.0.0.1", "{a:?}");
    assert_eq!(a["gw6"], "tcp-v6-loopback", "{a:?}");
    // One port: it appears on the sandbox's own loopback, the rest stays shut.
    let a = probe(
        &env,
        &lab,
        &["--net", "user", "--allow-host-port", "8001"],
        &format!("{HOST_LOOPBACK_PROBES}; tcp other 127.0.0.1:8002"),
    );
    assert_eq!(a["lo4"], "tcp-127.0.0.1", "{a:?}");
    assert_eq!(a["lo6"], "tcp-v6-loopback", "{a:?}");
    assert_eq!(a["gw4"], "tcp-gateway", "{a:?}");
    assert_eq!(a["other"], "refused", "{a:?}");
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

#[test]
fn published_port_serves_the_host() {
    let env = TestEnv::new("net-publish");
    let Some(lab) = Lab::new() else { return };
    let mut run = env
        .run(&[
            "--net",
            "user",
            "-p",
            "127.0.0.1:18080:8080",
            "-p",
            "18053:8053/udp",
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
    let out = lab.host_sh("socat -u TCP:127.0.0.1:18080,connect-timeout=2 - | head -n1");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "served-from-sandbox"
    );
    // UDP one way: the pasta that Debian 12 ships delivers datagrams to a
    // published port but loses the sandbox's replies (README says so).
    lab.host_sh("echo datagram-from-host | socat -u - UDP:127.0.0.1:18053");
    run.wait_for_line("datagram-from-host", Duration::from_secs(10));
    run.signal("TERM");
    let _ = run.wait(Duration::from_secs(10));
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
    assert!(out.stdout.contains("nameserver 169.254.0.53"), "{out}");
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

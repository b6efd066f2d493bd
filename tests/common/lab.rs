//! The network lab: a "host" network that a test makes for itself (never
//! the machine's own): a network namespace holding a veth link with the
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

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{TestEnv, require};

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
pub struct Lab {
    holder: Child,
}

impl Lab {
    pub fn new() -> Option<Lab> {
        if !require(
            super::euid() == 0,
            "the network lab needs root to create its namespace (run the tests as root; nook itself still runs unprivileged)",
        ) {
            return None;
        }
        if !require(
            super::which("socat") && super::which("pasta") && super::which("nsenter"),
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

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A shell command run as root in the lab (the "host" side).
    pub fn host_sh(&self, script: &str) -> std::process::Output {
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
pub const PROBES: &str = r#"
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
pub fn probe(
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

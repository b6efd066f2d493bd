//! The network lab: a "host" network that a test makes for itself (never
//! the machine's own), for tests/net.rs and tests/gate.rs.
//!
//! A holder process made by `unshare --net --mount` (as root) owns a
//! network namespace and a private mount namespace, holding:
//!
//! - a veth link lab0 with 10.199.0.1 (the lab host's first address,
//!   which pasta copies into the sandbox), 10.199.0.5 and 10.199.0.6 (two
//!   "remote" servers) and 10.199.0.53 (the name server), fd99::1 for
//!   IPv6; default routes via 10.199.0.254 and fd99::fe;
//! - /etc/resolv.conf bound over with `nameserver 10.199.0.53`, so that
//!   nook and its helper, started in the lab, see that server as the
//!   host's resolver (the mount namespace is a private copy of the
//!   machine's, so the build directory and the test HOMEs are there);
//! - the gateways 10.199.0.254 and fd99::fe answering TCP :8001 with their
//!   own names ("tcp-gateway", "tcp-v6-gateway");
//! - TCP :8001 on 10.199.0.5, 10.199.0.6, 127.0.0.1 and [::1], each
//!   answering `tcp-ADDR` ("tcp-v6-loopback" for [::1]); TCP :8002 on
//!   10.199.0.5 ("tcp-8002"); UDP :8003 on 10.199.0.5 ("udp-10.199.0.5")
//!   and UDP :443 on 10.199.0.5 ("udp-443", where QUIC would go);
//! - DNS on 10.199.0.53:53, UDP and TCP ([`DNS`]): A records (TTL 1 s)
//!   for [`NAMES`], all at 10.199.0.5 until a test moves one
//!   ([`Lab::set_name`]); NXDOMAIN for any other name; every query's name
//!   is logged ([`Lab::queries`]);
//! - HTTPS on 10.199.0.5:443 and 10.199.0.6:443 (a self-signed
//!   certificate made at start; clients use -k) answering a GET with
//!   `tls SNI at ADDR` (SNI = the server name in the ClientHello, or
//!   `none`), and HTTP on :80 of both answering `http HOST at ADDR` (HOST =
//!   the Host header without its port).
//!
//! The name and web servers are tests/common/lab.py, which bench/net.sh
//! runs too. nook runs inside the lab (nsenter into both namespaces, then
//! setpriv down to the test user, see `Cmd::in_netns`), so for it the lab
//! is the host.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{Output, TestEnv, require};

/// The first "remote" server: every name of [`NAMES`] starts here.
pub const SERVER_A: &str = "10.199.0.5";
/// The second "remote" server, the same services as the first.
pub const SERVER_B: &str = "10.199.0.6";
/// The lab's name server, which its /etc/resolv.conf names.
pub const DNS: &str = "10.199.0.53";
/// The names the lab's DNS knows at start, each at [`SERVER_A`].
pub const NAMES: [&str; 5] = [
    "pkg.test",
    "other.test",
    "wild.test",
    "a.wild.test",
    "b.a.wild.test",
];

/// The lab's name and web servers (see the module doc).
const SERVERS_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/lab.py");

/// Runs as root in the new namespaces, with LAB_DIR (the lab's files),
/// LAB_PY (python3) and SERVERS_PY set; prints `ready` once every server
/// listens, then holds the namespaces.
const LAB_SETUP: &str = r#"
set -e
# The mount namespace is private (unshare --propagation private): this
# bind mount, and any other, stays in the lab.
mount --bind "$LAB_DIR/resolv.conf" /etc/resolv.conf
ip link set lo up
ip link add lab0 type veth peer name lab1
ip link set lab1 up
for a in 10.199.0.1 10.199.0.5 10.199.0.6 10.199.0.53; do
    ip addr add $a/24 dev lab0
done
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
# A P-256 key: made in milliseconds, where RSA takes a good part of a second.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$LAB_DIR/key.pem" -out "$LAB_DIR/cert.pem" -subj /CN=pkg.test \
    -addext 'subjectAltName=DNS:*.test,DNS:pkg.test,DNS:other.test,DNS:wild.test,DNS:*.wild.test,DNS:b.a.wild.test' \
    2>/dev/null
"$LAB_PY" "$SERVERS_PY" "$LAB_DIR" --dns 10.199.0.53 \
    --https 10.199.0.5 --https 10.199.0.6 --http 10.199.0.5 --http 10.199.0.6 &
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
# UDP :443 answers too, so that a QUIC datagram let through shows.
socat UDP-RECVFROM:443,bind=10.199.0.5,fork SYSTEM:"head -c1 >/dev/null; echo udp-443" &
# Ready once every server listens (TCP: 8001 x4, 8002, 8009 x2, 443 x2,
# 80 x2, 53; UDP: 8003, 443, 53); a lab that never gets there says so rather
# than let the probes meet missing servers.
deadline=$(($(date +%s) + 20))
while [ "$(date +%s)" -le "$deadline" ]; do
    n=$(ss -Hltn | grep -cE ':(800[129]|443|80|53) ' || true)
    u=$(ss -Hlun | grep -cE ':(8003|443|53) ' || true)
    if [ "$n" -ge 12 ] && [ "$u" -ge 3 ]; then
        echo ready
        exec sleep 600
    fi
    sleep 0.02
done
echo "servers not listening after 20 s: tcp $n of 12, udp $u of 3"
exit 1
"#;

static LABS: AtomicUsize = AtomicUsize::new(0);

/// The lab's namespaces with their links and servers; torn down (with
/// every server, and its directory) when dropped.
pub struct Lab {
    holder: Child,
    dir: LabDir,
}

/// The lab's files (names.json, queries.log, resolv.conf, the certificate
/// and key), removed when dropped: after the holder, a field of [`Lab`].
struct LabDir(PathBuf);

impl Drop for LabDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Lab {
    /// A new lab, or None (after a SKIP line) when this machine can't make
    /// one and skipping was asked for; see [`require`].
    pub fn new() -> Option<Lab> {
        if !require(
            super::euid() == 0,
            "the network lab needs root to create its namespace (run the tests as root; nook itself still runs unprivileged)",
        ) {
            return None;
        }
        if !require(
            [
                "socat", "pasta", "nsenter", "nft", "openssl", "python3", "curl",
            ]
            .iter()
            .all(|p| super::which(p)),
            "socat, pasta (package passt), nsenter, nft, openssl, python3 and curl are needed: run .ci/setup",
        ) {
            return None;
        }
        let dir = LabDir(std::env::temp_dir().join(format!(
            "nook-lab-{}-{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::SeqCst)
        )));
        let _ = fs::remove_dir_all(&dir.0);
        fs::create_dir(&dir.0).unwrap_or_else(|e| panic!("create {}: {e}", dir.0.display()));
        // nook and its helper read resolv.conf as the test user.
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).expect("chmod lab dir");
        let resolv = dir.0.join("resolv.conf");
        fs::write(&resolv, format!("nameserver {DNS}\n")).expect("write the lab's resolv.conf");
        fs::set_permissions(&resolv, fs::Permissions::from_mode(0o644)).expect("chmod");
        for name in NAMES {
            set_name(&dir.0, name, SERVER_A);
        }
        // python3 from /usr/bin if there: a version manager's shim in
        // root's PATH can take three times as long to start.
        let python = super::find_tool(&["/usr/bin/python3"]).unwrap_or("python3".into());
        use std::os::unix::process::CommandExt;
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                LAB_SETUP,
            ])
            .env("LAB_DIR", &dir.0)
            .env("LAB_PY", python)
            .env("SERVERS_PY", SERVERS_PY)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("start the lab namespace");
        let mut line = String::new();
        let stdout = holder.stdout.take().unwrap();
        let lab = Lab { holder, dir };
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read lab output");
        assert_eq!(line.trim(), "ready", "the lab did not come up");
        Some(lab)
    }

    /// The holder's pid: its namespaces are the lab's.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A shell command run as root in the lab (the "host" side).
    pub fn host_sh(&self, script: &str) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", self.pid()))
            .arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .args(["sh", "-c", script])
            .output()
            .expect("run in the lab")
    }

    /// Point `name` at `addr` in the lab's DNS (from its next query on; the
    /// file is replaced whole, so a query never reads half of it).
    pub fn set_name(&self, name: &str, addr: &str) {
        set_name(&self.dir.0, name, addr);
    }

    /// The names the lab's DNS has been asked about so far, in order.
    pub fn queries(&self) -> Vec<String> {
        fs::read_to_string(self.dir.0.join("queries.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
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

/// Point `name` at `addr` in the names.json of the lab directory `dir`.
fn set_name(dir: &Path, name: &str, addr: &str) {
    let path = dir.join("names.json");
    let mut names: BTreeMap<String, serde_json::Value> = fs::read_to_string(&path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    names.insert(name.to_string(), addr.into());
    let tmp = dir.join("names.json.new");
    fs::write(&tmp, serde_json::to_string(&names).unwrap()).expect("write names.json");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::rename(&tmp, &path).expect("replace names.json");
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
/// returns NAME -> ANSWER (from every stdout line of the form NAME=ANSWER).
#[track_caller]
pub fn probe(env: &TestEnv, lab: &Lab, args: &[&str], script: &str) -> BTreeMap<String, String> {
    sandbox(env, lab, args, PROBES, script).1
}

/// `nook run ARGS -- sh -c PRELUDE+SCRIPT` in the lab, as the test user;
/// the run must exit 0. Returns its output and NAME -> ANSWER (from every
/// stdout line of the form NAME=ANSWER).
#[track_caller]
pub fn sandbox(
    env: &TestEnv,
    lab: &Lab,
    args: &[&str],
    prelude: &str,
    script: &str,
) -> (Output, BTreeMap<String, String>) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--", "sh", "-c"].map(String::from));
    all.push(format!("{prelude}\n{script}"));
    let out = env
        .run(&all)
        .in_netns(lab.pid())
        .timeout(Duration::from_secs(120))
        .output();
    out.ok();
    let a = answers(&out.stdout);
    (out, a)
}

/// NAME -> ANSWER from the lines of the form NAME=ANSWER in `stdout`.
pub fn answers(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

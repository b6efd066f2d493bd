//! The egress gate: `--net user --net-allow NAME[:PORT]` enforced by name,
//! through the real binary, as the unprivileged test user, in a [`Lab`]
//! (tests/common/lab.rs: DNS on 10.199.0.53 knowing pkg.test, other.test,
//! wild.test, a.wild.test and b.a.wild.test, all at 10.199.0.5; HTTPS and
//! HTTP on 10.199.0.5 and 10.199.0.6 answering `tls SNI at ADDR` and
//! `http HOST at ADDR`).
//!
//! What the gate promises (DESIGN.md, "Network"): the sandbox's resolver
//! is nook's stub on 127.0.0.1, which answers allowed names (asking the
//! host's resolver through the helper) and REFUSED for the rest without
//! sending them anywhere, and captures DNS to any other address too;
//! TLS is admitted by the ClientHello's server name and HTTP by its Host
//! header, connected to the addresses the stub resolved (never the one the
//! client picked); a connection without a name is refused; other
//! protocols reach only an address the stub returned for an allowed name;
//! QUIC (UDP 443) gets a port-unreachable; IP and CIDR entries admit any
//! protocol as before; every refusal is a `denied` event and counted in
//! one summary line per destination at exit; the payload can neither see
//! nor signal the gate nor change the rules.
//!
//! Every refusal is paired with its control: the same attempt without
//! `--net-allow` getting through, so a refusal can't be the lab's failure.
//! The controls run first in each test, so that against a nook without the
//! gate a test fails at its first gated assertion, past its controls.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::lab::{Lab, SERVER_A, SERVER_B, answers};
use common::{Output, TestEnv};

/// Shell functions for the sandbox side; each prints KEY=ANSWER:
///
/// - `get KEY CURL-ARGS...`: curl -ks (10 s at most); ANSWER is the body's
///   first line, or `exit-CODE` (and the body, if any, after a space)
///   when curl fails;
/// - `dns KEY NAME SERVER udp|tcp`: one A query; ANSWER is `rcode-N:`
///   followed by the A records' addresses (comma-separated), or
///   `timeout` (no reply in 3 s: UDP asks three times, a second apart),
///   `refused` (ECONNREFUSED or ECONNRESET) or `error-ERRNO`;
/// - `quic KEY HOST PORT`: a connected UDP socket sends a datagram (again
///   each 0.5 s, for 5 s); ANSWER is `WHAT MS`: WHAT the reply's first line,
///   `refused` (ECONNREFUSED), `timeout` or `error-ERRNO`, MS the time it
///   took in milliseconds;
/// - `raw KEY HOST:PORT`: a TCP client that speaks first, and not TLS nor
///   HTTP (an SSH-like banner line); HOST may be a name (resolved by the
///   sandbox's resolver); ANSWER is the reply's first line, `refused`,
///   `timeout`, `silent` (nothing in 5 s) or `error-ERRNO`;
/// - `own KEY`: the processes visible in /proc that are neither pid 1 nor
///   the payload's own (the child of pid 1 that this shell descends from,
///   and its descendants), as `pid:comm` comma-separated (empty: none);
///   and `KEY_count=N`, every visible process.
const TOOLS: &str = r#"
DNS_PY='
import errno, random, socket, struct, sys
name, server, proto = sys.argv[1:4]
qid = random.randrange(65536)
q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
q += struct.pack("!HH", 1, 1)
def ask():
    if proto == "udp":
        # Not connected: a reply is taken from any source (pasta sends
        # the replies of the host resolver from the address of its DNS
        # forwarder, even to a query sent to the resolver itself).
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(3):
            s.sendto(q, (server, 53))
            s.settimeout(1)
            try:
                r = s.recv(4096)
                if r[:2] == q[:2]:
                    return r
            except socket.timeout:
                pass
        raise socket.timeout()
    s = socket.create_connection((server, 53), timeout=3)
    s.sendall(struct.pack("!H", len(q)) + q)
    r = b""
    while len(r) < 2 or len(r) < 2 + struct.unpack("!H", r[:2])[0]:
        c = s.recv(4096)
        if not c:
            break
        r += c
    return r[2:]
try:
    r = ask()
except socket.timeout:
    sys.exit(print("timeout"))
except OSError as e:
    if e.errno in (errno.ECONNREFUSED, errno.ECONNRESET):
        sys.exit(print("refused"))
    sys.exit(print("error-" + errno.errorcode.get(e.errno, str(e.errno))))
if len(r) < 12 or struct.unpack("!H", r[:2])[0] != qid:
    sys.exit(print("malformed"))
flags, qd, an = struct.unpack("!HHH", r[2:8])
i = 12
def skip_name(i):
    while r[i] != 0:
        if r[i] & 0xC0:
            return i + 2
        i += 1 + r[i]
    return i + 1
for _ in range(qd):
    i = skip_name(i) + 4
addrs = []
for _ in range(an):
    i = skip_name(i)
    rtype, _, _, n = struct.unpack("!HHIH", r[i : i + 10])
    if rtype == 1 and n == 4:
        addrs.append(socket.inet_ntoa(r[i + 10 : i + 14]))
    i += 10 + n
print("rcode-%d:%s" % (flags & 15, ",".join(addrs)))
'
QUIC_PY='
import errno, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(addr)
start = time.monotonic()
what = "timeout"
while time.monotonic() < start + 5:
    try:
        # The first byte of a QUIC long-header packet (an Initial).
        s.send(b"\xc3quic-initial\n")
        s.settimeout(0.5)
        what = s.recv(100).decode(errors="replace").split("\n")[0].strip()
        break
    except socket.timeout:
        pass
    except OSError as e:
        what = "refused" if e.errno == errno.ECONNREFUSED else "error-" + errno.errorcode.get(e.errno, str(e.errno))
        break
print("%s %d" % (what, (time.monotonic() - start) * 1000))
'
RAW_PY='
import errno, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
try:
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"SSH-2.0-nook-probe\r\n")
    s.settimeout(5)
    data = b""
    while b"\n" not in data:
        c = s.recv(200)
        if not c:
            break
        data += c
    print(data.decode(errors="replace").split("\n")[0].strip() or "silent")
except socket.timeout:
    print("timeout")
except OSError as e:
    if e.errno in (errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE):
        print("refused")
    else:
        print("error-" + errno.errorcode.get(e.errno, str(e.errno)))
'
OWN_PY='
import os, sys
def ppid(p):
    try:
        with open("/proc/%s/stat" % p) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None
def comm(p):
    try:
        with open("/proc/%s/comm" % p) as f:
            return f.read().strip()
    except OSError:
        return "?"
top = os.getpid()
while ppid(top) not in (1, None, 0):
    top = ppid(top)
pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
def ours(p):
    while p not in (None, 0, 1):
        if p == top:
            return True
        p = ppid(p)
    return False
others = ["%d:%s" % (p, comm(p)) for p in sorted(pids) if p != 1 and not ours(p)]
print("%s=%s" % (sys.argv[1], ",".join(others)))
print("%s_count=%d" % (sys.argv[1], len(pids)))
'
get() {
    k=$1; shift
    body=$(curl -ks --max-time 10 "$@" 2>/dev/null); rc=$?
    if [ "$rc" -eq 0 ]; then echo "$k=$body" | head -n1; else echo "$k=exit-$rc${body:+ $body}" | head -n1; fi
}
dns() { echo "$1=$(python3 -c "$DNS_PY" "$2" "$3" "$4")"; }
quic() { echo "$1=$(python3 -c "$QUIC_PY" "$2" "$3")"; }
raw() { echo "$1=$(python3 -c "$RAW_PY" "$2")"; }
own() { python3 -c "$OWN_PY" "$1"; }
"#;

type Answers = BTreeMap<String, String>;

/// `nook run ARGS -- sh -c TOOLS+SCRIPT` in the lab; the run must exit 0.
#[track_caller]
fn sandbox(env: &TestEnv, lab: &Lab, args: &[&str], script: &str) -> (Output, Answers) {
    common::lab::sandbox(env, lab, args, TOOLS, script)
}

/// With the gate: `--net user --net-allow ENTRY...`.
#[track_caller]
fn gated(env: &TestEnv, lab: &Lab, allow: &[&str], script: &str) -> (Output, Answers) {
    let mut args = vec!["--net", "user"];
    for a in allow {
        args.extend(["--net-allow", a]);
    }
    sandbox(env, lab, &args, script)
}

/// The control: `--net user` with no allow-list.
#[track_caller]
fn open(env: &TestEnv, lab: &Lab, script: &str) -> (Output, Answers) {
    sandbox(env, lab, &["--net", "user"], script)
}

/// `tls NAME at ADDR`, the HTTPS servers' answer.
fn tls(name: &str, addr: &str) -> String {
    format!("tls {name} at {addr}")
}

/// `http HOST at ADDR`, the HTTP servers' answer.
fn http(host: &str, addr: &str) -> String {
    format!("http {host} at {addr}")
}

/// A curl refused by the gate: it failed fast (not curl's timeout, 28),
/// not at name resolution (6), and no body came.
#[track_caller]
fn assert_refused(a: &Answers, key: &str, out: &Output) {
    let v = &a[key];
    let code: Option<u32> = v.strip_prefix("exit-").and_then(|c| c.parse().ok());
    assert!(
        matches!(code, Some(c) if c != 6 && c != 28),
        "{key} was not refused (want exit-CODE, no body, CODE not 6 or 28): {v:?}\n{a:?}\n{out}"
    );
}

/// The names the lab's DNS was asked about since `since` queries.
fn queries_since(lab: &Lab, since: usize) -> Vec<String> {
    lab.queries().into_iter().skip(since).collect()
}

#[test]
fn allowed_name_is_reached() {
    let env = TestEnv::new("gate-allowed");
    let Some(lab) = Lab::new() else { return };
    let (out, a) = gated(&env, &lab, &["pkg.test:443"], "get ok https://pkg.test/");
    assert_eq!(a["ok"], tls("pkg.test", SERVER_A), "{out}");
    // The stub asked the host's resolver (the lab's DNS) for it.
    assert!(
        lab.queries().iter().any(|q| q == "pkg.test"),
        "{:?}",
        lab.queries()
    );
}

#[test]
fn other_name_on_the_same_address_is_refused() {
    let env = TestEnv::new("gate-other");
    let Some(lab) = Lab::new() else { return };
    let script = "get name https://other.test/; \
                  get forced --resolve other.test:443:10.199.0.5 https://other.test/; \
                  get ok https://pkg.test/";
    // Control: without the list, both ways reach the server as other.test.
    let (out, a) = open(&env, &lab, script);
    assert_eq!(a["name"], tls("other.test", SERVER_A), "{out}");
    assert_eq!(a["forced"], tls("other.test", SERVER_A), "{out}");
    let before = lab.queries().len();
    let (out, a) = gated(&env, &lab, &["pkg.test:443"], script);
    // The lookup is refused by the stub (curl: "could not resolve")...
    assert_eq!(a["name"], "exit-6", "{out}");
    // ... and never leaves the sandbox.
    let asked = queries_since(&lab, before);
    assert!(
        !asked.iter().any(|q| q == "other.test"),
        "other.test reached the lab's DNS: {asked:?}"
    );
    // The address of an allowed name, with the other name in the ClientHello.
    assert_refused(&a, "forced", &out);
    // The allowed name still works in the same sandbox.
    assert_eq!(a["ok"], tls("pkg.test", SERVER_A), "{out}");
}

#[test]
fn pinning_tricks_are_refused() {
    let env = TestEnv::new("gate-pinning");
    let Some(lab) = Lab::new() else { return };
    let script = "get bare https://10.199.0.5/; \
                  get pinned --resolve pkg.test:443:10.199.0.6 https://pkg.test/; \
                  get plain http://pkg.test/; \
                  get forged -H 'Host: other.test' http://pkg.test/";
    // Control: without the list, each trick does what it says.
    let (out, a) = open(&env, &lab, script);
    assert_eq!(a["bare"], tls("none", SERVER_A), "{out}");
    assert_eq!(a["pinned"], tls("pkg.test", SERVER_B), "{out}");
    assert_eq!(a["plain"], http("pkg.test", SERVER_A), "{out}");
    assert_eq!(a["forged"], http("other.test", SERVER_A), "{out}");
    let (out, a) = gated(&env, &lab, &["pkg.test:443", "pkg.test:80"], script);
    // No server name: refused.
    assert_refused(&a, "bare", &out);
    // The client's choice of address is ignored: nook connects to the
    // address its stub resolved.
    assert_eq!(a["pinned"], tls("pkg.test", SERVER_A), "{out}");
    // Plain HTTP by the Host header.
    assert_eq!(a["plain"], http("pkg.test", SERVER_A), "{out}");
    assert_refused(&a, "forged", &out);
}

#[test]
fn dns_answers_only_allowed_names() {
    let env = TestEnv::new("gate-dns");
    let Some(lab) = Lab::new() else { return };
    // Control: the sandbox's resolver (pasta's forwarder) and the lab's
    // server itself answer any name, the server over UDP and TCP (the
    // pasta of Debian 12 forwards DNS over UDP only).
    let (out, a) = open(
        &env,
        &lab,
        "ns=$(sed -n 's/^nameserver //p' /etc/resolv.conf | head -n1); \
         dns fwd other.test $ns udp; \
         dns direct other.test 10.199.0.53 udp; dns directtcp other.test 10.199.0.53 tcp",
    );
    let real = format!("rcode-0:{SERVER_A}");
    for k in ["fwd", "direct", "directtcp"] {
        assert_eq!(a[k], real, "{k}\n{out}");
    }
    let before = lab.queries().len();
    let (out, a) = gated(
        &env,
        &lab,
        &["pkg.test:443"],
        "echo resolv=$(sed -n 's/^nameserver //p' /etc/resolv.conf | tr '\\n' ' '); \
         dns stub other.test 127.0.0.1 udp; dns stubtcp other.test 127.0.0.1 tcp; \
         dns ok pkg.test 127.0.0.1 udp; dns oktcp pkg.test 127.0.0.1 tcp; \
         dns direct other.test 10.199.0.53 udp; dns directtcp other.test 10.199.0.53 tcp; \
         dns captured pkg.test 10.199.0.53 udp",
    );
    assert_eq!(a["resolv"].trim(), "127.0.0.1", "{out}");
    // REFUSED (rcode 5), over UDP and TCP.
    assert_eq!(a["stub"], "rcode-5:", "{out}");
    assert_eq!(a["stubtcp"], "rcode-5:", "{out}");
    // An allowed name is answered, over UDP and TCP.
    assert_eq!(a["ok"], real, "{out}");
    assert_eq!(a["oktcp"], real, "{out}");
    // Straight to the lab's server: no real answer (the stub captures it).
    for k in ["direct", "directtcp"] {
        assert!(
            ["rcode-5:", "timeout", "refused"].contains(&a[k].as_str()),
            "{k} got a real answer: {}\n{out}",
            a[k]
        );
    }
    // Captured, an allowed name is still answered.
    assert_eq!(a["captured"], real, "{out}");
    let asked = queries_since(&lab, before);
    assert!(
        !asked.iter().any(|q| q == "other.test"),
        "other.test reached the lab's DNS: {asked:?}"
    );
    assert!(asked.iter().any(|q| q == "pkg.test"), "{asked:?}");
}

#[test]
fn wildcard_matches_subdomains_only() {
    let env = TestEnv::new("gate-wildcard");
    let Some(lab) = Lab::new() else { return };
    let script = "get a https://a.wild.test/; get ba https://b.a.wild.test/; \
                  get bare https://wild.test/; \
                  get barepinned --resolve wild.test:443:10.199.0.5 https://wild.test/";
    // Control: every name answers without the list.
    let (out, a) = open(&env, &lab, script);
    assert_eq!(a["bare"], tls("wild.test", SERVER_A), "{out}");
    assert_eq!(a["barepinned"], tls("wild.test", SERVER_A), "{out}");
    let (out, a) = gated(&env, &lab, &["*.wild.test:443"], script);
    assert_eq!(a["a"], tls("a.wild.test", SERVER_A), "{out}");
    assert_eq!(a["ba"], tls("b.a.wild.test", SERVER_A), "{out}");
    assert_eq!(a["bare"], "exit-6", "{out}");
    assert_refused(&a, "barepinned", &out);
}

/// The payload asks, waits for the test to move pkg.test to 10.199.0.6 (a
/// file `MARK` in the shared working directory), waits out the TTL (1 s)
/// and asks again; returns the two answers.
fn across_a_move(env: &TestEnv, lab: &Lab, args: &[&str], mark: &str) -> (String, String, Output) {
    lab.set_name("pkg.test", SERVER_A);
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--", "sh", "-c"].map(String::from));
    all.push(format!(
        "{TOOLS}\nget first https://pkg.test/; \
         until [ -e {mark} ]; do sleep 0.05; done; sleep 2.5; \
         get second https://pkg.test/"
    ));
    let mut run = env
        .run(&all)
        .in_netns(lab.pid())
        .timeout(Duration::from_secs(60))
        .spawn();
    run.wait_for_line("first=", Duration::from_secs(30));
    lab.set_name("pkg.test", SERVER_B);
    env.write(&env.path(mark), "");
    let out = run.wait(Duration::from_secs(60));
    out.ok();
    let a = answers(&out.stdout);
    (a["first"].clone(), a["second"].clone(), out)
}

#[test]
fn address_follows_dns() {
    let env = TestEnv::new("gate-follow");
    let Some(lab) = Lab::new() else { return };
    // Control: the lab moves the name, and a sandbox without the gate
    // follows (nothing on the way caches it).
    let (first, second, out) = across_a_move(&env, &lab, &["--net", "user"], "moved-open");
    assert_eq!(first, tls("pkg.test", SERVER_A), "{out}");
    assert_eq!(second, tls("pkg.test", SERVER_B), "{out}");
    // Through the gate: nook connects to what its stub resolved, and that
    // follows the name's move once the TTL is over.
    let (first, second, out) = across_a_move(
        &env,
        &lab,
        &["--net", "user", "--net-allow", "pkg.test:443"],
        "moved-gated",
    );
    assert_eq!(first, tls("pkg.test", SERVER_A), "{out}");
    assert_eq!(second, tls("pkg.test", SERVER_B), "{out}");
}

#[test]
fn quic_is_refused_at_once() {
    let env = TestEnv::new("gate-quic");
    let Some(lab) = Lab::new() else { return };
    // Control: without the list, the datagram reaches the lab's UDP :443.
    let (out, a) = open(&env, &lab, "quic q pkg.test 443");
    assert!(a["q"].starts_with("udp-443 "), "{out}");
    let (out, a) = gated(&env, &lab, &["pkg.test:443"], "quic q pkg.test 443");
    let (what, ms) = a["q"].split_once(' ').expect("WHAT MS");
    // The kernel answers a local sender's rejected datagram at once: EPERM
    // from the send itself, or ECONNREFUSED from the ICMP error.
    assert!(
        what == "refused" || what == "error-EPERM",
        "QUIC was not refused (ECONNREFUSED or EPERM): {what}\n{out}"
    );
    let ms: u64 = ms.parse().expect("milliseconds");
    assert!(ms < 1000, "the refusal took {ms} ms\n{out}");
}

#[test]
fn refusals_are_events_and_summary_lines() {
    let env = TestEnv::new("gate-events");
    let Some(lab) = Lab::new() else { return };
    // One lookup refused (one query, A only), two TLS connections with a
    // name not on the list, one without a name.
    let script = "dns lookup other.test 127.0.0.1 udp; \
                  get tls1 --resolve other.test:443:10.199.0.5 https://other.test/; \
                  get tls2 --resolve other.test:443:10.199.0.5 https://other.test/; \
                  get bare https://10.199.0.5/";
    let events = env.path("events.jsonl");
    let events_arg = events.display().to_string();
    // Control: without the list, nothing is refused and nothing is said.
    let (out, a) = sandbox(
        &env,
        &lab,
        &["--net", "user", "--events", &events_arg],
        &script.replace(
            "127.0.0.1",
            "$(sed -n 's/^nameserver //p' /etc/resolv.conf)",
        ),
    );
    assert_eq!(a["lookup"], format!("rcode-0:{SERVER_A}"), "{out}");
    assert_eq!(a["tls1"], tls("other.test", SERVER_A), "{out}");
    assert_eq!(a["bare"], tls("none", SERVER_A), "{out}");
    assert!(!out.stderr.contains("refused"), "{out}");
    assert!(denied(&events).is_empty(), "{:?}", denied(&events));

    let (out, a) = sandbox(
        &env,
        &lab,
        &[
            "--net",
            "user",
            "--net-allow",
            "pkg.test:443",
            "--events",
            &events_arg,
        ],
        script,
    );
    assert_eq!(a["lookup"], "rcode-5:", "{out}");
    for k in ["tls1", "tls2", "bare"] {
        assert_refused(&a, k, &out);
    }
    let denied = denied(&events);
    for e in &denied {
        for key in ["proto", "name", "addr", "port", "reason", "time"] {
            assert!(e.get(key).is_some(), "no {key} in {e}");
        }
        assert!(e["time"].is_number(), "{e}");
    }
    let find = |proto: &str, name: Option<&str>| -> Vec<&serde_json::Value> {
        denied
            .iter()
            .filter(|e| e["proto"] == proto && e["name"].as_str() == name)
            .collect()
    };
    let dns = find("dns", Some("other.test"));
    assert_eq!(dns.len(), 1, "one refused lookup: {denied:?}");
    assert_eq!(dns[0]["reason"], "not in the allow-list", "{denied:?}");
    let named = find("tls", Some("other.test"));
    assert_eq!(named.len(), 2, "two refused connections: {denied:?}");
    for e in &named {
        assert_eq!(e["port"], 443, "{e}");
        assert_eq!(e["reason"], "not in the allow-list", "{e}");
        assert!(
            e["addr"].is_null() || e["addr"] == SERVER_A,
            "the address is the one the client asked for, or none: {e}"
        );
    }
    let bare = find("tls", None);
    assert_eq!(bare.len(), 1, "one refused nameless connection: {denied:?}");
    assert_eq!(bare[0]["addr"], SERVER_A, "{denied:?}");
    assert_eq!(bare[0]["port"], 443, "{denied:?}");
    assert_eq!(bare[0]["reason"], "no server name", "{denied:?}");
    assert_eq!(denied.len(), 4, "nothing else was refused: {denied:?}");
    let said: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("nook: refused "))
        .collect();
    assert_eq!(said.len(), 3, "one line per destination: {said:?}\n{out}");
    for line in [
        "nook: refused 2 connections to other.test:443 (not in the allow-list)",
        "nook: refused 1 connection to 10.199.0.5:443 (no server name)",
        "nook: refused 1 lookup of other.test (not in the allow-list)",
    ] {
        assert!(
            out.stderr.lines().any(|l| l == line),
            "stderr lacks {line:?}\n{out}"
        );
    }
}

/// The `denied` events in the events file.
fn denied(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event line {l:?}: {e}")))
        .filter(|e: &serde_json::Value| e["event"] == "denied")
        .collect()
}

#[test]
fn gate_is_out_of_reach() {
    let env = TestEnv::new("gate-reach");
    let Some(lab) = Lab::new() else { return };
    let script = "own procs; \
                  sleep 60 & sibling=$!; \
                  get before https://pkg.test/; \
                  kill -9 -1; wait $sibling; echo sibling=$?; \
                  get after https://pkg.test/; \
                  /usr/sbin/nft flush ruleset 2>/tmp/nft.err; echo flush=$?; \
                  echo flusherr=$(head -n1 /tmp/nft.err); \
                  get other https://other.test/; \
                  get forced --resolve other.test:443:10.199.0.5 https://other.test/";
    // Control: kill -9 -1 reaches what the payload may signal (its own
    // sibling dies by SIGKILL: 128 + 9), and other.test answers.
    let (out, a) = open(&env, &lab, script);
    assert_eq!(a["sibling"], "137", "{out}");
    assert_eq!(a["procs"], "", "{out}");
    assert_eq!(a["forced"], tls("other.test", SERVER_A), "{out}");
    let (out, a) = gated(&env, &lab, &["pkg.test:443"], script);
    // Nothing but pid 1 and the payload's own processes is visible.
    assert_eq!(a["procs"], "", "processes not the payload's: {out}");
    assert_eq!(a["sibling"], "137", "{out}");
    assert_eq!(a["before"], tls("pkg.test", SERVER_A), "{out}");
    // The gate survived kill -9 -1.
    assert_eq!(a["after"], tls("pkg.test", SERVER_A), "{out}");
    // The rules can't be flushed: no CAP_NET_ADMIN.
    assert_ne!(a["flush"], "0", "{out}");
    assert!(
        a["flusherr"].contains("Operation not permitted"),
        "nft failed for another reason: {out}"
    );
    // And other.test stays refused after both attempts.
    assert_eq!(a["other"], "exit-6", "{out}");
    assert_refused(&a, "forced", &out);
}

#[test]
fn ip_entries_admit_any_protocol() {
    let env = TestEnv::new("gate-ip");
    let Some(lab) = Lab::new() else { return };
    let script = format!(
        "{}\nget forged -H 'Host: other.test' http://10.199.0.5/; \
         raw raw 10.199.0.5:80; udp udp 10.199.0.5:8003; raw unlisted 10.199.0.6:80",
        common::lab::PROBES
    );
    // Control: without the list, all four get through.
    let (out, a) = open(&env, &lab, &script);
    assert_eq!(a["forged"], http("other.test", SERVER_A), "{out}");
    assert!(a["raw"].starts_with("HTTP/"), "{out}");
    assert_eq!(a["udp"], "udp-10.199.0.5", "{out}");
    assert!(a["unlisted"].starts_with("HTTP/"), "{out}");
    // An address and a network beside a name: what the address entries
    // admit is neither sniffed nor named.
    let (out, a) = gated(
        &env,
        &lab,
        &["pkg.test:443", "10.199.0.5:80", "10.199.0.0/24:8003"],
        &script,
    );
    assert_eq!(a["forged"], http("other.test", SERVER_A), "{out}");
    assert!(
        a["raw"].starts_with("HTTP/") && a["raw"].contains(" 400 "),
        "a non-HTTP client to an allowed address: {out}"
    );
    assert_eq!(a["udp"], "udp-10.199.0.5", "{out}");
    // An address on no entry and returned for no allowed name.
    assert_eq!(a["unlisted"], "refused", "{out}");
}

#[test]
fn other_protocols_reach_only_addresses_of_allowed_names() {
    let env = TestEnv::new("gate-other-proto");
    let Some(lab) = Lab::new() else { return };
    // An SSH-like client to pkg.test:80 (resolved just before, through the
    // sandbox's resolver), and to 10.199.0.6:80, which no allowed name has.
    let script = "raw named pkg.test:80; raw unnamed 10.199.0.6:80";
    // Control: both reach the web servers (which answer 400 to it).
    let (out, a) = open(&env, &lab, script);
    assert!(a["named"].starts_with("HTTP/"), "{out}");
    assert!(a["unnamed"].starts_with("HTTP/"), "{out}");
    let (out, a) = gated(&env, &lab, &["pkg.test:80"], script);
    assert!(
        a["named"].starts_with("HTTP/") && a["named"].contains(" 400 "),
        "an address the stub returned for an allowed name: {out}"
    );
    assert_eq!(a["unnamed"], "refused", "{out}");
}

/// `nook learn` behind the gate: a name the run was refused is proposed
/// for the allow-list, and the learned profile lets the same command
/// reach it (by name, through the gate).
#[test]
fn learn_proposes_the_names_a_run_was_refused() {
    let env = TestEnv::new("gate-learn");
    let Some(lab) = Lab::new() else { return };
    let base = env.path("base.toml");
    env.write(
        &base,
        "[network]\nnet = \"user\"\nnet-allow = [\"pkg.test:443\"]\n",
    );
    let state = env.dir.join("state");
    let script = "curl -ks --max-time 5 https://other.test/";
    let out = env
        .nook(&[
            "learn",
            "--profile",
            base.to_str().unwrap(),
            "--output",
            "learned.toml",
            "--",
            "sh",
            "-c",
            script,
        ])
        .in_netns(lab.pid())
        .env("XDG_STATE_HOME", state.to_str().unwrap())
        .timeout(Duration::from_secs(60))
        .output();
    out.ok();
    let text = std::fs::read_to_string(env.path("learned.toml")).expect("learn wrote a profile");
    let allow = text
        .split_once("net-allow = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("no net-allow proposed:\n{text}"));
    assert!(allow.contains("\"other.test"), "{text}");
    assert!(
        !lab.queries().iter().any(|q| q == "other.test"),
        "the refused name went out"
    );
    let out = env
        .run(&["--profile", "./learned.toml", "--", "sh", "-c", script])
        .in_netns(lab.pid())
        .env("XDG_STATE_HOME", state.to_str().unwrap())
        .timeout(Duration::from_secs(60))
        .output();
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        tls("other.test", SERVER_A),
        "{out}\n{text}"
    );
}

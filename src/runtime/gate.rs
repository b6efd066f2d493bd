//! The egress gate (see `plan::GatePlan`): a child of the supervisor that
//! joins the sandbox's user and network namespaces, so it holds every
//! capability there while the payload holds none, yet lives in the host's
//! pid namespace, where the payload can't see, signal or trace it.
//!
//! In the sandbox's namespace it installs the capture rules, then serves:
//! - DNS on 127.0.0.1:53 and [::1]:53 (UDP and TCP): a query for an
//!   allowed name goes to the helper's forwarder from a socket carrying
//!   the gate's mark, and the addresses of its answer are learned; any
//!   other name gets REFUSED and goes nowhere;
//! - every captured TCP connection on GATE_PORT: admitted by the name its
//!   first bytes carry (TLS server name, HTTP Host) and connected to that
//!   name's addresses as the stub knows them, or, for other protocols, by
//!   an address the stub gave for an allowed name. The bytes then move
//!   with splice(2), never through user space.
//!
//! Every refusal is an event, and counted: at the end the supervisor gets
//! the counts for its summary.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Step, StepError};
use crate::net::dns;
use crate::net::sniff::{MAX_SNIFF, Sniff, sniff};
use crate::net::{GATE_MARK, GATE_PORT, NameRule};
use crate::plan::GatePlan;
use crate::runtime::events::{Event, Events};
use crate::runtime::relay::{THREAD_STACK, pump};
use crate::runtime::side::{Ends, Side, enter_sandbox_net, ready_within};
use crate::runtime::trace;
use crate::state::trace::NetDenial;
use crate::sys;

/// How long a client may take to send its first bytes before the gate
/// decides by address (a protocol where the server speaks first).
const FIRST_BYTES: Duration = Duration::from_secs(1);
/// How long a client may take to send a whole ClientHello or request head.
const WHOLE_HEAD: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DNS_TIMEOUT: Duration = Duration::from_millis(2500);
/// A learned address stays usable this long past its TTL for protocols
/// admitted by address: the client's lookup and its connect are a moment
/// apart, and clients round TTLs up.
const ADDRESS_GRACE: Duration = Duration::from_secs(5);

pub const NOT_ALLOWED: &str = "not in the allow-list";

#[derive(Debug, Serialize, Deserialize)]
enum FromGate {
    Ready,
    Failed(StepError),
    Refused(Vec<NetDenial>),
}

/// The supervisor's handle on a running gate.
pub struct Gate(Side);

impl Gate {
    /// Start the gate against init's namespaces; returns once it listens
    /// (or with the step it failed at).
    pub fn start(plan: &GatePlan, init: Pid, events: &Events, v: bool) -> Result<Gate, StepError> {
        let mut side = Side::fork(Step::StartGate, |ends| child(plan, init, events, v, ends))?;
        match side.hear::<FromGate>(READY_TIMEOUT) {
            Some(FromGate::Ready) => Ok(Gate(side)),
            Some(FromGate::Failed(e)) => {
                side.stop::<FromGate>();
                Err(e)
            }
            _ => {
                side.stop::<FromGate>();
                Err(StepError::failed(Step::StartGate, None)
                    .hint("the gate ended, or did not get ready in 10 s, before it listened"))
            }
        }
    }

    /// Stop the gate and return what it refused, per destination (what
    /// the exit summary says, and a trace keeps).
    pub fn stop(self) -> Vec<NetDenial> {
        match self.0.stop::<FromGate>() {
            Some(FromGate::Refused(r)) => r,
            _ => Vec::new(),
        }
    }
}

/// The gate process: set up, say so, serve until the supervisor closes
/// `stop`, then send the refusals.
fn child(plan: &GatePlan, init: Pid, events: &Events, v: bool, ends: Ends) -> i32 {
    let Ends { stop, mut tx } = ends;
    let sockets = match setup(plan, init) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(&FromGate::Failed(e));
            return 1;
        }
    };
    // From here on the gate reads hostile bytes: it keeps no way to the
    // user's files (it has no need), whatever a bug in it might try.
    let confined = super::side::confine();
    trace(v, "gate", format_args!("listening; landlock: {}", confined));
    if tx.send(&FromGate::Ready).is_err() {
        return 1;
    }
    let shared = Shared {
        names: &plan.names,
        upstream: plan.upstream,
        events,
        learned: Mutex::new(HashMap::new()),
        refused: Mutex::new(BTreeMap::new()),
        next_id: Mutex::new(0x6e6f),
    };
    serve(&shared, &sockets, stop.as_fd(), || {
        let _ = tx.send(&FromGate::Refused(shared.refusals()));
    })
}

struct Sockets {
    udp: Vec<UdpSocket>,
    dns: Vec<TcpListener>,
    gate: Vec<TcpListener>,
}

fn setup(plan: &GatePlan, init: Pid) -> Result<Sockets, StepError> {
    enter_sandbox_net(init)?;
    crate::net::install_rules(&plan.nft, &plan.rules)?;
    let mut s = Sockets {
        udp: Vec::new(),
        dns: Vec::new(),
        gate: Vec::new(),
    };
    // IPv4 must work; IPv6 loopback may be missing (disabled on the host).
    for (ip, needed) in [
        (IpAddr::from([127, 0, 0, 1]), true),
        ("::1".parse().unwrap(), false),
    ] {
        let at = |port| SocketAddr::new(ip, port);
        let err = |e: std::io::Error, port| {
            StepError::io(Step::GateListen, None, &e).detail(at(port).to_string())
        };
        match UdpSocket::bind(at(53)) {
            Ok(u) => s.udp.push(u),
            Err(e) if needed => return Err(err(e, 53)),
            Err(_) => continue,
        }
        s.dns
            .push(TcpListener::bind(at(53)).map_err(|e| err(e, 53))?);
        // Last: init waits for this port to listen.
        s.gate
            .push(TcpListener::bind(at(GATE_PORT)).map_err(|e| err(e, GATE_PORT))?);
    }
    Ok(s)
}

/// What the gate's threads share.
struct Shared<'a> {
    names: &'a [NameRule],
    upstream: SocketAddr,
    events: &'a Events,
    /// Name -> addresses its answers gave, with when each expires.
    learned: Mutex<HashMap<String, Vec<(IpAddr, Instant)>>>,
    refused: Mutex<BTreeMap<(bool, String, String), u32>>,
    next_id: Mutex<u16>,
}

/// One refusal: what it was, for the event and the summary.
struct Denied {
    proto: &'static str,
    name: Option<String>,
    addr: Option<IpAddr>,
    port: u16,
    reason: &'static str,
}

impl Shared<'_> {
    fn allowed_name(&self, name: &str) -> bool {
        self.names.iter().any(|r| r.pattern.matches(name))
    }

    fn refuse(&self, d: Denied) {
        self.events.emit(Event::Denied {
            proto: d.proto,
            name: d.name.as_deref(),
            addr: d.addr,
            port: d.port,
            reason: d.reason,
        });
        let lookup = d.proto == "dns";
        let dest = match (&d.name, d.addr) {
            (Some(n), _) if lookup => n.clone(),
            (Some(n), _) => format!("{n}:{}", d.port),
            (None, Some(a)) => SocketAddr::new(a, d.port).to_string(),
            (None, None) => format!("port {}", d.port),
        };
        if let Ok(mut m) = self.refused.lock() {
            *m.entry((lookup, dest, d.reason.to_string())).or_default() += 1;
        }
    }

    fn refusals(&self) -> Vec<NetDenial> {
        let Ok(m) = self.refused.lock() else {
            return Vec::new();
        };
        m.iter()
            .map(|((lookup, dest, reason), count)| NetDenial {
                lookup: *lookup,
                dest: dest.clone(),
                reason: reason.clone(),
                count: *count,
            })
            .collect()
    }

    fn learn(&self, name: &str, answer: &dns::Answer) {
        let now = Instant::now();
        let Ok(mut m) = self.learned.lock() else {
            return;
        };
        // Forget what expired long ago, so a long run doesn't grow.
        m.retain(|_, v| {
            v.retain(|(_, t)| *t + ADDRESS_GRACE > now);
            !v.is_empty()
        });
        let list = m.entry(name.to_string()).or_default();
        for (ip, ttl) in &answer.addrs {
            let until = now + Duration::from_secs(u64::from((*ttl).max(1)));
            match list.iter_mut().find(|(a, _)| a == ip) {
                Some(e) => e.1 = e.1.max(until),
                None => list.push((*ip, until)),
            }
        }
    }

    /// The addresses of `name` as the stub learned them, still within
    /// their TTL; asked upstream when there are none.
    fn addresses(&self, name: &str) -> Vec<IpAddr> {
        let now = Instant::now();
        let known: Vec<IpAddr> = self
            .learned
            .lock()
            .map(|m| {
                m.get(name)
                    .map(|v| {
                        v.iter()
                            .filter(|(_, t)| *t > now)
                            .map(|(a, _)| *a)
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        if !known.is_empty() {
            return known;
        }
        let mut found = Vec::new();
        for qtype in [dns::TYPE_A, dns::TYPE_AAAA] {
            let id = self.next_id.lock().map_or(1, |mut n| {
                *n = n.wrapping_add(1);
                *n
            });
            let Some(query) = dns::query(id, name, qtype) else {
                continue;
            };
            let q = dns::Query {
                id,
                name: name.to_string(),
                qtype,
                qclass: dns::CLASS_IN,
            };
            if let Some(resp) = self.ask_upstream(&query)
                && let Ok(a) = dns::check_response(&resp, &q)
            {
                self.learn(name, &a);
                found.extend(a.addrs.iter().map(|(ip, _)| *ip));
            }
        }
        found
    }

    /// Whether `ip` is an address the stub gave for a name `rules` admit at
    /// `port`.
    fn learned_address(&self, ip: IpAddr, port: u16) -> bool {
        let now = Instant::now();
        self.learned.lock().is_ok_and(|m| {
            m.iter().any(|(name, v)| {
                v.iter().any(|(a, t)| *a == ip && *t + ADDRESS_GRACE > now)
                    && self.names.iter().any(|r| r.admits(name, port))
            })
        })
    }

    /// A query to the helper's forwarder, from a socket with the gate's
    /// mark; the raw answer. Truncated UDP answers are asked again over
    /// TCP.
    fn ask_upstream(&self, query: &[u8]) -> Option<Vec<u8>> {
        let udp = (|| -> std::io::Result<Vec<u8>> {
            let s = marked(self.upstream, socket2::Type::DGRAM)?;
            s.connect(&self.upstream.into())?;
            s.set_read_timeout(Some(DNS_TIMEOUT / 2))?;
            let s: UdpSocket = s.into();
            let mut buf = vec![0u8; 65535];
            for _ in 0..2 {
                s.send(query)?;
                match s.recv(&mut buf) {
                    Ok(n) => return Ok(buf[..n].to_vec()),
                    Err(e) if is_timeout(&e) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(std::io::ErrorKind::TimedOut.into())
        })()
        .ok()?;
        let truncated = udp.len() > 2 && udp[2] & 0x02 != 0;
        if !truncated {
            return Some(udp);
        }
        (|| -> std::io::Result<Vec<u8>> {
            let mut s = connect_marked(self.upstream, DNS_TIMEOUT)?;
            s.set_read_timeout(Some(DNS_TIMEOUT))?;
            let mut framed = (query.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            s.write_all(&framed)?;
            read_framed(&mut s)
        })()
        .ok()
        .or(Some(udp))
    }

    /// The stub's answer to one query (None: say nothing, the client
    /// asks again).
    fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let q = match dns::parse_query(query) {
            Ok(q) => q,
            Err(_) => return dns::refused(query),
        };
        if !self.allowed_name(&q.name) {
            self.refuse(Denied {
                proto: "dns",
                name: Some(q.name.clone()),
                addr: None,
                port: 53,
                reason: NOT_ALLOWED,
            });
            return dns::refused(query);
        }
        // HTTPS and SVCB records carry ECH keys, which would hide the
        // server name from the gate.
        if q.qtype == dns::TYPE_HTTPS || q.qtype == dns::TYPE_SVCB {
            return dns::no_data(query);
        }
        let resp = self.ask_upstream(query)?;
        let answer = dns::check_response(&resp, &q).ok()?;
        self.learn(&q.name, &answer);
        Some(resp)
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A socket whose packets carry the gate's mark: the capture rules let
/// them out as they are.
fn marked(to: SocketAddr, kind: socket2::Type) -> std::io::Result<socket2::Socket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(to), kind, None)?;
    s.set_mark(GATE_MARK)?;
    Ok(s)
}

fn connect_marked(to: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = marked(to, socket2::Type::STREAM)?;
    s.connect_timeout(&to.into(), timeout)?;
    s.set_tcp_nodelay(true)?;
    Ok(s.into())
}

/// A connection to `to` started and not waited for.
fn start_connect(to: SocketAddr) -> Option<socket2::Socket> {
    let s = marked(to, socket2::Type::STREAM).ok()?;
    s.set_nonblocking(true).ok()?;
    match s.connect(&to.into()) {
        Ok(()) => Some(s),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Some(s),
        Err(_) => None,
    }
}

/// Wait for a started connection; the stream once it stands.
fn finish_connect(s: socket2::Socket) -> Option<TcpStream> {
    if !ready_within(s.as_fd(), PollFlags::POLLOUT, CONNECT_TIMEOUT)
        || s.take_error().ok()?.is_some()
    {
        return None;
    }
    s.set_nonblocking(false).ok()?;
    s.set_tcp_nodelay(true).ok()?;
    Some(s.into())
}

/// One DNS message over TCP: a two-byte length, then the message.
fn read_framed(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg)?;
    Ok(msg)
}

/// The main loop: accept and hand each query or connection to a thread of
/// its own, until `stop` hangs up; then `report` and exit at once (the
/// sandbox is gone, and a connection thread still waiting on a peer has
/// nothing left to give).
fn serve(
    shared: &Shared<'_>,
    s: &Sockets,
    stop: std::os::fd::BorrowedFd<'_>,
    report: impl FnOnce(),
) -> ! {
    std::thread::scope(|scope| {
        loop {
            let mut fds: Vec<PollFd<'_>> = vec![PollFd::new(stop, PollFlags::POLLIN)];
            fds.extend(
                s.udp
                    .iter()
                    .map(|u| PollFd::new(u.as_fd(), PollFlags::POLLIN)),
            );
            fds.extend(
                s.dns
                    .iter()
                    .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN)),
            );
            fds.extend(
                s.gate
                    .iter()
                    .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
                Ok(_) => {}
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if ready[0] {
                break;
            }
            let mut i = 1;
            for u in &s.udp {
                if ready[i] {
                    let mut buf = vec![0u8; 4096];
                    if let Ok((n, peer)) = u.recv_from(&mut buf) {
                        buf.truncate(n);
                        spawn_in(scope, move || {
                            if let Some(reply) = shared.answer(&buf) {
                                let _ = u.send_to(&reply, peer);
                            }
                        });
                    }
                }
                i += 1;
            }
            for l in &s.dns {
                if ready[i]
                    && let Ok((c, _)) = l.accept()
                {
                    spawn_in(scope, move || dns_over_tcp(shared, c));
                }
                i += 1;
            }
            for l in &s.gate {
                if ready[i]
                    && let Ok((c, _)) = l.accept()
                {
                    spawn_in(scope, move || connection(shared, c));
                }
                i += 1;
            }
        }
        // Inside the scope, whose end would wait for every thread.
        report();
        sys::exit_now(0)
    })
}

/// A thread for one query or connection; none when the system has no
/// more to give (that client then waits, and retries or fails).
fn spawn_in<'scope, F: FnOnce() + Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    f: F,
) {
    let _ = std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn_scoped(scope, f);
}

fn dns_over_tcp(shared: &Shared<'_>, mut c: TcpStream) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    while let Ok(query) = read_framed(&mut c) {
        let Some(reply) = shared.answer(&query) else {
            return;
        };
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if c.write_all(&framed).is_err() {
            return;
        }
    }
}

/// Where the payload meant to connect, before the capture rewrote it.
fn original_destination(c: &TcpStream) -> Option<SocketAddr> {
    use nix::sys::socket::{getsockopt, sockopt};
    match c.local_addr().ok()? {
        SocketAddr::V4(_) => {
            let a = getsockopt(c, sockopt::OriginalDst).ok()?;
            Some(SocketAddr::new(
                IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()),
                u16::from_be(a.sin_port),
            ))
        }
        SocketAddr::V6(_) => {
            let a = getsockopt(c, sockopt::Ip6tOriginalDst).ok()?;
            Some(SocketAddr::new(
                IpAddr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
            ))
        }
    }
}

/// Wait for the client's first bytes and read what they say, without
/// taking them from the socket (MSG_PEEK): the server gets them as sent.
fn peek(c: &TcpStream) -> Sniff {
    if !ready_within(c.as_fd(), PollFlags::POLLIN, FIRST_BYTES) {
        return Sniff::Other;
    }
    let deadline = Instant::now() + WHOLE_HEAD;
    let mut buf = vec![0u8; MAX_SNIFF];
    let mut seen = 0;
    loop {
        let n = match c.peek(&mut buf) {
            Ok(0) | Err(_) => return Sniff::Bad("the client closed the connection"),
            Ok(n) => n,
        };
        match sniff(&buf[..n]) {
            Sniff::NeedMore if n < MAX_SNIFF && Instant::now() < deadline => {
                // More is on its way; MSG_PEEK can't wait for it, so look
                // again shortly (a ClientHello rarely comes in two parts).
                if n == seen {
                    std::thread::sleep(Duration::from_millis(2));
                }
                seen = n;
            }
            Sniff::NeedMore => return Sniff::Bad("incomplete request"),
            other => return other,
        }
    }
}

/// Decide on one captured connection: where to connect, or why not.
fn decide(shared: &Shared<'_>, c: &TcpStream, to: SocketAddr) -> Result<Vec<SocketAddr>, Denied> {
    let port = to.port();
    let denied = |proto, name: Option<String>, reason| Denied {
        proto,
        addr: name.is_none().then_some(to.ip()),
        name,
        port,
        reason,
    };
    if !shared
        .names
        .iter()
        .any(|r| r.port.is_none_or(|p| p == port))
    {
        return Err(denied("tcp", None, NOT_ALLOWED));
    }
    let (proto, name) = match peek(c) {
        Sniff::Tls { ech: true, sni } => return Err(denied("tls", sni, "encrypted ClientHello")),
        Sniff::Tls { sni: None, .. } => return Err(denied("tls", None, "no server name")),
        Sniff::Http { host: None } => return Err(denied("http", None, "no Host header")),
        Sniff::Bad(why) => return Err(denied("tcp", None, why)),
        Sniff::Tls { sni: Some(n), .. } => ("tls", n),
        Sniff::Http { host: Some(n) } => ("http", n),
        Sniff::Other | Sniff::NeedMore => {
            return if shared.learned_address(to.ip(), port) {
                Ok(vec![to])
            } else {
                Err(denied("tcp", None, NOT_ALLOWED))
            };
        }
    };
    if !shared.names.iter().any(|r| r.admits(&name, port)) {
        return Err(denied(proto, Some(name), NOT_ALLOWED));
    }
    let mut addrs = shared.addresses(&name);
    if addrs.is_empty() {
        return Err(denied(proto, Some(name), "the name has no address"));
    }
    // The client's address family first: it may have no route for the
    // other.
    addrs.sort_by_key(|a| a.is_ipv4() != to.is_ipv4());
    Ok(addrs
        .into_iter()
        .map(|a| SocketAddr::new(a, port))
        .collect())
}

fn connection(shared: &Shared<'_>, client: TcpStream) {
    let Some(to) = original_destination(&client) else {
        return;
    };
    // The usual case: the client connects to an address the stub just gave
    // it for an allowed name. The connection there starts now, while the
    // client's first bytes are on their way, and is kept if the name they
    // carry has that address (one round trip less before the first byte).
    let early = shared
        .learned_address(to.ip(), to.port())
        .then(|| start_connect(to))
        .flatten();
    let targets = match decide(shared, &client, to) {
        Ok(t) => t,
        Err(d) => {
            shared.refuse(d);
            // A reset, not a polite close: the client sees a refusal.
            let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
            return;
        }
    };
    let early = early
        .filter(|_| targets.contains(&to))
        .and_then(finish_connect);
    let Some(server) = early.or_else(|| {
        targets
            .iter()
            .find_map(|t| connect_marked(*t, CONNECT_TIMEOUT).ok())
    }) else {
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        return;
    };
    let _ = client.set_nodelay(true);
    std::thread::scope(|s| {
        spawn_in(s, || pump(&client, &server));
        pump(&server, &client);
    });
}

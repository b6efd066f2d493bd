//! The outbound allow-list: entries parsed (names are never resolved
//! here: the gate resolves them through its own stub, when the sandbox
//! asks), and the nftables ruleset for the sandbox's own network
//! namespace that sends every outbound TCP connection and DNS query to
//! the gate. The payload holds no CAP_NET_ADMIN there, so it can't change
//! the rules; only the gate's sockets carry the mark that passes them.

use std::fmt::Write;
use std::net::IpAddr;

use serde::Serialize;

use crate::net::names::NamePattern;

/// One allowed address or network, maybe one port (TCP and UDP): the
/// kernel admits it without the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Egress {
    pub net: IpAddr,
    pub prefix: u8,
    pub port: Option<u16>,
}

/// One allowed name (exact or `*.DOMAIN`), maybe one port: the gate
/// admits DNS for it, and TCP connections that carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameRule {
    pub pattern: NamePattern,
    pub port: Option<u16>,
}

impl NameRule {
    pub fn admits(&self, name: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.pattern.matches(name)
    }
}

impl std::fmt::Display for NameRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.pattern),
            None => write!(f, "{}", self.pattern),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Addr(Egress),
    Name(NameRule),
}

const EXPECTED: &str = "expected HOST[:PORT], *.DOMAIN[:PORT], IP[:PORT], CIDR[:PORT] or [IPv6][:PORT], with PORT 1 to 65535";

/// Parse one entry.
pub fn parse(s: &str) -> Result<Entry, String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or(EXPECTED.to_string())
    };
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(EXPECTED)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(port(p)?),
            None if after.is_empty() => None,
            None => return Err(EXPECTED.into()),
        };
        (inside.to_string(), port)
    } else if s.parse::<IpAddr>().is_ok() || (s.contains('/') && s.matches(':').count() > 1) {
        // A bare IPv6 address or network: no room for a port.
        (s.to_string(), None)
    } else {
        match s.rsplit_once(':') {
            Some((a, p)) => (a.to_string(), Some(port(p)?)),
            None => (s.to_string(), None),
        }
    };
    if let Some((ip, prefix)) = addr.split_once('/') {
        let ip: IpAddr = ip.parse().map_err(|_| EXPECTED.to_string())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|&p| p <= max)
            .ok_or(format!("{EXPECTED}; the prefix length must be 0 to {max}"))?;
        return Ok(Entry::Addr(Egress {
            net: ip,
            prefix,
            port,
        }));
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Ok(Entry::Addr(Egress {
            net: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
            port,
        }));
    }
    let pattern = NamePattern::parse(&addr).map_err(|e| format!("{EXPECTED}: {e}"))?;
    Ok(Entry::Name(NameRule { pattern, port }))
}

/// The port the gate listens on for captured TCP, on the sandbox's
/// loopback: below 1024, so the payload (no capability) could never bind
/// it first even if it ran before the gate.
pub const GATE_PORT: u16 = 1023;

/// The socket mark that only the gate can set (SO_MARK needs
/// CAP_NET_ADMIN in the namespace's owner): its own upstream traffic.
pub const GATE_MARK: u32 = 0x6e6f_6f6b;

/// The nftables ruleset for the sandbox's namespace, in two chains.
/// `capture` (nat, before routing's last word): the gate's own traffic,
/// loopback and the allowed addresses pass; DNS to any server goes to the
/// stub; every other TCP connection goes to the gate. `output` (filter):
/// what may leave: loopback (where the captured traffic now goes), the
/// gate's traffic, replies, IPv6 neighbour discovery, the allowed
/// addresses; QUIC gets a port-unreachable so clients fall back to TCP at
/// once; everything else is rejected (not dropped: a refusal is fast).
pub fn nft_ruleset(allow: &[Egress]) -> String {
    let mut r = String::new();
    let w = &mut r;
    let _ = writeln!(w, "table inet nook {{");
    let _ = writeln!(w, "  chain capture {{");
    let _ = writeln!(w, "    type nat hook output priority -100; policy accept;");
    let _ = writeln!(w, "    meta mark {GATE_MARK:#x} return");
    let _ = writeln!(w, "    ip daddr 127.0.0.0/8 return");
    let _ = writeln!(w, "    ip6 daddr ::1 return");
    for e in allow {
        let _ = writeln!(w, "    {} return", addr_match(e));
    }
    let _ = writeln!(
        w,
        "    meta l4proto {{ tcp, udp }} th dport 53 redirect to :53"
    );
    let _ = writeln!(w, "    meta l4proto tcp redirect to :{GATE_PORT}");
    let _ = writeln!(w, "  }}");
    let _ = writeln!(w, "  chain output {{");
    let _ = writeln!(w, "    type filter hook output priority 0; policy drop;");
    // The capture's rewrite shows here as a loopback destination while
    // the interface is still the one first routed to.
    let _ = writeln!(w, "    oifname \"lo\" accept");
    let _ = writeln!(w, "    ip daddr 127.0.0.0/8 accept");
    let _ = writeln!(w, "    ip6 daddr ::1 accept");
    let _ = writeln!(w, "    meta mark {GATE_MARK:#x} accept");
    let _ = writeln!(w, "    ct state established,related accept");
    let _ = writeln!(
        w,
        "    icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit }} accept"
    );
    for e in allow {
        let _ = writeln!(w, "    {} accept", addr_match(e));
    }
    let _ = writeln!(
        w,
        "    udp dport 443 reject with icmpx type port-unreachable"
    );
    let _ = writeln!(w, "    meta l4proto tcp reject with tcp reset");
    let _ = writeln!(w, "    reject with icmpx type admin-prohibited");
    let _ = writeln!(w, "  }}");
    let _ = writeln!(w, "}}");
    r
}

fn addr_match(e: &Egress) -> String {
    let fam = if e.net.is_ipv4() { "ip" } else { "ip6" };
    match e.port {
        Some(p) => format!(
            "{fam} daddr {}/{} meta l4proto {{ tcp, udp }} th dport {p}",
            e.net, e.prefix
        ),
        None => format!("{fam} daddr {}/{}", e.net, e.prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> (String, u8, Option<u16>) {
        match parse(s).unwrap() {
            Entry::Addr(e) => (e.net.to_string(), e.prefix, e.port),
            Entry::Name(n) => panic!("{s} parsed as the name {n}"),
        }
    }

    #[test]
    fn entries_of_every_form() {
        assert_eq!(one("10.1.2.3"), ("10.1.2.3".into(), 32, None));
        assert_eq!(one("10.1.2.3:443"), ("10.1.2.3".into(), 32, Some(443)));
        assert_eq!(one("10.0.0.0/8"), ("10.0.0.0".into(), 8, None));
        assert_eq!(one("10.0.0.0/8:22"), ("10.0.0.0".into(), 8, Some(22)));
        assert_eq!(one("2001:db8::1"), ("2001:db8::1".into(), 128, None));
        assert_eq!(one("2001:db8::/32"), ("2001:db8::".into(), 32, None));
        assert_eq!(
            one("[2001:db8::1]:443"),
            ("2001:db8::1".into(), 128, Some(443))
        );
        assert_eq!(
            one("[2001:db8::/48]:53"),
            ("2001:db8::".into(), 48, Some(53))
        );
        let Entry::Name(n) = parse("Registry.example:443").unwrap() else {
            panic!("a name");
        };
        assert_eq!(n.to_string(), "registry.example:443");
        assert!(n.admits("registry.example", 443));
        assert!(!n.admits("registry.example", 80));
        let Entry::Name(w) = parse("*.example.org").unwrap() else {
            panic!("a wildcard");
        };
        assert!(w.admits("a.b.example.org", 22));
        assert!(!w.admits("example.org", 22));
        for bad in [
            "10.0.0.0/33",
            "host:0",
            "host:x",
            "bad name",
            "[::1",
            "*",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ruleset_passes_the_gate_and_the_allowed_then_captures() {
        let Entry::Addr(e) = parse("10.0.0.0/8:22").unwrap() else {
            panic!("an address");
        };
        let r = nft_ruleset(&[e]);
        let capture = r.split("chain output").next().unwrap();
        let order: Vec<usize> = [
            "meta mark 0x6e6f6f6b return",
            "ip daddr 10.0.0.0/8 meta l4proto { tcp, udp } th dport 22 return",
            "th dport 53 redirect to :53",
            "meta l4proto tcp redirect to :1023",
        ]
        .iter()
        .map(|s| {
            capture
                .find(s)
                .unwrap_or_else(|| panic!("{s} in {capture}"))
        })
        .collect();
        assert!(order.is_sorted(), "{capture}");
        assert!(r.contains("ip daddr 10.0.0.0/8 meta l4proto { tcp, udp } th dport 22 accept"));
        assert!(r.contains("udp dport 443 reject with icmpx type port-unreachable"));
        assert!(
            r.trim_end()
                .ends_with("reject with icmpx type admin-prohibited\n  }\n}")
        );
    }
}

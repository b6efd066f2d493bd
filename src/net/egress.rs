//! The outbound allow-list: entries parsed and host names resolved by nook
//! (once, at start), then turned into an nftables ruleset for the
//! sandbox's own network namespace. The payload holds no CAP_NET_ADMIN, so
//! it can't change the rules; nothing depends on proxy variables.

use std::fmt::Write;
use std::net::{IpAddr, ToSocketAddrs};

use serde::Serialize;

/// One allowed destination: an address or network, maybe one port (TCP
/// and UDP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Egress {
    pub net: IpAddr,
    pub prefix: u8,
    pub port: Option<u16>,
    /// The host name this address was resolved from.
    pub name: Option<String>,
}

/// Why an entry can't be used: it is malformed (always an error), or its
/// name did not resolve now (a warning unless --strict: the list is then
/// shorter, never longer).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntryError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot resolve {name}: {cause}")]
    Unresolved { name: String, cause: String },
}

impl From<&str> for EntryError {
    fn from(s: &str) -> Self {
        EntryError::Invalid(s.to_string())
    }
}

impl From<String> for EntryError {
    fn from(s: String) -> Self {
        EntryError::Invalid(s)
    }
}

const EXPECTED: &str =
    "expected HOST[:PORT], IP[:PORT], CIDR[:PORT] or [IPv6][:PORT], with PORT 1 to 65535";

/// Parse one entry; host names are resolved with `resolve`.
pub fn parse(
    s: &str,
    resolve: &dyn Fn(&str) -> std::io::Result<Vec<IpAddr>>,
) -> Result<Vec<Egress>, EntryError> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or(EntryError::from(EXPECTED))
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
        return Ok(vec![Egress {
            net: ip,
            prefix,
            port,
            name: None,
        }]);
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Ok(vec![Egress {
            net: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
            port,
            name: None,
        }]);
    }
    let valid_name = !addr.is_empty()
        && addr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !valid_name {
        return Err(EXPECTED.into());
    }
    let unresolved = |cause: String| EntryError::Unresolved {
        name: addr.clone(),
        cause,
    };
    let ips = resolve(&addr).map_err(|e| unresolved(e.to_string()))?;
    if ips.is_empty() {
        return Err(unresolved("no addresses".into()));
    }
    Ok(ips
        .into_iter()
        .map(|ip| Egress {
            net: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
            port,
            name: Some(addr.clone()),
        })
        .collect())
}

/// Parse every entry, resolving host names side by side: a profile lists
/// several hosts, and one slow lookup each would add up at every start.
pub fn parse_all(
    entries: &[&str],
    resolve: fn(&str) -> std::io::Result<Vec<IpAddr>>,
) -> Vec<Result<Vec<Egress>, EntryError>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .iter()
            .map(|e| s.spawn(move || parse(e, &resolve)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("resolver thread panicked".into()))
            })
            .collect()
    })
}

/// A stand-in resolver for checking and explaining profiles: every name
/// "resolves" to the unspecified address, which marks it as not looked up.
pub fn unresolved(_name: &str) -> std::io::Result<Vec<IpAddr>> {
    Ok(vec![IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)])
}

/// The system resolver (getaddrinfo), as the host sees names.
pub fn system_resolve(name: &str) -> std::io::Result<Vec<IpAddr>> {
    let mut ips: Vec<IpAddr> = (name, 0u16).to_socket_addrs()?.map(|a| a.ip()).collect();
    ips.sort();
    ips.dedup();
    Ok(ips)
}

/// The nftables ruleset for the sandbox's namespace: loopback, replies,
/// IPv6 neighbour discovery, DNS to the helper's forwarder, the allowed
/// destinations; everything else is rejected at once (not dropped, so a
/// refused connection fails fast).
pub fn nft_ruleset(allow: &[Egress], dns: Option<&str>) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "table inet nook {{");
    let _ = writeln!(r, "  chain output {{");
    let _ = writeln!(r, "    type filter hook output priority 0; policy drop;");
    let _ = writeln!(r, "    oifname \"lo\" accept");
    let _ = writeln!(r, "    ct state established,related accept");
    let _ = writeln!(
        r,
        "    icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit }} accept"
    );
    if let Some(dns) = dns {
        let fam = if dns.contains(':') { "ip6" } else { "ip" };
        let _ = writeln!(
            r,
            "    {fam} daddr {dns} meta l4proto {{ tcp, udp }} th dport 53 accept"
        );
    }
    for e in allow {
        let fam = if e.net.is_ipv4() { "ip" } else { "ip6" };
        let _ = write!(r, "    {fam} daddr {}/{}", e.net, e.prefix);
        match e.port {
            Some(p) => {
                let _ = writeln!(r, " meta l4proto {{ tcp, udp }} th dport {p} accept");
            }
            None => {
                let _ = writeln!(r, " accept");
            }
        }
    }
    let _ = writeln!(r, "    meta l4proto tcp reject with tcp reset");
    let _ = writeln!(r, "    reject with icmpx type admin-prohibited");
    let _ = writeln!(r, "  }}");
    let _ = writeln!(r, "}}");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(name: &str) -> std::io::Result<Vec<IpAddr>> {
        match name {
            "registry.example" => Ok(vec![
                "192.0.2.10".parse().unwrap(),
                "2001:db8::10".parse().unwrap(),
            ]),
            _ => Err(std::io::Error::other("unknown host")),
        }
    }

    fn one(s: &str) -> (String, u8, Option<u16>) {
        let v = parse(s, &fake).unwrap();
        (v[0].net.to_string(), v[0].prefix, v[0].port)
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
        let v = parse("registry.example:443", &fake).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].name.as_deref(), Some("registry.example"));
        for bad in [
            "10.0.0.0/33",
            "host:0",
            "host:x",
            "bad_name",
            "[::1",
            "no.such.host",
        ] {
            assert!(parse(bad, &fake).is_err(), "{bad}");
        }
    }

    #[test]
    fn ruleset_allows_listed_destinations_then_rejects() {
        let allow = parse("10.0.0.0/8:22", &fake).unwrap();
        let r = nft_ruleset(&allow, Some("169.254.0.53"));
        assert!(r.contains("ip daddr 169.254.0.53 meta l4proto { tcp, udp } th dport 53 accept"));
        assert!(r.contains("ip daddr 10.0.0.0/8 meta l4proto { tcp, udp } th dport 22 accept"));
        assert!(
            r.trim_end()
                .ends_with("reject with icmpx type admin-prohibited\n  }\n}")
        );
    }
}

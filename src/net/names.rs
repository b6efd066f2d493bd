//! Host names as the egress gate compares them: allowed-name patterns from
//! the profile and names from the wire (a DNS question, a TLS server_name,
//! an HTTP Host header), both brought to one canonical form first, so that
//! a name matches or not whatever case or trailing dot the client used.

// `expect`, not `allow`: the lint fails the build once the gate calls this,
// and then this line goes.

use std::fmt;

use serde::{Serialize, Serializer};

/// The longest name in text form (RFC 1035 §3.1: 255 octets on the wire).
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

const EXPECTED: &str = "expected a host name or *.DOMAIN: labels of letters, digits, '-' and '_' \
     separated by dots, each 1 to 63 characters, 253 in all";

/// An allowed name: exact ("pypi.org") or a wildcard ("*.example.org")
/// that matches subdomains at any depth but not the bare name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    /// Canonical text: a normalized name, maybe behind "*.".
    text: String,
}

impl NamePattern {
    /// A name as `normalize` accepts it, or "*." and one: a bare "*" and
    /// '*' anywhere else are refused. Err says what is expected.
    pub fn parse(s: &str) -> Result<NamePattern, String> {
        if s.parse::<std::net::IpAddr>().is_ok() {
            return Err(format!("{EXPECTED}; an IP address is not a name"));
        }
        let (wildcard, domain) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if domain.contains('*') || s == "*" {
            return Err(format!(
                "{EXPECTED}; '*' may only be the whole first label, followed by a domain, as in *.example.org"
            ));
        }
        let domain = normalize(domain).ok_or_else(|| EXPECTED.to_string())?;
        let text = if wildcard {
            format!("*.{domain}")
        } else {
            domain
        };
        if text.len() > MAX_NAME {
            return Err(EXPECTED.into());
        }
        Ok(NamePattern { text })
    }

    /// Whether `name`, as a client gave it, is allowed by this pattern.
    pub fn matches(&self, name: &str) -> bool {
        let Some(name) = normalize(name) else {
            return false;
        };
        match self.text.strip_prefix('*') {
            // Keeps the dot: "x.example.org" ends with ".example.org",
            // "badexample.org" and "example.org" do not.
            Some(dot_domain) => name.ends_with(dot_domain),
            None => name == self.text,
        }
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Written as the pattern's text, as in the profile.
impl Serialize for NamePattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A name from the wire in canonical form: lowercase, no trailing dot.
/// None when it is not a host name: an empty or overlong label, a
/// character outside letters, digits, '-' and '_', more than 253
/// characters, or something a URL parser would read as an IPv4 address.
pub fn normalize(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() > MAX_NAME {
        return None;
    }
    let name = name.to_ascii_lowercase();
    let labels_ok = name.split('.').all(label_ok);
    let last = name.rsplit('.').next().unwrap_or("");
    (labels_ok && !numeric(last)).then_some(name)
}

fn label_ok(label: &str) -> bool {
    (1..=MAX_LABEL).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A last label of digits or 0x-hex makes the whole name an IPv4 address
/// to URL parsers and inet_aton ("1.2.3.4", "127.1", "0x7f.1"): such text
/// names an address, never a host (WHATWG URL, "ends in a number").
fn numeric(last_label: &str) -> bool {
    last_label.bytes().all(|b| b.is_ascii_digit())
        || last_label
            .strip_prefix("0x")
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_lowercases_and_drops_one_trailing_dot() {
        assert_eq!(normalize("PyPI.Org."), Some("pypi.org".into()));
        assert_eq!(normalize("pypi.org"), Some("pypi.org".into()));
        assert_eq!(normalize("localhost"), Some("localhost".into()));
        assert_eq!(
            normalize("_dmarc.x-y.example"),
            Some("_dmarc.x-y.example".into())
        );
        assert_eq!(normalize("pypi.org.."), None, "only one trailing dot");
    }

    #[test]
    fn normalize_refuses_what_is_not_a_host_name() {
        for bad in [
            "",
            ".",
            ".pypi.org",
            "pypi..org",
            "pypi.org/",
            "pypi.org:443",
            "py pi.org",
            "pypi.org\0",
            "*.pypi.org",
            "bücher.de",
            "[::1]",
            "::1",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn normalize_refuses_address_literals() {
        for ip in [
            "1.2.3.4",
            "127.1",
            "2130706433",
            "0x7f.1",
            "10.0.0.0x1",
            "a.0x",
        ] {
            assert_eq!(normalize(ip), None, "{ip}");
        }
        // Digits elsewhere are fine.
        assert_eq!(normalize("1.2.3.4a"), Some("1.2.3.4a".into()));
        assert_eq!(normalize("123.example"), Some("123.example".into()));
        assert_eq!(
            normalize("0xdead.beef.test"),
            Some("0xdead.beef.test".into())
        );
    }

    #[test]
    fn normalize_enforces_lengths() {
        let label63 = "a".repeat(63);
        assert!(normalize(&format!("{label63}.test")).is_some());
        assert!(normalize(&format!("{label63}a.test")).is_none());
        // 4 labels of 63 + 3 dots = 255; 253 is the limit.
        let long = [label63.as_str(); 4].join(".");
        assert!(normalize(&long).is_none());
        let fits = format!("{}.{}", "a".repeat(61), [label63.as_str(); 3].join("."));
        assert_eq!(fits.len(), 253);
        assert!(normalize(&fits).is_some());
        assert!(
            normalize(&format!("{fits}.")).is_some(),
            "trailing dot not counted"
        );
    }

    #[test]
    fn exact_patterns() {
        let p = NamePattern::parse("PyPI.org.").unwrap();
        assert_eq!(p.to_string(), "pypi.org");
        assert_eq!(p.to_string(), "pypi.org");
        assert!(p.matches("pypi.org"));
        assert!(p.matches("PYPI.ORG."));
        assert!(!p.matches("www.pypi.org"));
        assert!(!p.matches("pypi.org.evil"));
        assert!(!p.matches("xpypi.org"));
        assert!(!p.matches("pypi.org.."));
    }

    #[test]
    fn wildcards_match_subdomains_at_any_depth_but_not_the_bare_name() {
        let p = NamePattern::parse("*.Example.org").unwrap();
        assert_eq!(p.to_string(), "*.example.org");
        assert!(p.matches("a.example.org"));
        assert!(p.matches("a.b.c.EXAMPLE.org."));
        assert!(!p.matches("example.org"));
        assert!(!p.matches("badexample.org"));
        assert!(!p.matches("example.org.evil"));
        assert!(!p.matches(".example.org"), "invalid names never match");
        assert!(!p.matches("*.example.org"));
        let t = NamePattern::parse("*.test").unwrap();
        assert!(t.matches("pkg.test"));
        assert!(!t.matches("test"));
    }

    #[test]
    fn bad_patterns_say_what_is_expected() {
        for bad in [
            "",
            "*",
            "*.",
            "**.org",
            "a.*.org",
            "*a.org",
            "a*.org",
            "*.*.org",
            "pypi..org",
            "pypi.org:443",
            "http://pypi.org",
            "1.2.3.4",
            "::1",
            ".pypi.org",
        ] {
            let e = NamePattern::parse(bad).unwrap_err();
            assert!(
                e.starts_with("expected a host name or *.DOMAIN"),
                "{bad:?}: {e}"
            );
        }
        assert!(NamePattern::parse("*").unwrap_err().contains("first label"));
        assert!(
            NamePattern::parse("10.0.0.1")
                .unwrap_err()
                .contains("IP address")
        );
    }

    #[test]
    fn wildcard_patterns_respect_the_name_length() {
        let label63 = "a".repeat(63);
        let domain = format!("{}.{}", "a".repeat(59), [label63.as_str(); 3].join("."));
        assert_eq!(domain.len(), 251);
        assert!(NamePattern::parse(&format!("*.{domain}")).is_ok());
        let domain = format!("b{domain}");
        assert!(NamePattern::parse(&domain).is_ok());
        assert!(NamePattern::parse(&format!("*.{domain}")).is_err());
    }

    #[test]
    fn patterns_serialize_as_their_text() {
        let p = NamePattern::parse("*.Example.org").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"*.example.org\"");
    }
}

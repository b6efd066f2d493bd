//! Landlock rules derived from the same view as the mounts: read-only
//! views get read and execute rights, read-write views every right, the
//! root itself only listing, nothing else. The rule list is built by a pure
//! function; `runtime::enforce` turns it into a ruleset just before
//! seccomp.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::spec::Mount;
pub use crate::spec::security::LandlockMode as Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rights {
    /// List directories only.
    List,
    /// Read files, list directories, execute.
    Read,
    /// Everything.
    Full,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rules {
    pub mode: Mode,
    pub paths: Vec<(PathBuf, Rights)>,
    /// Scope abstract unix sockets and signals to the sandbox (ABI 6).
    pub scoped: bool,
    /// TCP ports the sandbox may connect to, when its network allow-list
    /// names a port for every destination (ABI 4); `None`: any.
    #[serde(default)]
    pub tcp_connect: Option<Vec<u16>>,
}

/// Rules for a view: one per mount target, in order.
pub fn rules(mode: Mode, mounts: &[Mount]) -> Rules {
    let mut paths = vec![(PathBuf::from("/"), Rights::List)];
    if mode != Mode::Off {
        for m in mounts {
            let r = match m {
                Mount::Bind { dst, read_only, .. } => (
                    dst.clone(),
                    if *read_only {
                        Rights::Read
                    } else {
                        Rights::Full
                    },
                ),
                Mount::Tmpfs { dst, .. }
                | Mount::Proc { dst }
                | Mount::Dev { dst }
                | Mount::Overlay { dst, .. } => (dst.clone(), Rights::Full),
                Mount::File { dst, .. } | Mount::Dir { dst } | Mount::Protect { dst, .. } => {
                    (dst.clone(), Rights::Read)
                }
                Mount::Symlink { .. } | Mount::Hide { .. } => continue,
            };
            paths.push(r);
        }
    }
    Rules {
        mode,
        paths,
        scoped: true,
        tcp_connect: None,
    }
}

/// The TCP ports a network allow-list lets the sandbox connect to, plus
/// DNS; `None` when there is no list or some entry allows every port.
/// (Landlock sees the port the payload asked for, before the gate's
/// capture rewrites it.)
pub fn tcp_ports(net: &crate::net::Network) -> Option<Vec<u16>> {
    let ports: Vec<Option<u16>> = (net.allow.iter().map(|e| e.port))
        .chain(net.names.iter().map(|n| n.port))
        .collect();
    if ports.is_empty() || ports.contains(&None) {
        return None;
    }
    let mut ports: Vec<u16> = ports.into_iter().flatten().collect();
    ports.push(53);
    ports.sort_unstable();
    ports.dedup();
    Some(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_ports_only_when_every_entry_names_one() {
        let net = |entries: &[&str]| {
            let mut n = crate::net::Network::none();
            for e in entries {
                match crate::net::egress::parse(e).unwrap() {
                    crate::net::egress::Entry::Addr(a) => n.allow.push(a),
                    crate::net::egress::Entry::Name(r) => n.names.push(r),
                }
            }
            n
        };
        assert_eq!(
            tcp_ports(&net(&["192.0.2.1:443", "pypi.org:22"])),
            Some(vec![22, 53, 443])
        );
        assert_eq!(tcp_ports(&net(&["192.0.2.1:443", "pypi.org"])), None);
        assert_eq!(tcp_ports(&net(&[])), None);
    }

    #[test]
    fn rules_follow_the_view() {
        let mounts = vec![
            Mount::Bind {
                src: "/usr".into(),
                dst: "/usr".into(),
                read_only: true,
                optional: false,
            },
            Mount::Bind {
                src: "/w".into(),
                dst: "/work".into(),
                read_only: false,
                optional: false,
            },
            Mount::Tmpfs {
                dst: "/tmp".into(),
                size: None,
                mode: 0o1777,
            },
            Mount::Hide {
                dst: "/work/.env".into(),
            },
        ];
        let r = rules(Mode::BestEffort, &mounts);
        assert_eq!(
            r.paths,
            vec![
                ("/".into(), Rights::List),
                ("/usr".into(), Rights::Read),
                ("/work".into(), Rights::Full),
                ("/tmp".into(), Rights::Full),
            ]
        );
    }
}

//! Landlock rules derived from the same view as the mounts: read-only
//! views get read and execute rights, read-write views every right, the
//! root itself only listing, nothing else. The rule list is built by a pure
//! function; the payload turns it into a ruleset just before seccomp.

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::{Deserialize, Serialize};

use super::LayerError;
use crate::spec::Mount;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Enforce what the kernel supports, and say what was left out.
    BestEffort,
    /// Fail unless every rule and scope is enforced.
    Required,
    Off,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "best-effort" => Some(Mode::BestEffort),
            "required" => Some(Mode::Required),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::BestEffort => "best-effort",
            Mode::Required => "required",
            Mode::Off => "off",
        }
    }
}

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
                Mount::File { dst, .. } | Mount::Dir { dst } => (dst.clone(), Rights::Read),
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
/// DNS; `None` when some entry allows every port.
pub fn tcp_ports(allow: &[crate::net::Egress]) -> Option<Vec<u16>> {
    if allow.is_empty() || allow.iter().any(|e| e.port.is_none()) {
        return None;
    }
    let mut ports: Vec<u16> = allow.iter().filter_map(|e| e.port).collect();
    ports.push(53);
    ports.sort_unstable();
    ports.dedup();
    Some(ports)
}

/// What the kernel really enforced.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Outcome {
    pub abi: i32,
    pub fully: bool,
    pub text: String,
}

/// Install the rules on the calling thread. Only paths that exist are
/// used (an optional bind may have been skipped). A failure carries the
/// errno of the Landlock call that failed, when one did.
pub fn enforce(rules: &Rules) -> Result<Outcome, LayerError> {
    let fail = |e: landlock::RulesetError| LayerError::new(e.to_string(), &e);
    let level = match rules.mode {
        Mode::Off => {
            return Ok(Outcome {
                abi: 0,
                fully: false,
                text: "off".into(),
            });
        }
        Mode::BestEffort => CompatLevel::BestEffort,
        Mode::Required => CompatLevel::HardRequirement,
    };
    // The newest ABI this crate knows; the compatibility level decides what
    // happens on an older kernel.
    let abi = ABI::V6;
    let mut ruleset = Ruleset::default()
        .set_compatibility(level)
        .handle_access(AccessFs::from_all(abi))
        .map_err(fail)?;
    if rules.scoped {
        ruleset = ruleset.scope(Scope::from_all(abi)).map_err(fail)?;
    }
    if rules.tcp_connect.is_some() {
        ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(fail)?;
    }
    let mut created = ruleset.create().map_err(fail)?;
    for port in rules.tcp_connect.iter().flatten() {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(|e| LayerError::new(format!("tcp port {port}: {e}"), &e))?;
    }
    for (path, rights) in &rules.paths {
        let Ok(fd) = PathFd::new(path) else { continue };
        let mut access = match rights {
            Rights::List => AccessFs::ReadDir.into(),
            Rights::Read => AccessFs::from_read(abi),
            Rights::Full => AccessFs::from_all(abi),
        };
        // A file takes only file rights; asking for more would make the
        // crate report the whole ruleset as partly enforced.
        // fstat of the descriptor just opened: no second path lookup.
        let is_dir = rustix::fs::fstat(&fd)
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir());
        if !is_dir {
            access &= AccessFs::from_file(abi);
        }
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| LayerError::new(format!("{}: {e}", path.display()), &e))?;
    }
    let status = created.restrict_self().map_err(fail)?;
    let kernel_abi = landlock_abi();
    let (fully, text) = match status.ruleset {
        RulesetStatus::FullyEnforced => (
            true,
            format!(
                "enforced with ABI {kernel_abi}: {} path rules{}",
                rules.paths.len(),
                if rules.scoped {
                    ", abstract unix sockets and signals scoped"
                } else {
                    ""
                }
            ),
        ),
        RulesetStatus::PartiallyEnforced => (
            false,
            format!(
                "partly enforced: the kernel has ABI {kernel_abi}, nook asks for {}; left out: {}",
                abi as i32,
                left_out(kernel_abi)
            ),
        ),
        RulesetStatus::NotEnforced => (
            false,
            "not enforced: the kernel has no Landlock (enable CONFIG_SECURITY_LANDLOCK and add landlock to lsm= on the kernel command line)".into(),
        ),
    };
    Ok(Outcome {
        abi: kernel_abi,
        fully,
        text,
    })
}

/// The kernel's Landlock ABI version (0 when absent), as reported by
/// landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION).
pub fn landlock_abi() -> i32 {
    crate::sys::landlock_abi_version()
}

fn left_out(abi: i32) -> &'static str {
    match abi {
        ..=0 => "everything",
        1 => "renaming across directories (ABI 2), truncation (3), device ioctls (5), scopes (6)",
        2 => "truncation (ABI 3), device ioctls (5), abstract unix socket and signal scoping (6)",
        3 | 4 => "device ioctls (ABI 5), abstract unix socket and signal scoping (6)",
        5 => "abstract unix socket and signal scoping (ABI 6)",
        _ => "nothing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_ports_only_when_every_entry_names_one() {
        let e = |port| crate::net::Egress {
            net: "192.0.2.1".parse().unwrap(),
            prefix: 32,
            port,
            name: None,
        };
        assert_eq!(
            tcp_ports(&[e(Some(443)), e(Some(22))]),
            Some(vec![22, 53, 443])
        );
        assert_eq!(tcp_ports(&[e(Some(443)), e(None)]), None);
        assert_eq!(tcp_ports(&[]), None);
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

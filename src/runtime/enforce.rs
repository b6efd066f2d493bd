//! Enforcement: the payload installs the planned Landlock rules and
//! seccomp programs on itself, last before execve, and reports what the
//! kernel really enforced. Hardening layers, each with an explicit level:
//! seccomp (required), Landlock (best effort unless `--strict` or
//! `landlock = "required"`), capabilities and securebits (required, in
//! init), a fresh session keyring and a new session without a terminal
//! (best effort unless `--strict`).

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use nix::errno::Errno;
use seccompiler::BpfProgram;
use serde::{Deserialize, Serialize};

use crate::plan::landlock::{Mode, Rights, Rules};

/// What the payload enforced, sent to the supervisor before execve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub landlock: Outcome,
    pub keyring: String,
    pub session: String,
    pub seccomp: String,
    /// The capabilities the command holds, as the kernel says.
    pub caps: String,
    /// Best-effort layers that came out weaker than asked, one line each.
    pub weaker: Vec<String>,
}

/// A layer that could not be put in place: the crate's own message, and
/// the errno of the system call that failed, taken from the crate's error
/// (`UnknownErrno` when no call failed, e.g. a Landlock right the kernel's
/// ABI lacks under a hard requirement).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LayerError {
    pub message: String,
    pub errno: Errno,
}

impl LayerError {
    /// `message`, with the first errno found in `cause`'s chain of sources.
    pub fn new(message: String, cause: &(dyn std::error::Error + 'static)) -> LayerError {
        let mut next = Some(cause);
        while let Some(e) = next {
            if let Some(n) = e
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::raw_os_error)
            {
                return LayerError {
                    message,
                    errno: Errno::from_raw(n),
                };
            }
            next = e.source();
        }
        LayerError {
            message,
            errno: Errno::UnknownErrno,
        }
    }
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
pub fn enforce_landlock(rules: &Rules) -> Result<Outcome, LayerError> {
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

/// Install compiled programs on the calling thread, in order (no TSYNC:
/// the payload is single-threaded when it calls this, just before
/// execve). seccompiler sets no_new_privs first, which the payload has
/// already done.
pub fn install_seccomp(progs: &[BpfProgram]) -> Result<(), LayerError> {
    for prog in progs {
        seccompiler::apply_filter(prog).map_err(|e| LayerError::new(e.to_string(), &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_error_keeps_the_errno_of_its_cause() {
        let e = seccompiler::Error::Seccomp(std::io::Error::from_raw_os_error(libc::EACCES));
        let l = LayerError::new(e.to_string(), &e);
        assert_eq!(l.errno, Errno::EACCES);
        assert_eq!(l.message, e.to_string());
        // No system call failed: no errno.
        let e = seccompiler::Error::EmptyFilter;
        assert_eq!(
            LayerError::new(e.to_string(), &e).errno,
            Errno::UnknownErrno
        );
    }
}

/// The cost of installing the default policy's programs, as the payload
/// does; each install runs on a fresh thread (filters and no_new_privs are
/// per thread here: no TSYNC), so the test runner itself stays unfiltered.
/// `cargo test --release --bin nook -- --ignored seccomp_install_cost --nocapture`
#[cfg(test)]
mod cost {
    #[test]
    #[ignore = "a measurement, not a check"]
    fn seccomp_install_cost() {
        use crate::plan::seccomp::{Mode, Policy};
        for (name, mode) in [("default", Mode::Default), ("strict", Mode::Strict)] {
            let progs = Policy::new(mode, &[], &[], false).compile().unwrap();
            let lens: Vec<usize> = progs.iter().map(Vec::len).collect();
            let mut us: Vec<f64> = (0..400)
                .map(|_| {
                    let progs = progs.clone();
                    std::thread::spawn(move || {
                        rustix::thread::set_no_new_privs(true).unwrap();
                        let t = std::time::Instant::now();
                        super::install_seccomp(&progs).unwrap();
                        t.elapsed().as_secs_f64() * 1e6
                    })
                    .join()
                    .unwrap()
                })
                .collect();
            us.sort_by(f64::total_cmp);
            println!(
                "{name}: programs of {lens:?} instructions: install median {:.1} us (quartiles {:.1} / {:.1})",
                us[us.len() / 2],
                us[us.len() / 4],
                us[us.len() * 3 / 4]
            );
        }
    }
}

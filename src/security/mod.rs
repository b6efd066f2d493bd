//! Hardening layers, each with an explicit level: seccomp (required),
//! Landlock (best effort unless `--strict` or `landlock = "required"`),
//! capabilities and securebits (required, in init), a fresh session keyring
//! and a new session without a terminal (best effort unless `--strict`).
//! Policies are data built before fork; the payload only installs them and
//! reports what was really enforced.

pub mod landlock;
#[cfg(test)]
mod probe_tests;
pub mod seccomp;
pub mod syscalls;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// The resolved hardening settings, part of the Spec.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Security {
    /// Every best-effort layer becomes a requirement.
    pub strict: bool,
    pub seccomp: seccomp::Mode,
    pub seccomp_allow: Vec<String>,
    pub seccomp_deny: Vec<String>,
    pub landlock: landlock::Mode,
    /// Nested user namespaces allowed (browsers' own sandboxes need them).
    pub allow_userns: bool,
}

/// What the payload enforced, sent to the supervisor before execve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub landlock: landlock::Outcome,
    pub keyring: String,
    pub session: String,
    pub seccomp: String,
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

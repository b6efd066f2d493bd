//! Hardening layers, each with an explicit level: seccomp (required),
//! Landlock (best effort unless `--strict` or `landlock = "required"`),
//! capabilities and securebits (required, in init), a fresh session keyring
//! and a new session without a terminal (best effort unless `--strict`).
//! Policies are data built before fork; the payload only installs them and
//! reports what was really enforced.

pub mod landlock;
pub mod seccomp;
pub mod syscalls;

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

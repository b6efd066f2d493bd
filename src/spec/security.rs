//! The hardening settings of a Spec: which layers, at which level. Each is
//! required or best effort, explicitly; `strict` turns every best effort
//! into a requirement. `plan` turns them into a seccomp program and a
//! Landlock rule list; `runtime::enforce` installs those and reports what
//! the kernel really enforced.

use serde::{Deserialize, Serialize};

/// The resolved hardening settings, part of the Spec.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Security {
    /// Every best-effort layer becomes a requirement.
    pub strict: bool,
    pub seccomp: SeccompMode,
    pub seccomp_allow: Vec<String>,
    pub seccomp_deny: Vec<String>,
    pub landlock: LandlockMode,
    /// Nested user namespaces allowed (browsers' own sandboxes need them).
    pub allow_userns: bool,
    /// Capabilities the command holds in its user namespace (none unless
    /// asked, or a fake root's set).
    pub caps: Vec<super::caps::Cap>,
}

/// The Landlock level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LandlockMode {
    /// Enforce what the kernel supports, and say what was left out.
    BestEffort,
    /// Fail unless every rule and scope is enforced.
    Required,
    Off,
}

impl LandlockMode {
    pub fn parse(s: &str) -> Option<LandlockMode> {
        match s {
            "best-effort" => Some(LandlockMode::BestEffort),
            "required" => Some(LandlockMode::Required),
            "off" => Some(LandlockMode::Off),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LandlockMode::BestEffort => "best-effort",
            LandlockMode::Required => "required",
            LandlockMode::Off => "off",
        }
    }
}

/// The system call filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeccompMode {
    /// A deny list of the calls that reach the kernel's attack surface or
    /// the host (the default).
    Default,
    /// An allow list of the calls ordinary programs use.
    Strict,
    /// No filter.
    Off,
}

impl SeccompMode {
    pub fn parse(s: &str) -> Option<SeccompMode> {
        match s {
            "default" => Some(SeccompMode::Default),
            "strict" => Some(SeccompMode::Strict),
            "off" => Some(SeccompMode::Off),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SeccompMode::Default => "default",
            SeccompMode::Strict => "strict",
            SeccompMode::Off => "off",
        }
    }
}

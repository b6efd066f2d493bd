//! Typed errors. Only `main` prints them and turns them into exit codes.

use std::fmt;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// Exit status when nook itself fails before the payload runs.
pub const EXIT_NOOK: i32 = 125;
/// Exit status when the command exists but cannot be executed.
pub const EXIT_CANNOT_EXEC: i32 = 126;
/// Exit status when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or profile value is wrong: names the flag, the value and what
    /// was expected.
    #[error("{flag} '{value}': {expected}")]
    Usage {
        flag: String,
        value: String,
        expected: String,
        /// What to do about it, when there is one thing to do.
        hint: Option<String>,
    },
    /// A profile file is wrong: `FILE:LINE:COL: what is wrong, what is
    /// expected` (or a flag or file name in place of the position).
    #[error("{at}: {what}")]
    At { at: String, what: String },
    /// A command-line syntax error, already one line.
    #[error("{0}")]
    Cli(String),
    /// A setup step failed, outside or inside the sandbox.
    #[error("{0}")]
    Step(StepError),
}

impl Error {
    pub fn usage(flag: &str, value: &str, expected: impl Into<String>) -> Self {
        Error::Usage {
            flag: flag.to_string(),
            value: value.to_string(),
            expected: expected.into(),
            hint: None,
        }
    }

    /// The same error with a hint line (`nook: hint: ...`).
    pub fn with_hint(self, text: impl Into<String>) -> Self {
        match self {
            Error::Usage {
                flag,
                value,
                expected,
                ..
            } => Error::Usage {
                flag,
                value,
                expected,
                hint: Some(text.into()),
            },
            Error::Step(s) => Error::Step(s.hint(text)),
            other => other,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Step(s) => s.exit_code,
            _ => EXIT_NOOK,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Step(s) => s.hint.as_deref(),
            Error::Usage { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

impl From<StepError> for Error {
    fn from(e: StepError) -> Self {
        Error::Step(e)
    }
}

/// A failed step: what nook was doing, on which path, the errno, and a hint
/// when the cause is known. Serializable because failures inside the sandbox
/// travel to the supervisor, which is the only one that prints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepError {
    pub step: String,
    pub path: Option<String>,
    pub errno: i32,
    pub hint: Option<String>,
    pub exit_code: i32,
}

impl StepError {
    pub fn new(step: impl Into<String>, path: Option<&std::path::Path>, errno: Errno) -> Self {
        StepError {
            step: step.into(),
            path: path.map(|p| p.display().to_string()),
            errno: errno as i32,
            hint: None,
            exit_code: EXIT_NOOK,
        }
    }

    /// From an I/O error (EIO when it carries no errno).
    pub fn io(step: impl Into<String>, path: Option<&std::path::Path>, e: &std::io::Error) -> Self {
        StepError::new(
            step,
            path,
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn code(mut self, exit_code: i32) -> Self {
        self.exit_code = exit_code;
        self
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.step)?;
        if let Some(p) = &self.path {
            write!(f, " {p}")?;
        }
        if self.errno != 0 {
            let e = Errno::from_raw(self.errno);
            write!(f, ": {e:?} ({})", e.desc())?;
        }
        Ok(())
    }
}

impl std::error::Error for StepError {}

/// Attach the step and path to a raw errno result.
pub trait Context<T> {
    fn step(self, step: &str, path: Option<&std::path::Path>) -> Result<T, StepError>;
}

impl<T> Context<T> for Result<T, Errno> {
    fn step(self, step: &str, path: Option<&std::path::Path>) -> Result<T, StepError> {
        self.map_err(|e| StepError::new(step, path, e))
    }
}

impl<T> Context<T> for Result<T, rustix::io::Errno> {
    fn step(self, step: &str, path: Option<&std::path::Path>) -> Result<T, StepError> {
        self.map_err(|e| StepError::new(step, path, Errno::from_raw(e.raw_os_error())))
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn step(self, step: &str, path: Option<&std::path::Path>) -> Result<T, StepError> {
        self.map_err(|e| StepError::io(step, path, &e))
    }
}

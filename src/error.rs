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
/// Exit status when a command that reads what nook kept (`nook why`)
/// finds nothing usable.
pub const EXIT_NO_INPUT: i32 = 1;

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
    /// What a command reads is missing, unreadable, corrupt or of another
    /// version (a kept trace), already said in one line: nothing failed,
    /// there is nothing to work on; exit status 1.
    #[error("{0}")]
    Input(String),
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
            Error::Input(_) => EXIT_NO_INPUT,
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

/// The errno of a failed rustix call, as nook's errors carry it.
pub fn from_rustix(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// The errno inside an I/O error (EIO when it carries none).
pub fn from_io(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A value that is not what its flag or key takes, saying what is
/// expected; the caller adds the flag or key and the value
/// (`Error::usage`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Expected(pub String);

impl From<String> for Expected {
    fn from(s: String) -> Self {
        Expected(s)
    }
}

impl From<&str> for Expected {
    fn from(s: &str) -> Self {
        Expected(s.to_string())
    }
}

impl From<Expected> for String {
    fn from(e: Expected) -> Self {
        e.0
    }
}

impl From<StepError> for Error {
    fn from(e: StepError) -> Self {
        Error::Step(e)
    }
}

/// A step of nook's work that can fail, as the supervisor and the user
/// read it. Code that must tell failures apart matches on these, never on
/// the text; the text is what the user reads, followed by the object.
macro_rules! steps {
    ($($step:ident => $text:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Step {
            $($step,)*
        }

        impl Step {
            pub fn text(self) -> &'static str {
                match self {
                    $(Step::$step => $text,)*
                }
            }
        }
    };
}

steps! {
    ArmTimeout => "arming the --timeout timer",
    BecomeSubreaper => "becoming a subreaper",
    BlockSignals => "blocking signals",
    UnblockSignals => "unblocking signals",
    LoopbackUp => "bringing up loopback (lo)",
    ChangeMode => "changing the mode of",
    SetMode => "setting the mode of",
    Chdir => "changing to the working directory",
    ClearCaps => "clearing capabilities",
    DropCaps => "dropping capabilities",
    KeepCaps => "keeping the capabilities asked for (ambient)",
    LockSecurebits => "locking securebits",
    NotDumpable => "making init not dumpable",
    CloneTree => "cloning (open_tree)",
    CloneMountTree => "cloning mount tree (open_tree)",
    CloseFds => "closing inherited descriptors",
    CompileSeccomp => "compiling the seccomp filter",
    InstallSeccomp => "installing the seccomp filter",
    EnforceLandlock => "enforcing Landlock rules",
    Create => "creating",
    CreatePipe => "creating a pipe",
    CreateDir => "creating directory",
    CreateTheDir => "creating the directory",
    CreateMountPoint => "creating mount point",
    Unshare => "creating namespaces (unshare)",
    CreateSymlink => "creating symlink",
    CreateTheSymlink => "creating the symlink",
    CreateCgroup => "creating the cgroup",
    RemoveCgroup => "removing the cgroup",
    CreateLayer => "creating the overlay layer",
    CreateSandboxDir => "creating the sandbox directory",
    CreateStagingDir => "creating the staging directory",
    CreateStateDir => "creating the state directory",
    CreateTempFile => "creating the temporary file",
    DetachOldRoot => "detaching the old root",
    DetachStagingRoot => "detaching the staging root",
    Enter => "entering",
    Setns => "entering the sandbox's namespaces (setns)",
    Execute => "executing",
    FindInit => "finding init",
    Inspect => "inspecting",
    InspectBindSource => "inspecting bind source",
    JoinCgroup => "joining the sandbox's cgroup",
    List => "listing",
    Lock => "locking",
    SlaveRoot => "making / a slave mount",
    MakeReadOnly => "making read-only (mount_setattr)",
    PrivateOldRoot => "making the old root private",
    SealRoot => "making the root read-only (mount_setattr)",
    MountFuseOverlay => "mounting fuse-overlayfs on",
    MoveMount => "mounting on (move_mount)",
    MountOverlay => "mounting overlay on",
    MountReadOnlyCopy => "mounting read-only copy on",
    MountRoot => "mounting the root tmpfs",
    MountScratch => "mounting the scratch tmpfs on",
    MountStaging => "mounting the staging tmpfs on",
    Open => "opening",
    OpenBindSource => "opening bind source",
    OpenDir => "opening directory",
    OpenHostDir => "opening the host directory",
    OpenLog => "opening the log",
    OpenLock => "opening the sandbox lock",
    PidfdOpen => "opening the sandbox's command (pidfd_open)",
    OpenSandboxRoot => "opening the sandbox's root",
    OpenUpper => "opening the upper layer",
    PivotStaging => "pivot_root into",
    PivotNewRoot => "pivot_root into the new root",
    Read => "reading",
    ReadFirejail => "reading the firejail profile",
    ReadLink => "reading the link",
    ReadRecord => "reading the sandbox record",
    Remove => "removing",
    Report => "reporting to the supervisor",
    Run => "running",
    ParentDeathSignal => "setting the parent-death signal",
    SignalSetup => "signalling the setup child",
    Stop => "stopping the sandbox",
    Sync => "syncing",
    Chroot => "taking the sandbox's root (chroot)",
    WaitInit => "waiting for init",
    Write => "writing",
    WriteOutput => "writing output to",
    WriteSetgroups => "writing setgroups",
    UserNamespace => "creating the user namespace (clone CLONE_NEWUSER)",
    StartHelper => "starting the network helper",
    StartGate => "starting the egress gate",
    StartRelay => "starting the host-port relay",
    RawTerminal => "taking over the terminal (raw mode)",
    OwnTerminal => "making the sandbox's terminal",
    Attach => "attaching to the sandbox's terminal",
    RelayListen => "the host-port relay listening on",
    PublishPorts => "publishing ports through slirp4netns's API socket",
    StartTracer => "starting the tracer (--trace)",
    GateListen => "the egress gate listening on",
    StartCommand => "starting the command (fork)",
    StartJoiner => "starting the joining process (fork)",
    Detach => "detaching (fork)",
    MountNew => "mounting",
    InstallEgress => "installing the egress allow-list with",
    WaitNetwork => "waiting for the network helper to configure the interface",
    StartPayload => "starting the payload (fork)",
    StartInit => "starting init (clone)",
    InstallHandler => "installing a handler for",
    AskSystemd => "asking the systemd user manager for a delegated scope with",
    SetTimes => "setting the times of",
    Rename => "renaming",
    UseStateDir => "using the state directory",
    SetLimits => "setting resource limits:",
    SetHostname => "setting hostname",
    SignalInit => "signalling init",
    CreateNamespaces => "creating the namespaces (clone CLONE_NEWUSER)",
    UnshareCgroup => "creating the cgroup namespace (unshare)",
    DetachRoots => "detaching the staging and old roots",
    SetRlimit => "setting rlimit",
    NoNewPrivs => "setting no_new_privs",
    PassFd => "passing descriptor",
    NewKeyring => "joining a new session keyring",
    NewSession => "starting a new session",
    ForbidUserns => "forbidding nested user namespaces: writing",
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Why a step failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Cause {
    /// A system call's errno.
    Errno(i32),
    /// A program nook ran exited with this status (or 128+N for signal N).
    Exit(i32),
    /// Something else, said in words (a library's own error).
    Message(String),
    /// Nothing more to say than the step and the hint.
    Unspecified,
}

/// A failed step: what nook was doing, on which object, why, and a hint
/// when the cause is known. Serializable because failures inside the
/// sandbox travel to the supervisor, which is the only one that prints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepError {
    pub step: Step,
    /// What varies within the step (a filesystem type, an option).
    pub detail: Option<String>,
    pub path: Option<String>,
    pub cause: Cause,
    pub hint: Option<String>,
    pub exit_code: i32,
}

impl StepError {
    /// A step failed with an errno (`UnknownErrno`, 0: no errno to tell).
    pub fn new(step: Step, path: Option<&std::path::Path>, errno: Errno) -> Self {
        StepError {
            step,
            detail: None,
            path: path.map(|p| p.display().to_string()),
            cause: match errno {
                Errno::UnknownErrno => Cause::Unspecified,
                e => Cause::Errno(e as i32),
            },
            hint: None,
            exit_code: EXIT_NOOK,
        }
    }

    /// A step failed for a reason other than a system call's errno (set
    /// it with `because`, or say it in the hint).
    pub fn failed(step: Step, path: Option<&std::path::Path>) -> Self {
        StepError::new(step, path, Errno::UnknownErrno)
    }

    /// From an I/O error (EIO when it carries no errno).
    pub fn io(step: Step, path: Option<&std::path::Path>, e: &std::io::Error) -> Self {
        StepError::new(step, path, from_io(e))
    }

    pub fn because(mut self, cause: Cause) -> Self {
        self.cause = cause;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn code(mut self, exit_code: i32) -> Self {
        self.exit_code = exit_code;
        self
    }

    /// The errno, when the cause is one.
    pub fn errno(&self) -> Option<Errno> {
        match self.cause {
            Cause::Errno(n) => Some(Errno::from_raw(n)),
            _ => None,
        }
    }
}

/// How a program nook ran ended, as a cause: its exit status, or 128+N
/// for a signal N.
pub fn exit_cause(status: std::process::ExitStatus) -> Cause {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Cause::Exit(c),
        (None, Some(sig)) => Cause::Exit(128 + sig),
        (None, None) => Cause::Unspecified,
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.step)?;
        if let Some(d) = &self.detail {
            write!(f, " {d}")?;
        }
        if let Some(p) = &self.path {
            write!(f, " {p}")?;
        }
        match &self.cause {
            Cause::Errno(n) => {
                let e = Errno::from_raw(*n);
                write!(f, ": {e:?} ({})", e.desc())
            }
            Cause::Exit(code) => write!(f, ": exited with status {code}"),
            Cause::Message(m) => write!(f, ": {m}"),
            Cause::Unspecified => Ok(()),
        }
    }
}

impl std::error::Error for StepError {}

/// Attach the step and path to a raw errno result.
pub trait Context<T> {
    fn step(self, step: Step, path: Option<&std::path::Path>) -> Result<T, StepError>;
}

impl<T> Context<T> for Result<T, Errno> {
    fn step(self, step: Step, path: Option<&std::path::Path>) -> Result<T, StepError> {
        self.map_err(|e| StepError::new(step, path, e))
    }
}

impl<T> Context<T> for Result<T, rustix::io::Errno> {
    fn step(self, step: Step, path: Option<&std::path::Path>) -> Result<T, StepError> {
        self.map_err(|e| StepError::new(step, path, from_rustix(e)))
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn step(self, step: Step, path: Option<&std::path::Path>) -> Result<T, StepError> {
        self.map_err(|e| StepError::io(step, path, &e))
    }
}

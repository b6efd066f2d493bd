//! The exec stage: the last steps before the payload's execve, in the one
//! fixed order (STYLE.md §6): working directory, close inherited
//! descriptors, a fresh keyring and session, no_new_privs, Landlock,
//! capabilities (already gone: init dropped them before forking us),
//! seccomp, execve.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::SigmaskHow;

use super::enforce::{self, Report};
use crate::error::{Cause, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, Step, StepError};
use crate::plan::{landlock, seccomp};
use crate::sys;
use seccompiler::BpfProgram;

use super::msg::{Sender, ToSupervisor};
use super::{FORWARDED, wait_mask};

/// Everything execve needs, converted before fork.
pub struct ExecPlan {
    name: String,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// Paths to try in order: the command itself if it has a '/', otherwise
    /// each PATH entry joined with it.
    candidates: Vec<CString>,
    search_path: String,
    chdir: PathBuf,
    pass_fds: Vec<i32>,
    strict: bool,
    landlock: landlock::Rules,
    seccomp: Vec<BpfProgram>,
    seccomp_text: String,
    rlimits: Vec<crate::spec::limits::Rlimit>,
    /// `--trace`: the socket the filter's listener goes out on.
    trace_sock: Option<i32>,
    /// Capabilities held in the user namespace (numbers).
    caps: Vec<u8>,
    /// A terminal of its own: the socket its master goes out on, and the
    /// size to start it with.
    pty: Option<(i32, Option<rustix::termios::Winsize>, bool)>,
}

fn cstring(s: &str) -> CString {
    // Arguments come from the OS as C strings and can't hold NUL; env values
    // from flags could, and are truncated at it.
    CString::new(s.split('\0').next().unwrap_or("")).expect("no NUL after split")
}

/// Paths to try in order: the command itself if it has a '/', otherwise
/// each PATH entry joined with it.
fn candidates(name: &str, search_path: &str) -> Vec<CString> {
    if name.contains('/') {
        vec![cstring(name)]
    } else {
        search_path
            .split(':')
            .map(|d| if d.is_empty() { "." } else { d })
            .map(|d| cstring(&format!("{d}/{name}")))
            .collect()
    }
}

impl ExecPlan {
    /// `command` under a sandbox's restrictions: the payload's (the
    /// plan's exec stage), or, for `nook exec`, the ones recorded when the
    /// sandbox started.
    pub fn new(
        join: &crate::plan::ExecStage,
        command: &[String],
        pass_fds: &[i32],
        trace: Option<(i32, seccomp::Watch)>,
    ) -> Result<ExecPlan, StepError> {
        let watch = trace.map_or(seccomp::Watch::Off, |t| t.1);
        let trace_sock = trace.map(|t| t.0);
        let seccomp = join.seccomp.compile_for(watch).map_err(|e| {
            StepError::failed(Step::CompileSeccomp, None).because(Cause::Message(e))
        })?;
        let seccomp_text = match join.seccomp.mode {
            seccomp::Mode::Off => "off".to_string(),
            m => format!("{} ({} calls named)", m.name(), join.seccomp.calls.len()),
        };
        let name = command[0].clone();
        Ok(ExecPlan {
            argv: command.iter().map(|a| cstring(a)).collect(),
            envp: join
                .env
                .iter()
                .map(|(k, v)| cstring(&format!("{k}={v}")))
                .collect(),
            candidates: candidates(&name, &join.search_path),
            name,
            search_path: join.search_path.clone(),
            chdir: join.chdir.clone(),
            pass_fds: pass_fds.to_vec(),
            strict: join.strict,
            landlock: join.landlock.clone(),
            seccomp,
            seccomp_text,
            rlimits: join.rlimits.clone(),
            trace_sock,
            caps: join.caps.clone(),
            pty: None,
        })
    }

    /// The payload makes a terminal of its own (`terminal::take_own`) and
    /// sends its master over `sock`.
    pub fn own_terminal(&mut self, sock: i32, size: Option<rustix::termios::Winsize>, echo: bool) {
        self.pty = Some((sock, size, echo));
    }
}

pub fn run(exec: &ExecPlan, mut tx: Sender) -> ! {
    let e = match prepare(exec, &mut tx) {
        Ok(()) => execute(exec),
        Err(e) => e,
    };
    let code = e.exit_code;
    let _ = tx.send(&ToSupervisor::Failed(e));
    sys::exit_now(code)
}

/// Soft and hard limit both: the payload can't raise them again.
fn set_rlimits(rlimits: &[crate::spec::limits::Rlimit]) -> Result<(), StepError> {
    use nix::sys::resource::{getrlimit, setrlimit};
    for r in rlimits {
        setrlimit(r.resource, r.value, r.value).map_err(|e| {
            let hard = getrlimit(r.resource).map(|(_, h)| h).unwrap_or(0);
            let e =
                StepError::new(Step::SetRlimit, None, e).detail(format!("{}={}", r.name, r.value));
            if e.errno() == Some(Errno::EPERM) {
                e.hint(format!(
                    "above your hard limit of {}; an unprivileged user can only lower it",
                    if hard == libc::RLIM_INFINITY {
                        "unlimited".to_string()
                    } else {
                        hard.to_string()
                    }
                ))
            } else {
                e
            }
        })?;
    }
    Ok(())
}

fn prepare(exec: &ExecPlan, tx: &mut Sender) -> Result<(), StepError> {
    nix::unistd::chdir(&exec.chdir).map_err(|e| {
        StepError::new(Step::Chdir, Some(&exec.chdir), e)
            .hint("the directory must exist inside the sandbox; --chdir picks another")
    })?;
    set_rlimits(&exec.rlimits)?;
    let own_tty = match exec.pty {
        Some((sock, size, echo)) => Some(super::terminal::take_own(sock, size, echo)?),
        None => None,
    };
    close_inherited(exec, tx)?;
    let mut weaker = Vec::new();
    let best_effort = |what: Step, e: Errno, weaker: &mut Vec<String>| {
        if exec.strict {
            Err(StepError::new(what, None, e).hint("--strict makes this layer required"))
        } else {
            weaker.push(format!("{what} failed ({e}); continuing without it"));
            Ok(())
        }
    };
    // A fresh session keyring: the caller's keys are out of reach even
    // when the keyring calls are allowed.
    let keyring = match sys::join_new_session_keyring() {
        Ok(()) => "new session keyring".to_string(),
        // A filter nook runs under (a container engine's, an outer
        // sandbox's) refuses keyctl: it refuses the payload the same, so
        // no keyring is in reach and nothing is weaker.
        Err(e @ (Errno::EPERM | Errno::ENOSYS)) => {
            format!("out of reach (keyctl refused by an inherited filter: {e})")
        }
        Err(e) => {
            best_effort(Step::NewKeyring, e, &mut weaker)?;
            format!("unchanged ({e})")
        }
    };
    // Without a terminal, a new session: the payload has no controlling
    // terminal to inject input into. With one, job control needs it, and
    // seccomp refuses TIOCSTI and TIOCLINUX instead.
    let session = if let Some(name) = own_tty {
        format!("new session, its own terminal {name}")
    } else if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        "kept (stdin is a terminal; TIOCSTI and TIOCLINUX are filtered)".to_string()
    } else {
        match nix::unistd::setsid() {
            Ok(_) => "new session, no controlling terminal".to_string(),
            Err(e) => {
                best_effort(Step::NewSession, e, &mut weaker)?;
                format!("unchanged ({e})")
            }
        }
    };
    rustix::thread::set_no_new_privs(true)
        .map_err(|e| StepError::new(Step::NoNewPrivs, None, crate::error::from_rustix(e)))?;
    // Landlock after everything that opens files for setup, before seccomp.
    let landlock = enforce::enforce_landlock(&exec.landlock).map_err(|e| {
        StepError::new(Step::EnforceLandlock, None, e.errno).hint(format!(
            "{e}{}",
            if exec.landlock.mode == landlock::Mode::Required {
                "; Landlock is required here (--strict or landlock = \"required\")"
            } else {
                ""
            }
        ))
    })?;
    if !landlock.fully && exec.landlock.mode != landlock::Mode::Off {
        weaker.push(format!("landlock {}", landlock.text));
    }
    // Capabilities: init kept only the plan's (usually none) before
    // forking us; set them once more in case a future change forgets.
    sys::hold_only(&exec.caps).map_err(|e| StepError::new(Step::ClearCaps, None, e))?;
    for s in FORWARDED {
        let _ = sys::default_handler(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&wait_mask()), None)
        .map_err(|e| StepError::new(Step::UnblockSignals, None, e))?;
    let held = rustix::thread::capabilities(None)
        .map(|c| c.effective.bits())
        .unwrap_or(0);
    let caps = if held == 0 {
        "none".to_string()
    } else {
        let numbers: Vec<String> = (0..64)
            .filter(|b| held & (1u64 << b) != 0)
            .map(|b| b.to_string())
            .collect();
        format!(
            "{} (in the sandbox's user namespace, ambient)",
            numbers.join(" ")
        )
    };
    let report = Report {
        landlock,
        keyring,
        session,
        caps,
        seccomp: exec.seccomp_text.clone(),
        weaker,
    };
    tx.send(&ToSupervisor::Enforced(report))
        .map_err(|_| StepError::new(Step::Report, None, Errno::EPIPE))?;
    // The very last step: nothing but execve runs under the filter.
    if let (Some(sock), Some(prog)) = (exec.trace_sock, exec.seccomp.first()) {
        let listener = sys::install_seccomp_listener(prog)
            .map_err(|e| StepError::new(Step::InstallSeccomp, None, e))?;
        crate::runtime::tracer::send_listener(sock, listener)?;
        return Ok(());
    }
    enforce::install_seccomp(&exec.seccomp)
        .map_err(|e| StepError::new(Step::InstallSeccomp, None, e.errno).hint(e.to_string()))?;
    Ok(())
}

/// Close every descriptor but 0, 1, 2, the passed ones and the channel
/// (close-on-exec, so execve closes it and the supervisor sees EOF).
fn close_inherited(exec: &ExecPlan, tx: &mut Sender) -> Result<(), StepError> {
    let chan = tx_fd(tx);
    let mut keep: Vec<u32> = vec![0, 1, 2, chan];
    keep.extend(exec.trace_sock.map(|f| f as u32));
    keep.extend(exec.pass_fds.iter().map(|&f| f as u32));
    keep.sort_unstable();
    keep.dedup();
    let mut next = 0u32;
    for k in keep {
        if k > next {
            sys::close_range(next, k - 1).map_err(|e| StepError::new(Step::CloseFds, None, e))?;
        }
        next = k + 1;
    }
    sys::close_range(next, u32::MAX).map_err(|e| StepError::new(Step::CloseFds, None, e))?;
    for &fd in &exec.pass_fds {
        sys::clear_cloexec(fd).map_err(|e| {
            StepError::new(Step::PassFd, None, e)
                .detail(format!("{fd} (--pass-fd)"))
                .hint("the descriptor is not open in nook's caller")
        })?;
    }
    Ok(())
}

fn tx_fd(tx: &mut Sender) -> u32 {
    tx.raw_fd() as u32
}

/// Try each candidate like execvp; returns only on failure.
fn execute(exec: &ExecPlan) -> StepError {
    let mut saw_eacces = None;
    let mut last = Errno::ENOENT;
    for path in &exec.candidates {
        let Err(err) = nix::unistd::execve(path, &exec.argv, &exec.envp);
        match err {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => saw_eacces = Some(path.clone()),
            e => {
                let p = PathBuf::from(path.to_string_lossy().into_owned());
                return StepError::new(Step::Execute, Some(&p), e).code(EXIT_CANNOT_EXEC);
            }
        }
        last = err;
    }
    if let Some(p) = saw_eacces {
        let p = PathBuf::from(p.to_string_lossy().into_owned());
        return StepError::new(Step::Execute, Some(&p), Errno::EACCES)
            .hint("the file is not executable, or a directory on its path is not searchable")
            .code(EXIT_CANNOT_EXEC);
    }
    let hint = if exec.name.contains('/') {
        "no such file inside the sandbox; is its directory part of the sandbox's view?".to_string()
    } else {
        format!(
            "not found in PATH inside the sandbox ({}); is its directory part of the sandbox's view?",
            exec.search_path
        )
    };
    StepError::new(Step::Execute, Some(Path::new(&exec.name)), last)
        .hint(hint)
        .code(EXIT_NOT_FOUND)
}

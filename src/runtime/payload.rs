//! The exec stage: the last steps before the payload's execve, in the one
//! fixed order (STYLE.md §6): working directory, close inherited
//! descriptors, no_new_privs, unblock signals, execve. Capabilities are
//! already gone: init dropped them all before forking the payload.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::SigmaskHow;

use crate::error::{EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, StepError};
use crate::spec::Spec;
use crate::sys;

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
}

fn cstring(s: &str) -> CString {
    // Arguments come from the OS as C strings and can't hold NUL; env values
    // from flags could, and are truncated at it.
    CString::new(s.split('\0').next().unwrap_or("")).expect("no NUL after split")
}

impl ExecPlan {
    pub fn new(spec: &Spec) -> ExecPlan {
        let name = spec.command[0].clone();
        let search_path = spec.search_path().to_string();
        let candidates = if name.contains('/') {
            vec![cstring(&name)]
        } else {
            search_path
                .split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| cstring(&format!("{d}/{name}")))
                .collect()
        };
        ExecPlan {
            argv: spec.command.iter().map(|a| cstring(a)).collect(),
            envp: spec
                .env
                .iter()
                .map(|(k, v)| cstring(&format!("{k}={v}")))
                .collect(),
            candidates,
            name,
            search_path,
            chdir: spec.chdir.clone(),
            pass_fds: spec.pass_fds.clone(),
        }
    }
}

pub fn run(exec: &ExecPlan, mut tx: Sender) -> ! {
    let e = match prepare(exec, &tx) {
        Ok(()) => execute(exec),
        Err(e) => e,
    };
    let code = e.exit_code;
    let _ = tx.send(&ToSupervisor::Failed(e));
    sys::exit_now(code)
}

fn prepare(exec: &ExecPlan, tx: &Sender) -> Result<(), StepError> {
    nix::unistd::chdir(&exec.chdir).map_err(|e| {
        StepError::new("changing to the working directory", Some(&exec.chdir), e)
            .hint("the directory must exist inside the sandbox; --chdir picks another")
    })?;
    close_inherited(exec, tx)?;
    rustix::thread::set_no_new_privs(true).map_err(|e| {
        StepError::new(
            "setting no_new_privs",
            None,
            Errno::from_raw(e.raw_os_error()),
        )
    })?;
    for s in FORWARDED {
        let _ = sys::default_handler(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&wait_mask()), None)
        .map_err(|e| StepError::new("unblocking signals", None, e))?;
    Ok(())
}

/// Close every descriptor but 0, 1, 2, the passed ones and the channel
/// (close-on-exec, so execve closes it and the supervisor sees EOF).
fn close_inherited(exec: &ExecPlan, tx: &Sender) -> Result<(), StepError> {
    let chan = tx_fd(tx);
    let mut keep: Vec<u32> = vec![0, 1, 2, chan];
    keep.extend(exec.pass_fds.iter().map(|&f| f as u32));
    keep.sort_unstable();
    keep.dedup();
    let mut next = 0u32;
    for k in keep {
        if k > next {
            sys::close_range(next, k - 1)
                .map_err(|e| StepError::new("closing inherited descriptors", None, e))?;
        }
        next = k + 1;
    }
    sys::close_range(next, u32::MAX)
        .map_err(|e| StepError::new("closing inherited descriptors", None, e))?;
    for &fd in &exec.pass_fds {
        let step = format!("passing descriptor {fd} (--pass-fd)");
        sys::clear_cloexec(fd).map_err(|e| {
            StepError::new(step, None, e).hint("the descriptor is not open in nook's caller")
        })?;
    }
    Ok(())
}

fn tx_fd(tx: &Sender) -> u32 {
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
                return StepError::new("executing", Some(&p), e).code(EXIT_CANNOT_EXEC);
            }
        }
        last = err;
    }
    if let Some(p) = saw_eacces {
        let p = PathBuf::from(p.to_string_lossy().into_owned());
        return StepError::new("executing", Some(&p), Errno::EACCES)
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
    StepError::new("executing", Some(Path::new(&exec.name)), last)
        .hint(hint)
        .code(EXIT_NOT_FOUND)
}

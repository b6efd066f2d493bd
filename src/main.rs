//! nook: a rootless sandbox.
//!
//! Data flows one way through the modules, in this order:
//! - [`cli`]: command-line flags into a plain `RunRequest`;
//! - [`host`]: every ambient input (ids, environment, HOME, /etc/subuid);
//! - [`profile`]: profile files into layers of settings, flags the last;
//! - [`spec`]: merged settings + host into one resolved `Spec` (`--print-spec`);
//! - [`plan`]: Spec into ordered steps, pure (`--print-plan`), with the
//!   [`security`] policies (seccomp, Landlock) as data;
//! - [`runtime`]: the supervisor, setup child, init and payload that
//!   execute the plan;
//! - [`sys`]: the only module with `unsafe`, thin wrappers over raw calls.
//!
//! Beside the pipeline: [`net`] (helper arguments, egress rules), [`limits`]
//! and [`cgroup`] (resource limits), [`stats`], [`store`] (named sandboxes'
//! layers) with [`sandboxes`] and [`overlay`] (diff / commit / discard),
//! [`registry`] (running sandboxes) with [`manage`] (`-d`, ps, exec, stop,
//! kill, logs), [`events`] (`--events`), and [`doctor`].
//!
//! Only `main` turns errors into messages and exit codes.

mod cli;
mod commands;
mod error;
mod events;
mod host;
mod net;
mod overlay;
mod plan;
mod profile;
mod runtime;
mod settings;
mod spec;
mod state;
mod stats;
mod sys;

use std::io::Write;
use std::process::ExitCode;

use error::{EXIT_NOOK, Error};

fn main() -> ExitCode {
    let code = match run() {
        Ok(code) => code,
        Err(e) => report_error(&e),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(EXIT_NOOK as u8))
}

fn run() -> Result<i32, Error> {
    commands::dispatch(cli::parse(std::env::args_os())?)
}

/// Print an error (and its hint) the one way nook does; its exit code.
fn report_error(e: &Error) -> i32 {
    let mut msg = format!("nook: error: {e}\n");
    if let Some(h) = e.hint() {
        msg.push_str(&format!("nook: hint: {h}\n"));
    }
    let _ = std::io::stderr().write_all(msg.as_bytes());
    e.exit_code()
}

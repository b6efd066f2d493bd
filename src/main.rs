//! nook: a rootless sandbox.
//!
//! Data flows one way through the modules, in this order:
//! - [`cli`]: command-line flags into a plain `RunRequest`;
//! - [`host`]: every ambient input (ids, environment, HOME, /etc/subuid);
//! - [`spec`]: request + host into one resolved `Spec` (`--print-spec`);
//! - [`plan`]: Spec into ordered steps, pure (`--print-plan`);
//! - [`runtime`]: the supervisor, setup child, init and payload that
//!   execute the plan;
//! - [`sys`]: the only module with `unsafe`, thin wrappers over raw calls.
//!
//! Only `main` turns errors into messages and exit codes.

mod cli;
mod error;
mod host;
mod plan;
mod runtime;
mod spec;
mod sys;

use std::io::Write;
use std::process::ExitCode;

use error::{EXIT_NOOK, Error};

fn main() -> ExitCode {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            let mut msg = format!("nook: error: {e}\n");
            if let Some(h) = e.hint() {
                msg.push_str(&format!("nook: hint: {h}\n"));
            }
            let _ = std::io::stderr().write_all(msg.as_bytes());
            e.exit_code()
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(EXIT_NOOK as u8))
}

fn run() -> Result<i32, Error> {
    let req = match cli::parse(std::env::args_os())? {
        cli::Parsed::Info(text) => {
            print!("{text}");
            return Ok(0);
        }
        cli::Parsed::Run(req) => req,
    };
    let host = host::Host::detect();
    let spec = spec::resolve(&req, &host)?;
    let plan = plan::build(&spec);
    if req.print_spec || req.print_plan {
        let mut out = String::new();
        if req.print_spec {
            out.push_str(&serde_json::to_string_pretty(&spec).expect("Spec serializes"));
            out.push('\n');
        }
        if req.print_plan {
            out.push_str(&plan.to_string());
        }
        print!("{out}");
        return Ok(0);
    }
    runtime::run(&spec, &plan)
}

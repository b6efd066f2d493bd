//! The commands: each finds what it needs, runs the pipeline, and prints
//! (`advice` is the one module here that prints nothing: the rules `why`
//! and `learn` share; `docs` makes completions and man pages from the
//! command line's clap definitions).
//! The only modules that write to the user's terminal, apart from `main`'s
//! one error printer. Whatever the sandbox could have chosen (file names,
//! command lines, log output, paths in errors) goes through [`escape`] as
//! it is printed.

pub mod advice;
pub mod docs;
pub mod doctor;
pub mod explain;
pub mod learn;
pub mod manage;
pub mod profile;
pub mod review;
pub mod risk;
pub mod run;
pub mod why;

use std::io::Write;

use crate::cli::Parsed;
use crate::error::Error;
use crate::escape;
use crate::host::Host;

/// Run what the command line asked for; the exit status.
pub fn dispatch(parsed: Parsed) -> Result<i32, Error> {
    match parsed {
        Parsed::Info(text) => {
            out(&text);
            Ok(0)
        }
        Parsed::Run(req) => run::run(*req),
        Parsed::Profile(cmd) => profile::command(cmd),
        Parsed::Review(cmd) => review::command(cmd, &Host::detect()),
        Parsed::Manage(cmd) => manage::command(cmd, &Host::detect()),
        Parsed::Why(args) => why::command(args, &Host::detect()),
        Parsed::Learn(args) => learn::command(args),
        Parsed::Completions(shell) => {
            out(&docs::completions(shell));
            Ok(0)
        }
        Parsed::Man { dir: None } => {
            out(&docs::man_page());
            Ok(0)
        }
        Parsed::Man { dir: Some(dir) } => docs::write_man_pages(&dir).map(|()| 0),
        Parsed::Doctor { json } => {
            let checks = doctor::run(&Host::detect());
            if json {
                out(&(serde_json::to_string_pretty(&checks).expect("checks serialize") + "\n"));
            } else {
                out(&doctor::render(&checks).0);
            }
            Ok(if doctor::usable(&checks) { 0 } else { 1 })
        }
    }
}

/// Write to stdout; a closed pipe (`nook ... | head`) is not an error.
pub fn out(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// Print an error (and its hint) the one way nook does; its exit code.
/// Each is one line with its controls escaped: the paths in it may be
/// names the sandbox chose.
pub fn report_error(e: &Error) -> i32 {
    let mut msg = format!("nook: error: {}\n", escape::line(&e.to_string()));
    if let Some(h) = e.hint() {
        msg.push_str(&format!("nook: hint: {}\n", escape::line(h)));
    }
    let _ = std::io::stderr().write_all(msg.as_bytes());
    e.exit_code()
}

//! nook: a rootless sandbox.
//!
//! Data flows one way, stage by stage (a test checks that no module names
//! a later stage):
//! - [`settings`]: THE table of keys (every profile key is a flag of the
//!   same name), and `Layer`, the ordered values one source gave;
//! - [`cli`]: clap; the run flags, built from the table, become the last
//!   layer; the subcommands are plain data for `commands`;
//! - [`host`]: every ambient input, read once (ids, environment, HOME, the
//!   shape of `/`, /etc/subuid, helper programs, the cgroup situation);
//! - [`profile`]: profile files into layers (schema, variables, catalogue,
//!   secrets, firejail import);
//! - [`spec`]: layers + host into one resolved `Spec` (`--print-spec`),
//!   with its modes, units, limits and syscall names;
//! - [`plan`]: Spec into everything the runtime does, pure
//!   (`--print-plan`): id maps, mount operations, network, cgroup limits,
//!   the exec stage with its Landlock rules and seccomp policy;
//! - [`state`]: named sandboxes' layers and running sandboxes' records;
//! - [`runtime`]: the supervisor (numbered steps), init and payload that
//!   execute a Plan, enforcement, cgroup leaf, events; returns an
//!   `Outcome` and prints only `-v` traces and weaker-hardening warnings;
//! - [`commands`]: run, profile, review, manage, doctor: the printers.
//!
//! Used from several stages: [`error`] (typed steps and causes),
//! [`escape`] (sandbox-chosen text made safe for a terminal), [`sys`]
//! (the only `unsafe`), [`net`] (helper arguments, egress rules) and
//! [`overlay`] (the fd-based review of upper layers).
//!
//! Only `main` turns the final error into an exit code.

mod cli;
mod commands;
mod error;
mod escape;
mod host;
mod net;
mod overlay;
mod plan;
mod profile;
mod runtime;
mod settings;
mod spec;
mod state;
mod sys;

use std::process::ExitCode;

use error::{EXIT_NOOK, Error};

fn main() -> ExitCode {
    let code = match run() {
        Ok(code) => code,
        Err(e) => commands::report_error(&e),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(EXIT_NOOK as u8))
}

fn run() -> Result<i32, Error> {
    commands::dispatch(cli::parse(std::env::args_os())?)
}

#[cfg(test)]
mod layout {
    //! The modules form a pipeline: none names a module of a later stage.

    /// The stages in data-flow order; a module may use those before it.
    /// `error` and `sys` are the base everyone uses; `net` and `overlay`
    /// are domain libraries used from several stages and use only the base.
    const ORDER: &[&str] = &[
        "error", "escape", "sys", "net", "overlay", "settings", "cli", "host", "profile", "spec",
        "plan", "state", "runtime", "commands",
    ];

    fn uses(module: &str) -> std::collections::BTreeSet<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let file = root.join(format!("{module}.rs"));
        let mut texts = Vec::new();
        if file.exists() {
            texts.push(std::fs::read_to_string(&file).unwrap());
        } else {
            let mut dirs = vec![root.join(module)];
            while let Some(d) = dirs.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        dirs.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") {
                        texts.push(std::fs::read_to_string(&p).unwrap());
                    }
                }
            }
        }
        let mut out = std::collections::BTreeSet::new();
        for t in texts {
            for (i, _) in t.match_indices("crate::") {
                let rest = &t[i + 7..];
                // `crate::{a, b::c}` names several.
                let names = match rest.strip_prefix('{') {
                    Some(inner) => &inner[..inner.find('}').unwrap_or(0)],
                    None => rest
                        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or(""),
                };
                for part in names.split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn no_module_uses_a_later_stage() {
        let mut wrong = Vec::new();
        for (i, m) in ORDER.iter().enumerate() {
            for used in uses(m) {
                match ORDER.iter().position(|o| *o == used) {
                    Some(j) if j > i => wrong.push(format!("{m} uses {used}")),
                    Some(_) => {}
                    None => wrong.push(format!("{m} uses {used}, which is not in ORDER")),
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}

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

mod cgroup;
mod cli;
mod doctor;
mod error;
mod events;
mod host;
mod limits;
mod manage;
mod net;
mod overlay;
mod plan;
mod profile;
mod registry;
mod run_report;
mod runtime;
mod sandboxes;
mod security;
mod spec;
mod stats;
mod store;
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
    let req = match cli::parse(std::env::args_os())? {
        cli::Parsed::Info(text) => {
            out(&text);
            return Ok(0);
        }
        cli::Parsed::Profile(cmd) => return profile_command(cmd),
        cli::Parsed::Sandbox(cmd) => {
            let host = host::Host::detect();
            return match cmd {
                c @ (cli::Command::Ps { .. }
                | cli::Command::Exec { .. }
                | cli::Command::Stop { .. }
                | cli::Command::Kill { .. }
                | cli::Command::Logs { .. }) => manage::command(c, &host),
                c => sandboxes::command(c, &host),
            };
        }
        cli::Parsed::Doctor { json } => {
            let host = host::Host::detect();
            let checks = doctor::run(&host);
            let works = doctor::usable(&checks);
            if json {
                out(&(serde_json::to_string_pretty(&checks).expect("checks serialize") + "\n"));
            } else {
                out(&doctor::render(&checks).0);
            }
            return Ok(if works { 0 } else { 1 });
        }
        cli::Parsed::Run(req) => req,
    };
    let host = host::Host::detect();
    let catalogue = profile::Catalogue::new(&host);
    let names = if req.profiles.is_empty() {
        vec![catalogue.implicit(&req.command[0])]
    } else {
        req.profiles.clone()
    };
    let mut layers = catalogue.layers(&names)?;
    layers.push(req.layer.clone());
    let settings = profile::merge(layers);
    let mut spec = spec::resolve(
        &settings,
        &spec::Request {
            command: &req.command,
            verbose: req.verbose,
            profiles: &names,
        },
        &host,
    )?;
    spec.stats = req.stats;
    spec.sandbox = sandbox_dir(&spec, req.name.as_deref(), &host)?;
    let limits = &spec.limits.cgroup;
    if limits.any() && !req.print_spec && !req.print_plan {
        let here = cgroup::situation(host.uid);
        if !cgroup::placeable(&here, &limits.controllers())
            && let Some(systemd_run) = cgroup::systemd_user_available(&host)
        {
            return Err(cgroup::exec_in_scope(&systemd_run).into());
        }
    }
    let plan = plan::build(&spec);
    let mut warn = String::new();
    for w in &spec.warnings {
        warn.push_str(&format!("nook: warning: {w}\n"));
    }
    let _ = std::io::stderr().write_all(warn.as_bytes());
    if req.print_spec || req.print_plan {
        let mut out = String::new();
        if req.print_spec {
            out.push_str(&serde_json::to_string_pretty(&spec).expect("Spec serializes"));
            out.push('\n');
        }
        if req.print_plan {
            out.push_str(&plan.to_string());
        }
        self::out(&out);
        return Ok(0);
    }
    let state_dir = registry::dir(&host.env, host.uid);
    registry::ensure(&state_dir, host.uid)?;
    let mut ctl = runtime::Control {
        state_dir: Some(state_dir),
        name: spec
            .sandbox
            .as_ref()
            .map_or_else(|| format!("sb-{}", std::process::id()), |s| s.name.clone()),
        events: events::Events::open(req.events.as_deref())?,
        ..Default::default()
    };
    if req.detach {
        return manage::detach(&spec, &plan, ctl);
    }
    runtime::run(&spec, &plan, &mut ctl).and_then(run_report::print)
}

fn profile_command(cmd: cli::ProfileCommand) -> Result<i32, Error> {
    use cli::ProfileCommand as P;
    let mut host = host::Host::detect();
    // Profiles are checked and explained without asking DNS: names stay
    // names (a lookup could take seconds, and says nothing about a file).
    host.resolver = net::unresolved;
    let catalogue = profile::Catalogue::new(&host);
    let mut out = String::new();
    match cmd {
        P::List => {
            for src in catalogue.list() {
                let about = profile::summary(&src.text);
                let kind = match src.kind {
                    profile::Kind::Shipped => "shipped",
                    profile::Kind::User => "yours",
                    profile::Kind::File => "file",
                };
                out.push_str(&format!("{:<10} {:<8} {about}\n", src.name, kind));
            }
        }
        P::Show { name } => {
            let layer = profile::merge(catalogue.layers(&[name])?);
            out.push_str(&layer.to_toml());
        }
        P::Check { file } => {
            let layer = catalogue.check(&file)?;
            // Resolving the Spec also checks values against this host.
            spec::resolve(
                &layer,
                &spec::Request {
                    command: &["true".to_string()],
                    verbose: false,
                    profiles: std::slice::from_ref(&file),
                },
                &host,
            )?;
            out.push_str(&format!("{file}: ok\n"));
        }
        P::Explain { name } => {
            let layer = profile::merge(catalogue.layers(std::slice::from_ref(&name))?);
            let spec = spec::resolve(
                &layer,
                &spec::Request {
                    command: &["true".to_string()],
                    verbose: false,
                    profiles: std::slice::from_ref(&name),
                },
                &host,
            )?;
            out.push_str(&profile::explain::explain(&name, &spec, &host.home));
        }
        P::ImportFirejail { file } => {
            let path = host.cwd.join(&file);
            let read = |p: &std::path::Path| std::fs::read_to_string(p).ok();
            let imp = profile::firejail::import(&path, &read).ok_or_else(|| Error::At {
                at: file.clone(),
                what: "cannot read the firejail profile".into(),
            })?;
            let mut err = String::new();
            for (at, why) in &imp.untranslated {
                err.push_str(&format!("nook: not translated: {at} -- {why}\n"));
            }
            let _ = std::io::stderr().write_all(err.as_bytes());
            out.push_str(&imp.to_toml(&path));
        }
    }
    self::out(&out);
    Ok(0)
}

/// The named sandbox a run uses: `--name`, or a fresh name when it keeps
/// overlay layers without one.
fn sandbox_dir(
    spec: &spec::Spec,
    name: Option<&str>,
    host: &host::Host,
) -> Result<Option<store::SandboxDir>, Error> {
    let keeps = spec
        .mounts
        .iter()
        .any(|m| matches!(m, spec::Mount::Overlay { keep: true, .. }));
    let root = store::root(&host.env, &host.home);
    Ok(match name {
        Some(n) => {
            store::check_name(n).map_err(|e| Error::usage("--name", n, e))?;
            Some(store::SandboxDir {
                name: n.to_string(),
                dir: root.join(n),
                auto: false,
            })
        }
        None if keeps => {
            let n = store::auto_name(std::time::SystemTime::now(), std::process::id());
            Some(store::SandboxDir {
                dir: root.join(&n),
                name: n,
                auto: true,
            })
        }
        None => None,
    })
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

/// Write to stdout; a closed pipe (`nook ... | head`) is not an error.
fn out(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

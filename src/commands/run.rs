//! `nook run`: profiles and flags to a Spec, the Spec to a Plan, and the
//! runtime on it; `--print-spec` / `--print-plan` stop before running.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::RunRequest;
use crate::error::{Error, Step, StepError};
use crate::host::cgroup;
use crate::runtime::Outcome;
use crate::runtime::events;
use crate::state::{layers, running};
use crate::{host, plan, profile, runtime, settings, spec};

pub fn run(req: RunRequest) -> Result<i32, Error> {
    let host = host::Host::detect();
    let catalogue = profile::Catalogue::new(&host);
    let names = if req.profiles.is_empty() {
        vec![catalogue.implicit(&req.command[0])]
    } else {
        req.profiles.clone()
    };
    let mut layers = catalogue.layers(&names)?;
    layers.push(req.layer.clone());
    let settings = settings::merge(layers);
    let spec = spec::resolve(
        &settings,
        &spec::Request {
            command: &req.command,
            profiles: &names,
        },
        &host,
    )?;
    // Run options travel beside the Spec and the Plan, not in them.
    let sandbox = sandbox_dir(&spec, req.name.as_deref(), &host)?;
    let limits = &spec.limits.cgroup;
    if limits.any()
        && !req.print_spec
        && !req.print_plan
        && !cgroup::placeable(host.cgroup(), &limits.controllers())
        && let Some(systemd_run) = cgroup::systemd_user_available(&host)
    {
        return Err(exec_in_scope(&systemd_run).into());
    }
    let plan = plan::build(&spec, sandbox.as_ref().map(|s| s.dir.as_path()));
    let mut warn = String::new();
    for w in &spec.warnings {
        warn.push_str(&format!("nook: warning: {}\n", crate::escape::line(w)));
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
        super::out(&out);
        return Ok(0);
    }
    let state_dir = running::dir(&host.env, host.uid, &host.home);
    // The record is what `nook ps`, `exec` and `stop` find a sandbox by:
    // a named or detached one needs it; an anonymous foreground run goes
    // on without it, with one warning.
    let state_dir = match running::ensure(&state_dir, host.uid) {
        Ok(()) => Some(state_dir),
        Err(e) if req.name.is_none() && !req.detach => {
            let _ = std::io::stderr().write_all(
                format!(
                    "nook: warning: {}; this run is not listed by `nook ps`\n",
                    crate::escape::line(&e.to_string())
                )
                .as_bytes(),
            );
            None
        }
        Err(e) => return Err(e.into()),
    };
    let mut ctl = runtime::Control {
        verbose: req.verbose,
        stats: req.stats,
        state_dir,
        name: sandbox
            .as_ref()
            .map_or_else(|| format!("sb-{}", std::process::id()), |s| s.name.clone()),
        sandbox,
        // Read once, and only when a leaf may be wanted.
        cgroup: (plan.cgroup.any() || req.stats.is_some()).then(|| host.cgroup().clone()),
        events: events::Events::open(req.events.as_deref())?,
        trace: req.trace.then(|| runtime::TraceWith {
            home: host.home.clone(),
            watch: if req.trace_stat {
                plan::seccomp::Watch::PathsAndLooks
            } else {
                plan::seccomp::Watch::Paths
            },
        }),
        // A terminal of its own when the user has one (stdin and stdout),
        // or asked by -t; pipes stay pipes.
        // A detached one only with -t: it then waits for `nook attach`.
        tty: req.tty.unwrap_or_else(|| {
            !req.detach
                && nix::unistd::isatty(std::io::stdin()).unwrap_or(false)
                && nix::unistd::isatty(std::io::stdout()).unwrap_or(false)
        }),
        ..Default::default()
    };
    if req.detach {
        let after = |ctl: &runtime::Control| say_new_protected_paths(&spec, &host, ctl);
        return super::manage::detach(&plan, ctl, &after);
    }
    let outcome = runtime::run(&plan, &mut ctl);
    say_new_protected_paths(&spec, &host, &ctl);
    if req.trace
        && let Ok(o) = &outcome
    {
        keep_trace(&req, &names, &ctl, o, &plan, &host)?;
    }
    outcome.and_then(report)
}

/// `--trace`: keep what the run was refused, for `nook why` and `nook
/// learn`.
fn keep_trace(
    req: &RunRequest,
    profiles: &[String],
    ctl: &runtime::Control,
    o: &Outcome,
    plan: &plan::Plan,
    host: &host::Host,
) -> Result<(), Error> {
    use crate::state::trace;
    let mut t = o.trace.clone().unwrap_or_default();
    t.version = trace::VERSION;
    t.name = ctl.name.clone();
    t.command = req.command.clone();
    t.profiles = profiles.to_vec();
    t.exit_status = o.status;
    t.started = crate::host::unix_now() - o.stats.wall_seconds.unwrap_or(0.0);
    t.network = o.refused.clone();
    if let Some(k) = &o.oom {
        t.limits.push(trace::LimitHit {
            what: "memory".into(),
            setting: k.memory_max.map_or("--memory".into(), |m| {
                format!("--memory {}", crate::spec::units::human_bytes(m))
            }),
        });
    }
    if o.pids_max_hits > 0 {
        t.limits.push(trace::LimitHit {
            what: "pids".into(),
            setting: plan
                .cgroup
                .pids_max
                .map_or("--pids".into(), |n| format!("--pids {n}")),
        });
    }
    if o.scratch_full {
        t.limits.push(trace::LimitHit {
            what: "disk-quota".into(),
            setting: plan.scratch_size.map_or("--disk-quota".into(), |n| {
                format!("--disk-quota {}", crate::spec::units::human_bytes(n))
            }),
        });
    }
    // Killed by SIGXFSZ (128+25): a write went past RLIMIT_FSIZE.
    if o.status == 128 + libc::SIGXFSZ {
        t.limits.push(trace::LimitHit {
            what: "fsize".into(),
            setting: "--rlimit fsize=SIZE".into(),
        });
    }
    if o.stats.timed_out {
        t.limits.push(trace::LimitHit {
            what: "timeout".into(),
            setting: "--timeout".into(),
        });
    }
    trace::save(&trace::dir(&host.env, &host.home), &t, req.name.is_some())?;
    Ok(())
}

/// Protected names the sandbox created in a read-write share, before the
/// user's next command could run them: one warning line and one event
/// each.
fn say_new_protected_paths(spec: &spec::Spec, host: &host::Host, ctl: &runtime::Control) {
    let mut text = String::new();
    for (path, why) in spec.new_protected_paths(host) {
        ctl.events
            .emit(events::Event::RiskyFile { path: &path, why });
        text.push_str(&format!(
            "nook: warning: the sandbox created {}: {why}; check it before anything runs it\n",
            crate::escape::path(&path)
        ));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// The named sandbox a run uses: `--name`, or a fresh name when it keeps
/// overlay layers without one.
fn sandbox_dir(
    spec: &spec::Spec,
    name: Option<&str>,
    host: &host::Host,
) -> Result<Option<layers::SandboxDir>, Error> {
    let keeps = spec
        .mounts
        .iter()
        .any(|m| matches!(m, spec::Mount::Overlay { keep: true, .. }));
    let root = layers::root(&host.env, &host.home);
    Ok(match name {
        Some(n) => {
            layers::check_name(n).map_err(|e| Error::usage("--name", n, e))?;
            Some(layers::SandboxDir {
                name: n.to_string(),
                dir: root.join(n),
                auto: false,
            })
        }
        None if keeps => {
            let n = layers::auto_name(std::time::SystemTime::now(), std::process::id());
            Some(layers::SandboxDir {
                dir: root.join(&n),
                name: n,
                auto: true,
            })
        }
        None => None,
    })
}

/// Run this nook again inside a transient systemd scope with delegation
/// (systemd-run asks the user's manager over D-Bus, StartTransientUnit);
/// returns only on failure.
fn exec_in_scope(systemd_run: &Path) -> StepError {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let e = std::process::Command::new(systemd_run)
        .args([
            "--user",
            "--scope",
            "--quiet",
            "--collect",
            "-p",
            "Delegate=yes",
            "--",
        ])
        .arg(&exe)
        .args(std::env::args_os().skip(1))
        .env(cgroup::IN_SCOPE, "1")
        .exec();
    StepError::io(Step::AskSystemd, Some(systemd_run), &e)
}

/// What `nook run` says when its sandbox has ended, from the runtime's
/// `Outcome`, in the order the lines always came: an OOM kill, the
/// --stats figures, where kept changes are; then the failure, if any, goes
/// to the one error printer.
pub fn report(o: Outcome) -> Result<i32, Error> {
    let Outcome {
        status,
        oom,
        stats,
        stats_format,
        kept_changes,
        failure,
        refused,
        trace: _,
        pids_max_hits: _,
        scratch_full: _,
    } = o;
    let mut text = String::new();
    for r in &refused {
        let (one, many, to) = if r.lookup {
            ("lookup", "lookups", "of")
        } else {
            ("connection", "connections", "to")
        };
        text.push_str(&format!(
            "nook: refused {} {} {to} {} ({})\n",
            r.count,
            if r.count == 1 { one } else { many },
            crate::escape::line(&r.dest),
            r.reason
        ));
    }
    if let Some(k) = oom {
        let limit = k.memory_max.map_or("the memory limit".to_string(), |m| {
            format!("limit {}", crate::spec::units::human_bytes(m))
        });
        let what = if k.init_killed {
            "killed"
        } else {
            "a process in the sandbox was killed"
        };
        text.push_str(&format!("nook: {what}: out of memory, {limit}\n"));
    }
    if let Some(format) = stats_format {
        text.push_str(&stats.render(format));
    }
    if let Some(n) = kept_changes {
        let n = crate::escape::name(&n);
        text.push_str(&format!(
            "nook: changes kept in sandbox '{n}': review with `nook diff {n}`, apply with `nook commit {n}`, drop with `nook rm {n}`\n"
        ));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
    match failure {
        Some(e) => Err(e),
        None => Ok(status),
    }
}

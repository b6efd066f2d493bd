//! The id maps of init's user namespace, written by init itself or by the
//! supervisor (see `by_init`).

use std::path::PathBuf;
use std::process::Command;

use nix::unistd::Pid;

use crate::error::{Context, Step, StepError};
use crate::plan::{IdMap, Plan};

use super::trace;

/// Who writes the maps: init itself when they map only our own ids (the
/// one mapping an unprivileged process may write, and may write for
/// itself, holding every capability in its new namespace), else the
/// supervisor, through newuidmap/newgidmap.
pub fn by_init(plan: &Plan) -> bool {
    plan.uid_map.helper.is_none() && plan.gid_map.helper.is_none()
}

/// Write uid_map, then setgroups, then gid_map for `pid` (`None`: for the
/// calling process, from inside its new user namespace).
///
/// An unprivileged writer may map only its own ids, and only after
/// setgroups is set to "deny" for the gid map (user_namespaces(7)); wider
/// maps go through the setuid newuidmap/newgidmap, which check /etc/subuid
/// and need setgroups left alone.
pub fn write(pid: Option<Pid>, plan: &Plan, verbose: bool) -> Result<(), StepError> {
    let proc = PathBuf::from(match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    });
    write_one(pid, &plan.uid_map, &proc.join("uid_map"), verbose)?;
    if plan.gid_map.helper.is_none() {
        let p = proc.join("setgroups");
        std::fs::write(&p, "deny").step(Step::WriteSetgroups, Some(&p))?;
    }
    write_one(pid, &plan.gid_map, &proc.join("gid_map"), verbose)
}

fn write_one(
    pid: Option<Pid>,
    map: &IdMap,
    file: &std::path::Path,
    v: bool,
) -> Result<(), StepError> {
    let who = if pid.is_some() { "supervisor" } else { "init" };
    match &map.helper {
        None => {
            trace(v, who, format_args!("write {}: {map}", file.display()));
            std::fs::write(file, map.proc_text()).step(Step::Write, Some(file))
        }
        Some(helper) => {
            let Some(pid) = pid else {
                return Err(
                    StepError::new(Step::Run, Some(helper), nix::errno::Errno::EINVAL)
                        .hint("the id map helpers are run by the supervisor"),
                );
            };
            trace(
                v,
                "supervisor",
                format_args!("{} {pid} {map}", helper.display()),
            );
            let out = Command::new(helper)
                .arg(pid.to_string())
                .args(map.helper_args())
                .output()
                .step(Step::Run, Some(helper))?;
            if out.status.success() {
                return Ok(());
            }
            let said = String::from_utf8_lossy(&out.stderr);
            Err(StepError::failed(Step::Run, Some(helper))
                .because(crate::error::exit_cause(out.status))
                .hint(format!(
                    "{} failed: {}; check that /etc/subuid and /etc/subgid give you the range",
                    helper.display(),
                    said.trim()
                )))
        }
    }
}

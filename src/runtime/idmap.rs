//! Supervisor side of user namespace setup: write the child's maps.

use std::path::PathBuf;
use std::process::Command;

use nix::unistd::Pid;

use crate::error::{Context, Step, StepError};
use crate::plan::{IdMap, Plan};

use super::trace;

/// Write uid_map, then setgroups, then gid_map for `pid`.
///
/// An unprivileged writer may map only its own ids, and only after
/// setgroups is set to "deny" for the gid map (user_namespaces(7)); wider
/// maps go through the setuid newuidmap/newgidmap, which check /etc/subuid
/// and need setgroups left alone.
pub fn write(pid: Pid, plan: &Plan, verbose: bool) -> Result<(), StepError> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    write_one(pid, &plan.uid_map, &proc.join("uid_map"), verbose)?;
    if plan.gid_map.helper.is_none() {
        let p = proc.join("setgroups");
        std::fs::write(&p, "deny").step(Step::WriteSetgroups, Some(&p))?;
    }
    write_one(pid, &plan.gid_map, &proc.join("gid_map"), verbose)
}

fn write_one(pid: Pid, map: &IdMap, file: &std::path::Path, v: bool) -> Result<(), StepError> {
    match &map.helper {
        None => {
            trace(
                v,
                "supervisor",
                format_args!("write {}: {map}", file.display()),
            );
            std::fs::write(file, map.proc_text()).step(Step::Write, Some(file))
        }
        Some(helper) => {
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

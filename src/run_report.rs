//! What `nook run` says when its sandbox has ended: the runtime decides
//! (`runtime::Outcome`), this prints, in the order the lines always came:
//! an OOM kill, the --stats figures, where kept changes are; then the
//! failure, if any, goes to the one error printer in `main`.

use std::io::Write;

use crate::error::Error;
use crate::runtime::Outcome;

/// Print what the Outcome holds for the user; the exit status, or the
/// failure for `main` to report.
pub fn print(o: crate::runtime::Outcome) -> Result<i32, Error> {
    let Outcome {
        status,
        oom,
        stats,
        stats_format,
        kept_changes,
        failure,
    } = o;
    let mut text = String::new();
    if let Some(k) = oom {
        let limit = k.memory_max.map_or("the memory limit".to_string(), |m| {
            format!("limit {}", crate::limits::human_bytes(m))
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

//! `--events FILE|FD`: one JSON object per line for each step of a run,
//! for tools and agents that drive nook. Every object has `event` and
//! `time` (seconds since the epoch); the rest depends on the event:
//! `started` (name, supervisor pid), `limits` (cgroup), `namespaces`
//! (init's host pid), `network` (helper), `payload` (the command runs),
//! `exited` (status, timed_out, and what it used), `failed` (the error),
//! `risky-file` (a protected name created anew in a read-write share: path
//! and why), `denied` (the egress gate refused a lookup or a connection:
//! proto, name or addr, port, reason).

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::runtime::stats::Stats;
use crate::spec::limits::CgroupLimits;

/// One step of a run, as its line says it.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event<'a> {
    Started {
        name: &'a str,
        supervisor_pid: u32,
    },
    Limits {
        cgroup: &'a Path,
        limits: &'a CgroupLimits,
    },
    Namespaces {
        init_pid: i32,
    },
    Network {
        driver: Option<crate::net::DriverKind>,
        helper: Option<&'a Path>,
    },
    Payload {
        command: &'a [String],
    },
    Exited {
        status: i32,
        stats: &'a Stats,
    },
    Failed {
        error: String,
    },
    /// A path a host program runs or obeys later, created anew in a
    /// read-write share during the run.
    RiskyFile {
        path: &'a Path,
        why: &'a str,
    },
    /// The egress gate refused a DNS lookup (`proto` dns) or a connection
    /// (tls, http, tcp).
    /// --trace: a path the view lacks, or has read-only for a write.
    #[serde(rename = "denied")]
    DeniedPath {
        path: &'a Path,
        access: crate::state::trace::Access,
        why: crate::state::trace::Why,
    },
    /// --trace: a system call the filter refused.
    #[serde(rename = "denied")]
    DeniedCall {
        syscall: &'a str,
    },
    Denied {
        proto: &'a str,
        name: Option<&'a str>,
        addr: Option<std::net::IpAddr>,
        port: u16,
        reason: &'a str,
    },
}

#[derive(Default)]
pub struct Events {
    out: Option<std::fs::File>,
}

impl Events {
    /// A file path (created or truncated), or a descriptor number the
    /// caller left open for us.
    pub fn open(target: Option<&str>) -> Result<Events, crate::error::Error> {
        let Some(t) = target else {
            return Ok(Events::default());
        };
        let file = if let Ok(fd) = t.parse::<i32>() {
            crate::sys::file_from_inherited_fd(fd).map_err(|e| {
                crate::error::Error::usage(
                    "--events",
                    t,
                    format!("expected a file or an open descriptor: {e}"),
                )
            })?
        } else {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(t)
                .map_err(|e| {
                    crate::error::Error::usage(
                        "--events",
                        t,
                        format!("expected a file nook can write: {e}"),
                    )
                })?
        };
        Ok(Events { out: Some(file) })
    }

    pub fn emit(&self, event: Event<'_>) {
        let Some(mut f) = self.out.as_ref() else {
            return;
        };
        let mut obj = serde_json::to_value(&event).unwrap_or(Value::Null);
        if let Value::Object(o) = &mut obj {
            o.insert("time".into(), crate::host::unix_now().into());
        }
        // One write per line: readers never see half an event.
        let _ = f.write_all(format!("{obj}\n").as_bytes());
    }
}

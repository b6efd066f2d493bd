//! `--events FILE|FD`: one JSON object per line for each step of a run,
//! for tools and agents that drive nook. Every object has `event` and
//! `time` (seconds since the epoch); the rest depends on the event:
//! `started` (name, supervisor pid), `limits` (cgroup), `namespaces`
//! (init's host pid), `network` (helper), `payload` (the command runs),
//! `exited` (status, timed_out, and what it used), `failed` (the error).

use std::io::Write;

use serde_json::{Value, json};

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

    pub fn emit(&self, event: &str, fields: Value) {
        let Some(mut f) = self.out.as_ref() else {
            return;
        };
        let time = crate::host::unix_now();
        let mut obj = json!({ "event": event, "time": time });
        if let (Value::Object(o), Value::Object(extra)) = (&mut obj, fields) {
            o.extend(extra);
        }
        // One write per line: readers never see half an event.
        let _ = f.write_all(format!("{obj}\n").as_bytes());
    }
}

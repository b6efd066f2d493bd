//! A sandbox's leaf in the delegated cgroup v2 hierarchy (placed as
//! `host::cgroup` describes), its limits, and its teardown: cgroup.kill,
//! wait for the leaf to empty, read the figures for `--stats`, remove it.
//! Nothing survives the sandbox.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Context, Step, StepError};
use crate::host::cgroup::{Place, Situation, place, read, refusal, words};
use crate::spec::limits::CgroupLimits;

fn write(path: &Path, value: &str) -> Result<(), StepError> {
    std::fs::write(path, value)
        .step(Step::Write, Some(path))
        .map_err(|e| e.detail(format!("'{value}' to")))
}

/// A leaf cgroup holding one sandbox.
pub struct Leaf {
    pub path: PathBuf,
    /// Strategy 2: where we moved ourselves and what we enabled.
    moved: Option<(PathBuf, PathBuf, Vec<String>)>,
    done: bool,
}

/// What the kernel counted for the sandbox.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub memory_peak: Option<u64>,
    pub cpu_usec: Option<u64>,
    pub cpu_user_usec: Option<u64>,
    pub cpu_system_usec: Option<u64>,
    pub pids_peak: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub oom_kills: u64,
    /// Forks refused because pids.max was reached (pids.events `max`).
    pub pids_max_hits: u64,
}

impl Leaf {
    /// Make the leaf and set the limits. `None` when no leaf can be had
    /// and none is needed (only `--stats` asked).
    pub fn create(
        limits: &CgroupLimits,
        situation: &Situation,
        required: bool,
    ) -> Result<Option<Leaf>, StepError> {
        let needed = limits.controllers();
        let name = format!("nook-{}", std::process::id());
        let has_all = |have: &[String]| needed.iter().all(|c| have.iter().any(|h| h == c));
        let (path, moved) = match place(situation, &needed) {
            Some(Place::Beside(parent)) => (parent.join(&name), None),
            Some(Place::Below(own, controllers)) => {
                // Move out of our own cgroup first: one with processes can't
                // enable controllers for children.
                let sup = own.join(format!("{name}-supervisor"));
                std::fs::create_dir(&sup).step(Step::CreateCgroup, Some(&sup))?;
                write(&sup.join("cgroup.procs"), &std::process::id().to_string())?;
                // Every controller we may: the figures for --stats too.
                let mut enabled = Vec::new();
                for c in controllers {
                    if write(&own.join("cgroup.subtree_control"), &format!("+{c}")).is_ok() {
                        enabled.push(c.clone());
                    }
                }
                if !has_all(&enabled) {
                    let _ = Self::undo_move(own, &sup, &enabled);
                    return Err(refusal(situation, &needed));
                }
                (own.join(&name), Some((own.to_path_buf(), sup, enabled)))
            }
            None if required => return Err(refusal(situation, &needed)),
            None => return Ok(None),
        };
        std::fs::create_dir(&path).step(Step::CreateCgroup, Some(&path))?;
        let leaf = Leaf {
            path,
            moved,
            done: false,
        };
        for (file, value) in limits.files() {
            // Dropping the leaf removes it again.
            write(&leaf.path.join(file), &value)?;
        }
        Ok(Some(leaf))
    }

    fn undo_move(own: &Path, sup: &Path, enabled: &[String]) -> Result<(), StepError> {
        for c in enabled {
            let _ = write(&own.join("cgroup.subtree_control"), &format!("-{c}"));
        }
        write(&own.join("cgroup.procs"), &std::process::id().to_string())?;
        std::fs::remove_dir(sup).step(Step::RemoveCgroup, Some(sup))
    }

    /// Put a process (the setup child, before it makes its cgroup
    /// namespace) in the leaf.
    pub fn add(&self, pid: nix::unistd::Pid) -> Result<(), StepError> {
        write(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    /// Kill every process in the leaf.
    pub fn kill(&self) {
        if write(&self.path.join("cgroup.kill"), "1").is_err() {
            // Before Linux 5.14: one by one (the sandbox is in its own pid
            // namespace, so killing its init ends the rest anyway).
            for pid in words(read(&self.path.join("cgroup.procs"))) {
                if let Ok(p) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }

    fn populated(&self) -> bool {
        read(&self.path.join("cgroup.events"))
            .map(|t| t.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    }

    pub fn usage(&self) -> Usage {
        let kv = |file: &str| -> Vec<(String, u64)> {
            read(&self.path.join(file))
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .chunks(2)
                .filter_map(|c| Some((c.first()?.to_string(), c.get(1)?.parse().ok()?)))
                .collect()
        };
        let one = |file: &str| read(&self.path.join(file)).and_then(|t| t.trim().parse().ok());
        let field =
            |pairs: &[(String, u64)], k: &str| pairs.iter().find(|(n, _)| n == k).map(|p| p.1);
        let cpu = kv("cpu.stat");
        let mut read_b = None;
        let mut write_b = None;
        for line in read(&self.path.join("io.stat")).unwrap_or_default().lines() {
            for kv in line.split_whitespace().skip(1) {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v: u64 = v.parse().unwrap_or(0);
                match k {
                    "rbytes" => *read_b.get_or_insert(0) += v,
                    "wbytes" => *write_b.get_or_insert(0) += v,
                    _ => {}
                }
            }
        }
        if read_b.is_none() && self.path.join("io.stat").exists() {
            read_b = Some(0);
            write_b = Some(0);
        }
        Usage {
            memory_peak: one("memory.peak"),
            cpu_usec: field(&cpu, "usage_usec"),
            cpu_user_usec: field(&cpu, "user_usec"),
            cpu_system_usec: field(&cpu, "system_usec"),
            pids_peak: one("pids.peak"),
            io_read_bytes: read_b,
            io_write_bytes: write_b,
            oom_kills: field(&kv("memory.events"), "oom_kill").unwrap_or(0),
            pids_max_hits: field(&kv("pids.events"), "max").unwrap_or(0),
        }
    }

    /// Kill what is left, wait for the leaf to empty, and return its
    /// figures; then remove it.
    pub fn finish(&mut self) -> Usage {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.populated() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let usage = self.usage();
        self.remove();
        usage
    }

    fn remove(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        // rmdir fails while a dying process is still counted; retry briefly.
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::remove_dir(&self.path).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some((own, sup, enabled)) = &self.moved {
            let _ = Self::undo_move(own, sup, enabled);
        }
    }
}

impl Drop for Leaf {
    /// Every path out of a run, errors included, ends the sandbox's
    /// processes and removes the leaf.
    fn drop(&mut self) {
        if !self.done {
            self.finish();
        }
    }
}

//! `--stats`: what a sandbox used, from its cgroup when it had one (exact:
//! the kernel's own counters for the whole sandbox), else from wait4's
//! rusage of init (which covers every process init reaped; peak memory is
//! then the largest single process, and pids are not counted).

use std::time::Duration;

use crate::cli::StatsFormat;

use serde::Serialize;

use crate::runtime::End;
use crate::runtime::cgroup::Usage;
use crate::spec::units::human_bytes;

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// "cgroup" or "rusage".
    pub source: &'static str,
    pub exit_code: i32,
    pub timed_out: bool,
    pub wall_seconds: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub cpu_user_seconds: Option<f64>,
    pub cpu_system_seconds: Option<f64>,
    pub memory_peak_bytes: Option<u64>,
    pub pids_peak: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub oom_kills: u64,
}

fn secs(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

impl Stats {
    pub fn new(end: &End, usage: Option<&Usage>, wall: Option<Duration>) -> Stats {
        let us = |v: Option<u64>| v.map(|u| u as f64 / 1e6);
        let mut s = Stats {
            source: "rusage",
            exit_code: if end.timed_out { 124 } else { end.code },
            timed_out: end.timed_out,
            wall_seconds: wall.map(|w| w.as_secs_f64()),
            cpu_seconds: None,
            cpu_user_seconds: None,
            cpu_system_seconds: None,
            memory_peak_bytes: None,
            pids_peak: None,
            io_read_bytes: None,
            io_write_bytes: None,
            oom_kills: 0,
        };
        if let Some(r) = &end.rusage {
            s.cpu_user_seconds = Some(secs(r.ru_utime));
            s.cpu_system_seconds = Some(secs(r.ru_stime));
            s.cpu_seconds = Some(secs(r.ru_utime) + secs(r.ru_stime));
            s.memory_peak_bytes = Some(r.ru_maxrss as u64 * 1024);
            s.io_read_bytes = Some(r.ru_inblock as u64 * 512);
            s.io_write_bytes = Some(r.ru_oublock as u64 * 512);
        }
        if let Some(u) = usage {
            s.source = "cgroup";
            s.cpu_seconds = us(u.cpu_usec).or(s.cpu_seconds);
            s.cpu_user_seconds = us(u.cpu_user_usec).or(s.cpu_user_seconds);
            s.cpu_system_seconds = us(u.cpu_system_usec).or(s.cpu_system_seconds);
            s.memory_peak_bytes = u.memory_peak.or(s.memory_peak_bytes);
            s.pids_peak = u.pids_peak;
            s.io_read_bytes = u.io_read_bytes.or(s.io_read_bytes);
            s.io_write_bytes = u.io_write_bytes.or(s.io_write_bytes);
            s.oom_kills = u.oom_kills;
        }
        s
    }

    pub fn render(&self, format: StatsFormat) -> String {
        match format {
            StatsFormat::Json => serde_json::to_string(self).expect("Stats serializes") + "\n",
            StatsFormat::Human => {
                let t = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{s:.3} s"));
                let b = |v: Option<u64>| v.map_or("-".to_string(), human_bytes);
                let mut o = format!("nook: stats ({}):\n", self.source);
                o += &format!("  wall time    {}\n", t(self.wall_seconds));
                o += &format!(
                    "  cpu time     {} (user {}, system {})\n",
                    t(self.cpu_seconds),
                    t(self.cpu_user_seconds),
                    t(self.cpu_system_seconds)
                );
                o += &format!(
                    "  peak memory  {}{}\n",
                    b(self.memory_peak_bytes),
                    if self.source == "rusage" {
                        " (largest single process)"
                    } else {
                        ""
                    }
                );
                o += &format!(
                    "  peak pids    {}\n",
                    self.pids_peak.map_or("-".to_string(), |p| p.to_string())
                );
                o += &format!(
                    "  io           read {}, written {}\n",
                    b(self.io_read_bytes),
                    b(self.io_write_bytes)
                );
                if self.oom_kills > 0 {
                    o += &format!("  oom kills    {}\n", self.oom_kills);
                }
                o += &format!(
                    "  exit         {}{}\n",
                    self.exit_code,
                    if self.timed_out { " (timed out)" } else { "" }
                );
                o
            }
        }
    }
}

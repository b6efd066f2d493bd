//! Managing running sandboxes: `run -d`, `ps`, `exec`, `stop`, `kill`,
//! `logs`. The records are in `state::running`; joining is `runtime::join`.
//! A record's name and command line, and a log's bytes, come from the
//! sandbox's side: they are printed through `escape`.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::ManageCommand;
use crate::error::{Context, EXIT_NOOK, Error, Step, StepError};
use crate::escape;
use crate::host::Host;
use crate::plan::Plan;
use crate::runtime::{self, Control};
use crate::state::running::{self, Entry};
use crate::sys;

/// `run -d`: the sandbox runs under a supervisor in a new session, its
/// output in `NAME.log` in the state directory; this process waits until
/// the command runs, prints the name, and exits 0 (or 125 with what went
/// wrong).
/// `after` runs once the sandbox has ended (the exit-time checks of `run`).
pub fn detach(plan: &Plan, mut ctl: Control, after: &dyn Fn(&Control)) -> Result<i32, Error> {
    let (r, w) = std::io::pipe().step(Step::CreatePipe, None)?;
    match sys::clone_fork(0).map_err(|e| e.into_step(Step::Detach))? {
        None => {
            drop(r);
            let code = supervise_detached(plan, &mut ctl, w, after);
            sys::exit_now(code)
        }
        Some(_) => {
            drop(w);
            // Line by line, not to end-of-file: the sandbox's own processes
            // inherited the pipe and hold it as long as they run.
            let mut name = String::new();
            for l in std::io::BufRead::lines(std::io::BufReader::new(r)).map_while(Result::ok) {
                if l == "started" {
                    super::out(&format!("{}\n", escape::name(&name)));
                    return Ok(0);
                }
                if let Some(n) = l.strip_prefix("name ") {
                    name = n.to_string();
                }
            }
            // It failed before the command ran: its log says why.
            let dir = ctl.state_dir.clone().unwrap_or_default();
            let log = dir.join(format!("{name}.log"));
            let text = std::fs::read(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            let mut stderr = std::io::stderr();
            if stderr.is_terminal() {
                let mut t = escape::Text::default();
                let shown = t.push(&text) + &t.finish();
                let _ = stderr.write_all(shown.as_bytes());
            } else {
                let _ = stderr.write_all(&text);
            }
            Ok(EXIT_NOOK)
        }
    }
}

fn supervise_detached(
    plan: &Plan,
    ctl: &mut Control,
    mut w: std::io::PipeWriter,
    after: &dyn Fn(&Control),
) -> i32 {
    let _ = nix::unistd::setsid();
    // An unnamed sandbox is named for its supervisor, which is this child.
    if ctl.sandbox.is_none() {
        ctl.name = format!("sb-{}", std::process::id());
    }
    let dir = ctl.state_dir.clone().unwrap_or_default();
    let log = dir.join(format!("{}.log", ctl.name));
    let _ = writeln!(w, "name {}", ctl.name);
    let opened = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&log)
    };
    // Until the redirection, stderr is still the caller's.
    let redirected = opened
        .step(Step::OpenLog, Some(&log))
        .and_then(|f| sys::redirect_stdio(&f).step(Step::WriteOutput, Some(&log)));
    if let Err(e) = redirected {
        return super::report_error(&e.into());
    }
    ctl.log = Some(log);
    if ctl.tty {
        ctl.sessions = Some(crate::runtime::terminal::session_socket(&dir, &ctl.name));
    }
    ctl.started = Some(std::fs::File::from(std::os::fd::OwnedFd::from(w)));
    let outcome = runtime::run(plan, ctl);
    after(ctl);
    match outcome.and_then(super::run::report) {
        Ok(code) => code,
        Err(e) => super::report_error(&e),
    }
}

pub fn command(cmd: ManageCommand, host: &Host) -> Result<i32, Error> {
    let dir = running::dir(&host.env, host.uid, &host.home);
    match cmd {
        ManageCommand::Ps { json } => ps(&dir, json),
        ManageCommand::Exec { name, command } => {
            let e = running::find(&dir, &name)?;
            runtime::join::exec(&e, &command)
        }
        ManageCommand::Stop { name, time } => {
            let e = running::find(&dir, &name)?;
            stop(&e, Duration::from_secs(time))
        }
        ManageCommand::Kill { name, signal } => {
            let e = running::find(&dir, &name)?;
            signal_sandbox(&e, &signal)
        }
        ManageCommand::Attach { name, detach_keys } => {
            let keys = parse_detach_keys(&detach_keys)
                .map_err(|e| Error::usage("--detach-keys", &detach_keys, e))?;
            let e = running::find(&dir, &name)?;
            let socket = crate::runtime::terminal::session_socket(&dir, &e.name);
            if !socket.exists() {
                return Err(Error::usage(
                    "sandbox name",
                    &name,
                    "expected a sandbox with a terminal (start it with nook run -d -t)",
                ));
            }
            let detached = crate::runtime::terminal::attach(&socket, keys)?;
            if detached {
                let _ = std::io::stderr().write_all(
                    format!("nook: detached from {}\n", escape::name(&e.name)).as_bytes(),
                );
            }
            Ok(0)
        }
        ManageCommand::Logs { name, follow } => {
            let e = running::find(&dir, &name)?;
            logs(&e, follow)
        }
    }
}

fn cgroup_figures(e: &Entry) -> (Option<u64>, Option<f64>) {
    let Some(cg) = &e.cgroup else {
        return (None, None);
    };
    let mem = std::fs::read_to_string(cg.join("memory.current"))
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let cpu = std::fs::read_to_string(cg.join("cpu.stat"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|u| u as f64 / 1e6)
        });
    (mem, cpu)
}

fn ps(dir: &Path, json: bool) -> Result<i32, Error> {
    let now = crate::host::unix_now();
    let entries = running::list(dir);
    if json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                let (mem, cpu) = cgroup_figures(e);
                serde_json::json!({
                    "name": e.name,
                    "pid": e.supervisor,
                    "init_pid": e.init,
                    "profiles": e.profiles,
                    "command": e.command,
                    "started": e.started,
                    "uptime_seconds": (now - e.started).max(0.0),
                    "memory_bytes": mem,
                    "cpu_seconds": cpu,
                })
            })
            .collect();
        super::out(&format!(
            "{}\n",
            escape::json(&serde_json::Value::Array(rows))
        ));
        return Ok(0);
    }
    let mut text = format!(
        "{:<24} {:>8} {:<10} {:>8} {:>10} {:>8}  {}\n",
        "NAME", "PID", "PROFILE", "UPTIME", "MEMORY", "CPU", "COMMAND"
    );
    for e in &entries {
        let (mem, cpu) = cgroup_figures(e);
        let uptime = crate::spec::units::human_age((now - e.started).max(0.0) as u64);
        text.push_str(&format!(
            "{:<24} {:>8} {:<10} {:>8} {:>10} {:>8}  {}\n",
            escape::name(&e.name),
            e.supervisor,
            escape::name(&e.profiles.join(",")),
            uptime,
            mem.map_or("-".into(), crate::spec::units::human_bytes),
            cpu.map_or("-".into(), |c| format!("{c:.1}s")),
            e.command
                .iter()
                .map(|a| escape::name(a))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    super::out(&text);
    Ok(0)
}

fn gone(e: &Entry) -> bool {
    !e.alive()
}

fn wait_gone(e: &Entry, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !gone(e) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// SIGKILL to the sandbox's init, through a pidfd checked against the
/// recorded start time: its pid namespace takes everything with it.
fn kill_init(e: &Entry) -> Result<(), Error> {
    let pid = rustix::process::Pid::from_raw(e.init)
        .ok_or_else(|| StepError::new(Step::FindInit, None, nix::errno::Errno::ESRCH))?;
    let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else {
        return Ok(()); // already gone
    };
    if running::start_time(e.init) != Some(e.init_start) {
        return Ok(());
    }
    let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
    Ok(())
}

fn stop(e: &Entry, grace: Duration) -> Result<i32, Error> {
    // The supervisor passes SIGTERM on to the command.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(e.supervisor),
        nix::sys::signal::Signal::SIGTERM,
    );
    if !wait_gone(e, grace) {
        kill_init(e)?;
        if !wait_gone(e, Duration::from_secs(5)) {
            return Err(
                StepError::new(Step::Stop, None, nix::errno::Errno::ETIMEDOUT)
                    .hint("its processes did not end after SIGKILL")
                    .into(),
            );
        }
    }
    Ok(0)
}

fn signal_sandbox(e: &Entry, name: &str) -> Result<i32, Error> {
    use nix::sys::signal::Signal;
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let sig = match bare {
        "KILL" | "9" => return kill_init(e).map(|()| 0),
        "TERM" | "15" => Signal::SIGTERM,
        "INT" | "2" => Signal::SIGINT,
        "HUP" | "1" => Signal::SIGHUP,
        "QUIT" | "3" => Signal::SIGQUIT,
        "USR1" | "10" => Signal::SIGUSR1,
        "USR2" | "12" => Signal::SIGUSR2,
        "WINCH" | "28" => Signal::SIGWINCH,
        "CONT" | "18" => Signal::SIGCONT,
        _ => {
            return Err(Error::usage(
                "--signal",
                name,
                "expected TERM, INT, HUP, QUIT, USR1, USR2, WINCH, CONT or KILL",
            ));
        }
    };
    if running::start_time(e.supervisor) == Some(e.supervisor_start) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(e.supervisor), sig);
    }
    Ok(0)
}

fn logs(e: &Entry, follow: bool) -> Result<i32, Error> {
    let Some(path) = &e.log else {
        return Err(Error::usage(
            "sandbox name",
            &e.name,
            "expected a detached sandbox (run -d): this one writes to its terminal",
        ));
    };
    let mut f = std::fs::File::open(path).step(Step::OpenLog, Some(path))?;
    // The log is the sandbox's output: byte for byte into a file or a pipe,
    // escaped on a terminal (where an escape sequence would act).
    let mut shown = std::io::stdout().is_terminal().then(escape::Text::default);
    let mut copy = |buf: &[u8]| {
        let mut stdout = std::io::stdout();
        let _ = match &mut shown {
            Some(t) => stdout.write_all(t.push(buf).as_bytes()),
            None => stdout.write_all(buf),
        };
        let _ = stdout.flush();
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let _ = f.read_to_end(&mut buf);
        copy(&buf);
        if !follow || gone(e) {
            // One last read after the end: nothing written is missed.
            if follow {
                buf.clear();
                let _ = f.read_to_end(&mut buf);
                copy(&buf);
            }
            if let Some(t) = shown {
                super::out(&t.finish());
            }
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ctrl-p,ctrl-q`: two control keys, as the bytes a terminal sends.
fn parse_detach_keys(s: &str) -> Result<[u8; 2], &'static str> {
    let expected = "expected two keys as ctrl-X,ctrl-Y (X and Y letters, or one of @[\\]^_)";
    let key = |k: &str| -> Result<u8, &'static str> {
        let c = k.strip_prefix("ctrl-").ok_or(expected)?;
        let [c] = c.as_bytes() else {
            return Err(expected);
        };
        match c.to_ascii_uppercase() {
            c @ b'@'..=b'_' => Ok(c - b'@'),
            _ => Err(expected),
        }
    };
    let (a, b) = s.split_once(',').ok_or(expected)?;
    Ok([key(a)?, key(b)?])
}

#[cfg(test)]
mod detach_keys_tests {
    use super::parse_detach_keys;

    #[test]
    fn detach_keys_are_control_bytes() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Ok([0x10, 0x11]));
        assert_eq!(parse_detach_keys("ctrl-a,ctrl-d"), Ok([0x01, 0x04]));
        for bad in ["p,q", "ctrl-p", "ctrl-pp,ctrl-q", "ctrl-1,ctrl-q"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad}");
        }
    }
}

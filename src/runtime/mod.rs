//! Runtime: executes a Plan with four named processes.
//!
//! ```text
//! supervisor (outside, stays)  ──clone(every namespace)──> init (pid 1) ──fork──> payload
//! ```
//! The supervisor (`supervise`, in the numbered steps of DESIGN.md's
//! process model) starts init, forwards signals to it, waits for the end
//! and tears down; it returns an `Outcome` for its caller to print
//! (`commands::run::report`), and itself prints only `-v` traces and the warnings of
//! weaker hardening, which must come before the payload's output. init is
//! born in all its namespaces by one clone (`setup`), builds the root and
//! starts the payload. See `msg` for the sync points.

pub mod cgroup;
pub mod enforce;
pub mod events;
pub mod gate;
mod helper;
mod idmap;
mod init;
pub mod join;
mod mounts;
#[cfg(test)]
mod mounts_tests;
pub mod msg;
mod payload;
#[cfg(test)]
mod probe_tests;
mod relay;
mod setup;
mod side;
pub mod stats;
pub mod terminal;
mod tracer;

use std::io::Write;

use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::Pid;

use crate::error::{EXIT_NOOK, Error, Step, StepError};
use crate::plan::Plan;
use crate::sys;
use events::Event;
use msg::{ToSandbox, ToSupervisor};
use std::os::fd::{AsRawFd, OwnedFd};

/// Signals the supervisor and init pass on to the payload.
pub const FORWARDED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// The mask every nook process runs with until the payload's execve: the
/// forwarded signals and SIGCHLD are consumed synchronously with sigwait.
pub fn wait_mask() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    // The supervisor's --timeout.
    set.add(Signal::SIGALRM);
    set
}

/// One line of `-v` tracing, written with a single write so lines from
/// different processes never interleave.
pub fn trace(on: bool, who: &str, what: std::fmt::Arguments<'_>) {
    if on {
        let us = START.get().map(|t| t.elapsed().as_micros()).unwrap_or(0);
        let line = format!("nook[{who} +{us}us]: {what}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// When the supervisor started, for the timestamps of `-v` lines.
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// How a run is managed from outside: its record for `ps` and `exec`,
/// the detached parent waiting for it to start, and the event stream.
#[derive(Default)]
pub struct Control {
    /// `-v`: trace each step.
    pub verbose: bool,
    /// `--stats`: the format the caller will print the figures in (a leaf
    /// is made for exact figures when one can be had).
    pub stats: Option<crate::cli::StatsFormat>,
    /// The named sandbox whose lock the run holds and whose kept layers
    /// it writes.
    pub sandbox: Option<crate::state::layers::SandboxDir>,
    /// Our cgroup situation, as the caller read it: where a leaf can go.
    pub cgroup: Option<crate::host::cgroup::Situation>,
    /// The state directory (made and checked) and the name to record.
    pub state_dir: Option<std::path::PathBuf>,
    pub name: String,
    pub log: Option<std::path::PathBuf>,
    /// `run -d`: told "started" once the command runs.
    pub started: Option<std::fs::File>,
    pub events: crate::runtime::events::Events,
    /// `--trace`: watch what the command is refused (see `tracer`).
    pub trace: Option<TraceWith>,
    /// The command gets a terminal of its own (see `terminal`).
    pub tty: bool,
    /// ...which a detached sandbox serves to `nook attach` on this socket.
    pub sessions: Option<std::path::PathBuf>,
}

/// What the tracer needs besides the plan.
#[derive(Debug, Clone)]
pub struct TraceWith {
    /// The user's home on the host: secrets are found under it.
    pub home: std::path::PathBuf,
    /// Which calls the filter hands to the tracer.
    pub watch: crate::plan::seccomp::Watch,
}

/// How a run ended, for its caller to report (`commands::run::report`): the
/// supervisor decides, the caller prints.
pub struct Outcome {
    /// The status nook exits with: the payload's, 128+N for a signal N,
    /// 124 after --timeout.
    pub status: i32,
    /// The kernel's OOM killer killed a process in the sandbox.
    pub oom: Option<OomKill>,
    /// What the sandbox used, and the format --stats asked for it in.
    pub stats: crate::runtime::stats::Stats,
    pub stats_format: Option<crate::cli::StatsFormat>,
    /// A sandbox nook named itself kept changes: its name.
    pub kept_changes: Option<String>,
    /// A step that failed once the sandbox existed; reported after the rest.
    pub failure: Option<Error>,
    /// What the egress gate refused, per destination.
    pub refused: Vec<crate::state::trace::NetDenial>,
    /// Forks the sandbox's pids limit refused (0 without a cgroup leaf).
    pub pids_max_hits: u64,
    /// The scratch areas were full at the end (--disk-quota reached).
    pub scratch_full: bool,
    /// With --trace: the paths and system calls the command was refused
    /// (the rest of the trace is filled in by the caller).
    pub trace: Option<crate::state::trace::Trace>,
}

/// An OOM kill in the sandbox's cgroup.
pub struct OomKill {
    /// init itself was killed (status 128+9), rather than some other
    /// process in the sandbox.
    pub init_killed: bool,
    /// The sandbox's memory.max, if it had one.
    pub memory_max: Option<u64>,
}

/// Run the sandbox and say how it ended. The event stream gets its first
/// and, on failure, its last line here.
pub fn run(plan: &Plan, ctl: &mut Control) -> Result<Outcome, Error> {
    ctl.events.emit(Event::Started {
        name: &ctl.name,
        supervisor_pid: std::process::id(),
    });
    let result = supervise(plan, ctl);
    let failed = match &result {
        Err(e) => Some(e),
        Ok(o) => o.failure.as_ref(),
    };
    if let Some(e) = failed {
        ctl.events.emit(Event::Failed {
            error: e.to_string(),
        });
    }
    result
}

/// The supervisor, in the steps of DESIGN.md's process model. A failure
/// before init exists is returned as is; after that, every step still
/// tears down, and the failure travels in the Outcome.
fn supervise(plan: &Plan, ctl: &mut Control) -> Result<Outcome, Error> {
    START.get_or_init(std::time::Instant::now);
    let v = ctl.verbose;
    trace(
        v,
        "supervisor",
        format_args!("profiles: {}", plan.profiles.join(", ")),
    );
    let mut s = step1_prepare(plan, ctl)?;
    let init = step2_start_init(plan, &mut s, v)?;
    // A failure from here on ends init too.
    let mask = s.mask;
    let abort = |e: StepError| -> Error {
        let _ = kill(init, Signal::SIGKILL);
        let _ = wait_for(init, &mask, false, None);
        e.into()
    };
    step3_map_and_place(plan, &mut s, init, v).map_err(abort)?;
    ctl.events.emit(Event::Namespaces {
        init_pid: init.as_raw(),
    });
    let mut sides = Sides::default();
    if let Err(e) = step4_start_sides(plan, &mut s, init, ctl, &mut sides) {
        sides.stop();
        return Err(abort(e));
    }
    let Sides {
        helper,
        relay,
        gate,
        watcher,
        terminal,
    } = sides;
    let failure = step5_wait_for_payload(plan, &mut s, init, helper.as_ref(), ctl);
    let end = step6_wait_for_end(plan, &mut s, init);
    if let Some(t) = terminal {
        t.finish();
    }
    let refused = gate.map(gate::Gate::stop).unwrap_or_default();
    if let Some(r) = relay {
        r.stop();
    }
    let seen = watcher.map(tracer::Tracer::stop);
    let mut outcome = step7_teardown(plan, s, end, helper, failure, ctl);
    outcome.refused = refused;
    outcome.trace = seen;
    Ok(outcome)
}

/// What the steps share: everything made before init, and the
/// supervisor's ends of the channels.
struct Supervision {
    exec: payload::ExecPlan,
    /// Held until the end: a second run on this name is refused.
    lock: Option<crate::state::layers::Lock>,
    leaf: Option<cgroup::Leaf>,
    mask: SigSet,
    /// init sets itself up without us (see `setup`).
    alone: bool,
    from_sandbox: Option<msg::Receiver>,
    /// Held open until the end: init reads a hang-up on it as our death.
    to_sandbox: Option<msg::Sender>,
    end: Option<msg::Receiver>,
    /// The children's ends, until init is started.
    child_ends: Option<(msg::Sender, msg::Receiver, msg::Sender)>,
    /// `--trace`: the tracer's end of its socket, and the payload's (ours
    /// until init is started).
    trace_ends: Option<(OwnedFd, Option<OwnedFd>)>,
    /// A terminal of its own: the ends the pty master travels over (the
    /// same way).
    pty_ends: Option<(OwnedFd, Option<OwnedFd>)>,
}

/// Step 1: everything before init: the exec stage precomputed (the code after
/// fork only installs and executes), the cgroup leaf, the timer, the
/// signal mask, the sync channels.
fn step1_prepare(plan: &Plan, ctl: &Control) -> Result<Supervision, Error> {
    let trace_ends = match ctl.trace {
        Some(_) => Some(tracer::channel()?),
        None => None,
    };
    let mut exec = payload::ExecPlan::new(
        &plan.exec,
        &plan.command,
        &plan.pass_fds,
        trace_ends
            .as_ref()
            .zip(ctl.trace.as_ref())
            .map(|((_, sb), with)| (sb.as_raw_fd(), with.watch)),
    )?;
    let pty_ends = if ctl.tty {
        let (ours, theirs) =
            msg::fd_channel().map_err(|e| StepError::new(Step::OwnTerminal, None, e))?;
        let (size, echo) = match ctl.sessions {
            Some(_) => (Some(terminal::SESSION_SIZE), true),
            None => {
                let size = terminal::size_of_stdin();
                (size, size.is_some())
            }
        };
        exec.own_terminal(theirs.as_raw_fd(), size, echo);
        Some((ours, Some(theirs)))
    } else {
        None
    };
    helper::check_ports(&plan.net.publish)?;
    let lock = match &ctl.sandbox {
        Some(sb) => Some(crate::state::layers::open(
            sb,
            &plan.kept_layers,
            &plan.protect,
        )?),
        None => None,
    };
    let limits = &plan.cgroup;
    // A leaf when limits need one, or for exact --stats when one can be had.
    let leaf = if let Some(situation) = ctl.cgroup.as_ref()
        && (limits.any() || ctl.stats.is_some())
    {
        cgroup::Leaf::create(limits, situation, limits.any())?
    } else {
        None
    };
    if let Some(l) = &leaf {
        trace(
            ctl.verbose,
            "supervisor",
            format_args!("cgroup {}", l.path.display()),
        );
        ctl.events.emit(Event::Limits {
            cgroup: &l.path,
            limits,
        });
    }
    if let Some(t) = plan.timeout {
        sys::arm_alarm(t).map_err(|e| StepError::new(Step::ArmTimeout, None, e))?;
    }
    let mask = wait_mask();
    // Blocked before fork so that no signal is lost between the fork and
    // the wait loop; the children inherit the mask.
    mask.thread_block()
        .map_err(|e| StepError::new(Step::BlockSignals, None, e))?;
    let (to_sup_tx, from_sandbox) = msg::channel().map_err(io_step(Step::CreatePipe))?;
    let (to_sandbox, to_sandbox_rx) = msg::channel().map_err(io_step(Step::CreatePipe))?;
    let (end_tx, end) = msg::channel().map_err(io_step(Step::CreatePipe))?;
    Ok(Supervision {
        exec,
        lock,
        // init sets itself up alone unless the maps need a helper or there
        // is a leaf to move it into (see `setup`).
        alone: idmap::by_init(plan) && leaf.is_none(),
        leaf,
        mask,
        from_sandbox: Some(from_sandbox),
        to_sandbox: Some(to_sandbox),
        end: Some(end),
        child_ends: Some((to_sup_tx, to_sandbox_rx, end_tx)),
        trace_ends: trace_ends.map(|(ours, theirs)| (ours, Some(theirs))),
        pty_ends,
    })
}

/// Step 2: one clone makes init in all its namespaces (see `setup`).
fn step2_start_init(plan: &Plan, s: &mut Supervision, v: bool) -> Result<Pid, Error> {
    let (to_sup_tx, to_sandbox_rx, end_tx) = s.child_ends.take().expect("taken once");
    let flags = setup::clone_flags(&plan.namespaces, s.alone);
    let init = match sys::clone_fork(flags).map_err(|e| match e {
        sys::ForkError::Failed(errno) => {
            e.into_step(Step::CreateNamespaces)
                .hint(crate::host::nesting::userns_hint(
                    errno,
                    &crate::host::nesting::Surroundings::read(),
                ))
        }
        _ => e.into_step(Step::CreateNamespaces),
    })? {
        None => {
            // Init keeps only its own ends.
            s.from_sandbox = None;
            s.to_sandbox = None;
            s.end = None;
            init::run(plan, v, &s.exec, to_sup_tx, to_sandbox_rx, end_tx, s.alone)
        }
        Some(child) => child,
    };
    // Our copies of the child's ends must go, or end-of-file never comes.
    drop((to_sup_tx, to_sandbox_rx, end_tx));
    for (_, theirs) in s.trace_ends.iter_mut().chain(s.pty_ends.iter_mut()) {
        drop(theirs.take());
    }
    trace(
        v,
        "supervisor",
        format_args!("init is pid {init} on the host"),
    );
    Ok(init)
}

/// Step 3: unless init sets itself up alone: move it into the cgroup leaf and
/// write its id maps, then say "mapped".
fn step3_map_and_place(
    plan: &Plan,
    s: &mut Supervision,
    init: Pid,
    v: bool,
) -> Result<(), StepError> {
    if s.alone {
        return Ok(());
    }
    // Before init makes its cgroup namespace (at "mapped"): the leaf
    // becomes its root.
    if let Some(l) = &s.leaf {
        l.add(init)?;
    }
    idmap::write(Some(init), plan, v)?;
    s.to_sandbox
        .as_mut()
        .expect("held until the end")
        .send(&ToSandbox::Mapped)
        .map_err(io_step(Step::SignalInit))
}

/// What runs beside the sandbox, started in step 4.
#[derive(Default)]
struct Sides {
    helper: Option<helper::Helper>,
    relay: Option<relay::PortRelay>,
    gate: Option<gate::Gate>,
    watcher: Option<tracer::Tracer>,
    terminal: Option<terminal::Terminal>,
}

impl Sides {
    /// A later step failed: end what was started.
    fn stop(self) {
        if let Some(h) = self.helper {
            h.stop();
        }
        if let Some(r) = self.relay {
            r.stop();
        }
        if let Some(g) = self.gate {
            g.stop();
        }
        if let Some(w) = self.watcher {
            w.stop();
        }
    }
}

/// Step 4: what runs beside the sandbox, against init's namespaces, while
/// init builds the filesystem: the network helper (and slirp4netns's
/// published ports, which init waits for with the route), the host-port
/// relay, the egress gate, the tracer; last, once no process is forked
/// any more, the terminal's relay threads.
fn step4_start_sides(
    plan: &Plan,
    s: &mut Supervision,
    init: Pid,
    ctl: &Control,
    sides: &mut Sides,
) -> Result<(), StepError> {
    let v = ctl.verbose;
    sides.helper = start_helper(plan, init, ctl)?;
    if let Some(h) = sides.helper.as_mut()
        && !plan.net.slirp_forwards.is_empty()
    {
        h.publish(&plan.net.slirp_forwards)?;
        s.to_sandbox
            .as_mut()
            .expect("held until the end")
            .send(&ToSandbox::Published)
            .map_err(io_step(Step::SignalInit))?;
        trace(v, "supervisor", format_args!("ports published"));
    }
    if !plan.net.relay_ports.is_empty() {
        sides.relay = Some(relay::PortRelay::start(&plan.net.relay_ports, init, v)?);
    }
    if let Some(g) = &plan.net.gate {
        sides.gate = Some(gate::Gate::start(g, init, &ctl.events, v)?);
    }
    if let (Some((ours, _)), Some(with)) = (s.trace_ends.take(), &ctl.trace) {
        sides.watcher = Some(tracer::Tracer::start(
            ours,
            &plan.exec.seccomp,
            &with.home,
            &ctl.events,
        )?);
    }
    if let Some((ours, _)) = s.pty_ends.take() {
        sides.terminal = Some(terminal::Terminal::start(ours, ctl.sessions.clone())?);
    }
    Ok(())
}

/// The network helper, against init's namespaces; init waits for the
/// route before the payload runs.
fn start_helper(
    plan: &Plan,
    init: Pid,
    ctl: &Control,
) -> Result<Option<helper::Helper>, StepError> {
    let Some(driver) = plan.net.driver else {
        return Ok(None);
    };
    let helper = helper::Helper::start(&plan.net, driver, init)?;
    if helper.is_some() {
        trace(
            ctl.verbose,
            "supervisor",
            format_args!(
                "network helper {} started ({})",
                driver.name(),
                plan.net.driver_why.as_deref().unwrap_or("")
            ),
        );
        ctl.events.emit(Event::Network {
            driver: plan.net.driver,
            helper: plan.net.helper.as_ref().map(|h| h.0.as_path()),
        });
    }
    Ok(helper)
}

/// Step 5: until the payload runs: report what its hardening enforced, and any
/// step that failed; end-of-file means its execve succeeded. Then record
/// it for `nook ps` and `nook exec` (which joins the payload), written
/// while the payload starts, not while init builds the root, where it
/// would compete for the CPU; and say it started.
fn step5_wait_for_payload(
    plan: &Plan,
    s: &mut Supervision,
    init: Pid,
    helper: Option<&helper::Helper>,
    ctl: &mut Control,
) -> Option<StepError> {
    let mut from_sandbox = s.from_sandbox.take().expect("taken once");
    let mut failure = None;
    loop {
        if let Some(h) = helper
            && !helper_alive_while_waiting(h, &from_sandbox)
        {
            // It died before the payload ran: fail now rather than let
            // init wait for a route that will never come.
            let _ = kill(init, Signal::SIGKILL);
            failure = Some(
                StepError::failed(
                    Step::StartHelper,
                    plan.net.helper.as_ref().map(|(p, _)| p.as_path()),
                )
                .hint("it exited before the sandbox's network was up"),
            );
            break;
        }
        let Ok(Some(m)) = from_sandbox.recv::<ToSupervisor>() else {
            break;
        };
        match m {
            ToSupervisor::Enforced(r) => report(&r, ctl.verbose),
            ToSupervisor::Failed(e) => failure = Some(e),
        }
    }
    if failure.is_some() {
        return failure;
    }
    if let Some(dir) = &ctl.state_dir {
        let me = std::process::id() as i32;
        let entry = crate::state::running::Entry {
            name: ctl.name.clone(),
            supervisor: me,
            supervisor_start: crate::state::running::start_time(me).unwrap_or(0),
            init: init.as_raw(),
            init_start: crate::state::running::start_time(init.as_raw()).unwrap_or(0),
            started: crate::host::unix_now(),
            profiles: plan.profiles.clone(),
            command: plan.command.clone(),
            cgroup: s.leaf.as_ref().map(|l| l.path.clone()),
            log: ctl.log.clone(),
            join: plan.exec.clone(),
        };
        if let Err(e) = crate::state::running::write(dir, &entry) {
            let _ = kill(init, Signal::SIGKILL);
            return Some(e);
        }
    }
    ctl.events.emit(Event::Payload {
        command: &plan.command,
    });
    if let Some(mut f) = ctl.started.take() {
        let _ = f.write_all(b"started\n");
    }
    None
}

/// Step 6: forward signals, enforce the timeout, wait for the end. A cgroup
/// leaf is read and removed once init is gone; a named sandbox's lock is
/// released only once init is gone too (init holds the locked file from
/// the clone, and a review right after the run must find it free);
/// otherwise init's word on the payload's end is enough (see
/// `init::tell_the_end`).
fn step6_wait_for_end(plan: &Plan, s: &mut Supervision, init: Pid) -> End {
    let end = if s.leaf.is_none() && s.lock.is_none() {
        s.end.take()
    } else {
        None
    };
    wait_for_end(init, &s.mask, plan.timeout.is_some(), s.leaf.as_ref(), end)
}

/// Step 7: teardown: the leaf's figures and removal, the record, the log, the
/// helper, a named sandbox's directory; then the Outcome.
fn step7_teardown(
    plan: &Plan,
    s: Supervision,
    end: End,
    helper: Option<helper::Helper>,
    mut failure: Option<StepError>,
    ctl: &mut Control,
) -> Outcome {
    let mut leaf = s.leaf;
    let usage = leaf.as_mut().map(|l| l.finish());
    let oom = usage.as_ref().filter(|u| u.oom_kills > 0).map(|_| OomKill {
        // 128+9 either way: init killed, or passing on its command's
        // death.
        init_killed: end.code == 128 + libc::SIGKILL,
        memory_max: plan.cgroup.memory_max,
    });
    let status = if end.timed_out {
        EXIT_TIMEOUT
    } else {
        end.code
    };
    let stats =
        crate::runtime::stats::Stats::new(&end, usage.as_ref(), START.get().map(|t| t.elapsed()));
    if failure.is_none() {
        ctl.events.emit(Event::Exited {
            status,
            stats: &stats,
        });
    }
    if let Some(dir) = &ctl.state_dir {
        crate::state::running::remove(dir, &ctl.name);
    }
    if let Some(log) = &ctl.log {
        let _ = std::fs::remove_file(log);
    }
    let helper_said = helper.map(helper::Helper::stop).unwrap_or_default();
    if let Some(e) = failure.as_mut()
        && !helper_said.is_empty()
        && e.step == Step::StartHelper
    {
        e.hint = Some(match e.hint.take() {
            Some(h) => format!("{h}; it said: {helper_said}"),
            None => format!("the helper said: {helper_said}"),
        });
    }
    // Held open until here: init reads a hang-up on it as our death.
    drop(s.to_sandbox);
    let kept_changes = ctl
        .sandbox
        .as_ref()
        .and_then(|sb| crate::state::layers::after_run(sb, &plan.kept_layers));
    Outcome {
        status,
        oom,
        stats,
        stats_format: ctl.stats,
        kept_changes,
        failure: failure.map(Error::from),
        refused: Vec::new(),
        pids_max_hits: usage.as_ref().map_or(0, |u| u.pids_max_hits),
        scratch_full: end.scratch_full,
        trace: None,
    }
}

/// timeout(1)'s status for a command it had to kill.
const EXIT_TIMEOUT: i32 = 124;

/// Wait until init has something to say; false when the helper exits
/// first.
fn helper_alive_while_waiting(h: &helper::Helper, from_init: &msg::Receiver) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [
            PollFd::new(from_init.as_fd(), PollFlags::POLLIN),
            PollFd::new(h.exit_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
            Ok(_) => {}
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        // Init first: a helper that exits right after the payload started
        // is not a failure to start.
        break ready(&fds[0]) || !ready(&fds[1]);
    }
}

/// Say what the hardening enforced: every weaker-than-asked layer in one
/// warning line (nothing is weakened silently), the rest with `-v`.
pub(super) fn report(r: &crate::runtime::enforce::Report, v: bool) {
    trace(v, "payload", format_args!("seccomp: {}", r.seccomp));
    trace(v, "payload", format_args!("landlock: {}", r.landlock.text));
    trace(v, "payload", format_args!("keyring: {}", r.keyring));
    trace(v, "payload", format_args!("session: {}", r.session));
    trace(v, "payload", format_args!("capabilities: {}", r.caps));
    let mut lines = String::new();
    for w in &r.weaker {
        lines.push_str(&format!(
            "nook: warning: {w}; --strict makes this an error\n"
        ));
    }
    let _ = std::io::stderr().write_all(lines.as_bytes());
}

/// How the sandbox ended.
pub struct End {
    /// The exit code, or 128+N for a signal N.
    pub code: i32,
    pub timed_out: bool,
    /// init's and every process it reaped (the whole sandbox).
    pub rusage: Option<libc::rusage>,
    /// The scratch areas were full (--disk-quota reached), as init saw.
    pub scratch_full: bool,
}

/// `wait_for`, or less: when init reports the payload's end on `end`
/// before its own exit, that report is the end, and the kernel's teardown
/// of the sandbox's namespaces after init goes on without us. Signals come
/// through a signalfd here, so that one poll waits for both.
fn wait_for_end(
    init: Pid,
    mask: &SigSet,
    timeout: bool,
    leaf: Option<&cgroup::Leaf>,
    end: Option<msg::Receiver>,
) -> End {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::AsFd;
    let Some(end) = end else {
        return wait_for(init, mask, timeout, leaf);
    };
    let mut end = Some(end);
    let Ok(sfd) = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else {
        return wait_for(init, mask, timeout, leaf);
    };
    let mut timed_out = false;
    loop {
        if let Some(end) = reaped(init, timed_out) {
            return end;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(e) = &end {
            fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // Can't poll: the plain wait still works.
            Err(_) => return wait_for(init, mask, timeout, leaf),
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let end_ready = fds.get(1).is_some_and(ready);
        drop(fds);
        // Signals first: an alarm that came with the end still counts.
        while let Ok(Some(info)) = sfd.read_signal() {
            if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                timed_out |= on_signal(sig, init, timeout, leaf);
            }
        }
        if end_ready && let Some(e) = end.as_mut() {
            match e.recv::<msg::Ending>() {
                Ok(Some(e)) if !timed_out => return ended(e),
                // End-of-file: something outlived the payload, or init was
                // killed; its exit ends the rest, and that is what we wait
                // for now.
                _ => end = None,
            }
        }
    }
}

/// The End that init reported, with its usage as wait4 gives it.
fn ended(e: msg::Ending) -> End {
    let tv = |us: i64| libc::timeval {
        tv_sec: us / 1_000_000,
        tv_usec: us % 1_000_000,
    };
    End {
        code: e.code,
        timed_out: false,
        scratch_full: e.scratch_full,
        rusage: Some(libc::rusage {
            ru_utime: tv(e.user_us),
            ru_stime: tv(e.system_us),
            ru_maxrss: e.maxrss_kb,
            ru_ixrss: 0,
            ru_idrss: 0,
            ru_isrss: 0,
            ru_minflt: 0,
            ru_majflt: 0,
            ru_nswap: 0,
            ru_inblock: e.inblock,
            ru_oublock: e.oublock,
            ru_msgsnd: 0,
            ru_msgrcv: 0,
            ru_nsignals: 0,
            ru_nvcsw: 0,
            ru_nivcsw: 0,
        }),
    }
}

/// What a signal to the supervisor means while init runs: the --timeout
/// alarm kills the whole sandbox (its cgroup, and init, whose death ends
/// its pid namespace); the forwarded ones go to init. True at the alarm.
fn on_signal(sig: Signal, init: Pid, timeout: bool, leaf: Option<&cgroup::Leaf>) -> bool {
    match sig {
        Signal::SIGCHLD => false,
        Signal::SIGWINCH if terminal::follow_resize() => false,
        Signal::SIGALRM if timeout => {
            if let Some(l) = leaf {
                l.kill();
            }
            let _ = kill(init, Signal::SIGKILL);
            true
        }
        sig => {
            let _ = kill(init, sig);
            false
        }
    }
}

/// init's end, if it has ended (an error waiting for it ends the run
/// too, as nook's own failure).
fn reaped(init: Pid, timed_out: bool) -> Option<End> {
    match sys::wait4_nohang(init) {
        Ok(Some(r)) => Some(End {
            code: r.code,
            timed_out,
            rusage: Some(r.rusage),
            scratch_full: false,
        }),
        Ok(None) => None,
        Err(_) => Some(End {
            code: EXIT_NOOK,
            timed_out,
            rusage: None,
            scratch_full: false,
        }),
    }
}

/// Forward signals to init until it exits; returns its status as an exit
/// code (128+N for a signal). At the --timeout alarm, the whole sandbox is
/// killed: its cgroup, and init, whose death ends its pid namespace.
pub(super) fn wait_for(
    init: Pid,
    mask: &SigSet,
    timeout: bool,
    leaf: Option<&cgroup::Leaf>,
) -> End {
    let mut timed_out = false;
    loop {
        if let Some(end) = reaped(init, timed_out) {
            return end;
        }
        if let Ok(sig) = mask.wait() {
            timed_out |= on_signal(sig, init, timeout, leaf);
        }
    }
}

fn io_step(step: Step) -> impl Fn(std::io::Error) -> StepError {
    move |e| StepError::new(step, None, crate::error::from_io(&e))
}

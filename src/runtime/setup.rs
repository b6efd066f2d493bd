//! The setup child: born in a new user namespace, it waits to be mapped,
//! enters the other namespaces and starts init as the supervisor's child.

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Pid, getppid};
use rustix::process::Signal as RSignal;

use crate::error::{EXIT_NOOK, Step, StepError};
use crate::plan::Plan;
use crate::spec::Spec;
use crate::sys;

use super::msg::{Receiver, Sender, ToSandbox, ToSupervisor};
use super::payload::ExecPlan;
use super::{init, trace};

pub fn run(
    spec: &Spec,
    plan: &Plan,
    exec: &ExecPlan,
    supervisor: Pid,
    mut tx: Sender,
    mut rx: Receiver,
) -> ! {
    match enter(spec, supervisor, &mut rx) {
        Ok(()) => {}
        Err(e) => {
            let _ = tx.send(&ToSupervisor::Failed(e));
            sys::exit_now(EXIT_NOOK);
        }
    }
    // The new pid namespace takes effect for children only; CLONE_PARENT
    // makes init a child of the supervisor rather than of this process.
    match sys::clone_fork(libc::CLONE_PARENT) {
        Ok(None) => init::run(spec, plan, exec, tx, rx),
        Ok(Some(pid)) => {
            let _ = tx.send(&ToSupervisor::InitStarted { pid: pid.as_raw() });
            sys::exit_now(0);
        }
        Err(e) => {
            let _ = tx.send(&ToSupervisor::Failed(e.into_step(Step::StartInit)));
            sys::exit_now(EXIT_NOOK);
        }
    }
}

fn enter(spec: &Spec, supervisor: Pid, rx: &mut Receiver) -> Result<(), StepError> {
    let v = spec.verbose;
    rustix::process::set_parent_process_death_signal(Some(RSignal::KILL))
        .map_err(|e| StepError::new(Step::ParentDeathSignal, None, errno(e)))?;
    // The supervisor may have died before the line above took effect.
    if getppid() != supervisor {
        sys::exit_now(EXIT_NOOK);
    }

    trace(v, "setup", format_args!("in a new user namespace"));
    match rx.recv::<ToSandbox>() {
        Ok(Some(ToSandbox::Mapped)) => {}
        _ => sys::exit_now(EXIT_NOOK),
    }

    // Must come after the maps: creating the other namespaces needs the
    // capabilities we hold only once our uid is mapped.
    let ns = spec.namespaces;
    let mut flags = CloneFlags::CLONE_NEWNS;
    for (on, flag) in [
        (ns.pid, CloneFlags::CLONE_NEWPID),
        (ns.net, CloneFlags::CLONE_NEWNET),
        (ns.ipc, CloneFlags::CLONE_NEWIPC),
        (ns.uts, CloneFlags::CLONE_NEWUTS),
        (ns.cgroup, CloneFlags::CLONE_NEWCGROUP),
    ] {
        if on {
            flags |= flag;
        }
    }
    unshare(flags).map_err(|e| StepError::new(Step::Unshare, None, e))?;
    trace(v, "setup", format_args!("unshared {flags:?}"));
    Ok(())
}

pub fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

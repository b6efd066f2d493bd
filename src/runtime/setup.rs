//! The namespaces init is born in, and its first steps inside them.
//!
//! One clone(2) creates init in every namespace at once, as bubblewrap
//! does: the user namespace is created first within the call, so it owns
//! all the others, and the new process holds every capability in it from
//! birth (user_namespaces(7)); nothing waits for the id maps to create
//! them.
//!
//! Then init either sets itself up alone: it writes its own id maps (the
//! common case: our own uid and gid, nothing else), and its cgroup
//! namespace came with the clone; or with the supervisor, which writes
//! maps that need newuidmap/newgidmap and moves init into the cgroup leaf,
//! then says "mapped"; init makes its cgroup namespace only after that.
//! Alone, no message goes back and forth before init builds the root.

use nix::sched::{CloneFlags, unshare};
use rustix::process::Signal as RSignal;

use crate::error::{EXIT_NOOK, Step, StepError, from_rustix};
use crate::plan::Plan;
use crate::spec::Namespaces;
use crate::sys;

use super::msg::{Receiver, ToSandbox};
use super::{idmap, trace};

/// The flags of the clone that creates init: a new user and mount
/// namespace always, the others as the spec asks; the cgroup namespace
/// only when init sets itself up `alone` (else `enter` makes it).
pub fn clone_flags(ns: &Namespaces, alone: bool) -> libc::c_int {
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS;
    for (on, flag) in [
        (ns.pid, libc::CLONE_NEWPID),
        (ns.net, libc::CLONE_NEWNET),
        (ns.ipc, libc::CLONE_NEWIPC),
        (ns.uts, libc::CLONE_NEWUTS),
        (ns.cgroup && alone, libc::CLONE_NEWCGROUP),
    ] {
        if on {
            flags |= flag;
        }
    }
    flags
}

/// init's first steps: die with the supervisor, then the id maps, alone
/// or with the supervisor (see the module's comment).
pub fn enter(
    ns: &Namespaces,
    plan: &Plan,
    alone: bool,
    rx: &mut Receiver,
    v: bool,
) -> Result<(), StepError> {
    // pdeathsig is not inherited across clone; init's parent is the
    // supervisor, so this ties the sandbox's life to it.
    rustix::process::set_parent_process_death_signal(Some(RSignal::KILL))
        .map_err(|e| StepError::new(Step::ParentDeathSignal, None, from_rustix(e)))?;
    // The supervisor may have died before the line above took effect; it
    // is the only writer of `rx`, so a hang-up there says so.
    if rx.writers_gone() {
        sys::exit_now(EXIT_NOOK);
    }
    if alone {
        idmap::write(None, plan, v)?;
    } else {
        match rx.recv::<ToSandbox>() {
            Ok(Some(ToSandbox::Mapped)) => {}
            _ => sys::exit_now(EXIT_NOOK),
        }
        // Must come after "mapped": the supervisor moves us into the
        // cgroup leaf before it says so, and the cgroup we are in when we
        // unshare becomes the root of the new cgroup namespace
        // (cgroup_namespaces(7)).
        if ns.cgroup {
            unshare(CloneFlags::CLONE_NEWCGROUP)
                .map_err(|e| StepError::new(Step::UnshareCgroup, None, e))?;
        }
    }
    trace(v, "init", format_args!("mapped; in every namespace"));
    Ok(())
}

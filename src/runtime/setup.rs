//! The namespaces init is born in, and its first steps inside them.
//!
//! One clone(2) creates init in every namespace at once, as bubblewrap
//! does: the user namespace is created first within the call, so it owns
//! all the others, and the new process holds every capability in it from
//! birth (user_namespaces(7)); nothing waits for the id maps to create
//! them. The only namespace left for later is the cgroup one (see
//! `enter`).

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use rustix::process::Signal as RSignal;

use crate::error::{EXIT_NOOK, StepError};
use crate::spec::Namespaces;
use crate::sys;

use super::msg::{Receiver, ToSandbox};
use super::trace;

/// The flags of the clone that creates init: a new user and mount
/// namespace always, the others as the spec asks, except the cgroup
/// namespace (made by `enter`).
pub fn clone_flags(ns: &Namespaces) -> libc::c_int {
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS;
    for (on, flag) in [
        (ns.pid, libc::CLONE_NEWPID),
        (ns.net, libc::CLONE_NEWNET),
        (ns.ipc, libc::CLONE_NEWIPC),
        (ns.uts, libc::CLONE_NEWUTS),
    ] {
        if on {
            flags |= flag;
        }
    }
    flags
}

/// init's first steps: die with the supervisor, wait until it has written
/// the id maps, then make the cgroup namespace.
pub fn enter(ns: &Namespaces, rx: &mut Receiver, v: bool) -> Result<(), StepError> {
    // pdeathsig is not inherited across clone; init's parent is the
    // supervisor, so this ties the sandbox's life to it.
    rustix::process::set_parent_process_death_signal(Some(RSignal::KILL))
        .map_err(|e| StepError::new("setting the parent-death signal", None, errno(e)))?;
    // The supervisor may have died before the line above took effect; it
    // is the only writer of `rx`, so a hang-up there says so.
    if rx.writers_gone() {
        sys::exit_now(EXIT_NOOK);
    }
    match rx.recv::<ToSandbox>() {
        Ok(Some(ToSandbox::Mapped)) => {}
        _ => sys::exit_now(EXIT_NOOK),
    }
    // Must come after "mapped": the supervisor moves us into the cgroup
    // leaf before it says so, and the cgroup we are in when we unshare
    // becomes the root of the new cgroup namespace (cgroup_namespaces(7)).
    if ns.cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| StepError::new("creating the cgroup namespace (unshare)", None, e))?;
    }
    trace(v, "init", format_args!("mapped; in every namespace"));
    Ok(())
}

pub fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

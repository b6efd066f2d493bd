//! Capabilities the command may hold, in the sandbox's user namespace
//! only: which names there are, which make sense there, and the default
//! set of a fake root (`--uid 0 --subids`).
//!
//! A capability held in a user namespace acts on what that namespace owns
//! (its files' owners within the mapped ids, its processes, its network
//! namespace); the kernel checks the ones below marked `Global` against
//! the initial namespace only, so they would do nothing and are refused
//! with a reason. Some that do act inside would undo another layer of
//! nook's and are refused too. Everything else stays as it is: the
//! seccomp filter still refuses what it refuses, Landlock, no_new_privs
//! and the isolation of the namespaces.

use serde::{Deserialize, Serialize};

/// How a capability may be held in the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Acts inside the user namespace; may be added.
    Inside,
    /// Checked against the initial user namespace only: meaningless here.
    Global,
    /// Acts inside, but would undo one of nook's layers.
    Refused(&'static str),
}

/// Every capability of Linux 6.x: name (without CAP_), number, class.
const TABLE: &[(&str, u8, Class)] = &[
    ("CHOWN", 0, Class::Inside),
    ("DAC_OVERRIDE", 1, Class::Inside),
    ("DAC_READ_SEARCH", 2, Class::Inside),
    ("FOWNER", 3, Class::Inside),
    ("FSETID", 4, Class::Inside),
    ("KILL", 5, Class::Inside),
    ("SETGID", 6, Class::Inside),
    ("SETUID", 7, Class::Inside),
    ("SETPCAP", 8, Class::Inside),
    ("LINUX_IMMUTABLE", 9, Class::Global),
    ("NET_BIND_SERVICE", 10, Class::Inside),
    ("NET_BROADCAST", 11, Class::Inside),
    ("NET_ADMIN", 12, Class::Inside),
    ("NET_RAW", 13, Class::Inside),
    ("IPC_LOCK", 14, Class::Global),
    ("IPC_OWNER", 15, Class::Inside),
    ("SYS_MODULE", 16, Class::Global),
    ("SYS_RAWIO", 17, Class::Global),
    ("SYS_CHROOT", 18, Class::Inside),
    (
        "SYS_PTRACE",
        19,
        Class::Refused(
            "it would let the command trace nook's init, which runs outside the seccomp filter",
        ),
    ),
    ("SYS_PACCT", 20, Class::Global),
    (
        "SYS_ADMIN",
        21,
        Class::Refused(
            "it would let the command change the sandbox's mounts and namespaces under nook's view; use --allow-userns for nested sandboxes",
        ),
    ),
    ("SYS_BOOT", 22, Class::Global),
    ("SYS_NICE", 23, Class::Inside),
    ("SYS_RESOURCE", 24, Class::Global),
    ("SYS_TIME", 25, Class::Global),
    ("SYS_TTY_CONFIG", 26, Class::Global),
    ("MKNOD", 27, Class::Inside),
    ("LEASE", 28, Class::Inside),
    ("AUDIT_WRITE", 29, Class::Global),
    ("AUDIT_CONTROL", 30, Class::Global),
    ("SETFCAP", 31, Class::Inside),
    ("MAC_OVERRIDE", 32, Class::Global),
    ("MAC_ADMIN", 33, Class::Global),
    ("SYSLOG", 34, Class::Global),
    ("WAKE_ALARM", 35, Class::Global),
    ("BLOCK_SUSPEND", 36, Class::Global),
    ("AUDIT_READ", 37, Class::Global),
    ("PERFMON", 38, Class::Global),
    ("BPF", 39, Class::Global),
    (
        "CHECKPOINT_RESTORE",
        40,
        Class::Refused("it would let the command pick process ids and read others' memory maps"),
    ),
];

/// A fake root's capabilities (`--uid 0 --subids`), for administering the
/// sandbox's own view (installing packages, unpacking archives with their
/// owners): rootless podman's default set, less SETPCAP (nothing here
/// changes capability sets; nook locks the securebits) and SYS_CHROOT (no
/// package manager needs it, and it is a common part of escapes).
pub const FAKE_ROOT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETUID",
];

/// A capability as the Spec holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    /// As the kernel's headers spell it, without CAP_.
    pub name: String,
    pub number: u8,
}

/// `CAP_CHOWN`, `chown` or `Chown`: the capability, or what is expected.
/// `gated`: an egress allow-list is in force (its rules live in the
/// sandbox's network namespace).
pub fn parse(word: &str, gated: bool) -> Result<Cap, String> {
    let upper = word.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    let Some(&(name, number, class)) = TABLE.iter().find(|(n, _, _)| *n == bare) else {
        return Err(
            "expected a capability name such as CAP_CHOWN or net_bind_service (capabilities(7))"
                .into(),
        );
    };
    match class {
        Class::Global => Err(format!(
            "CAP_{name} acts only in the host's own user namespace, so it can't be held in a sandbox"
        )),
        Class::Refused(why) => Err(format!("CAP_{name} is refused: {why}")),
        Class::Inside if gated && matches!(name, "NET_ADMIN" | "NET_RAW") => Err(format!(
            "CAP_{name} is refused with an egress allow-list: it would let the command rewrite or go around the gate's rules"
        )),
        Class::Inside => Ok(Cap {
            name: name.to_string(),
            number,
        }),
    }
}

/// The held set: the fake root's defaults when `fake_root`, then each
/// added, less each dropped, in the kernel's order.
pub fn resolve(fake_root: bool, add: &[Cap], drop: &[Cap]) -> Vec<Cap> {
    let mut held: Vec<Cap> = if fake_root {
        FAKE_ROOT
            .iter()
            .map(|n| parse(n, false).expect("the defaults are in the table"))
            .collect()
    } else {
        Vec::new()
    };
    for c in add {
        if !held.contains(c) {
            held.push(c.clone());
        }
    }
    held.retain(|c| !drop.contains(c));
    held.sort_by_key(|c| c.number);
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_in_any_spelling() {
        for w in ["CAP_CHOWN", "chown", "Cap_Chown"] {
            assert_eq!(parse(w, false).unwrap().number, 0, "{w}");
        }
        assert!(
            parse("CAP_FLY", false)
                .unwrap_err()
                .contains("capabilities(7)")
        );
    }

    #[test]
    fn capabilities_that_cant_act_or_would_undo_a_layer_are_refused() {
        let e = parse("CAP_SYS_MODULE", false).unwrap_err();
        assert!(e.contains("host's own user namespace"), "{e}");
        assert!(parse("sys_admin", false).unwrap_err().contains("refused"));
        assert!(parse("sys_ptrace", false).unwrap_err().contains("init"));
        assert!(parse("net_admin", false).is_ok());
        assert!(parse("net_admin", true).unwrap_err().contains("allow-list"));
        assert!(parse("net_raw", true).is_err());
    }

    #[test]
    fn the_fake_roots_set_is_added_to_and_dropped_from() {
        let c = |n| parse(n, false).unwrap();
        let names = |v: Vec<Cap>| v.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(resolve(false, &[], &[]), Vec::new());
        assert_eq!(
            names(resolve(
                true,
                &[c("sys_chroot")],
                &[c("kill"), c("setfcap")]
            )),
            [
                "CHOWN",
                "DAC_OVERRIDE",
                "FOWNER",
                "FSETID",
                "SETGID",
                "SETUID",
                "NET_BIND_SERVICE",
                "SYS_CHROOT"
            ]
        );
        assert_eq!(
            names(resolve(false, &[c("net_bind_service")], &[])),
            ["NET_BIND_SERVICE"]
        );
    }
}

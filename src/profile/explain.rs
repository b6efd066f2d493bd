//! `nook profile explain`: what a sandbox built from a Spec lets the
//! command read, write, reach and use, in plain words. Reads only the Spec.

use std::fmt::Write;
use std::path::Path;

use crate::spec::{Mount, Spec};

pub fn explain(name: &str, spec: &Spec, home: &Path) -> String {
    let mut read = Vec::new();
    let mut write = Vec::new();
    let mut scratch = Vec::new();
    let mut hidden = Vec::new();
    let mut other = Vec::new();
    for m in &spec.mounts {
        match m {
            Mount::Bind {
                src,
                dst,
                read_only,
                optional,
            } => {
                let mut s = if src == dst {
                    src.display().to_string()
                } else {
                    format!("{} (as {})", src.display(), dst.display())
                };
                if *optional {
                    s.push_str(" if it exists");
                }
                if *read_only {
                    read.push(s);
                } else {
                    write.push(s);
                }
            }
            Mount::Tmpfs { dst, size, .. } => scratch.push(match size {
                Some(n) => format!("{} (at most {} KiB)", dst.display(), n / 1024),
                None => dst.display().to_string(),
            }),
            Mount::Hide { dst } => hidden.push(dst.display().to_string()),
            Mount::Proc { dst } => other.push(format!(
                "{} shows {}",
                dst.display(),
                if spec.namespaces.pid {
                    "only the sandbox's own processes"
                } else {
                    "every process of the host (--share-pid)"
                }
            )),
            Mount::Dev { dst } => other.push(format!(
                "{} has only null, zero, full, random, urandom, tty, a private pts and shm",
                dst.display()
            )),
            Mount::File { dst, .. } => {
                other.push(format!("{} is a read-only file nook wrote", dst.display()))
            }
            Mount::Symlink { .. } | Mount::Dir { .. } => {}
        }
    }

    let mut o = String::new();
    let _ = writeln!(o, "Profile {name}: a command run under it");
    let list = |o: &mut String, title: &str, items: &[String]| {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(o, "\n{title}");
        for i in items {
            let _ = writeln!(o, "  - {i}");
        }
    };
    list(
        &mut o,
        "can read, but not change (from the host, read-only):",
        &read,
    );
    list(
        &mut o,
        "can read and change (from the host; changes stay after it exits):",
        &write,
    );
    list(
        &mut o,
        "can write scratch space (empty at start, discarded at exit):",
        &scratch,
    );
    list(&mut o, "also sees:", &other);
    let _ = writeln!(
        o,
        "\ncannot see anything else of the host's files: the rest of {} and every path not listed above is absent.",
        home.display()
    );
    let _ = writeln!(
        o,
        "\ncannot see these secrets even where a listed directory contains them ({} paths), unless the profile binds them by name:",
        hidden.len()
    );
    for h in hidden.iter().take(12) {
        let _ = writeln!(o, "  - {h}");
    }
    if hidden.len() > 12 {
        let _ = writeln!(
            o,
            "  - ... and {} more (nook profile show {name})",
            hidden.len() - 12
        );
    }

    let _ = writeln!(o, "\nnetwork:");
    if spec.namespaces.net {
        let _ = writeln!(
            o,
            "  - none: its own network namespace with only loopback (127.0.0.1, ::1); the host's loopback services are not reachable"
        );
    } else {
        let _ = writeln!(
            o,
            "  - the host's own network (--share-net): everything the host can reach, including services on its loopback"
        );
    }

    let _ = writeln!(o, "\nenvironment:");
    let _ = writeln!(
        o,
        "  - credential variables are dropped unless kept: {}",
        super::secrets::var_patterns().join(" ")
    );
    let _ = writeln!(o, "  - {} variables are passed", spec.env.len());

    let _ = writeln!(o, "\nidentity and privileges:");
    let _ = writeln!(
        o,
        "  - runs as uid {} and gid {} inside a user namespace{}",
        spec.ids.uid,
        spec.ids.gid,
        if spec.ids.subids.is_some() {
            " with your subordinate ids mapped"
        } else {
            " where no other id exists"
        }
    );
    let _ = writeln!(
        o,
        "  - holds no capabilities, cannot gain any (no_new_privs, setuid binaries do nothing), and cannot ptrace its pid 1"
    );
    let shared: Vec<&str> = [
        (!spec.namespaces.pid, "pid"),
        (!spec.namespaces.net, "net"),
        (!spec.namespaces.ipc, "ipc"),
        (!spec.namespaces.uts, "uts"),
        (!spec.namespaces.cgroup, "cgroup"),
    ]
    .into_iter()
    .filter_map(|(s, n)| s.then_some(n))
    .collect();
    if shared.is_empty() {
        let _ = writeln!(
            o,
            "  - sees only its own processes, IPC objects, hostname and cgroup tree"
        );
    } else {
        let _ = writeln!(o, "  - shares the host's {} namespaces", shared.join(", "));
    }
    let _ = writeln!(
        o,
        "  - is killed, with everything it started, when nook exits"
    );
    o
}

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
    let mut protected = Vec::new();
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
            Mount::Overlay { lower, dst, keep } => {
                let what = if *keep {
                    "writes kept for review (nook diff / commit)"
                } else {
                    "writes thrown away at exit"
                };
                let place = if lower == dst {
                    lower.display().to_string()
                } else {
                    format!("{} (as {})", lower.display(), dst.display())
                };
                read.push(format!(
                    "{place}: copy-on-write, the host copy never changes; {what}"
                ));
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
            Mount::Protect { dst, why, .. } => protected.push(format!("{}: {why}", dst.display())),
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
    list(
        &mut o,
        "cannot change these inside the shares it can change, because a host program runs or obeys them later:",
        &protected,
    );
    if !spec.protect.is_empty() || !spec.unprotect.is_empty() {
        let _ = writeln!(
            o,
            "
protected by the profile's choice: {}; released by the profile's choice: {}",
            if spec.protect.is_empty() {
                "none".to_string()
            } else {
                spec.protect.join(", ")
            },
            if spec.unprotect.is_empty() {
                "none".to_string()
            } else {
                spec.unprotect.join(", ")
            },
        );
    }
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
    for line in network_lines(&spec.network) {
        let _ = writeln!(o, "  - {line}");
    }

    let _ = writeln!(o, "\nenvironment:");
    let _ = writeln!(
        o,
        "  - credential variables are dropped unless kept: {}",
        crate::profile::secrets::var_patterns().join(" ")
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
    let caps = &spec.security.caps;
    if caps.is_empty() {
        let _ = writeln!(o, "  - holds no capability");
    } else {
        let names: Vec<String> = caps.iter().map(|c| format!("CAP_{}", c.name)).collect();
        let _ = writeln!(
            o,
            "  - holds {} in its own user namespace only (over the files and processes of its mapped ids; the seccomp filter and Landlock still apply)",
            names.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "\nwhen a command fails under it: `nook run --trace` keeps what it was refused, `nook why` says what would allow it, `nook learn` writes that as a profile."
    );
    o
}

/// The network in plain words.
fn network_lines(n: &crate::net::Network) -> Vec<String> {
    use crate::net::Mode;
    let mut v = Vec::new();
    match n.mode {
        Mode::None => v.push(
            "none: its own network namespace with only loopback (127.0.0.1, ::1); the host's loopback services are not reachable".into(),
        ),
        Mode::Host => v.push(
            "the host's own network (--net host): everything the host can reach, including services on its loopback".into(),
        ),
        Mode::User => {
            let driver = n.driver.map_or("a user-mode helper", |d| d.name());
            if !n.gated() {
                v.push(format!("user-mode networking through {driver}: outbound to any address"));
            } else {
                let port = |p: Option<u16>| p.map_or(String::new(), |p| format!(" port {p}"));
                let names: Vec<String> = n
                    .names
                    .iter()
                    .map(|r| format!("{}{}", r.pattern, port(r.port)))
                    .collect();
                let addrs: Vec<String> = n
                    .allow
                    .iter()
                    .map(|e| format!("{}/{}{}", e.net, e.prefix, port(e.port)))
                    .collect();
                if names.is_empty() {
                    v.push(format!(
                        "user-mode networking through {driver}, behind nook's egress gate: no name is allowed, so every DNS lookup is refused"
                    ));
                } else {
                    v.push(format!(
                        "user-mode networking through {driver}, behind nook's egress gate: by name to {} (a wildcard *.DOMAIN matches its subdomains, not DOMAIN itself)",
                        names.join(", ")
                    ));
                    v.push("DNS: the sandbox's resolver is the gate's stub, which answers these names only (refusing every other name without sending it anywhere); queries to any other server reach the stub too".into());
                    v.push("TLS is admitted by the server name of its ClientHello, plain HTTP by its Host header; the gate connects to the addresses its own stub resolved for that name, never to the address the client picked; no server name, a bare address, or an encrypted ClientHello is refused".into());
                    v.push("other protocols (ssh, git://) reach only an address the stub gave for an allowed name at that port, within its DNS lifetime; QUIC (UDP 443) is refused so clients fall back to TCP".into());
                }
                if !addrs.is_empty() {
                    v.push(format!(
                        "by address, any protocol: {}",
                        addrs.join(", ")
                    ));
                }
                v.push("everything else is refused; each refusal is an event (--events) and summed up on stderr at exit".into());
            }
            if n.allow_host_loopback {
                v.push("the host's loopback services, through the gateway address".into());
            } else if n.allow_host_ports.is_empty() {
                v.push("the host's loopback services are not reachable".into());
            } else {
                let ports: Vec<String> = n.allow_host_ports.iter().map(|p| p.to_string()).collect();
                v.push(format!(
                    "only these ports of the host's loopback, on its own loopback: {}",
                    ports.join(", ")
                ));
            }
            for p in &n.publish {
                v.push(format!("serves its port {} on the host's {}", p.sandbox_port, p.text));
            }
        }
    }
    v
}

//! `nook doctor`: what this host allows, one line per check, each ok,
//! degraded or missing, with what to do. Probes that need namespaces run
//! in a throw-away child; nothing on the host is changed.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::ForkResult;
use serde::Serialize;

use crate::host::Host;
use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Degraded,
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it, when not ok.
    pub fix: Option<String>,
    /// `nook run` with the default profile needs this.
    pub essential: bool,
}

fn check(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
    essential: bool,
) -> Check {
    Check {
        check: name,
        status,
        detail: detail.into(),
        fix,
        essential,
    }
}

pub fn run(host: &Host) -> Vec<Check> {
    vec![
        userns(),
        seccomp(),
        landlock(),
        overlay(host),
        fuse(host),
        helper(host, "pasta", "passt", "user-mode networking"),
        helper(host, "slirp4netns", "slirp4netns", "user-mode networking"),
        net_driver(host),
        subids(host),
        cgroup(host),
        nesting(),
    ]
}

/// Run `probe` in a forked child and report whether it exited 0.
fn in_child(probe: fn() -> Result<(), nix::errno::Errno>) -> Result<(), nix::errno::Errno> {
    match sys::fork().map_err(sys::ForkError::errno)? {
        ForkResult::Child => sys::exit_now(match probe() {
            Ok(()) => 0,
            Err(e) => e as i32,
        }),
        ForkResult::Parent { child } => match waitpid(child, None)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, e) => Err(nix::errno::Errno::from_raw(e)),
            _ => Err(nix::errno::Errno::EINTR),
        },
    }
}

fn userns() -> Check {
    match in_child(|| unshare(CloneFlags::CLONE_NEWUSER)) {
        Ok(()) => check(
            "user namespaces",
            Status::Ok,
            "an unprivileged user namespace can be created",
            None,
            true,
        ),
        Err(e) => {
            let mut fix =
                crate::host::nesting::userns_hint(e, &crate::host::nesting::Surroundings::read());
            if fix.contains("AppArmor") {
                fix.push_str(
                    "; or install nook's AppArmor profile: sudo install -m 644 contrib/apparmor/nook /etc/apparmor.d/nook && sudo apparmor_parser -r /etc/apparmor.d/nook",
                );
            }
            check(
                "user namespaces",
                Status::Missing,
                format!("unshare(CLONE_NEWUSER) fails: {e}"),
                Some(fix),
                true,
            )
        }
    }
}

fn seccomp() -> Check {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if status.lines().any(|l| l.starts_with("Seccomp:")) {
        check(
            "seccomp",
            Status::Ok,
            "seccomp filters are available",
            None,
            true,
        )
    } else {
        check(
            "seccomp",
            Status::Missing,
            "the kernel has no seccomp filter support",
            Some("use a kernel built with CONFIG_SECCOMP_FILTER".into()),
            true,
        )
    }
}

fn landlock() -> Check {
    let abi = sys::landlock_abi_version();
    match abi {
        0 => check(
            "landlock",
            Status::Missing,
            "not available; nook runs without it (best effort) unless --strict",
            Some("enable CONFIG_SECURITY_LANDLOCK and add landlock to lsm= on the kernel command line".into()),
            false,
        ),
        1..=5 => check(
            "landlock",
            Status::Degraded,
            format!("ABI {abi}: filesystem rules work; abstract socket and signal scoping need ABI 6 (Linux 6.12)"),
            Some("a newer kernel".into()),
            false,
        ),
        _ => check("landlock", Status::Ok, format!("ABI {abi}"), None, false),
    }
}

/// Unshare a user and a mount namespace (and `more`), mapping ourselves
/// to ourselves, as a sandbox's init does.
fn own_namespaces(more: CloneFlags) -> Result<(), nix::errno::Errno> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | more)?;
    let w = |p: &str, s: String| std::fs::write(p, s).map_err(|_| nix::errno::Errno::EACCES);
    w("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    w("/proc/self/setgroups", "deny".into())?;
    w("/proc/self/gid_map", format!("{gid} {gid} 1"))
}

fn overlay_probe() -> Result<(), nix::errno::Errno> {
    use nix::mount::{MsFlags, mount};
    own_namespaces(CloneFlags::empty())?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )?;
    for d in ["/tmp/l", "/tmp/u", "/tmp/w", "/tmp/m"] {
        std::fs::create_dir(d).map_err(|_| nix::errno::Errno::EIO)?;
    }
    mount(
        Some("overlay"),
        "/tmp/m",
        Some("overlay"),
        MsFlags::empty(),
        Some("lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w"),
    )
}

/// A new procfs for a new pid namespace, as init mounts it: refused
/// where the parent's /proc has covered parts (mount_too_revealing).
fn proc_probe() -> Result<(), nix::errno::Errno> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    own_namespaces(CloneFlags::CLONE_NEWPID)?;
    // The first child is the new pid namespace's init.
    in_child(|| {
        let e = crate::error::from_rustix;
        let fs = rustix::mount::fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC).map_err(e)?;
        rustix::mount::fsconfig_create(&fs).map_err(e)?;
        rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
            .map(drop)
            .map_err(e)
    })
}

/// Where nook runs (nested in a sandbox or a container, under an
/// inherited seccomp filter) and what that costs its sandboxes.
fn nesting() -> Check {
    let around = crate::host::nesting::Surroundings::read();
    let mut costs = Vec::new();
    let proc = in_child(proc_probe);
    if let Err(e) = proc {
        costs.push(format!(
            "a new /proc is refused ({e}): sandboxes get the parent's /proc, which lists its processes"
        ));
    }
    if around.seccomp_filter {
        costs.push(
            "the inherited filter applies inside every sandbox too, before nook's own".to_string(),
        );
    }
    let mut detail = around.describe();
    for c in &costs {
        detail.push_str("; ");
        detail.push_str(c);
    }
    let status = if proc.is_err() {
        Status::Degraded
    } else {
        Status::Ok
    };
    check(
        "where nook runs",
        status,
        detail,
        proc.is_err().then(|| {
            "for sandboxes with a /proc of their own, start the outer one with /proc uncovered (podman: --security-opt unmask=ALL; docker: --security-opt systempaths=unconfined) or run nook outside it".to_string()
        }),
        false,
    )
}

fn overlay(_host: &Host) -> Check {
    match in_child(overlay_probe) {
        Ok(()) => check(
            "overlayfs in a user namespace",
            Status::Ok,
            "native overlayfs mounts work (Linux 5.11+)",
            None,
            false,
        ),
        Err(e) => check(
            "overlayfs in a user namespace",
            Status::Degraded,
            format!("native overlayfs refused ({e}); overlays fall back to fuse-overlayfs"),
            Some("Linux 5.11 or later, or fuse-overlayfs".into()),
            false,
        ),
    }
}

fn fuse(host: &Host) -> Check {
    let dev = nix::unistd::access(
        "/dev/fuse",
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    );
    match (host.find_program("fuse-overlayfs"), dev) {
        (Some(p), Ok(())) => check(
            "fuse-overlayfs",
            Status::Ok,
            format!(
                "{} ({}), /dev/fuse usable",
                p.display(),
                host.program_version(&p)
            ),
            None,
            false,
        ),
        (None, _) => check(
            "fuse-overlayfs",
            Status::Missing,
            "not installed (needed only where native overlayfs is refused)",
            Some("install the 'fuse-overlayfs' package".into()),
            false,
        ),
        (Some(_), Err(e)) => check(
            "fuse-overlayfs",
            Status::Degraded,
            format!("/dev/fuse is not readable and writable for you ({e})"),
            Some("chmod 0666 /dev/fuse (most distributions ship it so)".into()),
            false,
        ),
    }
}

/// The options of a network helper that nook relies on; an older build
/// that lacks one is reported, with what it means.
fn needed_options(name: &str) -> &'static [&'static str] {
    match name {
        "pasta" => &[
            "--config-net",
            "--no-map-gw",
            "--dns-forward",
            "--tcp-ns",
            "--udp-ns",
        ],
        "slirp4netns" => &["--configure", "--disable-host-loopback", "--mtu"],
        _ => &[],
    }
}

fn helper(host: &Host, name: &'static str, package: &str, what: &str) -> Check {
    let Some(p) = host.find_program(name) else {
        return check(
            name,
            Status::Missing,
            format!("not installed: no {what}"),
            Some(format!("install the '{package}' package")),
            false,
        );
    };
    let help = Command::new(&p)
        .arg("--help")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default();
    let missing: Vec<&str> = needed_options(name)
        .iter()
        .copied()
        .filter(|o| !help.contains(o))
        .collect();
    let mut detail = format!("{} ({}): {what}", p.display(), host.program_version(&p));
    if name == "pasta" && !help.contains("--map-host-loopback") {
        // Debian 12's build (2023_03): no version string, and replies to
        // datagrams on published UDP ports are lost.
        detail.push_str(
            "; an older build (before --map-host-loopback): host loopback is closed with --no-map-gw, and replies on published UDP ports are lost",
        );
    }
    if missing.is_empty() {
        return check(name, Status::Ok, detail, None, false);
    }
    check(
        name,
        Status::Degraded,
        format!("{detail}; lacks {}", missing.join(", ")),
        Some(format!("upgrade the '{package}' package")),
        false,
    )
}

/// Which helper `--net user` takes by default here, and why.
fn net_driver(host: &Host) -> Check {
    let pasta = host.find_program("pasta").map(|p| host.program_version(&p));
    let slirp = host.find_program("slirp4netns").is_some();
    if pasta.is_none() && !slirp {
        return check(
            "network driver",
            Status::Missing,
            "no user-mode helper: --net user can't work",
            Some("install the 'passt' or the 'slirp4netns' package".into()),
            false,
        );
    }
    let (driver, why) = crate::net::choose_driver(pasta.as_deref(), slirp);
    check(
        "network driver",
        Status::Ok,
        format!(
            "--net user takes {} ({why}); --net-driver chooses another",
            driver.name()
        ),
        None,
        false,
    )
}

fn subids(host: &Host) -> Check {
    let who = host.user.clone().unwrap_or_else(|| host.uid.to_string());
    let tools = host
        .find_program("newuidmap")
        .zip(host.find_program("newgidmap"));
    let u = host.subordinate_range(Path::new("/etc/subuid"));
    let g = host.subordinate_range(Path::new("/etc/subgid"));
    match (tools, u, g) {
        (Some(_), Some(u), Some(g)) => check(
            "subordinate ids",
            Status::Ok,
            format!(
                "newuidmap/newgidmap present; {who} has uids {}..{} and gids {}..{} (--subids)",
                u.start,
                u.start as u64 + u.count as u64 - 1,
                g.start,
                g.start as u64 + g.count as u64 - 1
            ),
            None,
            false,
        ),
        (None, _, _) => check(
            "subordinate ids",
            Status::Missing,
            "newuidmap/newgidmap not installed (--subids needs them)",
            Some("install the 'uidmap' package".into()),
            false,
        ),
        _ => check(
            "subordinate ids",
            Status::Missing,
            format!("no range for {who} in /etc/subuid or /etc/subgid (--subids needs one)"),
            Some(format!(
                "add '{who}:100000:65536' to /etc/subuid and /etc/subgid (see subuid(5))"
            )),
            false,
        ),
    }
}

fn cgroup(host: &Host) -> Check {
    use crate::host::cgroup::{Situation, systemd_user_available};
    let wanted = ["cpu", "io", "memory", "pids"];
    let scope = systemd_user_available(host);
    let via_systemd = |what: String| -> Check {
        match &scope {
            Some(p) => check(
                "cgroup v2",
                Status::Ok,
                format!("{what}; limits run in a delegated systemd scope ({} --user --scope -p Delegate=yes)", p.display()),
                None,
                false,
            ),
            None => check(
                "cgroup v2",
                Status::Degraded,
                format!("{what}, and no systemd user manager to ask for a scope: cgroup limits (--memory, --pids, --cpus, ...) are refused; rlimits, --timeout and --disk-quota work"),
                Some("run nook in a systemd user session, or in a cgroup delegated to you (Delegate=yes)".into()),
                false,
            ),
        }
    };
    let here = host.cgroup();
    match &here {
        Situation::NoUnified => check(
            "cgroup v2",
            Status::Degraded,
            "no cgroup v2 hierarchy is mounted: cgroup limits are refused; rlimits, --timeout and --disk-quota work",
            Some("boot with systemd.unified_cgroup_hierarchy=1".into()),
            false,
        ),
        Situation::Unified {
            own,
            parent_delegated,
            own_delegated_alone,
            ..
        } => {
            if here.missing(&wanted).len() == wanted.len() {
                return check(
                    "cgroup v2",
                    Status::Degraded,
                    format!(
                        "the cgroup v2 hierarchy has none of the controllers {} (held by cgroup v1?): cgroup limits are refused; rlimits, --timeout and --disk-quota work",
                        wanted.join(", ")
                    ),
                    Some("boot with cgroup_no_v1=all".into()),
                    false,
                );
            }
            let usable = |have: &[String]| -> Vec<String> {
                wanted
                    .iter()
                    .filter(|w| have.iter().any(|h| h == *w))
                    .map(|w| w.to_string())
                    .collect()
            };
            if let Some(enabled) = parent_delegated.as_ref().filter(|e| !usable(e).is_empty()) {
                return check(
                    "cgroup v2",
                    Status::Ok,
                    format!(
                        "{} is delegated to you: sandboxes get leaves beside {}, controllers {}",
                        own.parent()
                            .map_or(String::new(), |p| p.display().to_string()),
                        own.display(),
                        usable(enabled).join(" ")
                    ),
                    None,
                    false,
                );
            }
            if let Some(c) = own_delegated_alone
                .as_ref()
                .filter(|c| !usable(c).is_empty())
            {
                return check(
                    "cgroup v2",
                    Status::Ok,
                    format!(
                        "{} is delegated to you and holds only nook: sandboxes get leaves below it, controllers {}",
                        own.display(),
                        usable(c).join(" ")
                    ),
                    None,
                    false,
                );
            }
            via_systemd(format!(
                "your cgroup {} is not delegated to you",
                own.display()
            ))
        }
    }
}

/// The report as text, and whether `nook run` with the default profile
/// can work here.
pub fn render(checks: &[Check]) -> (String, bool) {
    let mut o = String::new();
    for c in checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Missing => "missing",
        };
        let _ = writeln!(o, "{status:<9}{}: {}", c.check, c.detail);
        if let Some(f) = &c.fix {
            let _ = writeln!(o, "         fix: {f}");
        }
    }
    let works = usable(checks);
    let _ = writeln!(
        o,
        "\n{}",
        if works {
            "nook run works here with the default profile."
        } else {
            "nook run can't work here until the missing essentials above are fixed."
        }
    );
    (o, works)
}

pub fn usable(checks: &[Check]) -> bool {
    checks
        .iter()
        .all(|c| !c.essential || c.status == Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_essentials_decide_usability() {
        let mut cs = vec![
            check("user namespaces", Status::Ok, "", None, true),
            check("landlock", Status::Missing, "", Some("x".into()), false),
        ];
        assert!(usable(&cs));
        let (text, works) = render(&cs);
        assert!(works);
        assert!(text.contains("missing  landlock: \n         fix: x\n"));
        cs[0].status = Status::Missing;
        assert!(!usable(&cs));
    }
}

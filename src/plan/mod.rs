//! Planning: turn a Spec into the concrete, ordered steps the runtime
//! executes. Pure functions only; `--print-plan` prints the result.
//!
//! Ordering rule for the filesystem: operations run in list order and each
//! mount covers whatever an earlier one put at or below its target ("later
//! operations cover earlier ones"), exactly as mounts stack in the kernel.

mod ids;
pub mod landlock;
pub mod seccomp;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use ids::IdMap;

use crate::spec::{Mount, OverlayDriver, Spec};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Plan {
    pub uid_map: IdMap,
    pub gid_map: IdMap,
    pub mounts: Vec<MountOp>,
    pub seccomp: seccomp::Policy,
    pub landlock: landlock::Rules,
    pub net: NetPlan,
    /// Size of the one tmpfs that holds every scratch area (the tmpfs
    /// mounts without an explicit size): the disk quota. `None`: the
    /// kernel's default for a tmpfs, half the RAM, for all of them together.
    pub scratch_size: Option<u64>,
}

/// The user-mode network: the helper to start (the sandbox's pid goes
/// last) and the egress rules init installs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetPlan {
    pub helper: Option<(PathBuf, Vec<String>)>,
    /// `nft` and the ruleset it is fed.
    pub nft: Option<(PathBuf, String)>,
    /// init waits for the helper to configure a default route.
    pub wait_for_route: bool,
    /// ...and to listen on these sandbox loopback ports (host ports
    /// forwarded in).
    pub wait_for_listen: Vec<u16>,
}

/// One filesystem step inside the new mount namespace. Host paths (`src`)
/// are resolved under the old root; every `dst` under the new root, without
/// leaving it (RESOLVE_IN_ROOT).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum MountOp {
    /// Bind a host path (recursively) at `dst`.
    BindHost {
        src: PathBuf,
        dst: PathBuf,
        read_only: bool,
        optional: bool,
    },
    /// Make what is mounted at `dst` read-only, recursively.
    ReadOnly {
        dst: PathBuf,
        optional: bool,
    },
    Tmpfs {
        dst: PathBuf,
        size: Option<u64>,
        mode: u32,
    },
    Dir {
        dst: PathBuf,
    },
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    /// A small read-only file with this content.
    File {
        dst: PathBuf,
        content: String,
    },
    /// Cover `dst` with something empty and unreadable of the same type.
    Hide {
        dst: PathBuf,
    },
    /// A fresh procfs for the sandbox's pid namespace.
    Proc {
        dst: PathBuf,
    },
    /// A private devpts instance.
    Devpts {
        dst: PathBuf,
    },
    /// Host directory `lower` copy-on-write at `dst`; the upper layer in
    /// the host directories `upper`/`work`, or in the scratch tmpfs when
    /// `None` (thrown away).
    Overlay {
        lower: PathBuf,
        dst: PathBuf,
        layers: Option<(PathBuf, PathBuf)>,
        /// Tried in order; the first that mounts is kept.
        with: Vec<OverlayWith>,
    },
    /// Make the root tmpfs itself read-only (not what is mounted on it).
    SealRoot,
}

/// An overlay implementation.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "driver", rename_all = "kebab-case")]
pub enum OverlayWith {
    /// overlayfs in the user namespace (Linux 5.11).
    Native,
    /// fuse-overlayfs on a FUSE mount nook makes, owned by the sandbox's
    /// ids.
    Fuse {
        program: PathBuf,
        uid: u32,
        gid: u32,
    },
}

/// Device nodes bound from the host into a `--dev` directory.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// procfs entries that would let a process reconfigure the host kernel if it
/// had the capability; read-only as in bubblewrap.
const PROC_READ_ONLY: [&str; 4] = ["sys", "sysrq-trigger", "irq", "bus"];

pub fn build(spec: &Spec) -> Plan {
    let mut mounts = Vec::new();
    for m in &spec.mounts {
        expand(m, spec, &mut mounts);
    }
    mounts.push(MountOp::SealRoot);
    let sec = &spec.security;
    Plan {
        uid_map: ids::uid_map(&spec.ids),
        gid_map: ids::gid_map(&spec.ids),
        mounts,
        seccomp: seccomp::Policy::new(
            sec.seccomp,
            &sec.seccomp_allow,
            &sec.seccomp_deny,
            sec.allow_userns,
        ),
        landlock: landlock::Rules {
            // Landlock can't tell addresses apart, so port rules would
            // close loopback too: only when every layer is asked to be
            // strict.
            tcp_connect: landlock::tcp_ports(&spec.network.allow).filter(|_| sec.strict),
            ..landlock::rules(sec.landlock, &spec.mounts)
        },
        net: net_plan(&spec.network),
        scratch_size: spec.limits.disk_quota,
    }
}

fn net_plan(n: &crate::net::Network) -> NetPlan {
    NetPlan {
        helper: n
            .helper
            .clone()
            .map(|path| (path, crate::net::helper_args(n))),
        nft: n
            .nft
            .clone()
            .map(|nft| (nft, crate::net::nft_ruleset(&n.allow, n.dns_address()))),
        wait_for_route: n.helper.is_some(),
        wait_for_listen: n.allow_host_ports.clone(),
    }
}

fn expand(m: &Mount, spec: &Spec, out: &mut Vec<MountOp>) {
    match m {
        Mount::Bind {
            src,
            dst,
            read_only,
            optional,
        } => out.push(MountOp::BindHost {
            src: src.clone(),
            dst: dst.clone(),
            read_only: *read_only,
            optional: *optional,
        }),
        Mount::Tmpfs { dst, size, mode } => out.push(MountOp::Tmpfs {
            dst: dst.clone(),
            size: *size,
            mode: *mode,
        }),
        Mount::Dir { dst } => out.push(MountOp::Dir { dst: dst.clone() }),
        Mount::Symlink { target, link } => out.push(MountOp::Symlink {
            target: target.clone(),
            link: link.clone(),
        }),
        Mount::File { dst, content } => out.push(MountOp::File {
            dst: dst.clone(),
            content: content.clone(),
        }),
        Mount::Hide { dst } => out.push(MountOp::Hide { dst: dst.clone() }),
        Mount::Proc { dst } => {
            if spec.namespaces.pid {
                out.push(MountOp::Proc { dst: dst.clone() });
                for p in PROC_READ_ONLY {
                    out.push(MountOp::ReadOnly {
                        dst: dst.join(p),
                        optional: true,
                    });
                }
            } else {
                // procfs can only be mounted by the owner of the pid
                // namespace it shows; a shared one is the host's.
                out.push(MountOp::BindHost {
                    src: PathBuf::from("/proc"),
                    dst: dst.clone(),
                    read_only: false,
                    optional: false,
                });
            }
        }
        Mount::Dev { dst } => expand_dev(dst, out),
        Mount::Overlay { lower, dst, keep } => {
            let layers = match (&spec.sandbox, keep) {
                (Some(sb), true) => {
                    let key = crate::state::layers::layer_key(lower, dst);
                    Some((
                        crate::state::layers::upper(&sb.dir, &key),
                        crate::state::layers::work(&sb.dir, &key),
                    ))
                }
                _ => None,
            };
            let fuse = spec
                .fuse_overlayfs
                .clone()
                .map(|program| OverlayWith::Fuse {
                    program,
                    uid: spec.ids.uid,
                    gid: spec.ids.gid,
                });
            // fuse-overlayfs serves kept layers only: its daemon, chrooted
            // into the host's root, can't reach the scratch tmpfs.
            let with = match (spec.overlay_driver, &layers) {
                (OverlayDriver::Native, _) | (_, None) => vec![OverlayWith::Native],
                (OverlayDriver::Auto, Some(_)) => {
                    std::iter::once(OverlayWith::Native).chain(fuse).collect()
                }
                (OverlayDriver::Fuse, Some(_)) => fuse.into_iter().collect(),
            };
            out.push(MountOp::Overlay {
                lower: lower.clone(),
                dst: dst.clone(),
                layers,
                with,
            })
        }
    }
}

fn expand_dev(dst: &Path, out: &mut Vec<MountOp>) {
    out.push(MountOp::Tmpfs {
        dst: dst.to_path_buf(),
        size: None,
        mode: 0o755,
    });
    // Device nodes can't be created in a user namespace (mknod needs
    // CAP_MKNOD in the initial one), so the harmless ones are bound.
    for d in DEVICES {
        out.push(MountOp::BindHost {
            src: Path::new("/dev").join(d),
            dst: dst.join(d),
            read_only: false,
            optional: false,
        });
    }
    out.push(MountOp::Devpts {
        dst: dst.join("pts"),
    });
    out.push(MountOp::Symlink {
        target: "pts/ptmx".into(),
        link: dst.join("ptmx"),
    });
    out.push(MountOp::Tmpfs {
        dst: dst.join("shm"),
        size: None,
        mode: 0o1777,
    });
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        out.push(MountOp::Symlink {
            target: target.into(),
            link: dst.join(name),
        });
    }
}

impl fmt::Display for MountOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |o: &bool| if *o { " (optional)" } else { "" };
        match self {
            MountOp::BindHost {
                src,
                dst,
                read_only,
                optional,
            } => write!(
                f,
                "{} {} -> {}{}",
                if *read_only { "ro-bind" } else { "bind" },
                src.display(),
                dst.display(),
                opt(optional)
            ),
            MountOp::ReadOnly { dst, optional } => {
                write!(f, "read-only {}{}", dst.display(), opt(optional))
            }
            MountOp::Tmpfs { dst, size, mode } => {
                write!(f, "tmpfs {} mode={mode:o}", dst.display())?;
                match size {
                    Some(s) => write!(f, " size={s}"),
                    None => Ok(()),
                }
            }
            MountOp::Dir { dst } => write!(f, "dir {}", dst.display()),
            MountOp::Symlink { target, link } => {
                write!(f, "symlink {} -> {}", link.display(), target.display())
            }
            MountOp::File { dst, content } => {
                write!(f, "file {} ({} bytes)", dst.display(), content.len())
            }
            MountOp::Hide { dst } => write!(f, "hide {}", dst.display()),
            MountOp::Proc { dst } => write!(f, "proc {}", dst.display()),
            MountOp::Devpts { dst } => write!(f, "devpts {}", dst.display()),
            MountOp::Overlay {
                lower,
                dst,
                layers,
                with,
            } => {
                write!(f, "overlay {} -> {}", lower.display(), dst.display())?;
                match layers {
                    Some((upper, _)) => write!(f, " upper {}", upper.display())?,
                    None => write!(f, " upper in the scratch tmpfs")?,
                }
                let with: Vec<String> = with
                    .iter()
                    .map(|w| match w {
                        OverlayWith::Native => "native".to_string(),
                        OverlayWith::Fuse { program, .. } => program.display().to_string(),
                    })
                    .collect();
                write!(f, " (with {})", with.join(", then "))
            }
            MountOp::SealRoot => write!(f, "read-only / (the root tmpfs only)"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "uid_map: {}", self.uid_map)?;
        writeln!(f, "gid_map: {}", self.gid_map)?;
        for (i, m) in self.mounts.iter().enumerate() {
            writeln!(f, "{:>3}. {m}", i + 1)?;
        }
        if let Some((p, args)) = &self.net.helper {
            writeln!(
                f,
                "network helper: {} {} <sandbox pid>",
                p.display(),
                args.join(" ")
            )?;
        }
        if let Some((p, rules)) = &self.net.nft {
            writeln!(f, "egress rules ({} -f -):", p.display())?;
            for l in rules.lines() {
                writeln!(f, "  {l}")?;
            }
        }
        writeln!(f, "landlock ({}):", self.landlock.mode.name())?;
        for (p, r) in &self.landlock.paths {
            writeln!(f, "  {r:?} {}", p.display())?;
        }
        let verb = match self.seccomp.mode {
            seccomp::Mode::Strict => "allows",
            _ => "refuses",
        };
        writeln!(
            f,
            "seccomp ({}): {verb} {}{}",
            self.seccomp.mode.name(),
            self.seccomp.calls.join(" "),
            if self.seccomp.mode == seccomp::Mode::Off {
                String::new()
            } else {
                "; checks clone/unshare namespace flags, ioctl TIOCSTI/TIOCLINUX, personality; clone3 -> ENOSYS; x32 and i386 refused".to_string()
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Key, Layer};
    use crate::spec::tests as spec_tests;

    #[test]
    fn default_view_plan_in_order() {
        let spec = spec_tests::spec_of(&Layer::default(), &crate::host::Host::fake()).unwrap();
        let plan = build(&spec);
        let text: Vec<String> = plan
            .mounts
            .iter()
            .filter(|m| !matches!(m, MountOp::Hide { .. }))
            .map(|m| m.to_string())
            .collect();
        assert_eq!(text[0], "ro-bind /usr -> /usr");
        assert_eq!(text[1], "ro-bind /etc -> /etc");
        assert_eq!(text[2], "symlink /bin -> usr/bin");
        assert_eq!(text[3], "proc /proc");
        assert_eq!(text[4], "read-only /proc/sys (optional)");
        assert!(text.contains(&"bind /dev/null -> /dev/null".to_string()));
        assert!(text.contains(&"devpts /dev/pts".to_string()));
        assert!(text.contains(&"symlink /dev/ptmx -> pts/ptmx".to_string()));
        let n = text.len();
        assert_eq!(text[n - 4], "tmpfs /tmp mode=1777");
        assert_eq!(text[n - 3], "tmpfs /home/ana mode=755");
        assert_eq!(text[n - 2], "bind /home/ana/src/proj -> /home/ana/src/proj");
        assert_eq!(text[n - 1], "read-only / (the root tmpfs only)");
    }

    #[test]
    fn shared_pid_namespace_binds_host_proc() {
        let r = Layer::default().with(Key::SharePid, true);
        let spec = spec_tests::spec_of(&r, &crate::host::Host::fake()).unwrap();
        let plan = build(&spec);
        assert!(plan.mounts.contains(&MountOp::BindHost {
            src: "/proc".into(),
            dst: "/proc".into(),
            read_only: false,
            optional: false
        }));
        assert!(
            !plan
                .mounts
                .iter()
                .any(|m| matches!(m, MountOp::Proc { .. }))
        );
    }

    #[test]
    fn user_flags_come_after_default_view() {
        let r = Layer::default().with(Key::Tmpfs, "/usr:size=1m".to_string());
        let plan = build(&spec_tests::spec_of(&r, &crate::host::Host::fake()).unwrap());
        let ops: Vec<&MountOp> = plan
            .mounts
            .iter()
            .filter(|m| !matches!(m, MountOp::Hide { .. }))
            .collect();
        let n = ops.len();
        assert_eq!(
            *ops[n - 2],
            MountOp::Tmpfs {
                dst: "/usr".into(),
                size: Some(1 << 20),
                mode: 0o755
            }
        );
    }
}

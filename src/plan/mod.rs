//! Planning: turn a Spec into the concrete, ordered steps the runtime
//! executes. Pure functions only; `--print-plan` prints the result.
//!
//! Ordering rule for the filesystem: operations run in list order and each
//! mount covers whatever an earlier one put at or below its target ("later
//! operations cover earlier ones"), exactly as mounts stack in the kernel.

mod ids;
pub mod landlock;
pub mod layers;
pub mod seccomp;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use ids::IdMap;

use crate::spec::limits::{CgroupLimits, Rlimit};
use crate::spec::{Mount, Namespaces, OverlayDriver, Spec};

/// Everything the runtime does, and nothing it must look up: the runtime
/// reads no Spec.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Plan {
    /// The command and the profiles it runs under (for the records).
    pub command: Vec<String>,
    pub profiles: Vec<String>,
    /// The namespaces made new; the user namespace always is.
    pub namespaces: Namespaces,
    pub uid_map: IdMap,
    pub gid_map: IdMap,
    pub hostname: Option<String>,
    /// user.max_user_namespaces = 0 inside: no nested user namespaces.
    pub forbid_nested_userns: bool,
    pub mounts: Vec<MountOp>,
    /// Size of the one tmpfs that holds every scratch area (the tmpfs
    /// mounts without an explicit size): the disk quota. `None`: the
    /// kernel's default for a tmpfs, half the RAM, for all of them together.
    pub scratch_size: Option<u64>,
    /// The overlays whose upper layers outlive the run, in the sandbox's
    /// directory.
    pub kept_layers: Vec<KeptLayer>,
    /// The sandbox's own protect/unprotect patterns, recorded with kept
    /// layers for their review.
    pub protect: ProtectPatterns,
    pub net: NetPlan,
    pub cgroup: CgroupLimits,
    #[serde(serialize_with = "crate::spec::limits::opt_secs::serialize")]
    pub timeout: Option<std::time::Duration>,
    /// The payload's exec stage; also what `nook exec` joins with.
    pub exec: ExecStage,
    /// Inherited descriptors the payload keeps (the joiner keeps none).
    pub pass_fds: Vec<i32>,
}

/// A sandbox's `protect` and `unprotect` patterns.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ProtectPatterns {
    pub protect: Vec<String>,
    pub unprotect: Vec<String>,
}

/// One kept overlay: its host directory, its place in the sandbox, and
/// its key in the sandbox's `layers/` (see `layers`). Also the record of
/// it in the sandbox's `sandbox.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeptLayer {
    pub key: String,
    pub lower: PathBuf,
    pub dst: PathBuf,
}

/// The last stage before execve, in its fixed order: rlimits, the
/// working directory, the environment, no_new_privs, Landlock, seccomp.
/// Recorded with a running sandbox, so that `nook exec` restricts a
/// joining process exactly as the payload is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExecStage {
    pub env: Vec<(String, String)>,
    pub chdir: PathBuf,
    /// Where the command is looked up (the payload's PATH).
    pub search_path: String,
    /// Best-effort layers (keyring, session, Landlock) are required.
    pub strict: bool,
    pub rlimits: Vec<Rlimit>,
    pub landlock: landlock::Rules,
    pub seccomp: seccomp::Policy,
    /// Capabilities held in the sandbox's user namespace (numbers), kept
    /// across execve as ambient ones; none by default.
    #[serde(default)]
    pub caps: Vec<u8>,
}

/// The user-mode network: the helper to start (the sandbox's pid goes
/// last) and the egress gate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetPlan {
    pub driver: Option<crate::net::DriverKind>,
    /// Why this driver (said under -v).
    pub driver_why: Option<String>,
    /// Host ports to publish: checked free before anything starts.
    pub publish: Vec<crate::net::Publish>,
    pub helper: Option<(PathBuf, Vec<String>)>,
    /// The egress gate, when there is an allow-list.
    pub gate: Option<GatePlan>,
    /// slirp4netns: the API requests that publish ports (sent by the
    /// supervisor once the helper listens; init waits for word that they
    /// were) and the host ports nook's relay brings onto the sandbox's
    /// loopback (pasta does both itself).
    pub slirp_forwards: Vec<String>,
    pub relay_ports: Vec<u16>,
    /// init waits for the helper to configure a default route.
    pub wait_for_route: bool,
    /// ...and to listen on these sandbox loopback ports (host ports
    /// forwarded in).
    pub wait_for_listen: Vec<u16>,
}

/// The egress gate: a process of the supervisor's that joins the
/// sandbox's user and network namespaces, installs `rules` with `nft`,
/// and answers DNS on the sandbox's loopback port 53 (forwarding what
/// `names` admit to `upstream`) and the captured TCP connections on
/// GATE_PORT.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GatePlan {
    pub nft: PathBuf,
    pub rules: String,
    pub names: Vec<crate::net::NameRule>,
    pub upstream: std::net::SocketAddr,
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

/// The plan for `spec`; kept overlay layers go in `sandbox_dir` (the
/// named sandbox's directory, when the run keeps any).
pub fn build(spec: &Spec, sandbox_dir: Option<&Path>) -> Plan {
    let mut mounts = Vec::new();
    for m in &spec.mounts {
        expand(m, spec, sandbox_dir, &mut mounts);
    }
    mounts.push(MountOp::SealRoot);
    let sec = &spec.security;
    Plan {
        command: spec.command.clone(),
        profiles: spec.profiles.clone(),
        namespaces: spec.namespaces,
        uid_map: ids::uid_map(&spec.ids),
        gid_map: ids::gid_map(&spec.ids),
        hostname: spec.hostname.clone(),
        forbid_nested_userns: !sec.allow_userns,
        mounts,
        scratch_size: spec.limits.disk_quota,
        kept_layers: spec
            .mounts
            .iter()
            .filter_map(|m| match m {
                Mount::Overlay {
                    lower,
                    dst,
                    keep: true,
                } => Some(KeptLayer {
                    key: layers::layer_key(lower, dst),
                    lower: lower.clone(),
                    dst: dst.clone(),
                }),
                _ => None,
            })
            .collect(),
        protect: ProtectPatterns {
            protect: spec.protect.clone(),
            unprotect: spec.unprotect.clone(),
        },
        net: net_plan(&spec.network),
        cgroup: spec.limits.cgroup.clone(),
        timeout: spec.limits.timeout,
        exec: ExecStage {
            env: spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            chdir: spec.chdir.clone(),
            search_path: spec.search_path().to_string(),
            strict: sec.strict,
            rlimits: spec.limits.rlimits.clone(),
            landlock: landlock::Rules {
                // Landlock can't tell addresses apart, so port rules would
                // close loopback too: only when every layer is asked to be
                // strict.
                tcp_connect: landlock::tcp_ports(&spec.network).filter(|_| sec.strict),
                ..landlock::rules(sec.landlock, &spec.mounts)
            },
            seccomp: seccomp::Policy::new(
                sec.seccomp,
                &sec.seccomp_allow,
                &sec.seccomp_deny,
                sec.allow_userns,
            ),
            caps: sec.caps.iter().map(|c| c.number).collect(),
        },
        pass_fds: spec.pass_fds.clone(),
    }
}

fn net_plan(n: &crate::net::Network) -> NetPlan {
    NetPlan {
        driver: n.driver,
        driver_why: n.driver_why.clone(),
        publish: n.publish.clone(),
        helper: n
            .helper
            .clone()
            .map(|path| (path, crate::net::helper_args(n))),
        gate: gate_plan(n),
        slirp_forwards: match n.driver {
            Some(crate::net::DriverKind::Slirp4netns) => crate::net::slirp_forwards(&n.publish),
            _ => Vec::new(),
        },
        relay_ports: match n.driver {
            Some(crate::net::DriverKind::Slirp4netns) => n.allow_host_ports.clone(),
            _ => Vec::new(),
        },
        wait_for_route: n.helper.is_some(),
        wait_for_listen: n
            .allow_host_ports
            .iter()
            .copied()
            .chain(n.gated().then_some(crate::net::GATE_PORT))
            .collect(),
    }
}

fn gate_plan(n: &crate::net::Network) -> Option<GatePlan> {
    let (nft, dns) = (n.nft.clone()?, n.dns_address()?);
    n.gated().then(|| GatePlan {
        nft,
        rules: crate::net::nft_ruleset(&n.allow),
        names: n.names.clone(),
        upstream: std::net::SocketAddr::new(dns.parse().expect("a literal address"), 53),
    })
}

fn expand(m: &Mount, spec: &Spec, sandbox_dir: Option<&Path>, out: &mut Vec<MountOp>) {
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
        // Optional: the file may go between the search and the mount.
        Mount::Protect { src, dst, .. } => out.push(MountOp::BindHost {
            src: src.clone(),
            dst: dst.clone(),
            read_only: true,
            optional: true,
        }),
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
            let kept = match (sandbox_dir, keep) {
                (Some(dir), true) => {
                    let key = layers::layer_key(lower, dst);
                    Some((layers::upper(dir, &key), layers::work(dir, &key)))
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
            let with = match (spec.overlay_driver, &kept) {
                (OverlayDriver::Native, _) | (_, None) => vec![OverlayWith::Native],
                (OverlayDriver::Auto, Some(_)) => {
                    std::iter::once(OverlayWith::Native).chain(fuse).collect()
                }
                (OverlayDriver::Fuse, Some(_)) => fuse.into_iter().collect(),
            };
            out.push(MountOp::Overlay {
                lower: lower.clone(),
                dst: dst.clone(),
                layers: kept,
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
        let ns = self.namespaces;
        let new: Vec<&str> = [
            ("user", true),
            ("mount", ns.mount),
            ("pid", ns.pid),
            ("net", ns.net),
            ("ipc", ns.ipc),
            ("uts", ns.uts),
            ("cgroup", ns.cgroup),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect();
        writeln!(f, "new namespaces: {}", new.join(" "))?;
        writeln!(f, "uid_map: {}", self.uid_map)?;
        writeln!(f, "gid_map: {}", self.gid_map)?;
        if let Some(h) = &self.hostname {
            writeln!(f, "hostname: {h}")?;
        }
        if self.forbid_nested_userns {
            writeln!(f, "user.max_user_namespaces = 0 inside")?;
        }
        for (i, m) in self.mounts.iter().enumerate() {
            writeln!(f, "{:>3}. {m}", i + 1)?;
        }
        if let Some(s) = self.scratch_size {
            writeln!(f, "scratch areas: {s} bytes in all")?;
        }
        for l in &self.kept_layers {
            writeln!(
                f,
                "kept layer {}: {} -> {}",
                l.key,
                l.lower.display(),
                l.dst.display()
            )?;
        }
        for (file, value) in self.cgroup.files() {
            writeln!(f, "cgroup {file} = {value}")?;
        }
        if let Some(t) = self.timeout {
            writeln!(f, "timeout: {} s", t.as_secs_f64())?;
        }
        if let Some((p, args)) = &self.net.helper {
            writeln!(
                f,
                "network helper: {} {} <sandbox pid>",
                p.display(),
                args.join(" ")
            )?;
        }
        if let Some(g) = &self.net.gate {
            let names: Vec<String> = g.names.iter().map(|n| n.to_string()).collect();
            writeln!(
                f,
                "egress gate: DNS on 127.0.0.1:53 (forwarded to {}), captured TCP on port {}; names: {}",
                g.upstream,
                crate::net::GATE_PORT,
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            )?;
            writeln!(f, "egress rules ({} -f -):", g.nft.display())?;
            for l in g.rules.lines() {
                writeln!(f, "  {l}")?;
            }
        }
        let exec = &self.exec;
        writeln!(
            f,
            "exec {} in {} (PATH {}), {} variables, {} passed descriptors",
            self.command.first().map_or("", String::as_str),
            exec.chdir.display(),
            exec.search_path,
            exec.env.len(),
            self.pass_fds.len()
        )?;
        for r in &exec.rlimits {
            writeln!(f, "rlimit {}={}", r.name, r.value)?;
        }
        writeln!(f, "landlock ({}):", self.exec.landlock.mode.name())?;
        for (p, r) in &self.exec.landlock.paths {
            writeln!(f, "  {r:?} {}", p.display())?;
        }
        let verb = match self.exec.seccomp.mode {
            seccomp::Mode::Strict => "allows",
            _ => "refuses",
        };
        if !self.exec.caps.is_empty() {
            writeln!(
                f,
                "capabilities (user namespace, ambient): {}",
                self.exec
                    .caps
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            )?;
        }
        writeln!(
            f,
            "seccomp ({}): {verb} {}{}",
            self.exec.seccomp.mode.name(),
            self.exec.seccomp.calls.join(" "),
            if self.exec.seccomp.mode == seccomp::Mode::Off {
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
        let plan = build(&spec, None);
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
        let plan = build(&spec, None);
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
        let plan = build(
            &spec_tests::spec_of(&r, &crate::host::Host::fake()).unwrap(),
            None,
        );
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

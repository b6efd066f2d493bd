//! The Spec: the complete, resolved description of one sandbox, and the one
//! function that builds it from a request and the host. Nothing after this
//! point reads flags, profiles or the environment.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

pub mod caps;
pub mod limits;
pub mod security;
pub mod syscalls;
pub mod units;

use crate::error::Error;
use crate::host::{Host, RootEntry, SubRange};
use crate::net::{DriverKind, Mode as NetMode, Network, egress, parse_publish};
use crate::profile::secrets;
use crate::settings::{FsFlag, Key, Layer, Origin, Val};
use crate::spec::security::LandlockMode;
use crate::spec::security::SeccompMode;
use crate::spec::security::Security;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spec {
    pub command: Vec<String>,
    /// The profiles this Spec was built from, base first.
    pub profiles: Vec<String>,
    pub ids: Ids,
    pub namespaces: Namespaces,
    /// Filesystem view, in order; later entries cover earlier ones.
    pub mounts: Vec<Mount>,
    pub hostname: Option<String>,
    pub chdir: PathBuf,
    /// The payload's complete environment.
    pub env: BTreeMap<String, String>,
    pub pass_fds: Vec<i32>,
    pub security: Security,
    pub network: Network,
    pub limits: crate::spec::limits::Limits,
    pub overlay_driver: OverlayDriver,
    /// The fuse-overlayfs program, when an overlay may use it.
    pub fuse_overlayfs: Option<PathBuf>,
    /// Things weaker than asked, one line each, printed before the run.
    pub warnings: Vec<String>,
    /// The user's `protect` and `unprotect` patterns, for the record (the
    /// paths they protect are `Mount::Protect` entries).
    pub protect: Vec<String>,
    pub unprotect: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ids {
    /// Ids inside the sandbox.
    pub uid: u32,
    pub gid: u32,
    /// The caller's ids on the host.
    pub host_uid: u32,
    pub host_gid: u32,
    /// Subordinate ranges, when the whole range is mapped (`--subids`).
    pub subids: Option<SubIds>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SubIds {
    pub uid_range: SubRange,
    pub gid_range: SubRange,
    pub newuidmap: PathBuf,
    pub newgidmap: PathBuf,
}

/// Which namespaces are new (true) rather than shared with the host. The
/// user namespace is always new.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Namespaces {
    pub mount: bool,
    pub pid: bool,
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
    pub cgroup: bool,
}

/// One entry of the filesystem view. Host paths (`src`) are absolute and
/// canonical; sandbox paths (`dst`) are absolute and normalized.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mount {
    Bind {
        src: PathBuf,
        dst: PathBuf,
        read_only: bool,
        /// Skip silently when the source is missing at setup time.
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
    File {
        dst: PathBuf,
        content: String,
    },
    Hide {
        dst: PathBuf,
    },
    /// A path a host program runs or obeys later, bound read-only over a
    /// read-write share (or over a git directory the share points to).
    Protect {
        src: PathBuf,
        dst: PathBuf,
        why: String,
        /// Device and inode at start: a path made anew under the same name
        /// (its parent renamed away inside) is told apart at exit.
        id: Option<(u64, u64)>,
    },
    Proc {
        dst: PathBuf,
    },
    Dev {
        dst: PathBuf,
    },
    /// Host directory `lower` at `dst`, copy-on-write; the upper layer is
    /// kept in the named sandbox (`keep`) or thrown away.
    Overlay {
        lower: PathBuf,
        dst: PathBuf,
        keep: bool,
    },
}

/// Which overlay implementation mounts `--overlay` views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverlayDriver {
    /// Native overlayfs, and fuse-overlayfs where the kernel refuses it.
    Auto,
    Native,
    Fuse,
}

/// What to do with the current directory in the default view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CwdMode {
    /// Bound read-write (the default).
    Rw,
    /// Bound read-only.
    Ro,
    /// Not shared; the working directory is the empty $HOME.
    No,
    /// Copy-on-write: every write goes to a layer kept for review.
    Overlay,
}

impl CwdMode {
    pub fn parse(s: &str) -> Option<CwdMode> {
        match s {
            "rw" => Some(CwdMode::Rw),
            "ro" => Some(CwdMode::Ro),
            "no" => Some(CwdMode::No),
            "overlay" => Some(CwdMode::Overlay),
            _ => None,
        }
    }
}

impl OverlayDriver {
    pub fn parse(s: &str) -> Option<OverlayDriver> {
        match s {
            "auto" => Some(OverlayDriver::Auto),
            "native" => Some(OverlayDriver::Native),
            "fuse" => Some(OverlayDriver::Fuse),
            _ => None,
        }
    }
}

/// The value of a choice key as its enum. The words were checked against
/// the key table when the value was read; `parse` knows the same words
/// (a unit test holds the two together).
fn choice<T>(set: &Layer, key: Key, parse: fn(&str) -> Option<T>) -> Result<Option<Val<T>>, Error> {
    let Some(v) = set.get::<String>(key) else {
        return Ok(None);
    };
    match parse(&v.v) {
        Some(t) => Ok(Some(Val { v: t, from: v.from })),
        None => Err(Error::usage(
            &v.from.to_string(),
            &v.v,
            "is not a known value",
        )),
    }
}

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What `resolve` needs besides the merged settings.
pub struct Request<'a> {
    pub command: &'a [String],
    /// The profiles applied, for the record (`--print-spec`).
    pub profiles: &'a [String],
}

/// Build the Spec from the merged settings (profiles, then flags). The one
/// place where settings meet the host.
pub fn resolve(set: &Layer, req: &Request<'_>, host: &Host) -> Result<Spec, Error> {
    let ids = resolve_ids(set, host)?;
    let on = |k| set.on(k);
    let mut warnings = Vec::new();
    let network = resolve_network(set, host)?;
    let limits = crate::spec::limits::resolve(set)?;
    let overlay_driver =
        choice(set, Key::OverlayDriver, OverlayDriver::parse)?.map_or(OverlayDriver::Auto, |v| v.v);
    let namespaces = Namespaces {
        mount: true,
        pid: !on(Key::SharePid),
        net: network.mode != NetMode::Host,
        ipc: !on(Key::ShareIpc),
        uts: !on(Key::ShareUts),
        cgroup: !on(Key::ShareCgroup),
    };
    let hostname = set.get::<String>(Key::Hostname);
    if let Some(h) = &hostname {
        if !namespaces.uts {
            return Err(Error::usage(
                &h.from.to_string(),
                &h.v,
                "needs its own UTS namespace; drop --share-uts",
            ));
        }
        if h.v.is_empty() || h.v.len() > 64 || h.v.contains(['/', '\0']) {
            return Err(Error::usage(
                &h.from.to_string(),
                &h.v,
                "expected 1 to 64 characters without '/'",
            ));
        }
    }

    let mut mounts = Vec::new();
    let mut visible_cwd = None;
    let rootfs = match set.get::<String>(Key::Rootfs) {
        Some(r) => Some(rootfs(&r, req.command, host)?),
        None => None,
    };
    if !on(Key::NoDefaultView) {
        let cwd = choice(set, Key::ShareCwd, CwdMode::parse)?.map_or(CwdMode::Rw, |m| m.v);
        visible_cwd = default_view(host, rootfs.as_ref(), cwd, &mut mounts);
    }
    let mut explicit = Vec::new();
    for (flag, value) in &set.fs() {
        let m = fs_entry(*flag, value, host)?;
        // `--tmp-overlay /` and `--overlay /`: the root filesystem's
        // directories, each through an overlay.
        if let Mount::Overlay { lower, dst, keep } = &m
            && lower == Path::new("/")
            && dst == Path::new("/")
        {
            let Some(r) = &rootfs else {
                return Err(Error::usage(
                    &value.from.to_string(),
                    &value.v,
                    "an overlay of / needs --rootfs (the host's system belongs to its root, which no sandbox maps); overlay /usr, /etc or /var instead",
                ));
            };
            for (name, entry) in &r.entries {
                if *entry == RootEntry::Dir {
                    mounts.push(Mount::Overlay {
                        lower: r.dir.join(name),
                        dst: Path::new("/").join(name),
                        keep: *keep,
                    });
                }
            }
            continue;
        }
        if let Mount::Bind { src, .. } = &m {
            explicit.push(src.clone());
        }
        mounts.push(m);
    }
    let fuse_overlayfs = fuse_overlayfs(set, &mounts, overlay_driver, host)?;
    let (protect, unprotect) = protect_shares(set, host, &mut mounts)?;
    network_files(&network, &mut mounts);
    hide_secrets(&mut mounts, &explicit, &host.home);
    if let Some(h) = &host.passwd_home {
        hide_secrets(&mut mounts, &explicit, h);
    }

    let chdir = match &set.get::<String>(Key::Chdir) {
        Some(d) => absolute(&d.from.to_string(), &d.v)?,
        None => visible_cwd.unwrap_or_else(|| PathBuf::from("/")),
    };

    let keep_env = set.list::<String>(Key::KeepEnv);
    let keep: Vec<&str> = keep_env.iter().map(|k| k.v.as_str()).collect();
    let mut env: BTreeMap<String, String> = if on(Key::Clearenv) {
        BTreeMap::new()
    } else {
        host.env
            .iter()
            .filter(|(k, _)| !secrets::is_secret_var(k) || keep.iter().any(|p| secrets::glob(p, k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    for k in &set.list::<String>(Key::Unsetenv) {
        if k.v.is_empty() || k.v.contains('=') {
            return Err(Error::usage(
                &k.from.to_string(),
                &k.v,
                "expected a variable name without '='",
            ));
        }
        env.remove(&k.v);
    }
    for kv in &set.list::<String>(Key::Setenv) {
        match kv.v.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                env.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(Error::usage(
                    &kv.from.to_string(),
                    &kv.v,
                    "expected NAME=VALUE",
                ));
            }
        }
    }

    let mut pass_fds = Vec::new();
    for fd in &set.list::<i32>(Key::PassFd) {
        if fd.v < 0 {
            return Err(Error::usage(
                &fd.from.to_string(),
                &fd.v.to_string(),
                "expected a file descriptor number >= 0",
            ));
        }
        pass_fds.push(fd.v);
    }

    let security = resolve_security(set, &ids, network.gated())?;
    // A fake root over the host's own system: its files belong to the
    // host's root, which no sandbox maps, so the capabilities don't reach
    // them (some, like apt's and dpkg's locks, it can't even read).
    if ids.uid == 0
        && ids.subids.is_some()
        && let Some(lower) = mounts.iter().find_map(|m| match m {
            Mount::Overlay { lower, .. }
                if rootfs.as_ref().is_none_or(|r| !lower.starts_with(&r.dir))
                    && host.owner_of(lower) == Some(0) =>
            {
                Some(lower.clone())
            }
            _ => None,
        })
    {
        warnings.push(format!(
            "{} belongs to the host's root, which the sandbox can't map: the fake root can't change it; a package manager needs a root filesystem (--rootfs DIR --tmp-overlay /)",
            lower.display()
        ));
    }

    Ok(Spec {
        command: req.command.to_vec(),
        profiles: req.profiles.to_vec(),
        ids,
        namespaces,
        mounts,
        hostname: hostname.map(|h| h.v),
        chdir,
        env,
        pass_fds,
        security,
        network,
        limits,
        overlay_driver,
        fuse_overlayfs,
        warnings,
        protect,
        unprotect,
    })
}

/// Read-only binds over what a host program runs or obeys later (git
/// hooks and config, .envrc, editor and build tool configs: the list is in
/// `profile::protected`) in every read-write share, after every other
/// entry so that they cover the shares. Only the names on the list are
/// checked, never the whole tree. A git directory the share points to
/// from outside it (a worktree's, a submodule's) is bound read-write at its
/// own path, so that git works inside, with its protected parts read-only.
/// Returns the user's patterns, for the record.
fn protect_shares(
    set: &Layer,
    host: &Host,
    mounts: &mut Vec<Mount>,
) -> Result<(Vec<String>, Vec<String>), Error> {
    use crate::profile::protected::Protection;
    let given = [
        set.list::<String>(Key::Protect),
        set.list::<String>(Key::Unprotect),
    ];
    let [protect, unprotect] = given
        .clone()
        .map(|l| l.into_iter().map(|v| v.v).collect::<Vec<_>>());
    let base = Protection::new(&protect, &unprotect).map_err(|e| {
        // Named where it was given: the flag, or the profile's line.
        let at = given
            .iter()
            .flatten()
            .find(|v| v.v == e.pattern)
            .map_or("--protect".to_string(), |v| v.from.to_string());
        Error::usage(
            &at,
            &e.pattern,
            format!("expected a relative pattern: {}", e.why),
        )
    })?;
    let shares: Vec<(PathBuf, PathBuf)> = mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Bind {
                src,
                dst,
                read_only: false,
                ..
            } => Some((src.clone(), dst.clone())),
            _ => None,
        })
        .collect();
    let mut outside_dirs: Vec<PathBuf> = Vec::new();
    let mut protected = Vec::new();
    for (src, dst) in shares {
        let mut p = base.clone();
        p.add_home(&src, &host.home);
        if let Some(h) = &host.passwd_home {
            p.add_home(&src, h);
        }
        for found in p.existing(&src, host) {
            let dst_path = match found.path.strip_prefix(&src) {
                Ok(rel) if !found.outside_share => dst.join(rel),
                _ => {
                    // Its directory (the git directory elsewhere) is shared
                    // at its own path, once, the outermost.
                    if let Some(dir) = found.path.parent() {
                        outside_dirs.retain(|d| !d.starts_with(dir));
                        if !outside_dirs.iter().any(|d| dir.starts_with(d)) {
                            outside_dirs.push(dir.to_path_buf());
                        }
                    }
                    found.path.clone()
                }
            };
            protected.push(Mount::Protect {
                id: host.file_id(&found.path),
                src: found.path,
                dst: dst_path,
                why: found.reason.to_string(),
            });
        }
    }
    for dir in outside_dirs {
        mounts.push(Mount::Bind {
            src: dir.clone(),
            dst: dir,
            read_only: false,
            optional: true,
        });
    }
    mounts.extend(protected);
    Ok((protect, unprotect))
}

impl Spec {
    /// The protected names that exist now in its read-write shares but
    /// did not when the sandbox started, or are another file than then (a
    /// parent renamed away and made anew): a sandbox can create them (they
    /// could not be made read-only in advance), and a host program would
    /// run or obey them later. Only the listed names are checked.
    pub fn new_protected_paths(&self, host: &Host) -> Vec<(PathBuf, &'static str)> {
        use crate::profile::protected::Protection;
        let Ok(base) = Protection::new(&self.protect, &self.unprotect) else {
            return Vec::new();
        };
        let known: Vec<(&Path, Option<(u64, u64)>)> = self
            .mounts
            .iter()
            .filter_map(|m| match m {
                Mount::Protect { src, id, .. } => Some((src.as_path(), *id)),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for m in &self.mounts {
            let Mount::Bind {
                src,
                read_only: false,
                ..
            } = m
            else {
                continue;
            };
            let mut p = base.clone();
            p.add_home(src, &host.home);
            for f in p.existing(src, host) {
                let same = known
                    .iter()
                    .any(|(p, id)| *p == f.path && *id == host.file_id(&f.path));
                if !same && !out.iter().any(|(q, _)| *q == f.path) {
                    out.push((f.path, f.reason));
                }
            }
        }
        out
    }
}

/// Where fuse-overlayfs is, when an overlay may use it: always with the
/// fuse driver (which can't serve a throw-away layer: the daemon, chrooted
/// into the host's root, can't reach the sandbox's scratch tmpfs), and as
/// the fallback for kept layers with `auto`.
fn fuse_overlayfs(
    set: &Layer,
    mounts: &[Mount],
    driver: OverlayDriver,
    host: &Host,
) -> Result<Option<PathBuf>, Error> {
    let overlays = mounts.iter().filter_map(|m| match m {
        Mount::Overlay { keep, .. } => Some(*keep),
        _ => None,
    });
    let mut kept = false;
    for keep in overlays {
        if !keep && driver == OverlayDriver::Fuse {
            let tmp = set.list::<String>(Key::TmpOverlay);
            let (at, value) = tmp.first().map_or(("--tmp-overlay".to_string(), ""), |v| {
                (v.from.to_string(), v.v.as_str())
            });
            return Err(Error::usage(
                &at,
                value,
                "a throw-away overlay works with the native driver only, not with --overlay-driver fuse; use --overlay (and nook rm) with fuse",
            ));
        }
        kept |= keep;
    }
    let program = match driver {
        OverlayDriver::Native => None,
        _ if !kept => None,
        _ => host.find_program("fuse-overlayfs"),
    };
    if driver == OverlayDriver::Fuse && kept && program.is_none() {
        let at = set
            .get::<String>(Key::OverlayDriver)
            .map_or("--overlay-driver".to_string(), |v| v.from.to_string());
        return Err(Error::usage(
            &at,
            "fuse",
            "needs fuse-overlayfs, which is not installed; install the 'fuse-overlayfs' package",
        ));
    }
    Ok(program)
}

fn resolve_network(set: &Layer, host: &Host) -> Result<Network, Error> {
    let share = set.get::<bool>(Key::ShareNet).filter(|v| v.v);
    let net_mode = choice(set, Key::Net, NetMode::parse)?;
    let mode = match (&net_mode, share) {
        (Some(n), Some(s)) if n.v != NetMode::Host => {
            return Err(Error::usage(
                &n.from.to_string(),
                n.v.name(),
                format!("conflicts with {}; expected one network mode", s.from),
            ));
        }
        (Some(n), _) => n.v,
        (None, Some(_)) => NetMode::Host,
        (None, None) => NetMode::None,
    };
    let mut net = Network::none();
    net.mode = mode;
    // Everything below needs user-mode networking.
    let needs_user = |at: &Origin, value: &str| -> Result<(), Error> {
        if mode == NetMode::User {
            Ok(())
        } else {
            Err(Error::usage(
                &at.to_string(),
                value,
                "needs user-mode networking; add --net user",
            ))
        }
    };
    if let Some(v) = set.get::<bool>(Key::AllowHostLoopback).filter(|v| v.v) {
        needs_user(&v.from, "true")?;
        net.allow_host_loopback = true;
    }
    let allow_host_port = set.list::<u16>(Key::AllowHostPort);
    for p in &allow_host_port {
        needs_user(&p.from, &p.v.to_string())?;
        if p.v == 0 {
            return Err(Error::usage(
                &p.from.to_string(),
                "0",
                "expected a port 1 to 65535",
            ));
        }
        net.allow_host_ports.push(p.v);
    }
    let publish = set.list::<String>(Key::Publish);
    for p in &publish {
        needs_user(&p.from, &p.v)?;
        net.publish
            .push(parse_publish(&p.v).map_err(|e| Error::usage(&p.from.to_string(), &p.v, e))?);
    }
    let net_allow = set.list::<String>(Key::NetAllow);
    for a in &net_allow {
        needs_user(&a.from, &a.v)?;
    }
    for a in &net_allow {
        match egress::parse(&a.v).map_err(|e| Error::usage(&a.from.to_string(), &a.v, e))? {
            egress::Entry::Addr(e) => net.allow.push(e),
            egress::Entry::Name(n) => net.names.push(n),
        }
    }
    if mode != NetMode::User {
        return Ok(net);
    }
    let chosen = choice(set, Key::NetDriver, DriverKind::parse)?.and_then(|d| d.v);
    let (driver, why) = match chosen {
        Some(d) => (d, "chosen by --net-driver".to_string()),
        None => {
            let pasta = host.find_program("pasta").map(|p| host.program_version(&p));
            let slirp = host.find_program("slirp4netns").is_some();
            crate::net::choose_driver(pasta.as_deref(), slirp)
        }
    };
    net.driver_why = Some(why);
    let at = net_mode
        .as_ref()
        .map_or("--net".to_string(), |v| v.from.to_string());
    net.helper = Some(host.find_program(driver.name()).ok_or_else(|| {
        Error::usage(
            &at,
            "user",
            format!(
                "needs {0}, which is not installed; install the '{1}' package{2}",
                driver.name(),
                driver.package(),
                if chosen.is_none() {
                    " (or 'slirp4netns')"
                } else {
                    ""
                }
            ),
        )
    })?);
    net.driver = Some(driver);
    if driver == DriverKind::Slirp4netns
        && let Some(p) = publish
            .iter()
            .zip(&net.publish)
            .find(|(_, p)| p.host_ip.is_some_and(|ip| ip.is_ipv6()))
    {
        return Err(Error::usage(
            &p.0.from.to_string(),
            &p.0.v,
            "slirp4netns publishes on IPv4 host addresses only; use the pasta driver (--net-driver pasta) for IPv6",
        ));
    }
    if let Some(first) = net_allow.first() {
        net.nft = Some(host.find_program("nft").ok_or_else(|| {
            Error::usage(
                &first.from.to_string(),
                &first.v,
                "an allow-list needs nft; install the 'nftables' package",
            )
        })?);
    }
    Ok(net)
}

/// /etc/resolv.conf pointing at the helper's DNS forwarder, or behind the
/// gate at the gate's stub on the sandbox's loopback.
fn network_files(net: &Network, mounts: &mut Vec<Mount>) {
    let Some(dns) = net.dns_address() else { return };
    let content = if net.gated() {
        "# written by nook: the egress gate's DNS stub (it answers allowed names only)\nnameserver 127.0.0.1\n".to_string()
    } else {
        format!("# written by nook: the user-mode network's DNS forwarder\nnameserver {dns}\n")
    };
    mounts.push(Mount::File {
        dst: PathBuf::from("/etc/resolv.conf"),
        content,
    });
}

fn resolve_security(set: &Layer, ids: &Ids, gated: bool) -> Result<Security, Error> {
    let strict = set.on(Key::Strict);
    let mut names = Vec::new();
    for key in [Key::SeccompAllow, Key::SeccompDeny] {
        let mut out = Vec::new();
        for v in set.list::<String>(key) {
            if crate::spec::syscalls::number(&v.v).is_none() {
                return Err(Error::usage(
                    &v.from.to_string(),
                    &v.v,
                    format!(
                        "expected the name of an {} system call, like ptrace or io_uring_setup",
                        crate::spec::syscalls::ARCH_NAME
                    ),
                ));
            }
            out.push(v.v.clone());
        }
        names.push(out);
    }
    let seccomp_deny = names.pop().unwrap_or_default();
    let seccomp_allow = names.pop().unwrap_or_default();
    let allow_userns = set.on(Key::AllowUserns);
    // Any Landlock domain forbids changing the mount topology, in nested
    // namespaces too: a sandbox that may make its own (another nook, a
    // browser's, a container's) gets none unless asked by name.
    let default_landlock = if allow_userns {
        LandlockMode::Off
    } else {
        LandlockMode::BestEffort
    };
    let mut landlock =
        choice(set, Key::Landlock, LandlockMode::parse)?.map_or(default_landlock, |v| v.v);
    if strict && landlock == LandlockMode::BestEffort {
        landlock = LandlockMode::Required;
    }
    let mut lists = Vec::new();
    for key in [Key::CapAdd, Key::CapDrop] {
        let mut out = Vec::new();
        for v in set.list::<String>(key) {
            out.push(
                caps::parse(&v.v, gated).map_err(|e| Error::usage(&v.from.to_string(), &v.v, e))?,
            );
        }
        lists.push(out);
    }
    let fake_root = ids.uid == 0 && ids.subids.is_some();
    let caps = caps::resolve(fake_root, &lists[0], &lists[1]);
    Ok(Security {
        strict,
        caps,
        seccomp: choice(set, Key::Seccomp, SeccompMode::parse)?
            .map_or(SeccompMode::Default, |v| v.v),
        seccomp_allow,
        seccomp_deny,
        landlock,
        allow_userns,
    })
}

/// Hide every secret that a bind brings into view, wherever the bind puts
/// it, after all other mounts: nothing bound wholesale (all of $HOME, say)
/// can show a secret; only a bind naming the secret, or a path in it,
/// keeps that secret visible.
fn hide_secrets(mounts: &mut Vec<Mount>, explicit: &[PathBuf], home: &Path) {
    let mut hides = Vec::new();
    for secret in secrets::paths(home) {
        if explicit.iter().any(|e| e.starts_with(&secret)) {
            continue;
        }
        for m in mounts.iter() {
            let (src, dst) = match m {
                Mount::Bind { src, dst, .. } => (src, dst),
                Mount::Overlay { lower, dst, .. } => (lower, dst),
                _ => continue,
            };
            if let Ok(rest) = secret.strip_prefix(src) {
                let dst = if rest.as_os_str().is_empty() {
                    dst.clone()
                } else {
                    dst.join(rest)
                };
                if !hides.contains(&dst) {
                    hides.push(dst);
                }
            }
        }
    }
    mounts.extend(hides.into_iter().map(|dst| Mount::Hide { dst }));
}

fn resolve_ids(set: &Layer, host: &Host) -> Result<Ids, Error> {
    let uid = set.get::<u32>(Key::Uid).map_or(host.uid, |v| v.v);
    let gid = set.get::<u32>(Key::Gid).map_or(host.gid, |v| v.v);
    let subids = match &set.get::<bool>(Key::Subids) {
        Some(s) if s.v => {
            let at = s.from.to_string();
            let who = host.user.clone().unwrap_or_else(|| host.uid.to_string());
            let newuidmap = host.find_program("newuidmap");
            let newgidmap = host.find_program("newgidmap");
            let (Some(newuidmap), Some(newgidmap)) = (newuidmap, newgidmap) else {
                return Err(Error::usage(
                    &at,
                    "true",
                    "needs newuidmap and newgidmap; install the 'uidmap' package",
                ));
            };
            let mut ranges = Vec::new();
            for file in ["/etc/subuid", "/etc/subgid"] {
                match host.subordinate_range(Path::new(file)) {
                    Some(r) => ranges.push(r),
                    None => {
                        return Err(Error::usage(
                            &at,
                            &who,
                            format!(
                                "no range for this user in {file}; add a line like '{who}:100000:65536' (see subuid(5))"
                            ),
                        ));
                    }
                }
            }
            Some(SubIds {
                uid_range: ranges[0],
                gid_range: ranges[1],
                newuidmap,
                newgidmap,
            })
        }
        _ => None,
    };
    Ok(Ids {
        uid,
        gid,
        host_uid: host.uid,
        host_gid: host.gid,
        subids,
    })
}

/// A root filesystem for `--rootfs`: its directory and the top-level
/// entries that make the sandbox's system (not those nook makes itself:
/// /proc, /dev, /sys, /tmp, /run, /home).
pub struct Rootfs {
    dir: PathBuf,
    entries: Vec<(String, RootEntry)>,
    /// Its empty directories (/mnt, /srv...): made, not bound, which is
    /// cheaper at every start.
    empty: Vec<String>,
}

/// Entries of a root filesystem nook provides itself.
const ROOTFS_SKIPPED: [&str; 7] = ["proc", "dev", "sys", "tmp", "run", "home", "lost+found"];

fn rootfs(r: &Val<String>, command: &[String], host: &Host) -> Result<Rootfs, Error> {
    let at = r.from.to_string();
    let dir = host
        .resolve_existing(&r.v)
        .ok()
        .filter(|d| d.is_dir())
        .ok_or_else(|| Error::usage(&at, &r.v, "expected a directory holding a root filesystem"))?;
    let entries: Vec<(String, RootEntry)> = host
        .list_dir(&dir)
        .map_err(|e| Error::usage(&at, &r.v, format!("can't list it: {}", io_reason(&e))))?
        .into_iter()
        .filter(|(n, _)| !ROOTFS_SKIPPED.contains(&n.as_str()))
        .collect();
    let empty = entries
        .iter()
        .filter(|(n, e)| *e == RootEntry::Dir && host.is_empty_dir(&dir.join(n)))
        .map(|(n, _)| n.clone())
        .collect();
    let needs_shell = command.first().is_none_or(|c| !c.starts_with('/'));
    if needs_shell && !host.exists(&dir.join("bin/sh")) {
        return Err(Error::usage(
            &at,
            &r.v,
            "expected a root filesystem with /bin/sh (the command is looked up in its PATH), or an absolute command path",
        ));
    }
    Ok(Rootfs {
        dir,
        entries,
        empty,
    })
}

/// The working system every sandbox starts from unless told otherwise:
/// system files read-only (the host's, or a root filesystem's), fresh
/// /proc, /dev and /tmp, an empty $HOME, and the current directory as
/// `cwd` says. Returns the working directory.
fn default_view(
    host: &Host,
    rootfs: Option<&Rootfs>,
    cwd_mode: CwdMode,
    mounts: &mut Vec<Mount>,
) -> Option<PathBuf> {
    let entries: Vec<(PathBuf, PathBuf, RootEntry)> = match rootfs {
        Some(r) => r
            .entries
            .iter()
            .map(|(n, e)| (r.dir.join(n), Path::new("/").join(n), e.clone()))
            .collect(),
        None => ["/usr", "/etc"]
            .iter()
            .map(|p| (PathBuf::from(p), PathBuf::from(p), RootEntry::Dir))
            .chain(
                host.root_entries
                    .iter()
                    .map(|(p, e)| (p.clone(), p.clone(), e.clone())),
            )
            .collect(),
    };
    for (src, dst, entry) in entries {
        let empty = rootfs.is_some_and(|r| r.empty.iter().any(|e| Path::new("/").join(e) == dst));
        match entry {
            RootEntry::Symlink(target) => mounts.push(Mount::Symlink { target, link: dst }),
            RootEntry::Dir if empty => mounts.push(Mount::Dir { dst }),
            RootEntry::Dir => mounts.push(Mount::Bind {
                optional: rootfs.is_none() && !matches!(dst.to_str(), Some("/usr" | "/etc")),
                src,
                dst,
                read_only: true,
            }),
            RootEntry::Absent => {}
        }
    }
    mounts.push(Mount::Proc {
        dst: PathBuf::from("/proc"),
    });
    mounts.push(Mount::Dev {
        dst: PathBuf::from("/dev"),
    });
    mounts.push(Mount::Tmpfs {
        dst: PathBuf::from("/tmp"),
        size: None,
        mode: 0o1777,
    });
    let home = normalize(&host.home);
    if home != Path::new("/") {
        mounts.push(Mount::Tmpfs {
            dst: home.clone(),
            size: None,
            mode: 0o755,
        });
    }
    let cwd = normalize(&host.cwd);
    // Sharing the home directory itself (or / or an ancestor of it) would
    // expose every secret in it; the user must ask for that explicitly.
    if cwd_mode == CwdMode::No || home.starts_with(&cwd) {
        return Some(home);
    }
    mounts.push(match cwd_mode {
        CwdMode::Overlay => Mount::Overlay {
            lower: cwd.clone(),
            dst: cwd.clone(),
            keep: true,
        },
        _ => Mount::Bind {
            src: cwd.clone(),
            dst: cwd.clone(),
            read_only: cwd_mode == CwdMode::Ro,
            optional: false,
        },
    });
    Some(cwd)
}

fn fs_entry(flag: FsFlag, val: &Val<String>, host: &Host) -> Result<Mount, Error> {
    let at = val.from.to_string();
    let at = at.as_str();
    let value = val.v.as_str();
    let name = flag.name();
    let bind = |read_only: bool, optional: bool| -> Result<Mount, Error> {
        let (src, dst) = match value.split_once(':') {
            Some((s, d)) => (s, Some(d)),
            None => (value, None),
        };
        if src.is_empty() {
            return Err(Error::usage(
                at,
                value,
                "expected SRC[:DST] with a non-empty SRC",
            ));
        }
        // A relative source is a convenience of the command line; in a
        // profile it would depend on where nook happens to be started.
        if !matches!(val.from, Origin::Flag(_)) && !src.starts_with('/') {
            return Err(Error::usage(
                at,
                value,
                format!("expected an absolute path, got '{src}'"),
            ));
        }
        let dst_path = |resolved: &Path| match dst {
            Some(d) => absolute_in(at, value, d),
            None => Ok(resolved.to_path_buf()),
        };
        match host.resolve_existing(src) {
            Ok(resolved) => Ok(Mount::Bind {
                dst: dst_path(&resolved)?,
                src: resolved,
                read_only,
                optional,
            }),
            Err(_) if optional => {
                let src = normalize(&host.cwd.join(src));
                Ok(Mount::Bind {
                    dst: dst_path(&src)?,
                    src,
                    read_only,
                    optional,
                })
            }
            Err(e) => Err(Error::usage(
                at,
                value,
                format!(
                    "expected an existing source, but {src}: {}; use {name}-try to make it optional",
                    io_reason(&e)
                ),
            )),
        }
    };
    match flag {
        FsFlag::RoBind => bind(true, false),
        FsFlag::Bind => bind(false, false),
        FsFlag::RoBindTry => bind(true, true),
        FsFlag::BindTry => bind(false, true),
        FsFlag::Tmpfs => {
            let (dst, opts) = match value.split_once(':') {
                Some((d, o)) => (d, Some(o)),
                None => (value, None),
            };
            let size = match opts {
                None => None,
                Some(o) => match o
                    .strip_prefix("size=")
                    .and_then(|n| units::parse_size(n).ok())
                {
                    Some(n) => Some(n),
                    None => {
                        return Err(Error::usage(
                            at,
                            value,
                            "expected DST[:size=N] with N a positive number of bytes and an optional k, m or g suffix",
                        ));
                    }
                },
            };
            Ok(Mount::Tmpfs {
                dst: absolute_in(at, value, dst)?,
                size,
                mode: 0o755,
            })
        }
        FsFlag::Dir => Ok(Mount::Dir {
            dst: absolute(at, value)?,
        }),
        FsFlag::Symlink => match value.split_once(':') {
            Some((t, l)) if !t.is_empty() => Ok(Mount::Symlink {
                target: PathBuf::from(t),
                link: absolute_in(at, value, l)?,
            }),
            _ => Err(Error::usage(
                at,
                value,
                "expected TARGET:LINK with LINK an absolute path",
            )),
        },
        FsFlag::File => match value.split_once(':') {
            Some((d, content)) => Ok(Mount::File {
                dst: absolute_in(at, value, d)?,
                content: content.to_string(),
            }),
            None => Err(Error::usage(at, value, "expected DST:CONTENT")),
        },
        FsFlag::FileFrom => match value.split_once(':') {
            Some((d, src)) => {
                let dst = absolute_in(at, value, d)?;
                let content = host
                    .resolve_existing(src)
                    .and_then(|p| host.read_file(&p))
                    .map_err(|e| {
                        Error::usage(
                            at,
                            value,
                            format!("expected a readable file, but {src}: {}", io_reason(&e)),
                        )
                    })?;
                let content = String::from_utf8(content).map_err(|_| {
                    Error::usage(at, value, format!("source {src} is not UTF-8 text"))
                })?;
                Ok(Mount::File { dst, content })
            }
            None => Err(Error::usage(at, value, "expected DST:SRC")),
        },
        FsFlag::Hide => Ok(Mount::Hide {
            dst: absolute(at, value)?,
        }),
        FsFlag::Proc => Ok(Mount::Proc {
            dst: absolute(at, value)?,
        }),
        FsFlag::Overlay | FsFlag::TmpOverlay => {
            let keep = flag == FsFlag::Overlay;
            match bind(false, false)? {
                Mount::Bind { src, dst, .. } if src.is_dir() => Ok(Mount::Overlay {
                    lower: src,
                    dst,
                    keep,
                }),
                Mount::Bind { src, .. } => Err(Error::usage(
                    at,
                    value,
                    format!("expected a directory, but {} is not one", src.display()),
                )),
                _ => unreachable!("bind() makes binds"),
            }
        }
        FsFlag::Dev => Ok(Mount::Dev {
            dst: absolute(at, value)?,
        }),
    }
}

/// "No such file or directory", without Rust's "(os error 2)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// A sandbox path: must be absolute; `.` and `..` are resolved lexically so
/// the plan names the real target.
fn absolute(flag: &str, value: &str) -> Result<PathBuf, Error> {
    absolute_in(flag, value, value)
}

fn absolute_in(flag: &str, value: &str, path: &str) -> Result<PathBuf, Error> {
    if !path.starts_with('/') {
        return Err(Error::usage(
            flag,
            value,
            format!("expected an absolute path, got '{path}'"),
        ));
    }
    Ok(normalize(Path::new(path)))
}

/// Lexical normalization: no `.`, no `..` above `/`, no trailing slash.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl Spec {
    /// The PATH used to find the command inside the sandbox.
    pub fn search_path(&self) -> &str {
        self.env
            .get("PATH")
            .map(String::as_str)
            .unwrap_or(DEFAULT_PATH)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn spec_of(layer: &Layer, host: &Host) -> Result<Spec, Error> {
        let cmd = vec!["true".to_string()];
        resolve(
            layer,
            &Request {
                command: &cmd,
                profiles: &[],
            },
            host,
        )
    }

    fn fs(layer: Layer, flag: FsFlag, v: &str) -> Layer {
        layer.with(flag.key(), v.to_string())
    }

    fn not_secret(m: &&Mount) -> bool {
        !matches!(m, Mount::Hide { .. })
    }

    #[test]
    fn default_view_shares_cwd_and_hides_home() {
        let spec = spec_of(&Layer::default(), &Host::fake()).unwrap();
        assert_eq!(spec.chdir, PathBuf::from("/home/ana/src/proj"));
        assert_eq!(spec.ids.uid, 1000);
        assert!(spec.namespaces.net && spec.namespaces.pid);
        let view: Vec<&Mount> = spec.mounts.iter().filter(not_secret).collect();
        let kinds: Vec<String> = view
            .iter()
            .map(|m| serde_json::to_value(m).unwrap()["kind"].to_string())
            .collect();
        assert_eq!(
            kinds.join(" "),
            r#""bind" "bind" "symlink" "proc" "dev" "tmpfs" "tmpfs" "bind""#
        );
        assert_eq!(
            *view[6],
            Mount::Tmpfs {
                dst: "/home/ana".into(),
                size: None,
                mode: 0o755
            }
        );
        assert_eq!(
            *view[7],
            Mount::Bind {
                src: "/home/ana/src/proj".into(),
                dst: "/home/ana/src/proj".into(),
                read_only: false,
                optional: false
            }
        );
    }

    #[test]
    fn cwd_mode_read_only_or_not_shared() {
        let l = Layer::default().with(Key::ShareCwd, "ro".to_string());
        let spec = spec_of(&l, &Host::fake()).unwrap();
        assert!(spec.mounts.contains(&Mount::Bind {
            src: "/home/ana/src/proj".into(),
            dst: "/home/ana/src/proj".into(),
            read_only: true,
            optional: false
        }));
        let l = l.with(Key::ShareCwd, "no".to_string());
        let spec = spec_of(&l, &Host::fake()).unwrap();
        assert!(
            !spec
                .mounts
                .iter()
                .any(|m| matches!(m, Mount::Bind { src, .. } if src.starts_with("/home")))
        );
        assert_eq!(spec.chdir, PathBuf::from("/home/ana"));
    }

    #[test]
    fn home_itself_is_never_shared_by_default() {
        let mut h = Host::fake();
        h.cwd = "/home/ana".into();
        let spec = spec_of(&Layer::default(), &h).unwrap();
        assert!(!spec.mounts.iter().any(|m| matches!(
            m,
            Mount::Bind {
                read_only: false,
                ..
            }
        )));
        assert_eq!(spec.chdir, PathBuf::from("/home/ana"));
    }

    #[test]
    fn secrets_are_hidden_last_unless_named() {
        let l = fs(
            fs(Layer::default(), FsFlag::RoBindTry, "/home/ana"),
            FsFlag::RoBindTry,
            "/home/ana/.ssh/known_hosts",
        );
        let spec = spec_of(&l, &Host::fake()).unwrap();
        let hidden: Vec<&Path> = spec
            .mounts
            .iter()
            .filter_map(|m| match m {
                Mount::Hide { dst } => Some(dst.as_path()),
                _ => None,
            })
            .collect();
        assert!(hidden.contains(&Path::new("/home/ana/.aws")));
        assert!(hidden.contains(&Path::new("/home/ana/.bash_history")));
        assert!(!hidden.contains(&Path::new("/home/ana/.ssh")));
        assert!(matches!(spec.mounts.last(), Some(Mount::Hide { .. })));

        // Wherever the bind puts them.
        let l = fs(Layer::default(), FsFlag::RoBindTry, "/home/ana:/h");
        let spec = spec_of(&l, &Host::fake()).unwrap();
        assert!(spec.mounts.contains(&Mount::Hide {
            dst: "/h/.aws".into()
        }));
        // The default view shows none of $HOME, so it hides nothing.
        let spec = spec_of(&Layer::default(), &Host::fake()).unwrap();
        assert!(!spec.mounts.iter().any(|m| matches!(m, Mount::Hide { .. })));
    }

    #[test]
    fn credential_variables_are_dropped_unless_kept() {
        let spec = spec_of(&Layer::default(), &Host::fake()).unwrap();
        assert!(!spec.env.contains_key("GITHUB_TOKEN"));
        assert!(!spec.env.contains_key("SSH_AUTH_SOCK"));
        assert!(!spec.env.contains_key("AWS_PROFILE"));
        assert!(spec.env.contains_key("X"));
        let l = Layer::default().with(Key::KeepEnv, "GITHUB_*".to_string());
        let spec = spec_of(&l, &Host::fake()).unwrap();
        assert!(spec.env.contains_key("GITHUB_TOKEN"));
    }

    #[test]
    fn env_flags_apply_in_order_clear_unset_set() {
        let l = Layer::default()
            .with(Key::Unsetenv, "X".to_string())
            .with(Key::Setenv, "A=b=c".to_string());
        let spec = spec_of(&l, &Host::fake()).unwrap();
        assert_eq!(spec.env.get("A").map(String::as_str), Some("b=c"));
        assert!(!spec.env.contains_key("X"));
        let l = l.with(Key::Clearenv, true);
        let spec = spec_of(&l, &Host::fake()).unwrap();
        assert_eq!(spec.env.len(), 1);
    }

    #[test]
    fn bad_values_name_flag_value_and_expectation() {
        let cases: &[(FsFlag, &str, &str)] = &[
            (
                FsFlag::Tmpfs,
                "tmp",
                "--tmpfs 'tmp': expected an absolute path, got 'tmp'",
            ),
            (
                FsFlag::Tmpfs,
                "/t:size=lots",
                "--tmpfs '/t:size=lots': expected DST[:size=N] with N a positive number of bytes and an optional k, m or g suffix",
            ),
            (
                FsFlag::Symlink,
                "usr/bin",
                "--symlink 'usr/bin': expected TARGET:LINK with LINK an absolute path",
            ),
            (
                FsFlag::Bind,
                "/usr:rel",
                "--bind '/usr:rel': expected an absolute path, got 'rel'",
            ),
            (
                FsFlag::RoBind,
                "/nonexistent-nook",
                "--ro-bind '/nonexistent-nook': expected an existing source, but /nonexistent-nook: No such file or directory; use --ro-bind-try to make it optional",
            ),
        ];
        for (flag, value, want) in cases {
            let l = fs(Layer::default(), *flag, value);
            let err = spec_of(&l, &Host::fake()).unwrap_err().to_string();
            assert_eq!(&err, want);
        }
    }

    #[test]
    fn profile_values_name_file_line_and_column() {
        let mut l = Layer::default();
        l.push(
            Key::Bind,
            Val {
                v: crate::settings::Value::Str("src".into()),
                from: Origin::File {
                    path: "/p/x.toml".into(),
                    line: 3,
                    col: 9,
                    key: "bind",
                },
            },
        );
        assert_eq!(
            spec_of(&l, &Host::fake()).unwrap_err().to_string(),
            "/p/x.toml:3:9: bind 'src': expected an absolute path, got 'src'"
        );
    }

    #[test]
    fn try_binds_accept_missing_sources() {
        let l = fs(
            Layer::default().with(Key::NoDefaultView, true),
            FsFlag::BindTry,
            "/nonexistent-nook:/x",
        );
        let spec = spec_of(&l, &Host::fake()).unwrap();
        let view: Vec<&Mount> = spec.mounts.iter().filter(not_secret).collect();
        assert_eq!(
            view,
            vec![&Mount::Bind {
                src: "/nonexistent-nook".into(),
                dst: "/x".into(),
                read_only: false,
                optional: true
            }]
        );
    }

    #[test]
    fn sizes_and_paths_normalize() {
        let parse_size = |s| units::parse_size(s).ok();
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("1x"), None);
        assert_eq!(
            normalize(Path::new("/a/./b/../../../c/")),
            PathBuf::from("/c")
        );
    }

    #[test]
    fn strict_turns_best_effort_into_required() {
        use crate::spec::security::LandlockMode as L;
        let spec = spec_of(&Layer::default(), &Host::fake()).unwrap();
        assert_eq!(spec.security.landlock, L::BestEffort);
        let l = Layer::default().with(Key::Strict, true);
        let spec = spec_of(&l, &Host::fake()).unwrap();
        assert!(spec.security.strict);
        assert_eq!(spec.security.landlock, L::Required);
        let l = Layer::default()
            .with(Key::Strict, true)
            .with(Key::Landlock, "off".to_string());
        assert_eq!(
            spec_of(&l, &Host::fake()).unwrap().security.landlock,
            L::Off
        );
    }

    #[test]
    fn unknown_syscall_names_are_refused_with_their_origin() {
        let l = Layer::default().with(Key::SeccompDeny, "frobnicate".to_string());
        assert_eq!(
            spec_of(&l, &Host::fake()).unwrap_err().to_string(),
            "--seccomp-deny 'frobnicate': expected the name of an x86-64 system call, like ptrace or io_uring_setup"
        );
    }

    #[test]
    fn hostname_needs_uts_namespace() {
        let l = Layer::default()
            .with(Key::Hostname, "box".to_string())
            .with(Key::ShareUts, true);
        assert!(spec_of(&l, &Host::fake()).is_err());
    }

    #[test]
    fn every_choice_word_parses_as_its_mode() {
        use crate::settings::Kind;
        let parses = |key: Key, w: &str| match key {
            Key::ShareCwd => CwdMode::parse(w).is_some(),
            Key::OverlayDriver => OverlayDriver::parse(w).is_some(),
            Key::Net => NetMode::parse(w).is_some(),
            Key::NetDriver => DriverKind::parse(w).is_some(),
            Key::Seccomp => SeccompMode::parse(w).is_some(),
            Key::Landlock => LandlockMode::parse(w).is_some(),
            other => panic!("{other:?} is a choice that spec does not read"),
        };
        for &key in Key::ALL {
            if let Kind::Choice { words, .. } = key.def().kind {
                for w in words {
                    assert!(parses(key, w), "{key:?} {w}");
                }
            }
        }
    }

    #[test]
    fn a_throw_away_overlay_is_refused_with_the_fuse_driver_before_any_fork() {
        let l = Layer::default()
            .with(Key::OverlayDriver, "fuse".to_string())
            .with(Key::TmpOverlay, "/usr".to_string());
        assert_eq!(
            spec_of(&l, &Host::fake()).unwrap_err().to_string(),
            "--tmp-overlay '/usr': a throw-away overlay works with the native driver only, not with --overlay-driver fuse; use --overlay (and nook rm) with fuse"
        );
    }

    #[test]
    fn every_shipped_profile_resolves_and_starts_with_a_comment() {
        let h = crate::host::Host::fake();
        let cat = crate::profile::Catalogue::new(&h);
        for (name, text) in crate::profile::SHIPPED {
            assert!(text.starts_with("# "), "{name} starts with a comment");
            let layers = cat
                .layers(&[name.to_string()])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let merged = crate::settings::merge(layers);
            spec_of(&merged, &h).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

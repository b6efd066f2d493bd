//! A `Layer` is one source of settings: one profile file, or the command
//! line. Both speak the same keys (every profile key is a flag of the same
//! name), and every value remembers where it came from, so that an error
//! can name the flag, or the file, line and column.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli::FsFlag;

/// Where a value was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// On the command line, as this flag.
    Flag(&'static str),
    /// In a profile file, under this key.
    File {
        path: PathBuf,
        line: usize,
        col: usize,
        key: &'static str,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "{flag}"),
            Origin::File {
                path,
                line,
                col,
                key,
            } => write!(f, "{}:{line}:{col}: {key}", path.display()),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Val<T> {
    pub v: T,
    pub from: Origin,
}

impl<T> Val<T> {
    pub fn flag(v: T, flag: &'static str) -> Self {
        Val {
            v,
            from: Origin::Flag(flag),
        }
    }
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
}

impl CwdMode {
    pub fn parse(s: &str) -> Option<CwdMode> {
        match s {
            "rw" => Some(CwdMode::Rw),
            "ro" => Some(CwdMode::Ro),
            "no" => Some(CwdMode::No),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CwdMode::Rw => "rw",
            CwdMode::Ro => "ro",
            CwdMode::No => "no",
        }
    }
}

/// One source of settings. Merging rule (`merge`): single values and
/// booleans from a later layer replace earlier ones; lists are appended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layer {
    pub uid: Option<Val<u32>>,
    pub gid: Option<Val<u32>>,
    pub subids: Option<Val<bool>>,
    pub share_net: Option<Val<bool>>,
    pub share_ipc: Option<Val<bool>>,
    pub share_uts: Option<Val<bool>>,
    pub share_pid: Option<Val<bool>>,
    pub share_cgroup: Option<Val<bool>>,
    pub no_default_view: Option<Val<bool>>,
    pub share_cwd: Option<Val<CwdMode>>,
    /// Filesystem entries in the order they apply.
    pub fs: Vec<(FsFlag, Val<String>)>,
    pub chdir: Option<Val<String>>,
    pub hostname: Option<Val<String>>,
    pub setenv: Vec<Val<String>>,
    pub unsetenv: Vec<Val<String>>,
    pub clearenv: Option<Val<bool>>,
    pub keep_env: Vec<Val<String>>,
    pub pass_fd: Vec<Val<i32>>,
    pub strict: Option<Val<bool>>,
    pub seccomp: Option<Val<crate::security::seccomp::Mode>>,
    pub seccomp_allow: Vec<Val<String>>,
    pub seccomp_deny: Vec<Val<String>>,
    pub landlock: Option<Val<crate::security::landlock::Mode>>,
    pub allow_userns: Option<Val<bool>>,
    pub net: Option<Val<crate::net::Mode>>,
    /// `None` inside means "auto".
    pub net_driver: Option<Val<Option<crate::net::DriverKind>>>,
    pub allow_host_loopback: Option<Val<bool>>,
    pub allow_host_port: Vec<Val<u16>>,
    pub publish: Vec<Val<String>>,
    pub net_allow: Vec<Val<String>>,
    pub memory: Option<Val<String>>,
    pub memory_swap: Option<Val<String>>,
    pub pids: Option<Val<u64>>,
    pub cpus: Option<Val<f64>>,
    pub cpu_weight: Option<Val<u64>>,
    pub io_weight: Option<Val<u64>>,
    pub io_max: Vec<Val<String>>,
    pub rlimit: Vec<Val<String>>,
    pub timeout: Option<Val<String>>,
    pub disk_quota: Option<Val<String>>,
    pub overlay_driver: Option<Val<String>>,
}

impl Layer {
    /// Apply `later` on top of `self`.
    pub fn merge(&mut self, later: Layer) {
        fn over<T>(a: &mut Option<T>, b: Option<T>) {
            if b.is_some() {
                *a = b;
            }
        }
        over(&mut self.uid, later.uid);
        over(&mut self.gid, later.gid);
        over(&mut self.subids, later.subids);
        over(&mut self.share_net, later.share_net);
        over(&mut self.share_ipc, later.share_ipc);
        over(&mut self.share_uts, later.share_uts);
        over(&mut self.share_pid, later.share_pid);
        over(&mut self.share_cgroup, later.share_cgroup);
        over(&mut self.no_default_view, later.no_default_view);
        over(&mut self.share_cwd, later.share_cwd);
        self.fs.extend(later.fs);
        over(&mut self.chdir, later.chdir);
        over(&mut self.hostname, later.hostname);
        self.setenv.extend(later.setenv);
        self.unsetenv.extend(later.unsetenv);
        over(&mut self.clearenv, later.clearenv);
        self.keep_env.extend(later.keep_env);
        self.pass_fd.extend(later.pass_fd);
        over(&mut self.strict, later.strict);
        over(&mut self.seccomp, later.seccomp);
        self.seccomp_allow.extend(later.seccomp_allow);
        self.seccomp_deny.extend(later.seccomp_deny);
        over(&mut self.landlock, later.landlock);
        over(&mut self.allow_userns, later.allow_userns);
        over(&mut self.net, later.net);
        over(&mut self.net_driver, later.net_driver);
        over(&mut self.allow_host_loopback, later.allow_host_loopback);
        self.allow_host_port.extend(later.allow_host_port);
        self.publish.extend(later.publish);
        self.net_allow.extend(later.net_allow);
        over(&mut self.memory, later.memory);
        over(&mut self.memory_swap, later.memory_swap);
        over(&mut self.pids, later.pids);
        over(&mut self.cpus, later.cpus);
        over(&mut self.cpu_weight, later.cpu_weight);
        over(&mut self.io_weight, later.io_weight);
        self.io_max.extend(later.io_max);
        self.rlimit.extend(later.rlimit);
        over(&mut self.timeout, later.timeout);
        over(&mut self.disk_quota, later.disk_quota);
        over(&mut self.overlay_driver, later.overlay_driver);
    }

    pub fn flag(b: &Option<Val<bool>>) -> bool {
        b.as_ref().is_some_and(|v| v.v)
    }

    /// The layer as a profile file (what `nook profile show` prints):
    /// variables already expanded, filesystem entries grouped by key, and
    /// their order of application as a closing comment.
    pub fn to_toml(&self) -> String {
        use std::fmt::Write;
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut o = String::new();
        let mut scalar = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                let _ = writeln!(o, "{k} = {v}");
            }
        };
        scalar("uid", self.uid.as_ref().map(|v| v.v.to_string()));
        scalar("gid", self.gid.as_ref().map(|v| v.v.to_string()));
        for (k, v) in [
            ("subids", &self.subids),
            ("share-net", &self.share_net),
            ("share-ipc", &self.share_ipc),
            ("share-uts", &self.share_uts),
            ("share-pid", &self.share_pid),
            ("share-cgroup", &self.share_cgroup),
            ("no-default-view", &self.no_default_view),
            ("clearenv", &self.clearenv),
            ("strict", &self.strict),
            ("allow-userns", &self.allow_userns),
        ] {
            scalar(k, v.as_ref().map(|v| v.v.to_string()));
        }
        scalar("share-cwd", self.share_cwd.as_ref().map(|v| q(v.v.name())));
        scalar("seccomp", self.seccomp.as_ref().map(|v| q(v.v.name())));
        scalar("landlock", self.landlock.as_ref().map(|v| q(v.v.name())));
        scalar("chdir", self.chdir.as_ref().map(|v| q(&v.v)));
        scalar("hostname", self.hostname.as_ref().map(|v| q(&v.v)));
        scalar(
            "overlay-driver",
            self.overlay_driver.as_ref().map(|v| q(&v.v)),
        );
        let mut list = |k: &str, items: Vec<String>| {
            if !items.is_empty() {
                let _ = writeln!(o, "{k} = [");
                for i in items {
                    let _ = writeln!(o, "    {i},");
                }
                let _ = writeln!(o, "]");
            }
        };
        for (flag, _) in FsFlag::ALL {
            list(
                flag.key(),
                self.fs
                    .iter()
                    .filter(|(f, _)| *f == flag)
                    .map(|(_, v)| q(&v.v))
                    .collect(),
            );
        }
        let strings = |v: &[Val<String>]| v.iter().map(|x| q(&x.v)).collect::<Vec<_>>();
        list("setenv", strings(&self.setenv));
        list("unsetenv", strings(&self.unsetenv));
        list("keep-env", strings(&self.keep_env));
        list("seccomp-allow", strings(&self.seccomp_allow));
        list("seccomp-deny", strings(&self.seccomp_deny));
        list(
            "pass-fd",
            self.pass_fd.iter().map(|v| v.v.to_string()).collect(),
        );
        let net = [
            self.net
                .as_ref()
                .map(|v| format!("net = {}", q(v.v.name()))),
            self.net_driver.as_ref().map(|v| {
                format!(
                    "net-driver = {}",
                    q(v.v.map_or("auto", crate::net::DriverKind::name))
                )
            }),
            self.allow_host_loopback
                .as_ref()
                .map(|v| format!("allow-host-loopback = {}", v.v)),
            (!self.allow_host_port.is_empty()).then(|| {
                let ports: Vec<String> = self
                    .allow_host_port
                    .iter()
                    .map(|p| p.v.to_string())
                    .collect();
                format!("allow-host-port = [{}]", ports.join(", "))
            }),
            (!self.publish.is_empty())
                .then(|| format!("publish = [{}]", strings(&self.publish).join(", "))),
            (!self.net_allow.is_empty()).then(|| {
                format!(
                    "net-allow = [\n    {},\n]",
                    strings(&self.net_allow).join(",\n    ")
                )
            }),
        ];
        if net.iter().any(Option::is_some) {
            let _ = writeln!(o, "\n[network]");
            for line in net.into_iter().flatten() {
                let _ = writeln!(o, "{line}");
            }
        }
        let limits = [
            self.memory
                .as_ref()
                .map(|v| format!("memory = {}", q(&v.v))),
            self.memory_swap
                .as_ref()
                .map(|v| format!("memory-swap = {}", q(&v.v))),
            self.pids.as_ref().map(|v| format!("pids = {}", v.v)),
            self.cpus.as_ref().map(|v| format!("cpus = {:?}", v.v)),
            self.cpu_weight
                .as_ref()
                .map(|v| format!("cpu-weight = {}", v.v)),
            self.io_weight
                .as_ref()
                .map(|v| format!("io-weight = {}", v.v)),
            (!self.io_max.is_empty())
                .then(|| format!("io-max = [{}]", strings(&self.io_max).join(", "))),
            (!self.rlimit.is_empty())
                .then(|| format!("rlimit = [{}]", strings(&self.rlimit).join(", "))),
            self.timeout
                .as_ref()
                .map(|v| format!("timeout = {}", q(&v.v))),
            self.disk_quota
                .as_ref()
                .map(|v| format!("disk-quota = {}", q(&v.v))),
        ];
        if limits.iter().any(Option::is_some) {
            let _ = writeln!(o, "\n[limits]");
            for line in limits.into_iter().flatten() {
                let _ = writeln!(o, "{line}");
            }
        }
        if !self.fs.is_empty() {
            let _ = writeln!(
                o,
                "\n# Filesystem entries apply in this order (then the secrets are hidden):"
            );
            for (f, v) in &self.fs {
                let _ = writeln!(o, "#   {} {}", f.key(), v.v);
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_scalars_win_and_lists_append() {
        let mut a = Layer {
            uid: Some(Val::flag(1, "--uid")),
            share_net: Some(Val::flag(true, "--share-net")),
            fs: vec![(FsFlag::Tmpfs, Val::flag("/a".into(), "--tmpfs"))],
            ..Default::default()
        };
        let b = Layer {
            uid: Some(Val::flag(2, "--uid")),
            fs: vec![(FsFlag::Dir, Val::flag("/b".into(), "--dir"))],
            ..Default::default()
        };
        a.merge(b);
        assert_eq!(a.uid.unwrap().v, 2);
        assert!(Layer::flag(&a.share_net));
        let fs: Vec<_> = a.fs.iter().map(|(_, v)| v.v.as_str()).collect();
        assert_eq!(fs, ["/a", "/b"]);
    }
}

//! The Spec: the complete, resolved description of one sandbox, and the one
//! function that builds it from a request and the host. Nothing after this
//! point reads flags, profiles or the environment.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::cli::{FsFlag, RunRequest};
use crate::error::Error;
use crate::host::{Host, RootEntry, SubRange};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spec {
    pub command: Vec<String>,
    pub ids: Ids,
    pub namespaces: Namespaces,
    /// Filesystem view, in order; later entries cover earlier ones.
    pub mounts: Vec<Mount>,
    pub hostname: Option<String>,
    pub chdir: PathBuf,
    /// The payload's complete environment.
    pub env: BTreeMap<String, String>,
    pub pass_fds: Vec<i32>,
    pub verbose: bool,
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
    Proc {
        dst: PathBuf,
    },
    Dev {
        dst: PathBuf,
    },
}

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub fn resolve(req: &RunRequest, host: &Host) -> Result<Spec, Error> {
    let ids = resolve_ids(req, host)?;
    let namespaces = Namespaces {
        mount: true,
        pid: !req.share_pid,
        net: !req.share_net,
        ipc: !req.share_ipc,
        uts: !req.share_uts,
        cgroup: !req.share_cgroup,
    };
    if let Some(h) = &req.hostname {
        if req.share_uts {
            return Err(Error::usage(
                "--hostname",
                h,
                "needs its own UTS namespace; drop --share-uts",
            ));
        }
        if h.is_empty() || h.len() > 64 || h.contains(['/', '\0']) {
            return Err(Error::usage(
                "--hostname",
                h,
                "expected 1 to 64 characters without '/'",
            ));
        }
    }

    let mut mounts = Vec::new();
    let mut visible_cwd = None;
    if !req.no_default_view {
        visible_cwd = default_view(host, &mut mounts);
    }
    for (flag, value) in &req.fs {
        mounts.push(fs_entry(*flag, value, host)?);
    }

    let chdir = match &req.chdir {
        Some(d) => absolute("--chdir", d)?,
        None => visible_cwd.unwrap_or_else(|| PathBuf::from("/")),
    };

    let mut env = if req.clearenv {
        BTreeMap::new()
    } else {
        host.env.clone()
    };
    for k in &req.unsetenv {
        if k.is_empty() || k.contains('=') {
            return Err(Error::usage(
                "--unsetenv",
                k,
                "expected a variable name without '='",
            ));
        }
        env.remove(k);
    }
    for kv in &req.setenv {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                env.insert(k.to_string(), v.to_string());
            }
            _ => return Err(Error::usage("--setenv", kv, "expected NAME=VALUE")),
        }
    }

    for fd in &req.pass_fds {
        if *fd < 0 {
            return Err(Error::usage(
                "--pass-fd",
                &fd.to_string(),
                "expected a file descriptor number >= 0",
            ));
        }
    }

    Ok(Spec {
        command: req.command.clone(),
        ids,
        namespaces,
        mounts,
        hostname: req.hostname.clone(),
        chdir,
        env,
        pass_fds: req.pass_fds.clone(),
        verbose: req.verbose,
    })
}

fn resolve_ids(req: &RunRequest, host: &Host) -> Result<Ids, Error> {
    let uid = req.uid.unwrap_or(host.uid);
    let gid = req.gid.unwrap_or(host.gid);
    let subids = if req.subids {
        let who = host.user.clone().unwrap_or_else(|| host.uid.to_string());
        let newuidmap = host.find_program("newuidmap");
        let newgidmap = host.find_program("newgidmap");
        let (Some(newuidmap), Some(newgidmap)) = (newuidmap, newgidmap) else {
            return Err(Error::usage(
                "--subids",
                "",
                "needs newuidmap and newgidmap; install the 'uidmap' package",
            ));
        };
        let mut ranges = Vec::new();
        for file in ["/etc/subuid", "/etc/subgid"] {
            match host.subordinate_range(Path::new(file)) {
                Some(r) => ranges.push(r),
                None => {
                    return Err(Error::usage(
                        "--subids",
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
    } else {
        None
    };
    Ok(Ids {
        uid,
        gid,
        host_uid: host.uid,
        host_gid: host.gid,
        subids,
    })
}

/// The working system a bare `nook run` gets: system files read-only, fresh
/// /proc, /dev and /tmp, an empty $HOME, and the current directory
/// read-write. Returns the current directory if it is shared.
fn default_view(host: &Host, mounts: &mut Vec<Mount>) -> Option<PathBuf> {
    for p in ["/usr", "/etc"] {
        mounts.push(Mount::Bind {
            src: PathBuf::from(p),
            dst: PathBuf::from(p),
            read_only: true,
            optional: false,
        });
    }
    for (path, entry) in &host.root_entries {
        match entry {
            RootEntry::Symlink(target) => mounts.push(Mount::Symlink {
                target: target.clone(),
                link: path.clone(),
            }),
            RootEntry::Dir => mounts.push(Mount::Bind {
                src: path.clone(),
                dst: path.clone(),
                read_only: true,
                optional: true,
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
    // Sharing the home directory itself (or / or an ancestor of it) would
    // expose every secret in it; the user must ask for that explicitly.
    let cwd = normalize(&host.cwd);
    if home.starts_with(&cwd) {
        return Some(cwd);
    }
    mounts.push(Mount::Bind {
        src: cwd.clone(),
        dst: cwd.clone(),
        read_only: false,
        optional: false,
    });
    Some(cwd)
}

fn fs_entry(flag: FsFlag, value: &str, host: &Host) -> Result<Mount, Error> {
    let name = flag.name();
    let bind = |read_only: bool, optional: bool| -> Result<Mount, Error> {
        let (src, dst) = match value.split_once(':') {
            Some((s, d)) => (s, Some(d)),
            None => (value, None),
        };
        if src.is_empty() {
            return Err(Error::usage(
                name,
                value,
                "expected SRC[:DST] with a non-empty SRC",
            ));
        }
        let dst_path = |resolved: &Path| match dst {
            Some(d) => absolute_in(name, value, d).map(|d| (d, value)),
            None => Ok((resolved.to_path_buf(), value)),
        };
        match host.resolve_existing(src) {
            Ok(resolved) => {
                let (dst, _) = dst_path(&resolved)?;
                Ok(Mount::Bind {
                    src: resolved,
                    dst,
                    read_only,
                    optional,
                })
            }
            Err(_) if optional => {
                let src = if Path::new(src).is_absolute() {
                    normalize(Path::new(src))
                } else {
                    normalize(&host.cwd.join(src))
                };
                let (dst, _) = dst_path(&src)?;
                Ok(Mount::Bind {
                    src,
                    dst,
                    read_only,
                    optional,
                })
            }
            Err(e) => Err(Error::usage(
                name,
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
                Some(o) => match o.strip_prefix("size=").and_then(parse_size) {
                    Some(n) => Some(n),
                    None => {
                        return Err(Error::usage(
                            name,
                            value,
                            "expected DST[:size=N] with N a positive number of bytes and an optional k, m or g suffix",
                        ));
                    }
                },
            };
            Ok(Mount::Tmpfs {
                dst: absolute_in(name, value, dst)?,
                size,
                mode: 0o755,
            })
        }
        FsFlag::Dir => Ok(Mount::Dir {
            dst: absolute(name, value)?,
        }),
        FsFlag::Symlink => match value.split_once(':') {
            Some((t, l)) if !t.is_empty() => Ok(Mount::Symlink {
                target: PathBuf::from(t),
                link: absolute_in(name, value, l)?,
            }),
            _ => Err(Error::usage(
                name,
                value,
                "expected TARGET:LINK with LINK an absolute path",
            )),
        },
        FsFlag::File => match value.split_once(':') {
            Some((d, content)) => Ok(Mount::File {
                dst: absolute_in(name, value, d)?,
                content: content.to_string(),
            }),
            None => Err(Error::usage(name, value, "expected DST:CONTENT")),
        },
        FsFlag::FileFrom => match value.split_once(':') {
            Some((d, src)) => {
                let dst = absolute_in(name, value, d)?;
                let content = host
                    .resolve_existing(src)
                    .and_then(|p| host.read_file(&p))
                    .map_err(|e| {
                        Error::usage(
                            name,
                            value,
                            format!("expected a readable file, but {src}: {}", io_reason(&e)),
                        )
                    })?;
                let content = String::from_utf8(content).map_err(|_| {
                    Error::usage(name, value, format!("source {src} is not UTF-8 text"))
                })?;
                Ok(Mount::File { dst, content })
            }
            None => Err(Error::usage(name, value, "expected DST:SRC")),
        },
        FsFlag::Hide => Ok(Mount::Hide {
            dst: absolute(name, value)?,
        }),
        FsFlag::Proc => Ok(Mount::Proc {
            dst: absolute(name, value)?,
        }),
        FsFlag::Dev => Ok(Mount::Dev {
            dst: absolute(name, value)?,
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

/// `512`, `64k`, `10M`, `1g` -> bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num.parse().ok()?;
    if n == 0 {
        return None;
    }
    n.checked_mul(mult)
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

    pub fn host() -> Host {
        Host {
            uid: 1000,
            gid: 1000,
            user: Some("ana".into()),
            home: "/home/ana".into(),
            cwd: "/home/ana/src/proj".into(),
            env: [("HOME", "/home/ana"), ("PATH", "/usr/bin:/bin"), ("X", "1")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            root_entries: vec![
                ("/bin".into(), RootEntry::Symlink("usr/bin".into())),
                ("/lib64".into(), RootEntry::Absent),
            ],
        }
    }

    pub fn req(cmd: &[&str]) -> RunRequest {
        RunRequest {
            command: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn default_view_shares_cwd_and_hides_home() {
        let spec = resolve(&req(&["true"]), &host()).unwrap();
        assert_eq!(spec.chdir, PathBuf::from("/home/ana/src/proj"));
        assert_eq!(spec.ids.uid, 1000);
        assert!(spec.namespaces.net && spec.namespaces.pid);
        let kinds: Vec<String> = spec
            .mounts
            .iter()
            .map(|m| serde_json::to_value(m).unwrap()["kind"].to_string())
            .collect();
        assert_eq!(
            kinds.join(" "),
            r#""bind" "bind" "symlink" "proc" "dev" "tmpfs" "tmpfs" "bind""#
        );
        assert_eq!(
            spec.mounts[6],
            Mount::Tmpfs {
                dst: "/home/ana".into(),
                size: None,
                mode: 0o755
            }
        );
        assert_eq!(
            spec.mounts[7],
            Mount::Bind {
                src: "/home/ana/src/proj".into(),
                dst: "/home/ana/src/proj".into(),
                read_only: false,
                optional: false
            }
        );
    }

    #[test]
    fn home_itself_is_never_shared_by_default() {
        let mut h = host();
        h.cwd = "/home/ana".into();
        let spec = resolve(&req(&["true"]), &h).unwrap();
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
    fn env_flags_apply_in_order_clear_unset_set() {
        let mut r = req(&["env"]);
        r.unsetenv = vec!["X".into()];
        r.setenv = vec!["A=b=c".into()];
        let spec = resolve(&r, &host()).unwrap();
        assert_eq!(spec.env.get("A").map(String::as_str), Some("b=c"));
        assert!(!spec.env.contains_key("X"));
        r.clearenv = true;
        let spec = resolve(&r, &host()).unwrap();
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
            let mut r = req(&["true"]);
            r.fs = vec![(*flag, value.to_string())];
            let err = resolve(&r, &host()).unwrap_err().to_string();
            assert_eq!(&err, want);
        }
    }

    #[test]
    fn try_binds_accept_missing_sources() {
        let mut r = req(&["true"]);
        r.no_default_view = true;
        r.fs = vec![(FsFlag::BindTry, "/nonexistent-nook:/x".into())];
        let spec = resolve(&r, &host()).unwrap();
        assert_eq!(
            spec.mounts,
            vec![Mount::Bind {
                src: "/nonexistent-nook".into(),
                dst: "/x".into(),
                read_only: false,
                optional: true
            }]
        );
    }

    #[test]
    fn sizes_and_paths_normalize() {
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
    fn hostname_needs_uts_namespace() {
        let mut r = req(&["true"]);
        r.hostname = Some("box".into());
        r.share_uts = true;
        assert!(resolve(&r, &host()).is_err());
    }
}

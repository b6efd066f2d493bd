//! Host detection: every ambient input (ids, environment, HOME, cwd, the
//! shape of `/`, /etc/subuid) is read here, once, and passed down as data so
//! that spec resolution and planning can be tested against made-up hosts.

pub mod cgroup;
pub mod nesting;

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a top-level entry such as `/bin` is on the host; merged-/usr systems
/// have symlinks, older ones directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootEntry {
    Symlink(PathBuf),
    Dir,
    Absent,
}

/// One subordinate id range from /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub home: PathBuf,
    /// The home directory passwd(5) gives, when it differs from $HOME:
    /// secrets are hidden under both.
    pub passwd_home: Option<PathBuf>,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    /// `/bin`, `/sbin`, `/lib`, `/lib64` as found on the host.
    pub root_entries: Vec<(PathBuf, RootEntry)>,
    /// The cgroup situation, read the first time it is asked for.
    pub cgroup: OnceCell<cgroup::Situation>,
    /// Helper programs looked up so far (each name searched once).
    pub programs: RefCell<BTreeMap<String, Option<PathBuf>>>,
    /// What `PROGRAM --version` said first, per program asked about.
    pub versions: RefCell<BTreeMap<PathBuf, String>>,
}

/// The clock, as seconds since the epoch (records and events keep times
/// so).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub const ROOT_LINKS: [&str; 4] = ["/bin", "/sbin", "/lib", "/lib64"];

impl Host {
    pub fn detect() -> Host {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        // /etc/passwd is read directly rather than through NSS (getpwuid),
        // which would load shared libraries on every start; name and home
        // are only fallbacks and labels.
        let user = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|t| parse_passwd(&t, uid));
        let home = env
            .get("HOME")
            .map(PathBuf::from)
            .or_else(|| user.as_ref().map(|u| u.1.clone()))
            .or_else(dirs::home_dir)
            .unwrap_or_else(|| PathBuf::from("/"));
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let root_entries = ROOT_LINKS
            .iter()
            .map(|p| {
                let p = PathBuf::from(p);
                let entry = match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.file_type().is_symlink() => std::fs::read_link(&p)
                        .map(RootEntry::Symlink)
                        .unwrap_or(RootEntry::Absent),
                    Ok(m) if m.is_dir() => RootEntry::Dir,
                    _ => RootEntry::Absent,
                };
                (p, entry)
            })
            .collect();
        let passwd_home = user.as_ref().map(|u| u.1.clone()).filter(|h| *h != home);
        Host {
            uid,
            gid,
            user: user.map(|u| u.0),
            home,
            passwd_home,
            cwd,
            env,
            root_entries,
            cgroup: OnceCell::new(),
            programs: RefCell::default(),
            versions: RefCell::default(),
        }
    }

    /// A made-up host for tests: ana (1000) in /home/ana/src/proj, a
    /// merged /usr, a few variables (credentials among them), and no cgroup v2.
    #[cfg(test)]
    pub fn fake() -> Host {
        Host {
            uid: 1000,
            gid: 1000,
            user: Some("ana".into()),
            home: "/home/ana".into(),
            passwd_home: None,
            cwd: "/home/ana/src/proj".into(),
            env: [
                ("HOME", "/home/ana"),
                ("PATH", "/usr/bin:/bin"),
                ("X", "1"),
                ("GITHUB_TOKEN", "t"),
                ("SSH_AUTH_SOCK", "/run/a"),
                ("AWS_PROFILE", "p"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            root_entries: vec![
                ("/bin".into(), RootEntry::Symlink("usr/bin".into())),
                ("/lib64".into(), RootEntry::Absent),
            ],
            cgroup: OnceCell::from(cgroup::Situation::NoUnified),
            programs: RefCell::default(),
            versions: RefCell::default(),
        }
    }

    /// Our cgroup v2 situation (read once, on first use: only runs with
    /// limits or --stats, and doctor, need it).
    pub fn cgroup(&self) -> &cgroup::Situation {
        self.cgroup.get_or_init(|| cgroup::situation(self.uid))
    }

    /// Resolve a host path the user named: relative to the cwd, symlinks
    /// followed, and checked to exist.
    pub fn resolve_existing(&self, path: &str) -> std::io::Result<PathBuf> {
        let p = Path::new(path);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.cwd.join(p)
        };
        std::fs::canonicalize(p)
    }

    pub fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    /// The entries of directory `dir`: name, and whether each is a
    /// directory or a symlink (to what); other kinds are left out.
    pub fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<(String, RootEntry)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let t = e.file_type()?;
            if t.is_symlink() {
                out.push((name, RootEntry::Symlink(std::fs::read_link(e.path())?)));
            } else if t.is_dir() {
                out.push((name, RootEntry::Dir));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The uid that owns `path` (symlinks followed).
    pub fn owner_of(&self, path: &Path) -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| m.uid())
    }

    /// Whether `dir` is a directory with nothing in it.
    pub fn is_empty_dir(&self, dir: &Path) -> bool {
        std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
    }

    /// Whether `path` exists (symlinks followed).
    pub fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    pub fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    /// Device and inode of what `path` names (symlinks followed).
    pub fn file_id(&self, path: &Path) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }

    /// The start of a small file (4 KiB at most), when it can be read.
    pub fn read_small(&self, path: &Path) -> Option<String> {
        use std::io::Read;
        let mut buf = Vec::new();
        std::fs::File::open(path)
            .ok()?
            .take(4096)
            .read_to_end(&mut buf)
            .ok()?;
        Some(String::from_utf8_lossy(&buf).into_owned())
    }

    /// The names in a directory (at most `limit`), none when it can't be
    /// read.
    pub fn read_dir(&self, path: &Path, limit: usize) -> Vec<String> {
        std::fs::read_dir(path)
            .map(|rd| {
                rd.flatten()
                    .take(limit)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The subordinate range for this user in an /etc/subuid-style file.
    pub fn subordinate_range(&self, file: &Path) -> Option<SubRange> {
        let text = std::fs::read_to_string(file).ok()?;
        parse_subid(&text, self.user.as_deref(), self.uid)
    }

    /// Path of a helper program (newuidmap, pasta, nft...) found in PATH
    /// or the sbin directories; each name is searched for once.
    pub fn find_program(&self, name: &str) -> Option<PathBuf> {
        if let Some(found) = self.programs.borrow().get(name) {
            return found.clone();
        }
        let path = self
            .env
            .get("PATH")
            .map(String::as_str)
            .unwrap_or("/usr/local/bin:/usr/bin:/bin");
        // Ordinary users often lack the sbin directories in PATH, where
        // nft lives.
        let found = path
            .split(':')
            .chain(["/usr/sbin", "/sbin"])
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file());
        self.programs
            .borrow_mut()
            .insert(name.to_string(), found.clone());
        found
    }
}

impl Host {
    /// The first line `program --version` prints, kept in the user's cache
    /// directory with the program's size and time, so a start pays for
    /// running it only after the program changed.
    pub fn program_version(&self, program: &Path) -> String {
        if let Some(v) = self.versions.borrow().get(program) {
            return v.clone();
        }
        use std::os::unix::fs::MetadataExt;
        let stamp = std::fs::metadata(program)
            .map(|m| {
                format!(
                    "{}\t{}\t{}",
                    program.display(),
                    m.size(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000
                )
            })
            .unwrap_or_default();
        let cache = self
            .env
            .get("XDG_CACHE_HOME")
            .filter(|d| d.starts_with('/'))
            .map(PathBuf::from)
            .unwrap_or_else(|| self.home.join(".cache"))
            .join("nook/programs");
        let known = std::fs::read_to_string(&cache).unwrap_or_default();
        let cached = known.lines().find_map(|l| {
            l.rsplit_once('\t')
                .filter(|(k, _)| *k == stamp)
                .map(|(_, v)| v.to_string())
        });
        let version = cached.unwrap_or_else(|| {
            let v = run_version(program);
            // Best effort: without a cache the next start asks again.
            let mut lines: Vec<&str> = known
                .lines()
                .filter(|l| !l.starts_with(&format!("{}\t", program.display())))
                .collect();
            let line = format!("{stamp}\t{v}");
            lines.push(&line);
            if let Some(dir) = cache.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(&cache, lines.join("\n") + "\n");
            v
        });
        self.versions
            .borrow_mut()
            .insert(program.to_path_buf(), version.clone());
        version
    }
}

/// The line of `program --version` that names it (else the first).
fn run_version(program: &Path) -> String {
    std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            let name = program.file_name()?.to_string_lossy().into_owned();
            text.lines()
                .find(|l| l.contains(&name))
                .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "version unknown".into())
}

/// Name and home directory of `uid` from passwd(5) text.
pub fn parse_passwd(text: &str, uid: u32) -> Option<(String, PathBuf)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 6 && f[2].parse() == Ok(uid) {
            Some((f[0].to_string(), PathBuf::from(f[5])))
        } else {
            None
        }
    })
}

/// Parse subuid(5) lines `name-or-uid:start:count`; the first match wins.
pub fn parse_subid(text: &str, user: Option<&str>, uid: u32) -> Option<SubRange> {
    let uid_s = uid.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if who != uid_s && Some(who) != user {
            return None;
        }
        Some(SubRange {
            start: start.parse().ok()?,
            count: count.parse().ok()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup_by_uid() {
        let text = "root:x:0:0:root:/root:/bin/bash\nana:x:1000:1000:Ana:/home/ana:/bin/sh\n";
        assert_eq!(
            parse_passwd(text, 1000),
            Some(("ana".to_string(), PathBuf::from("/home/ana")))
        );
        assert_eq!(parse_passwd(text, 7), None);
    }

    #[test]
    fn subid_matches_name_or_uid() {
        let text = "bob:100000:65536\n1001:300000:1000\nana:200000:65536\n";
        assert_eq!(
            parse_subid(text, Some("ana"), 1000),
            Some(SubRange {
                start: 200000,
                count: 65536
            })
        );
        assert_eq!(
            parse_subid(text, Some("zed"), 1001),
            Some(SubRange {
                start: 300000,
                count: 1000
            })
        );
        assert_eq!(parse_subid(text, Some("zed"), 7), None);
        assert_eq!(parse_subid("ana:x:1\n", Some("ana"), 7), None);
    }
}

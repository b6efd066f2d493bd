//! THE table of settings. Each key is declared once, here: its profile
//! key (the flag without its dashes), its TOML section, the kind of value
//! it takes, and its `--help`. The command-line flag, the profile schema,
//! the merge and the profile writer are all derived from this table, and a
//! test checks README's key table against it.
//!
//! Adding a setting: one row below, then its meaning in `spec` (and a row
//! in README's table, which the test will ask for).

/// Where a key sits in a profile file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Top,
    /// `[network]`
    Network,
    /// `[limits]`
    Limits,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Top, Section::Network, Section::Limits];

    /// The TOML table name, `None` at the top level.
    pub fn table(self) -> Option<&'static str> {
        match self {
            Section::Top => None,
            Section::Network => Some("network"),
            Section::Limits => Some("limits"),
        }
    }
}

/// Which `:`-separated parts of a string value are paths: those get `~`
/// expanded and must be absolute in a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathParts {
    None,
    /// `DST` or `DST:options` (tmpfs), `DST:CONTENT` (file).
    First,
    /// `TARGET:LINK` (symlink): the target may be relative.
    Second,
    /// `SRC[:DST]` (binds).
    FirstOptSecond,
    /// `DST:SRC` (file-from).
    Both,
}

/// The vocabulary of filesystem entries: the keys whose values, from every
/// layer, form one ordered list (later entries cover earlier ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsFlag {
    RoBind,
    Bind,
    RoBindTry,
    BindTry,
    Tmpfs,
    Dir,
    Symlink,
    File,
    FileFrom,
    Hide,
    Proc,
    Dev,
    Overlay,
    TmpOverlay,
}

/// What a key's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A switch: `--flag` / `key = true`.
    Bool,
    U16,
    U32,
    U64,
    I32,
    F64,
    /// A string; variables are expanded in profiles.
    Str(PathParts),
    /// One of a fixed set of words; `noun` says what it is ("a mode").
    Choice {
        words: &'static [&'static str],
        noun: &'static str,
    },
    /// A filesystem entry (always a list, ordered across keys).
    Fs(FsFlag, PathParts),
}

/// One row of the table.
#[derive(Debug)]
pub struct Def {
    /// The flag, `--` included; the profile key is the rest.
    pub flag: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    /// Repeatable flag, TOML array; lists from every layer are appended.
    pub list: bool,
    pub section: Section,
    /// The placeholder in `--help` (none for switches).
    pub value_name: &'static str,
    pub heading: &'static str,
    pub help: &'static str,
}

impl Def {
    const fn new(flag: &'static str, kind: Kind, value_name: &'static str) -> Def {
        Def {
            flag,
            short: None,
            list: matches!(kind, Kind::Fs(..)),
            kind,
            section: Section::Top,
            value_name,
            heading: "",
            help: "",
        }
    }

    const fn list(mut self) -> Def {
        self.list = true;
        self
    }

    const fn section(mut self, s: Section) -> Def {
        self.section = s;
        self
    }

    const fn short(mut self, c: char) -> Def {
        self.short = Some(c);
        self
    }

    const fn help(mut self, heading: &'static str, help: &'static str) -> Def {
        self.heading = heading;
        self.help = help;
        self
    }

    /// The profile key: the flag without its dashes.
    pub fn name(&self) -> &'static str {
        let f: &'static str = self.flag;
        &f[2..]
    }
}

macro_rules! keys {
    ($($key:ident = $def:expr;)*) => {
        /// A setting, by name; `Key::def` has the rest of its row.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Key { $($key),* }

        impl Key {
            /// Every key, in table order (the order of `--help` and of
            /// written profiles).
            pub const ALL: &'static [Key] = &[$(Key::$key),*];

            pub fn def(self) -> &'static Def {
                match self {
                    $(Key::$key => {
                        static DEF: Def = $def;
                        &DEF
                    })*
                }
            }
        }
    };
}

const IDENTITY: &str = "Identity";
const NAMESPACES: &str = "Namespaces";
const NETWORK: &str = "Network";
const FILESYSTEM: &str = "Filesystem";
const PROCESS: &str = "Process";
const HARDENING: &str = "Hardening";
const LIMITS: &str = "Limits";

use Kind::*;
use PathParts as P;

const fn fs(f: FsFlag, parts: PathParts) -> Kind {
    Fs(f, parts)
}

const STR: Kind = Str(P::None);

keys! {
    Uid = Def::new("--uid", U32, "N")
        .help(IDENTITY, "User id inside the sandbox (default: your own; 0 gives a fake root)");
    Gid = Def::new("--gid", U32, "N")
        .help(IDENTITY, "Group id inside the sandbox (default: your own)");
    Subids = Def::new("--subids", Bool, "")
        .help(IDENTITY, "Map your whole subordinate id range from /etc/subuid and /etc/subgid (needs newuidmap/newgidmap from the uidmap package)");

    ShareNet = Def::new("--share-net", Bool, "")
        .help(NAMESPACES, "Share the host's network namespace (the same as --net host)");
    Net = Def::new("--net", Choice { words: &["none", "host", "user"], noun: "a network mode" }, "MODE")
        .section(Section::Network)
        .help(NETWORK, "Network: none (loopback only, the default), host, or user (user-mode networking through pasta or slirp4netns)");
    NetDriver = Def::new("--net-driver", Choice { words: &["auto", "pasta", "slirp4netns"], noun: "a driver" }, "DRIVER")
        .section(Section::Network)
        .help(NETWORK, "User-mode networking helper: auto, pasta or slirp4netns");
    AllowHostLoopback = Def::new("--allow-host-loopback", Bool, "")
        .section(Section::Network)
        .help(NETWORK, "Let the sandbox reach the host's loopback services (through the gateway)");
    AllowHostPort = Def::new("--allow-host-port", U16, "PORT")
        .list()
        .section(Section::Network)
        .help(NETWORK, "Make this port of the host's loopback appear on the sandbox's loopback");
    Publish = Def::new("--publish", STR, "SPEC")
        .short('p')
        .list()
        .section(Section::Network)
        .help(NETWORK, "Publish a sandbox port on the host: [HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp]");
    NetAllow = Def::new("--net-allow", STR, "DEST")
        .list()
        .section(Section::Network)
        .help(NETWORK, "Allow outbound traffic to HOST[:PORT], *.DOMAIN[:PORT], IP[:PORT] or CIDR[:PORT] only (names are enforced by name, through nook's egress gate)");
    ShareIpc = Def::new("--share-ipc", Bool, "")
        .help(NAMESPACES, "Share the host's IPC namespace");
    ShareUts = Def::new("--share-uts", Bool, "")
        .help(NAMESPACES, "Share the host's UTS namespace (hostname)");
    SharePid = Def::new("--share-pid", Bool, "")
        .help(NAMESPACES, "Share the host's pid namespace");
    ShareCgroup = Def::new("--share-cgroup", Bool, "")
        .help(NAMESPACES, "Share the host's cgroup namespace");

    NoDefaultView = Def::new("--no-default-view", Bool, "")
        .help(FILESYSTEM, "Start from an empty root instead of the default view (/usr, /etc read-only, /proc, /dev, /tmp, empty $HOME, the current directory)");
    ShareCwd = Def::new("--share-cwd", Choice { words: &["rw", "ro", "no", "overlay"], noun: "a mode" }, "MODE")
        .help(FILESYSTEM, "What the default view does with the current directory: rw (protected paths read-only), ro, no, or overlay (every write kept for review: nook diff / commit)");
    Rootfs = Def::new("--rootfs", STR, "DIR")
        .help(FILESYSTEM, "Use DIR (a root filesystem: mmdebstrap's, an unpacked image) as the sandbox's system instead of the host's; --tmp-overlay / or --overlay / make it writable");
    // Filesystem entries, in the order a profile applies them among
    // entries of the same depth (hide last, on top of what shows it).
    RoBind = Def::new("--ro-bind", fs(FsFlag::RoBind, P::FirstOptSecond), "SRC[:DST]")
        .help(FILESYSTEM, "Bind SRC read-only at DST (default: the same path)");
    RoBindTry = Def::new("--ro-bind-try", fs(FsFlag::RoBindTry, P::FirstOptSecond), "SRC[:DST]")
        .help(FILESYSTEM, "Like --ro-bind, but skip it when SRC does not exist");
    Bind = Def::new("--bind", fs(FsFlag::Bind, P::FirstOptSecond), "SRC[:DST]")
        .help(FILESYSTEM, "Bind SRC read-write at DST (default: the same path)");
    BindTry = Def::new("--bind-try", fs(FsFlag::BindTry, P::FirstOptSecond), "SRC[:DST]")
        .help(FILESYSTEM, "Like --bind, but skip it when SRC does not exist");
    Tmpfs = Def::new("--tmpfs", fs(FsFlag::Tmpfs, P::First), "DST[:size=N]")
        .help(FILESYSTEM, "Mount a fresh tmpfs at DST, optionally limited in size (k, m, g suffixes)");
    Dir = Def::new("--dir", fs(FsFlag::Dir, P::First), "DST")
        .help(FILESYSTEM, "Create an empty directory DST");
    Symlink = Def::new("--symlink", fs(FsFlag::Symlink, P::Second), "TARGET:LINK")
        .help(FILESYSTEM, "Create a symbolic link LINK pointing to TARGET");
    File = Def::new("--file", fs(FsFlag::File, P::First), "DST:CONTENT")
        .help(FILESYSTEM, "Place a read-only file DST holding CONTENT");
    FileFrom = Def::new("--file-from", fs(FsFlag::FileFrom, P::Both), "DST:SRC")
        .help(FILESYSTEM, "Place a read-only file DST holding a copy of the host file SRC");
    Proc = Def::new("--proc", fs(FsFlag::Proc, P::First), "DST")
        .help(FILESYSTEM, "Mount a fresh /proc for the sandbox's pid namespace at DST");
    Dev = Def::new("--dev", fs(FsFlag::Dev, P::First), "DST")
        .help(FILESYSTEM, "Mount a minimal /dev at DST (null zero full random urandom tty, pts, shm)");
    Overlay = Def::new("--overlay", fs(FsFlag::Overlay, P::FirstOptSecond), "PATH[:DST]")
        .help(FILESYSTEM, "Show host directory PATH at DST copy-on-write: writes go to an upper layer nook keeps (review with nook diff / commit / discard)");
    TmpOverlay = Def::new("--tmp-overlay", fs(FsFlag::TmpOverlay, P::FirstOptSecond), "PATH[:DST]")
        .help(FILESYSTEM, "Like --overlay, with a throw-away upper layer");
    Hide = Def::new("--hide", fs(FsFlag::Hide, P::First), "PATH")
        .help(FILESYSTEM, "Keep PATH present but empty and unreadable");
    Protect = Def::new("--protect", STR, "PATTERN")
        .list()
        .help(FILESYSTEM, "Keep paths matching PATTERN (relative to each read-write share; * one name, ** any depth) read-only there, beside the built-in list of what a host program runs or obeys later (.git/hooks, .git/config, .envrc, .vscode, ...)");
    Unprotect = Def::new("--unprotect", STR, "PATTERN")
        .list()
        .help(FILESYSTEM, "Leave paths matching PATTERN writable in read-write shares although protected ('**' releases them all)");
    OverlayDriver = Def::new("--overlay-driver", Choice { words: &["auto", "native", "fuse"], noun: "a driver" }, "DRIVER")
        .help(FILESYSTEM, "Overlay implementation: auto, native (overlayfs) or fuse (fuse-overlayfs)");

    Chdir = Def::new("--chdir", Str(P::First), "DIR")
        .help(PROCESS, "Working directory inside the sandbox (default: the current directory)");
    Hostname = Def::new("--hostname", STR, "NAME")
        .help(PROCESS, "Hostname inside the sandbox");
    Setenv = Def::new("--setenv", STR, "K=V")
        .list()
        .help(PROCESS, "Set an environment variable");
    Unsetenv = Def::new("--unsetenv", STR, "K")
        .list()
        .help(PROCESS, "Remove an environment variable");
    Clearenv = Def::new("--clearenv", Bool, "")
        .help(PROCESS, "Start from an empty environment");
    KeepEnv = Def::new("--keep-env", STR, "PATTERN")
        .list()
        .help(PROCESS, "Keep variables matching PATTERN (* matches anything) that nook drops because they usually carry credentials (SSH_AUTH_SOCK, *_TOKEN, ...)");
    PassFd = Def::new("--pass-fd", I32, "N")
        .list()
        .help(PROCESS, "Keep this inherited file descriptor open (0, 1 and 2 always are)");

    Strict = Def::new("--strict", Bool, "")
        .help(HARDENING, "Turn every best-effort hardening layer into a requirement");
    Seccomp = Def::new("--seccomp", Choice { words: &["default", "strict", "off"], noun: "a mode" }, "MODE")
        .help(HARDENING, "System call filter: default (deny list), strict (allow list) or off");
    SeccompAllow = Def::new("--seccomp-allow", STR, "SYSCALL")
        .list()
        .help(HARDENING, "Let this system call through the filter (by name)");
    SeccompDeny = Def::new("--seccomp-deny", STR, "SYSCALL")
        .list()
        .help(HARDENING, "Refuse this system call too (by name)");
    CapAdd = Def::new("--cap-add", STR, "CAP")
        .list()
        .help(HARDENING, "Hold this capability in the sandbox's user namespace (e.g. CAP_CHOWN); --uid 0 --subids holds a fake root's set");
    CapDrop = Def::new("--cap-drop", STR, "CAP")
        .list()
        .help(HARDENING, "Don't hold this capability (of the fake root's set)");
    Landlock = Def::new("--landlock", Choice { words: &["best-effort", "required", "off"], noun: "a mode" }, "MODE")
        .help(HARDENING, "Landlock filesystem rules: best-effort, required or off");
    AllowUserns = Def::new("--allow-userns", Bool, "")
        .help(HARDENING, "Allow nested user namespaces and the mounts they make (browsers' sandboxes, nook in nook); Landlock is then off unless --landlock names a level");

    Memory = Def::new("--memory", STR, "SIZE")
        .section(Section::Limits)
        .help(LIMITS, "Memory limit (cgroup memory.max), e.g. 512m");
    MemorySwap = Def::new("--memory-swap", STR, "SIZE")
        .section(Section::Limits)
        .help(LIMITS, "Swap limit (cgroup memory.swap.max)");
    Pids = Def::new("--pids", U64, "N")
        .section(Section::Limits)
        .help(LIMITS, "Most processes and threads at once (cgroup pids.max)");
    Cpus = Def::new("--cpus", F64, "FLOAT")
        .section(Section::Limits)
        .help(LIMITS, "CPU time as a number of CPUs, e.g. 0.5 (cgroup cpu.max)");
    CpuWeight = Def::new("--cpu-weight", U64, "N")
        .section(Section::Limits)
        .help(LIMITS, "Relative CPU share, 1 to 10000 (cgroup cpu.weight; 100 is the default)");
    IoWeight = Def::new("--io-weight", U64, "N")
        .section(Section::Limits)
        .help(LIMITS, "Relative I/O share, 1 to 10000 (cgroup io.weight)");
    IoMax = Def::new("--io-max", STR, "SPEC")
        .list()
        .section(Section::Limits)
        .help(LIMITS, "I/O ceiling for a device: DEV:rbps=..,wbps=..,riops=..,wiops=.. (cgroup io.max)");
    Rlimit = Def::new("--rlimit", STR, "NAME=VALUE")
        .list()
        .section(Section::Limits)
        .help(LIMITS, "A resource limit: nofile, nproc, fsize, core, cpu, as, stack or memlock =VALUE");
    Timeout = Def::new("--timeout", STR, "DURATION")
        .section(Section::Limits)
        .help(LIMITS, "Kill the whole sandbox after this long and exit 124, e.g. 30s or 5m");
    DiskQuota = Def::new("--disk-quota", STR, "SIZE")
        .section(Section::Limits)
        .help(LIMITS, "Cap on what the sandbox can write to its scratch areas in total");
}

impl Key {
    /// The key a profile file uses under `section` for `name`.
    pub fn by_name(section: Section, name: &str) -> Option<Key> {
        Key::ALL
            .iter()
            .copied()
            .find(|k| k.def().section == section && k.def().name() == name)
    }

    pub fn in_section(section: Section) -> impl Iterator<Item = Key> {
        Key::ALL
            .iter()
            .copied()
            .filter(move |k| k.def().section == section)
    }

    /// The filesystem entry kind, for the keys that are one.
    pub fn fs(self) -> Option<FsFlag> {
        match self.def().kind {
            Kind::Fs(f, _) => Some(f),
            _ => None,
        }
    }

    pub fn flag(self) -> &'static str {
        self.def().flag
    }

    pub fn name(self) -> &'static str {
        self.def().name()
    }
}

impl FsFlag {
    /// The key that declares this kind of entry.
    pub fn key(self) -> Key {
        Key::ALL
            .iter()
            .copied()
            .find(|k| k.fs() == Some(self))
            .expect("every FsFlag has a row in the key table")
    }

    /// The flag as the user typed it, for error messages.
    pub fn name(self) -> &'static str {
        self.key().flag()
    }
}

/// "a, b or c": the words of a choice as a sentence.
pub fn one_of(words: &[&str], quote: bool) -> String {
    let q = |w: &&str| {
        if quote {
            format!("\"{w}\"")
        } else {
            w.to_string()
        }
    };
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => q(last),
        Some((last, rest)) => format!(
            "{} or {}",
            rest.iter().map(q).collect::<Vec<_>>().join(", "),
            q(last)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_flags_are_long() {
        let mut seen = std::collections::HashSet::new();
        for k in Key::ALL {
            let d = k.def();
            assert!(d.flag.starts_with("--"), "{k:?}");
            assert!(seen.insert(d.name()), "{} twice", d.name());
            assert!(!d.help.is_empty() && !d.heading.is_empty(), "{k:?}");
            assert_eq!(d.value_name.is_empty(), d.kind == Kind::Bool, "{k:?}");
        }
    }

    #[test]
    fn every_fs_flag_has_one_key() {
        use FsFlag::*;
        for f in [
            RoBind, Bind, RoBindTry, BindTry, Tmpfs, Dir, Symlink, File, FileFrom, Hide, Proc, Dev,
            Overlay, TmpOverlay,
        ] {
            assert_eq!(Key::ALL.iter().filter(|k| k.fs() == Some(f)).count(), 1);
            assert_eq!(f.key().fs(), Some(f));
        }
    }

    #[test]
    fn choices_read_as_sentences() {
        assert_eq!(one_of(&["rw", "ro", "no"], false), "rw, ro or no");
        assert_eq!(one_of(&["a", "b"], true), "\"a\" or \"b\"");
    }
}

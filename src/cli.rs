//! Command-line definitions (clap) and the one place that turns clap's
//! matches into a plain [`RunRequest`]. Nothing below this module sees clap.

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::error::Error;
use crate::profile::layer::{CwdMode, Layer, Val};
use crate::security::landlock::Mode as LandlockMode;
use crate::security::seccomp::Mode as SeccompMode;

#[derive(Parser, Debug)]
#[command(
    name = "nook",
    version,
    about = "Rootless sandbox: run a command in fresh namespaces, without root, setuid or daemon"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run COMMAND in a new sandbox
    Run(Box<RunArgs>),
    /// List, show, check and explain profiles
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Check what this host allows, and what to do about what it doesn't
    Doctor {
        /// Print the checks as JSON
        #[arg(long)]
        json: bool,
    },
    /// What a sandbox changed under its --overlay directories: A, M, D
    Diff {
        /// The sandbox
        name: String,
        /// Only these host paths (and what is below them)
        paths: Vec<String>,
        /// With sizes
        #[arg(long)]
        stat: bool,
        /// With text diffs
        #[arg(long)]
        patch: bool,
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Apply a sandbox's changes to the host, file by file, atomically
    Commit {
        /// The sandbox
        name: String,
        /// Only these host paths (and what is below them)
        paths: Vec<String>,
        /// Apply even over host files changed since the sandbox started
        #[arg(long)]
        force: bool,
    },
    /// Drop a sandbox's changes (all, or under these paths)
    Discard {
        /// The sandbox
        name: String,
        /// Only these host paths (and what is below them)
        paths: Vec<String>,
    },
    /// Remove a sandbox and everything it kept
    Rm {
        /// The sandboxes
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List the named sandboxes with their size and age
    Ls {
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// List the running sandboxes
    Ps {
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a running sandbox, under its restrictions
    Exec {
        /// The sandbox
        name: String,
        /// The command and its arguments
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<String>,
    },
    /// Stop a running sandbox: SIGTERM, then SIGKILL after --time seconds
    Stop {
        /// The sandbox
        name: String,
        /// Seconds to wait after SIGTERM
        #[arg(long, default_value_t = 10)]
        time: u64,
    },
    /// Send a signal to a running sandbox's command
    Kill {
        /// The sandbox
        name: String,
        /// TERM, INT, HUP, QUIT, USR1, USR2, WINCH, CONT or KILL
        #[arg(short, long, default_value = "TERM")]
        signal: String,
    },
    /// Print a detached sandbox's output
    Logs {
        /// The sandbox
        name: String,
        /// Keep printing until it ends
        #[arg(short, long)]
        follow: bool,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum ProfileCommand {
    /// List the profiles nook can find, shipped and your own
    List,
    /// Print a profile fully resolved: inheritance applied, variables expanded
    Show {
        /// A profile name, or a path to a profile file
        name: String,
    },
    /// Check a profile file: syntax, keys, types, parents, paths
    Check {
        /// The profile file
        file: String,
    },
    /// Say in plain words what a command run under this profile can and cannot do
    Explain {
        /// A profile name, or a path to a profile file
        name: String,
    },
    /// Translate a firejail profile into a nook profile
    ImportFirejail {
        /// The firejail .profile file
        file: String,
    },
}

/// Filesystem flags are applied in the order they are given on the command
/// line (later operations cover earlier ones), after the default view.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Identity")]
pub struct RunArgs {
    /// Apply this profile (a name, or a path to a file); may be repeated.
    /// Without it, the profile named like the command is used if one
    /// exists, else "default"
    #[arg(long, value_name = "NAME", help_heading = "Profiles")]
    pub profile: Vec<String>,

    /// User id inside the sandbox (default: your own; 0 gives a fake root)
    #[arg(long, value_name = "N")]
    pub uid: Option<u32>,
    /// Group id inside the sandbox (default: your own)
    #[arg(long, value_name = "N")]
    pub gid: Option<u32>,
    /// Map your whole subordinate id range from /etc/subuid and /etc/subgid
    /// (needs newuidmap/newgidmap from the uidmap package)
    #[arg(long)]
    pub subids: bool,

    /// Share the host's network namespace (the same as --net host)
    #[arg(long, help_heading = "Namespaces")]
    pub share_net: bool,

    /// Network: none (loopback only, the default), host, or user
    /// (user-mode networking through pasta or slirp4netns)
    #[arg(long, value_name = "MODE", help_heading = "Network")]
    pub net: Option<String>,
    /// User-mode networking helper: auto, pasta or slirp4netns
    #[arg(long, value_name = "DRIVER", help_heading = "Network")]
    pub net_driver: Option<String>,
    /// Let the sandbox reach the host's loopback services (through the gateway)
    #[arg(long, help_heading = "Network")]
    pub allow_host_loopback: bool,
    /// Make this port of the host's loopback appear on the sandbox's loopback
    #[arg(long, value_name = "PORT", help_heading = "Network")]
    pub allow_host_port: Vec<u16>,
    /// Publish a sandbox port on the host: [HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp]
    #[arg(short = 'p', long, value_name = "SPEC", help_heading = "Network")]
    pub publish: Vec<String>,
    /// Allow outbound traffic to HOST[:PORT], IP[:PORT] or CIDR[:PORT] only
    #[arg(long, value_name = "DEST", help_heading = "Network")]
    pub net_allow: Vec<String>,
    /// Share the host's IPC namespace
    #[arg(long, help_heading = "Namespaces")]
    pub share_ipc: bool,
    /// Share the host's UTS namespace (hostname)
    #[arg(long, help_heading = "Namespaces")]
    pub share_uts: bool,
    /// Share the host's pid namespace
    #[arg(long, help_heading = "Namespaces")]
    pub share_pid: bool,
    /// Share the host's cgroup namespace
    #[arg(long, help_heading = "Namespaces")]
    pub share_cgroup: bool,

    /// Start from an empty root instead of the default view
    /// (/usr, /etc read-only, /proc, /dev, /tmp, empty $HOME, the current directory)
    #[arg(long, help_heading = "Filesystem")]
    pub no_default_view: bool,
    /// What the default view does with the current directory: rw, ro or no
    #[arg(long, value_name = "MODE", help_heading = "Filesystem")]
    pub share_cwd: Option<String>,
    /// Bind SRC read-only at DST (default: the same path)
    #[arg(long, value_name = "SRC[:DST]", help_heading = "Filesystem")]
    pub ro_bind: Vec<String>,
    /// Bind SRC read-write at DST (default: the same path)
    #[arg(long, value_name = "SRC[:DST]", help_heading = "Filesystem")]
    pub bind: Vec<String>,
    /// Like --ro-bind, but skip it when SRC does not exist
    #[arg(long, value_name = "SRC[:DST]", help_heading = "Filesystem")]
    pub ro_bind_try: Vec<String>,
    /// Like --bind, but skip it when SRC does not exist
    #[arg(long, value_name = "SRC[:DST]", help_heading = "Filesystem")]
    pub bind_try: Vec<String>,
    /// Mount a fresh tmpfs at DST, optionally limited in size (k, m, g suffixes)
    #[arg(long, value_name = "DST[:size=N]", help_heading = "Filesystem")]
    pub tmpfs: Vec<String>,
    /// Create an empty directory DST
    #[arg(long, value_name = "DST", help_heading = "Filesystem")]
    pub dir: Vec<String>,
    /// Create a symbolic link LINK pointing to TARGET
    #[arg(long, value_name = "TARGET:LINK", help_heading = "Filesystem")]
    pub symlink: Vec<String>,
    /// Place a read-only file DST holding CONTENT
    #[arg(long, value_name = "DST:CONTENT", help_heading = "Filesystem")]
    pub file: Vec<String>,
    /// Place a read-only file DST holding a copy of the host file SRC
    #[arg(long, value_name = "DST:SRC", help_heading = "Filesystem")]
    pub file_from: Vec<String>,
    /// Keep PATH present but empty and unreadable
    #[arg(long, value_name = "PATH", help_heading = "Filesystem")]
    pub hide: Vec<String>,
    /// Mount a fresh /proc for the sandbox's pid namespace at DST
    #[arg(long, value_name = "DST", help_heading = "Filesystem")]
    pub proc: Vec<String>,
    /// Mount a minimal /dev at DST (null zero full random urandom tty, pts, shm)
    #[arg(long, value_name = "DST", help_heading = "Filesystem")]
    pub dev: Vec<String>,

    /// Show host directory PATH at DST copy-on-write: writes go to an upper
    /// layer nook keeps (review with nook diff / commit / discard)
    #[arg(long, value_name = "PATH[:DST]", help_heading = "Filesystem")]
    pub overlay: Vec<String>,
    /// Like --overlay, with a throw-away upper layer
    #[arg(long, value_name = "PATH[:DST]", help_heading = "Filesystem")]
    pub tmp_overlay: Vec<String>,
    /// Overlay implementation: auto, native (overlayfs) or fuse (fuse-overlayfs)
    #[arg(long, value_name = "DRIVER", help_heading = "Filesystem")]
    pub overlay_driver: Option<String>,
    /// Keep this sandbox's overlay layers under this name, to continue,
    /// review and commit later
    #[arg(long, value_name = "NAME", help_heading = "Filesystem")]
    pub name: Option<String>,

    /// Working directory inside the sandbox (default: the current directory)
    #[arg(long, value_name = "DIR", help_heading = "Process")]
    pub chdir: Option<String>,
    /// Hostname inside the sandbox
    #[arg(long, value_name = "NAME", help_heading = "Process")]
    pub hostname: Option<String>,
    /// Set an environment variable
    #[arg(long, value_name = "K=V", help_heading = "Process")]
    pub setenv: Vec<String>,
    /// Remove an environment variable
    #[arg(long, value_name = "K", help_heading = "Process")]
    pub unsetenv: Vec<String>,
    /// Start from an empty environment
    #[arg(long, help_heading = "Process")]
    pub clearenv: bool,
    /// Keep variables matching PATTERN (* matches anything) that nook drops
    /// because they usually carry credentials (SSH_AUTH_SOCK, *_TOKEN, ...)
    #[arg(long, value_name = "PATTERN", help_heading = "Process")]
    pub keep_env: Vec<String>,
    /// Keep this inherited file descriptor open (0, 1 and 2 always are)
    #[arg(long, value_name = "N", help_heading = "Process")]
    pub pass_fd: Vec<i32>,

    /// Turn every best-effort hardening layer into a requirement
    #[arg(long, help_heading = "Hardening")]
    pub strict: bool,
    /// System call filter: default (deny list), strict (allow list) or off
    #[arg(long, value_name = "MODE", help_heading = "Hardening")]
    pub seccomp: Option<String>,
    /// Let this system call through the filter (by name)
    #[arg(long, value_name = "SYSCALL", help_heading = "Hardening")]
    pub seccomp_allow: Vec<String>,
    /// Refuse this system call too (by name)
    #[arg(long, value_name = "SYSCALL", help_heading = "Hardening")]
    pub seccomp_deny: Vec<String>,
    /// Landlock filesystem rules: best-effort, required or off
    #[arg(long, value_name = "MODE", help_heading = "Hardening")]
    pub landlock: Option<String>,
    /// Allow nested user namespaces (browsers' own sandboxes need them)
    #[arg(long, help_heading = "Hardening")]
    pub allow_userns: bool,

    /// Memory limit (cgroup memory.max), e.g. 512m
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub memory: Option<String>,
    /// Swap limit (cgroup memory.swap.max)
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub memory_swap: Option<String>,
    /// Most processes and threads at once (cgroup pids.max)
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub pids: Option<u64>,
    /// CPU time as a number of CPUs, e.g. 0.5 (cgroup cpu.max)
    #[arg(long, value_name = "FLOAT", help_heading = "Limits")]
    pub cpus: Option<f64>,
    /// Relative CPU share, 1 to 10000 (cgroup cpu.weight; 100 is the default)
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub cpu_weight: Option<u64>,
    /// Relative I/O share, 1 to 10000 (cgroup io.weight)
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub io_weight: Option<u64>,
    /// I/O ceiling for a device: DEV:rbps=..,wbps=..,riops=..,wiops=.. (cgroup io.max)
    #[arg(long, value_name = "SPEC", help_heading = "Limits")]
    pub io_max: Vec<String>,
    /// A resource limit: nofile, nproc, fsize, core, cpu, as, stack or memlock =VALUE
    #[arg(long, value_name = "NAME=VALUE", help_heading = "Limits")]
    pub rlimit: Vec<String>,
    /// Kill the whole sandbox after this long and exit 124, e.g. 30s or 5m
    #[arg(long, value_name = "DURATION", help_heading = "Limits")]
    pub timeout: Option<String>,
    /// Cap on what the sandbox can write to its scratch areas in total
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub disk_quota: Option<String>,
    /// Run in the background: print the sandbox's name once the command
    /// runs, and exit (output goes to `nook logs NAME`)
    #[arg(short = 'd', long, help_heading = "Management")]
    pub detach: bool,
    /// Write one JSON object per line for each step of the run to FILE, or
    /// to the open descriptor FD
    #[arg(long, value_name = "FILE|FD", help_heading = "Management")]
    pub events: Option<String>,
    /// When the sandbox ends, print what it used (human, or json)
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "human", require_equals = true, help_heading = "Limits")]
    pub stats: Option<String>,

    /// Print the resolved sandbox as JSON and exit
    #[arg(long, help_heading = "Diagnostics")]
    pub print_spec: bool,
    /// Print the ordered setup plan and exit
    #[arg(long, help_heading = "Diagnostics")]
    pub print_plan: bool,
    /// Trace each setup step to stderr
    #[arg(short, long, help_heading = "Diagnostics")]
    pub verbose: bool,

    /// The command to run and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    pub command: Vec<String>,
}

/// The filesystem flags, in the form the spec resolver needs: which flag, and
/// its raw value, in command-line order.
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

impl FsFlag {
    pub const ALL: [(FsFlag, &'static str); 14] = [
        (FsFlag::RoBind, "ro_bind"),
        (FsFlag::Bind, "bind"),
        (FsFlag::RoBindTry, "ro_bind_try"),
        (FsFlag::BindTry, "bind_try"),
        (FsFlag::Tmpfs, "tmpfs"),
        (FsFlag::Dir, "dir"),
        (FsFlag::Symlink, "symlink"),
        (FsFlag::File, "file"),
        (FsFlag::FileFrom, "file_from"),
        (FsFlag::Hide, "hide"),
        (FsFlag::Proc, "proc"),
        (FsFlag::Dev, "dev"),
        (FsFlag::Overlay, "overlay"),
        (FsFlag::TmpOverlay, "tmp_overlay"),
    ];

    /// The profile key: the flag without its dashes.
    pub fn key(self) -> &'static str {
        &self.name()[2..]
    }

    /// The flag as the user typed it, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            FsFlag::RoBind => "--ro-bind",
            FsFlag::Bind => "--bind",
            FsFlag::RoBindTry => "--ro-bind-try",
            FsFlag::BindTry => "--bind-try",
            FsFlag::Tmpfs => "--tmpfs",
            FsFlag::Dir => "--dir",
            FsFlag::Symlink => "--symlink",
            FsFlag::File => "--file",
            FsFlag::FileFrom => "--file-from",
            FsFlag::Hide => "--hide",
            FsFlag::Proc => "--proc",
            FsFlag::Dev => "--dev",
            FsFlag::Overlay => "--overlay",
            FsFlag::TmpOverlay => "--tmp-overlay",
        }
    }
}

/// Everything `nook run` was asked for, free of clap types.
#[derive(Debug, Default)]
pub struct RunRequest {
    /// `--profile` names, in order.
    pub profiles: Vec<String>,
    /// The settings given as flags: the last layer, over any profile.
    pub layer: Layer,
    pub print_spec: bool,
    pub print_plan: bool,
    pub verbose: bool,
    /// `--stats`: print what the sandbox used when it ends.
    pub stats: Option<crate::limits::StatsFormat>,
    /// `--name`: the sandbox whose overlay layers this run uses.
    pub name: Option<String>,
    pub detach: bool,
    pub events: Option<String>,
    pub command: Vec<String>,
}

pub enum Parsed {
    Run(Box<RunRequest>),
    Profile(ProfileCommand),
    /// diff, commit, discard, rm, ls.
    Sandbox(Command),
    Doctor {
        json: bool,
    },
    /// Help or version text, already rendered; print it and exit 0.
    Info(String),
}

/// Parse the process arguments. Usage errors become one line.
pub fn parse<I, T>(args: I) -> Result<Parsed, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = match Cli::command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return clap_error(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return clap_error(e),
    };
    match cli.command {
        Command::Run(args) => {
            let sub = matches
                .subcommand_matches("run")
                .expect("clap returned the run subcommand without its matches");
            run_request(*args, sub).map(|r| Parsed::Run(Box::new(r)))
        }
        Command::Profile(p) => Ok(Parsed::Profile(p)),
        Command::Doctor { json } => Ok(Parsed::Doctor { json }),
        other => Ok(Parsed::Sandbox(other)),
    }
}

fn run_request(a: RunArgs, m: &ArgMatches) -> Result<RunRequest, Error> {
    // clap keeps each flag's values apart; the order across flags comes from
    // their argument indices, which is what makes "later covers earlier" work.
    let mut fs: Vec<(usize, FsFlag, String)> = Vec::new();
    for (flag, id) in FsFlag::ALL {
        if let (Some(idx), Some(vals)) = (m.indices_of(id), m.get_many::<String>(id)) {
            fs.extend(idx.zip(vals).map(|(i, v)| (i, flag, v.clone())));
        }
    }
    fs.sort_by_key(|(i, _, _)| *i);
    let b = |on: bool, name: &'static str| on.then(|| Val::flag(true, name));
    let share_cwd = match a.share_cwd {
        None => None,
        Some(s) => match CwdMode::parse(&s) {
            Some(mode) => Some(Val::flag(mode, "--share-cwd")),
            None => {
                return Err(Error::usage("--share-cwd", &s, "expected rw, ro or no"));
            }
        },
    };
    let seccomp = match a.seccomp {
        None => None,
        Some(s) => match SeccompMode::parse(&s) {
            Some(m) => Some(Val::flag(m, "--seccomp")),
            None => {
                return Err(Error::usage(
                    "--seccomp",
                    &s,
                    "expected default, strict or off",
                ));
            }
        },
    };
    let landlock = match a.landlock {
        None => None,
        Some(s) => match LandlockMode::parse(&s) {
            Some(m) => Some(Val::flag(m, "--landlock")),
            None => {
                return Err(Error::usage(
                    "--landlock",
                    &s,
                    "expected best-effort, required or off",
                ));
            }
        },
    };
    let net = match a.net {
        None => None,
        Some(s) => match crate::net::Mode::parse(&s) {
            Some(m) => Some(Val::flag(m, "--net")),
            None => {
                return Err(Error::usage("--net", &s, "expected none, host or user"));
            }
        },
    };
    let net_driver = match a.net_driver {
        None => None,
        Some(s) => match crate::net::DriverKind::parse(&s) {
            Some(d) => Some(Val::flag(d, "--net-driver")),
            None => {
                return Err(Error::usage(
                    "--net-driver",
                    &s,
                    "expected auto, pasta or slirp4netns",
                ));
            }
        },
    };
    let strings = |v: Vec<String>, flag: &'static str| -> Vec<Val<String>> {
        v.into_iter().map(|x| Val::flag(x, flag)).collect()
    };
    let layer = Layer {
        uid: a.uid.map(|v| Val::flag(v, "--uid")),
        gid: a.gid.map(|v| Val::flag(v, "--gid")),
        subids: b(a.subids, "--subids"),
        share_net: b(a.share_net, "--share-net"),
        share_ipc: b(a.share_ipc, "--share-ipc"),
        share_uts: b(a.share_uts, "--share-uts"),
        share_pid: b(a.share_pid, "--share-pid"),
        share_cgroup: b(a.share_cgroup, "--share-cgroup"),
        no_default_view: b(a.no_default_view, "--no-default-view"),
        share_cwd,
        fs: fs
            .into_iter()
            .map(|(_, f, v)| (f, Val::flag(v, f.name())))
            .collect(),
        chdir: a.chdir.map(|v| Val::flag(v, "--chdir")),
        hostname: a.hostname.map(|v| Val::flag(v, "--hostname")),
        setenv: a
            .setenv
            .into_iter()
            .map(|v| Val::flag(v, "--setenv"))
            .collect(),
        unsetenv: a
            .unsetenv
            .into_iter()
            .map(|v| Val::flag(v, "--unsetenv"))
            .collect(),
        clearenv: b(a.clearenv, "--clearenv"),
        keep_env: a
            .keep_env
            .into_iter()
            .map(|v| Val::flag(v, "--keep-env"))
            .collect(),
        pass_fd: a
            .pass_fd
            .into_iter()
            .map(|v| Val::flag(v, "--pass-fd"))
            .collect(),
        strict: b(a.strict, "--strict"),
        seccomp,
        seccomp_allow: strings(a.seccomp_allow, "--seccomp-allow"),
        seccomp_deny: strings(a.seccomp_deny, "--seccomp-deny"),
        landlock,
        allow_userns: b(a.allow_userns, "--allow-userns"),
        net,
        net_driver,
        allow_host_loopback: b(a.allow_host_loopback, "--allow-host-loopback"),
        allow_host_port: a
            .allow_host_port
            .into_iter()
            .map(|p| Val::flag(p, "--allow-host-port"))
            .collect(),
        publish: strings(a.publish, "--publish"),
        net_allow: strings(a.net_allow, "--net-allow"),
        memory: a.memory.map(|v| Val::flag(v, "--memory")),
        memory_swap: a.memory_swap.map(|v| Val::flag(v, "--memory-swap")),
        pids: a.pids.map(|v| Val::flag(v, "--pids")),
        cpus: a.cpus.map(|v| Val::flag(v, "--cpus")),
        cpu_weight: a.cpu_weight.map(|v| Val::flag(v, "--cpu-weight")),
        io_weight: a.io_weight.map(|v| Val::flag(v, "--io-weight")),
        io_max: strings(a.io_max, "--io-max"),
        rlimit: strings(a.rlimit, "--rlimit"),
        timeout: a.timeout.map(|v| Val::flag(v, "--timeout")),
        disk_quota: a.disk_quota.map(|v| Val::flag(v, "--disk-quota")),
        overlay_driver: a.overlay_driver.map(|v| Val::flag(v, "--overlay-driver")),
    };
    let stats = match a.stats.as_deref() {
        None => None,
        Some("human") => Some(crate::limits::StatsFormat::Human),
        Some("json") => Some(crate::limits::StatsFormat::Json),
        Some(other) => return Err(Error::usage("--stats", other, "expected human or json")),
    };
    Ok(RunRequest {
        profiles: a.profile,
        layer,
        print_spec: a.print_spec,
        print_plan: a.print_plan,
        verbose: a.verbose,
        stats,
        name: a.name,
        detach: a.detach,
        events: a.events,
        command: a.command,
    })
}

fn clap_error(e: clap::Error) -> Result<Parsed, Error> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return Ok(Parsed::Info(e.render().to_string()));
        }
        _ => {}
    }
    let ctx = |k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let line = match e.kind() {
        ErrorKind::UnknownArgument => format!(
            "unknown option '{}'; see 'nook run --help' for the options",
            ctx(ContextKind::InvalidArg).unwrap_or_default()
        ),
        ErrorKind::MissingRequiredArgument => {
            "missing COMMAND; usage: nook run [OPTIONS] [--] COMMAND [ARGS...]".to_string()
        }
        _ => {
            // clap's first line names the flag and value; drop its prefix and
            // the usage block that follows.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            first.trim_start_matches("error: ").to_string()
        }
    };
    Err(Error::Cli(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(args: &[&str]) -> RunRequest {
        let mut v = vec!["nook", "run"];
        v.extend_from_slice(args);
        match parse(v).unwrap_or_else(|e| panic!("{e}")) {
            Parsed::Run(r) => *r,
            _ => panic!("not a run"),
        }
    }

    #[test]
    fn fs_flags_keep_command_line_order_across_kinds() {
        let r = req(&[
            "--tmpfs",
            "/a",
            "--ro-bind",
            "/usr",
            "--tmpfs",
            "/b",
            "--dir",
            "/c",
            "--",
            "true",
        ]);
        let order: Vec<_> = r.layer.fs.iter().map(|(f, v)| (*f, v.v.as_str())).collect();
        assert_eq!(
            order,
            vec![
                (FsFlag::Tmpfs, "/a"),
                (FsFlag::RoBind, "/usr"),
                (FsFlag::Tmpfs, "/b"),
                (FsFlag::Dir, "/c")
            ]
        );
    }

    #[test]
    fn command_keeps_its_own_flags() {
        let r = req(&["ls", "-l", "--bind", "x"]);
        assert_eq!(r.command, vec!["ls", "-l", "--bind", "x"]);
        assert!(r.layer.fs.is_empty());
    }

    #[test]
    fn unknown_flag_is_one_line() {
        let err = match parse(["nook", "run", "--bogus", "true"]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted --bogus"),
        };
        assert_eq!(
            err,
            "unknown option '--bogus'; see 'nook run --help' for the options"
        );
    }
}

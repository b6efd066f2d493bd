//! Command-line definitions (clap). The run flags are made from the table
//! of keys and read back into a settings `Layer`; everything `run` was
//! asked for becomes a plain [`RunRequest`]; the other subcommands are
//! plain enums for `commands`. No module after `commands` sees clap.

use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::error::Error;
use crate::settings::keys::one_of;
use crate::settings::{FromValue, Key, Kind, Layer, Val, Value};

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
    /// Say what a traced run was refused, and what would allow it
    Why(WhyArgs),
    /// Run COMMAND traced, and propose a profile that adds what it needed
    Learn(LearnArgs),
    #[command(flatten)]
    Review(ReviewCommand),
    #[command(flatten)]
    Manage(ManageCommand),
    /// Print the completion script for SHELL (install: see README)
    Completions {
        /// The shell to complete for
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print nook's manual page (roff), or write one page per subcommand
    Man {
        /// Write nook.1 and one page per subcommand (nook-run.1, ...) into
        /// DIR instead, creating DIR if needed
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

/// `nook why`: the newest traced run, or a named one.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct WhyArgs {
    /// The run's --name (default: the newest traced run)
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// The newest traced run (the default)
    #[arg(long, conflicts_with = "name")]
    pub last: bool,
    /// The trace and the suggestions as JSON
    #[arg(long)]
    pub json: bool,
}

/// `nook learn`: a traced run under a base profile, and the profile that
/// adds what it was refused.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct LearnArgs {
    /// The profile to run under and to extend (default: the one `nook run`
    /// would pick; with an existing --output FILE, that file)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Write the proposal to FILE (merged into it when it exists) instead
    /// of printing it
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<String>,
    /// Run it as the named sandbox NAME (its trace is kept as NAME too)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The command to run and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    pub command: Vec<String>,
}

/// Named sandboxes and the review of their overlay layers.
#[derive(Subcommand, Debug)]
pub enum ReviewCommand {
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
        /// Apply the flagged changes at this host path (and below it) too:
        /// `nook diff` marks what would run later on the host
        #[arg(long, value_name = "PATH")]
        allow: Vec<String>,
        /// Apply every flagged change
        #[arg(long)]
        allow_risky: bool,
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
}

/// Running sandboxes.
#[derive(Subcommand, Debug)]
pub enum ManageCommand {
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
    /// Connect your terminal to a sandbox started with -d -t; the detach
    /// keys leave it running
    Attach {
        /// The sandbox
        name: String,
        /// Two keys that detach, as ctrl-X,ctrl-Y
        #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
        detach_keys: String,
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

    /// Every setting a profile can also give: one flag per key of the
    /// table in `settings::keys`.
    #[command(flatten)]
    pub settings: SettingArgs,

    /// Keep this sandbox's overlay layers under this name, to continue,
    /// review and commit later
    #[arg(long, value_name = "NAME", help_heading = "Filesystem")]
    pub name: Option<String>,

    /// Run in the background: print the sandbox's name once the command
    /// runs, and exit (output goes to `nook logs NAME`)
    #[arg(short = 'd', long, help_heading = "Management")]
    pub detach: bool,
    /// Give the command a terminal of its own (a pty made in the
    /// sandbox), even when stdin is not a terminal. The default: one when
    /// stdin and stdout are terminals
    #[arg(
        short = 't',
        long,
        conflicts_with = "no_tty",
        help_heading = "Management"
    )]
    pub tty: bool,
    /// Never a terminal of its own: the command gets nook's descriptors as
    /// they are
    #[arg(long, help_heading = "Management")]
    pub no_tty: bool,
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
    /// Record what the command asked for and did not get (paths outside
    /// the view, refused system calls and connections, limits hit), for
    /// `nook why` and `nook learn`; slower while it runs
    #[arg(long, help_heading = "Diagnostics")]
    pub trace: bool,
    /// With --trace, also watch the calls that only look at a path (stat,
    /// access, readlink): complete, but a build runs about 1.8x slower
    #[arg(long, help_heading = "Diagnostics")]
    pub trace_stat: bool,

    /// The command to run and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    pub command: Vec<String>,
}

/// What `--stats` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatsFormat {
    Human,
    Json,
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
    pub stats: Option<StatsFormat>,
    /// `--name`: the sandbox whose overlay layers this run uses.
    pub name: Option<String>,
    pub detach: bool,
    /// `-t` (Some(true)), `--no-tty` (Some(false)), or decided by whether
    /// stdin and stdout are terminals.
    pub tty: Option<bool>,
    pub events: Option<String>,
    /// `--trace`: record the run's refusals.
    pub trace: bool,
    /// `--trace-stat`: and watch looks too (implies `trace`).
    pub trace_stat: bool,
    pub command: Vec<String>,
}

pub enum Parsed {
    Run(Box<RunRequest>),
    Profile(ProfileCommand),
    Review(ReviewCommand),
    Manage(ManageCommand),
    Doctor {
        json: bool,
    },
    Why(WhyArgs),
    Learn(LearnArgs),
    Completions(clap_complete::Shell),
    /// `nook man`: to stdout, or the pages written into `dir`.
    Man {
        dir: Option<std::path::PathBuf>,
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
        Command::Why(a) => Ok(Parsed::Why(a)),
        Command::Learn(a) => Ok(Parsed::Learn(a)),
        Command::Review(c) => Ok(Parsed::Review(c)),
        Command::Manage(c) => Ok(Parsed::Manage(c)),
        Command::Completions { shell } => Ok(Parsed::Completions(shell)),
        Command::Man { dir } => Ok(Parsed::Man { dir }),
    }
}

/// The settings flags, added to `nook run` from the key table.
#[derive(Debug, Clone, Default)]
pub struct SettingArgs;

impl clap::FromArgMatches for SettingArgs {
    // The values are read by `settings_layer`, which needs the argument
    // indices and gives nook's own errors.
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(SettingArgs)
    }

    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        Ok(())
    }
}

impl clap::Args for SettingArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(Key::ALL.iter().map(|&k| key_arg(k)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

fn key_arg(key: Key) -> Arg {
    let d = key.def();
    let mut arg = Arg::new(d.name())
        .long(d.name())
        .help(d.help)
        .help_heading(d.heading);
    if let Some(c) = d.short {
        arg = arg.short(c);
    }
    if d.kind == Kind::Bool {
        return arg.action(ArgAction::SetTrue);
    }
    arg = arg.value_name(d.value_name).action(if d.list {
        ArgAction::Append
    } else {
        ArgAction::Set
    });
    match d.kind {
        Kind::U16 => arg.value_parser(clap::value_parser!(u16)),
        Kind::U32 => arg.value_parser(clap::value_parser!(u32)),
        Kind::U64 => arg.value_parser(clap::value_parser!(u64)),
        Kind::I32 => arg.value_parser(clap::value_parser!(i32)),
        Kind::F64 => arg.value_parser(clap::value_parser!(f64)),
        _ => arg,
    }
}

/// The settings given as flags, as the last layer: in command-line order,
/// which is what makes "later covers earlier" work for filesystem entries
/// (clap keeps each flag's values apart; the order across flags comes from
/// their argument indices).
fn settings_layer(m: &ArgMatches) -> Result<Layer, Error> {
    let mut given: Vec<(usize, Key, Value)> = Vec::new();
    for &key in Key::ALL {
        let d = key.def();
        let id = d.name();
        if m.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let at: Vec<usize> = m.indices_of(id).map(Iterator::collect).unwrap_or_default();
        let values: Vec<Value> = match d.kind {
            Kind::Bool => vec![Value::Bool(true)],
            Kind::U16 => ints::<u16>(m, id),
            Kind::U32 => ints::<u32>(m, id),
            Kind::U64 => ints::<u64>(m, id),
            Kind::I32 => ints::<i32>(m, id),
            Kind::F64 => m
                .get_many::<f64>(id)
                .into_iter()
                .flatten()
                .map(|&f| Value::Float(f))
                .collect(),
            Kind::Str(_) | Kind::Fs(..) | Kind::Choice { .. } => {
                let mut out = Vec::new();
                for s in m.get_many::<String>(id).into_iter().flatten() {
                    if let Kind::Choice { words, .. } = d.kind
                        && !words.contains(&s.as_str())
                    {
                        return Err(Error::usage(
                            d.flag,
                            s,
                            format!("expected {}", one_of(words, false)),
                        ));
                    }
                    out.push(Value::Str(s.clone()));
                }
                out
            }
        };
        for (i, v) in values.into_iter().enumerate() {
            given.push((at.get(i).copied().unwrap_or(0), key, v));
        }
    }
    given.sort_by_key(|(i, _, _)| *i);
    let mut layer = Layer::default();
    for (_, key, v) in given {
        layer.push(key, Val::flag(v, key.flag()));
    }
    Ok(layer)
}

fn ints<T: FromValue + Copy + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> Vec<Value> {
    m.get_many::<T>(id)
        .into_iter()
        .flatten()
        .map(|&n| n.into_value())
        .collect()
}

fn run_request(a: RunArgs, m: &ArgMatches) -> Result<RunRequest, Error> {
    let layer = settings_layer(m)?;
    let stats = match a.stats.as_deref() {
        None => None,
        Some("human") => Some(StatsFormat::Human),
        Some("json") => Some(StatsFormat::Json),
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
        tty: if a.tty {
            Some(true)
        } else if a.no_tty {
            Some(false)
        } else {
            None
        },
        events: a.events,
        trace: a.trace || a.trace_stat,
        trace_stat: a.trace_stat,
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
        ErrorKind::MissingRequiredArgument => match e.get(ContextKind::Usage) {
            // Another subcommand than run: its own usage line.
            Some(ContextValue::StyledStr(u)) if !u.to_string().contains("nook run") => {
                let missing = match e.get(ContextKind::InvalidArg) {
                    Some(ContextValue::Strings(v)) => v.join(", "),
                    _ => "an argument".to_string(),
                };
                let usage = u.to_string();
                let usage = usage.lines().next().unwrap_or("").trim();
                format!(
                    "missing {missing}; usage: {}",
                    usage.strip_prefix("Usage: ").unwrap_or(usage)
                )
            }
            _ => "missing COMMAND; usage: nook run [OPTIONS] [--] COMMAND [ARGS...]".to_string(),
        },
        _ => {
            // clap's first line names the flag and value; drop its prefix and
            // the usage block that follows, but keep what is expected.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let mut line = first.trim_start_matches("error: ").to_string();
            if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
                line.push_str(&format!("; expected one of {}", valid.join(", ")));
            }
            line
        }
    };
    Err(Error::Cli(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::FsFlag;

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
        let fs = r.layer.fs();
        let order: Vec<_> = fs.iter().map(|(f, v)| (*f, v.v.as_str())).collect();
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
        assert_eq!(r.layer, Layer::default());
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

    /// The run flags that are not settings (they say how to run, not what
    /// the sandbox is, so no profile can give them).
    const RUN_ONLY: [&str; 13] = [
        "profile",
        "name",
        "detach",
        "tty",
        "no-tty",
        "events",
        "stats",
        "print-spec",
        "print-plan",
        "verbose",
        "trace",
        "trace-stat",
        "command",
    ];

    #[test]
    fn every_key_is_a_run_flag_and_every_run_flag_a_key() {
        let cmd = Cli::command();
        let run = cmd.find_subcommand("run").expect("run subcommand");
        for &key in Key::ALL {
            let arg = run
                .get_arguments()
                .find(|a| a.get_long() == Some(key.name()))
                .unwrap_or_else(|| panic!("{} is not a flag of nook run", key.flag()));
            assert_eq!(arg.get_short(), key.def().short, "{}", key.flag());
        }
        for arg in run.get_arguments() {
            let id = arg.get_long().unwrap_or_else(|| arg.get_id().as_str());
            if id == "help" {
                continue;
            }
            assert!(
                Key::ALL.iter().any(|k| k.name() == id) || RUN_ONLY.contains(&id),
                "--{id} is neither a key of the settings table nor a run-only flag"
            );
        }
    }

    /// README's key table: each row names profile keys (first column, in
    /// backquotes, `[section]` first when not at the top) and their flags
    /// (second column).
    #[test]
    fn readme_key_table_matches_the_table_of_keys() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("| profile key | flag | meaning |")
            .expect("README has the key table");
        let mut keys_seen = Vec::new();
        let mut flags_text = String::new();
        for row in readme[start..].lines().skip(2) {
            let Some(row) = row.strip_prefix('|') else {
                break;
            };
            let cols: Vec<&str> = row.split(" | ").collect();
            flags_text.push_str(cols.get(1).copied().unwrap_or(""));
            for quoted in cols[0].split('`').skip(1).step_by(2) {
                let (section, rest) = match quoted.strip_prefix('[') {
                    Some(r) => {
                        let (name, rest) = r.split_once("] ").expect("[section] key");
                        (Some(name), rest)
                    }
                    None => (None, quoted),
                };
                let name = rest.split(" =").next().unwrap_or(rest).trim();
                if name == "extends" {
                    continue;
                }
                let key = Key::ALL
                    .iter()
                    .find(|k| k.name() == name)
                    .unwrap_or_else(|| panic!("README names `{name}`, which is not a key"));
                assert_eq!(
                    key.def().section.table(),
                    section,
                    "README gives `{name}` in the wrong section"
                );
                keys_seen.push(*key);
            }
        }
        for &key in Key::ALL {
            assert!(
                keys_seen.contains(&key),
                "README's key table lacks `{}`",
                key.name()
            );
            assert!(
                flags_text.contains(&format!("`{}", key.flag())),
                "README's key table lacks the flag {}",
                key.flag()
            );
        }
    }
}

//! Shell completions and the man page (issue 18), made from the same clap
//! definitions as `--help`: every subcommand and every `nook run` flag that
//! `--help` lists is completed by bash, zsh and fish and documented by
//! `nook man`. The lists are read from the real binary's `--help`, so a
//! flag added later (most run flags are built from the table of keys) is
//! checked without touching this file. Bash, fish and groff also load what
//! nook printed, to show it works and not only that it names things.

mod common;

use std::process::Command;

use common::{TestEnv, require, which};

/// The subcommands one `--help` lists under "Commands:", without `help`.
fn commands_in_help(env: &TestEnv, args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.push("--help");
    let out = env.nook(&all).output();
    out.ok();
    out.stdout
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every subcommand, nested ones too: `["run"]`, `["profile", "list"]`.
fn subcommands(env: &TestEnv) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for top in commands_in_help(env, &[]) {
        let nested = commands_in_help(env, &[&top]);
        out.push(vec![top.clone()]);
        out.extend(nested.into_iter().map(|n| vec![top.clone(), n]));
    }
    let names: Vec<String> = out.iter().map(|p| p.join(" ")).collect();
    for known in [
        "run",
        "profile",
        "profile list",
        "profile import-firejail",
        "doctor",
        "why",
        "learn",
        "diff",
        "commit",
        "discard",
        "rm",
        "ls",
        "ps",
        "exec",
        "stop",
        "kill",
        "logs",
        "completions",
        "man",
    ] {
        assert!(
            names.iter().any(|n| n == known),
            "`nook --help` read as {names:?}: no {known}"
        );
    }
    out
}

/// Every long flag `nook run --help` lists (`--ro-bind`, ...). A flag's
/// line starts with `  -x, --long` or `      --long`; a wrapped
/// description would be indented further.
fn run_flags(env: &TestEnv) -> Vec<String> {
    let out = env.nook(&["run", "--help"]).output();
    out.ok();
    let flags: Vec<String> = out
        .stdout
        .lines()
        .map(|l| (l.len() - l.trim_start().len(), l.trim_start()))
        .filter(|(indent, l)| *indent <= 6 && l.starts_with('-'))
        .filter_map(|(_, l)| {
            let w = l.split([' ', ',']).find(|w| w.starts_with("--"))?;
            // `--stats[=<FORMAT>]`, `--uid <N>`
            let name: String = w[2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(format!("--{name}"))
        })
        .collect();
    for known in [
        "--profile",
        "--ro-bind",
        "--net",
        "--memory",
        "--print-spec",
    ] {
        assert!(
            flags.iter().any(|f| f == known),
            "`nook run --help` read as {flags:?}: no {known}"
        );
    }
    assert!(flags.len() > 40, "{flags:?}");
    flags
}

fn script(env: &TestEnv, shell: &str) -> String {
    let out = env.nook(&["completions", shell]).output();
    out.ok();
    assert_eq!(out.stderr, "", "{out}");
    out.stdout
}

/// The lines of `text` from the first line equal to `start` (trimmed) up
/// to the next `;;` line.
fn case_block<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text
        .lines()
        .position(|l| l.trim() == start)
        .unwrap_or_else(|| panic!("no {start} in\n{text}"));
    let from: usize = text.lines().take(at).map(|l| l.len() + 1).sum();
    let rest = &text[from..];
    let to = rest
        .find("\n;;")
        .or_else(|| rest.find(";;"))
        .unwrap_or(rest.len());
    &rest[..to]
}

#[test]
fn bash_completes_every_subcommand_and_run_flag() {
    let env = TestEnv::new("compl-bash");
    let bash = script(&env, "bash");
    for path in subcommands(&env) {
        // The dispatch on `parent,word` that enters the subcommand.
        let (word, parents) = path.split_last().unwrap();
        let parent: String = std::iter::once("nook".to_string())
            .chain(parents.iter().map(|p| format!("__subcmd__{p}")))
            .collect();
        let entry = format!("{parent},{word})");
        assert!(bash.contains(&entry), "bash lacks {entry}");
    }
    // Offered in `nook run`'s own context.
    let run = case_block(&bash, "nook__subcmd__run)");
    let offered: Vec<&str> = run.split(|c: char| c.is_whitespace() || c == '"').collect();
    for flag in run_flags(&env) {
        assert!(offered.contains(&flag.as_str()), "bash: run lacks {flag}");
    }
}

#[test]
fn zsh_completes_every_subcommand_and_run_flag() {
    let env = TestEnv::new("compl-zsh");
    let zsh = script(&env, "zsh");
    for path in subcommands(&env) {
        let entry = format!("'{}:", path.last().unwrap());
        assert!(zsh.contains(&entry), "zsh lacks {entry}");
    }
    let run = case_block(&zsh, "(run)");
    for flag in run_flags(&env) {
        // '--ro-bind=[help]:SRC:...', '*--publish=[...]', '--trace[...]',
        // '(--no-tty)--tty[...]' (with the flags it excludes)
        let named = ["'", "'*", ")"]
            .iter()
            .flat_map(|p| ["[", "=["].map(|s| format!("{p}{flag}{s}")))
            .any(|form| run.contains(&form));
        assert!(named, "zsh: run lacks {flag}");
    }
    if require(which("zsh"), "zsh is not installed (.ci/setup installs it)") {
        let path = env.path("nook.zsh");
        env.write(&path, &zsh);
        let out = Command::new("zsh").arg("-n").arg(&path).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

#[test]
fn fish_completes_every_subcommand_and_run_flag() {
    let env = TestEnv::new("compl-fish");
    let fish = script(&env, "fish");
    for path in subcommands(&env) {
        let entry = format!("-a \"{}\"", path.last().unwrap());
        assert!(fish.contains(&entry), "fish lacks {entry}");
    }
    let run: Vec<Vec<&str>> = fish
        .lines()
        .filter(|l| l.contains("__fish_nook_using_subcommand run\""))
        .map(|l| l.split_whitespace().collect())
        .collect();
    for flag in run_flags(&env) {
        let long = &flag[2..];
        let named = run
            .iter()
            .any(|words| words.windows(2).any(|w| w == ["-l", long]));
        assert!(named, "fish: run lacks {flag}");
    }
}

/// What a shell offers for a command line, each candidate's first word.
fn offered(out: std::process::Output) -> Vec<String> {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The scripts, loaded by the shells themselves: `nook run --` offers
/// every run flag, `nook pro` offers profile, `nook profile ` its own.
#[test]
fn the_shells_load_the_scripts_and_offer_the_flags() {
    let env = TestEnv::new("compl-load");
    let flags = run_flags(&env);
    let path = env.path("nook.bash");
    env.write(&path, &script(&env, "bash"));
    let bash = |line: &[&str]| {
        // _nook COMMAND WORD PREVIOUS, as `complete -F` calls it.
        let words = line.join(" ");
        let last = line.len() - 1;
        let snippet = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={last}; \
             _nook nook \"${{COMP_WORDS[{last}]}}\" \"${{COMP_WORDS[{}]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display(),
            last - 1
        );
        offered(
            Command::new("bash")
                .arg("-c")
                .arg(snippet)
                .output()
                .unwrap(),
        )
    };
    let run = bash(&["nook", "run", "--"]);
    for flag in &flags {
        assert!(
            run.contains(flag),
            "bash offers no {flag} for `nook run --`"
        );
    }
    assert!(bash(&["nook", "pro"]).contains(&"profile".to_string()));
    assert!(bash(&["nook", "profile", "''"]).contains(&"import-firejail".to_string()));

    if require(
        which("fish"),
        "fish is not installed (.ci/setup installs it)",
    ) {
        let path = env.path("nook.fish");
        env.write(&path, &script(&env, "fish"));
        let fish = |line: &str| {
            let snippet = format!("source {}; complete -C '{line}'", path.display());
            offered(
                Command::new("fish")
                    .arg("-c")
                    .arg(snippet)
                    .output()
                    .unwrap(),
            )
        };
        let run = fish("nook run --");
        for flag in &flags {
            assert!(
                run.contains(flag),
                "fish offers no {flag} for `nook run --`"
            );
        }
        assert!(fish("nook pro").contains(&"profile".to_string()));
        assert!(fish("nook profile ").contains(&"import-firejail".to_string()));
    }
}

/// `nook man`: one roff page (after the string definition every
/// clap_mangen page starts with, `.TH` comes first), with a section for
/// each subcommand and every run flag in `nook run`'s section; groff
/// formats it without a warning.
#[test]
fn the_man_page_covers_every_subcommand_and_run_flag() {
    let env = TestEnv::new("compl-man");
    let out = env.nook(&["man"]).output();
    out.ok();
    assert_eq!(out.stderr, "", "{out}");
    let page = &out.stdout;
    let first = page
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap();
    assert!(first.starts_with(".TH nook 1 "), "{first}");
    for path in subcommands(&env) {
        let heading = format!(".SH \"NOOK {}\"", path.join(" ").to_uppercase());
        assert!(page.lines().any(|l| l == heading), "no section {heading}");
    }
    let from = page.find(".SH \"NOOK RUN\"").unwrap();
    let run = &page[from..];
    let run = &run[..run[1..].find("\n.SH ").unwrap_or(run.len())];
    for flag in run_flags(&env) {
        // roff escapes each dash: \fB\-\-ro\-bind\fR
        let roff = format!("\\fB{}\\fR", flag.replace('-', "\\-"));
        assert!(run.contains(&roff), "nook run's section lacks {flag}");
    }
    if require(
        which("groff"),
        "groff is not installed (.ci/setup installs it)",
    ) {
        let path = env.path("nook.1");
        env.write(&path, page);
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    }
}

/// `nook man --dir DIR`: nook.1 is the page `nook man` prints, and each
/// subcommand has its own page under the name man(1) looks up.
#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let env = TestEnv::new("compl-mandir");
    let dir = env.path("share/man/man1");
    env.nook(&["man", "--dir", dir.to_str().unwrap()])
        .output()
        .ok();
    let page = env.nook(&["man"]).output().stdout;
    assert_eq!(std::fs::read_to_string(dir.join("nook.1")).unwrap(), page);
    for path in subcommands(&env) {
        let file = dir.join(format!("nook-{}.1", path.join("-")));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(text.contains(".TH nook-"), "{}", file.display());
    }
    let run = std::fs::read_to_string(dir.join("nook-run.1")).unwrap();
    for flag in run_flags(&env) {
        assert!(
            run.contains(&flag.replace('-', "\\-")),
            "nook-run.1 lacks {flag}"
        );
    }

    // A DIR that can't be made: one line naming it, nothing written.
    let file = env.path("a-file");
    env.write(&file, "");
    let out = env
        .nook(&["man", "--dir", &format!("{}/man1", file.display())])
        .output();
    out.expect_code(125);
    assert_eq!(
        out.stderr,
        format!(
            "nook: error: creating directory {}/man1: ENOTDIR (Not a directory)\n",
            file.display()
        ),
        "{out}"
    );
}

/// A shell nook has no script for: clap's one line, as every usage error
/// (exit 125, see tests/errors.rs), naming the shells there are, and
/// nothing on stdout.
#[test]
fn an_unknown_shell_is_one_line() {
    let env = TestEnv::new("compl-badshell");
    let out = env.nook(&["completions", "tcsh"]).output();
    out.expect_code(125);
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(
        out.stderr,
        "nook: error: invalid value 'tcsh' for '<SHELL>'; expected one of bash, elvish, fish, powershell, zsh\n",
        "{out}"
    );
    env.nook(&["completions"]).output().expect_code(125);
}

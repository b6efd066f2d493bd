//! `nook completions` and `nook man`: the command line described for
//! shells and for man(1), made from the very `clap::Command` that parses it
//! and prints `--help` ([`Cli::command`]), in which the run flags built
//! from the table of keys are already flattened in. Nothing here lists a
//! flag or a subcommand by hand, so neither can fall behind.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use roff::{Roff, bold, roman};

use crate::cli::Cli;
use crate::error::{Context, Error, Step};

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "nook", &mut script);
    String::from_utf8(script).expect("help texts are UTF-8")
}

/// The one page `nook man` prints: nook(1) with the list of subcommands,
/// then a section for each subcommand (nested ones too) with its synopsis,
/// description and every option under the headings `--help` uses.
pub fn man_page() -> String {
    let cmd = man_command();
    let top = man(&cmd);
    // Every rendering starts with the definition of `\*(Aq` (the
    // apostrophe); the page has it once, at the top.
    let mut page = Roff::new().render();
    let head: [Part; 5] = [
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ];
    for part in head {
        page.push_str(&render(&top, part));
    }
    let mut list = Roff::new();
    list.control("SH", ["SUBCOMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        list.control("TP", []).text([bold(full_name(sub))]);
        if let Some(about) = sub.get_about() {
            list.text([roman(about.to_string())]);
        }
    }
    page.push_str(&without_preamble(&list.render()));
    for sub in subcommands(&cmd) {
        page.push_str(&subcommand_section(sub));
    }
    page.push_str(&render(&top, Man::render_version_section));
    page
}

/// `nook man --dir DIR`: DIR/nook.1 (the page `nook man` prints) and one
/// page per subcommand, named as man(1) looks them up: `nook-run.1`,
/// `nook-profile-list.1`.
pub fn write_man_pages(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).step(Step::CreateDir, Some(dir))?;
    let cmd = man_command();
    let mut pages = vec![("nook.1".to_string(), man_page().into_bytes())];
    for sub in subcommands(&cmd) {
        let man = man(sub);
        let mut page = Vec::new();
        man.render(&mut page).expect("writing to a Vec");
        pages.push((man.get_filename(), page));
    }
    for (name, text) in pages {
        let path = dir.join(name);
        std::fs::write(&path, text).step(Step::Write, Some(&path))?;
    }
    Ok(())
}

/// The command as the pages show it: built, so that each subcommand knows
/// its full name (`nook run`, file name `nook-run`), and without the `help`
/// subcommands, which `--help` covers.
fn man_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The page of one command; each page's footer names nook and its version
/// (clap_mangen would name the subcommand, without one).
fn man(cmd: &clap::Command) -> Man {
    Man::new(cmd.clone()).source(format!("nook {}", env!("CARGO_PKG_VERSION")))
}

/// Every subcommand below `cmd`, depth first, in `--help`'s order.
fn subcommands(cmd: &clap::Command) -> Vec<&clap::Command> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out.push(sub);
        out.extend(subcommands(sub));
    }
    out
}

/// One subcommand as a section of the single page: `.SH NOOK RUN`, its
/// synopsis and description, and its option headings as subsections.
fn subcommand_section(sub: &clap::Command) -> String {
    let man = man(sub);
    let mut heading = Roff::new();
    heading.control("SH", [full_name(sub).to_uppercase().as_str()]);
    let mut text = without_preamble(&heading.render());
    text.push_str(&without_heading(&render(
        &man,
        Man::render_synopsis_section,
    )));
    text.push_str(".PP\n");
    text.push_str(&without_heading(&render(
        &man,
        Man::render_description_section,
    )));
    for line in render(&man, Man::render_options_section).lines() {
        match line.strip_prefix(".SH ") {
            Some(heading) => text.push_str(&format!(".SS {heading}\n")),
            None => text.push_str(&format!("{line}\n")),
        }
    }
    text
}

/// `nook run`, `nook profile list`.
fn full_name(cmd: &clap::Command) -> &str {
    cmd.get_bin_name().unwrap_or(cmd.get_name())
}

/// One of clap_mangen's renderings: a whole page or one section.
type Part = fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>;

/// A rendering, without the preamble.
fn render(man: &Man, part: Part) -> String {
    let mut out = Vec::new();
    part(man, &mut out).expect("writing to a Vec");
    without_preamble(&String::from_utf8(out).expect("help texts are UTF-8"))
}

fn without_preamble(roff: &str) -> String {
    let preamble = Roff::new().render();
    roff.strip_prefix(&preamble).unwrap_or(roff).to_string()
}

/// A section without its `.SH` line.
fn without_heading(section: &str) -> String {
    section
        .lines()
        .filter(|l| !l.starts_with(".SH "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Key;

    fn names(cmd: &clap::Command) -> Vec<String> {
        subcommands(cmd)
            .iter()
            .map(|s| s.get_bin_name().unwrap_or(s.get_name()).to_string())
            .collect()
    }

    #[test]
    fn the_page_has_a_section_for_each_subcommand_and_every_key_flag() {
        let page = man_page();
        let cmd = man_command();
        let all = names(&cmd);
        assert!(all.contains(&"nook run".to_string()), "{all:?}");
        assert!(all.contains(&"nook profile list".to_string()), "{all:?}");
        assert!(!all.iter().any(|n| n.ends_with(" help")), "{all:?}");
        for name in &all {
            let heading = format!(".SH \"{}\"\n", name.to_uppercase());
            assert!(page.contains(&heading), "no section {heading:?}");
        }
        // The apostrophe is defined once, at the top, and .TH follows it.
        let rest = page.strip_prefix(&Roff::new().render()).unwrap();
        assert!(rest.starts_with(".TH nook 1 "), "{page}");
        assert!(!rest.contains(".ds Aq"), "{page}");
        // roff escapes the dashes of option names: `\-\-ro\-bind`.
        for &key in Key::ALL {
            let flag = key.flag().replace('-', "\\-");
            assert!(page.contains(&flag), "the page lacks {}", key.flag());
        }
    }

    #[test]
    fn every_shell_completes_every_key_flag() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = completions(shell);
            for &key in Key::ALL {
                let word = match shell {
                    Shell::Fish => format!("-l {}", key.name()),
                    _ => key.flag().to_string(),
                };
                assert!(script.contains(&word), "{shell}: no {word}");
            }
        }
    }
}

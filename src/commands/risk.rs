//! What in a sandbox's overlay changes would run later on the host, outside
//! any sandbox (issue 14): the review's flags. `nook diff` shows them and
//! `nook commit` refuses the flagged changes unless the user names them.
//!
//! A change is flagged when
//! - its path is protected (`profile::protected`, the one list of what a
//!   host program runs or obeys later), except a git config file that is
//!   still a regular file: that one is judged by its keys, below, so that
//!   `git branch -u` or `git remote add` inside does not block a commit;
//! - it is a git config file (`.git/config`, a submodule's or worktree's
//!   `config`, `config.worktree`) whose new text adds or changes a key that
//!   makes git run a command or load other config
//!   (`protected::risky_changes`); one unreadable or too large is flagged;
//! - it creates an executable file, changes an executable file's content,
//!   or sets an execute, setuid or setgid bit on a file (commit drops
//!   setuid and setgid, but a sandbox that tries is worth a look);
//! - it is a symlink whose target leaves the tree: absolute outside the
//!   overlay root, or relative with more `..` than it is deep. Judged on
//!   the text of the target, as a reader of the review would: a relative
//!   target through another symlink of the host tree is not resolved.
//!
//! [`risks`] decides from the facts alone (unit-tested below); [`assess`]
//! gathers the facts, reading the git config files through the overlay's
//! descriptor-based tree helpers, never through a symlink.

use std::borrow::Cow;
use std::path::{Component, Path};

use serde::Serialize;

use crate::overlay::review::{self, Change, FileType, Kind};
use crate::profile::protected::{self, Protection};

/// What kind of later execution a flag is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskKind {
    Protected,
    GitConfig,
    Executable,
    Setuid,
    Setgid,
    SymlinkOutside,
}

/// One flag on one change, with the reason shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Risk {
    pub kind: RiskKind,
    /// The git config key, for `GitConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub reason: String,
}

/// The two sides of a changed git config file, as far as they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitConfig {
    /// The host's text before (empty when it had none) and the new text.
    Texts { before: String, after: String },
    /// Not read (too large, an I/O error): flagged, never taken as harmless.
    Unread(String),
}

/// Git config files larger than this are flagged unread.
const CONFIG_LIMIT: u64 = 4 << 20;

/// Values longer than this are cut in reasons.
const VALUE_SHOWN: usize = 80;

/// Whether `rel` (relative to the overlay root) is a config file git reads
/// from the tree's git directory: `.git/config`, `.git/config.worktree`,
/// and the same in a submodule's (`.git/modules/NAME/`, names may hold
/// `/`) or a linked worktree's (`.git/worktrees/NAME/`) git directory.
pub fn is_git_config(rel: &Path) -> bool {
    let parts: Vec<&str> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_str().unwrap_or("\u{fffd}")),
            _ => None,
        })
        .collect();
    let Some((last, dirs)) = parts.split_last() else {
        return false;
    };
    if !matches!(*last, "config" | "config.worktree") || dirs.first() != Some(&".git") {
        return false;
    }
    match dirs {
        [_] => true,
        [_, "modules", rest @ ..] => !rest.is_empty(),
        [_, "worktrees", _] => true,
        _ => false,
    }
}

/// The flags of one change. `root` is the overlay's host directory (for
/// symlink targets), `git` the config texts when [`is_git_config`] holds
/// and the change leaves a regular file.
pub fn risks(
    c: &Change,
    root: &Path,
    protection: &Protection,
    git: Option<&GitConfig>,
) -> Vec<Risk> {
    let mut out = Vec::new();
    let leaves_file = c.kind != Kind::Deleted && c.file_type == FileType::File;
    let judged_by_keys = leaves_file && is_git_config(&c.path);
    if judged_by_keys {
        if !c.metadata_only {
            out.extend(git_risks(git));
        }
    } else if let Some(why) = protection.reason(&c.path) {
        out.push(Risk {
            kind: RiskKind::Protected,
            key: None,
            reason: format!("protected: {why}"),
        });
    }
    if leaves_file && let Some(mode) = c.mode {
        out.extend(mode_risks(c, mode));
    }
    if c.kind != Kind::Deleted
        && c.file_type == FileType::Symlink
        && let Some(target) = &c.target
        && leaves_tree(root, &c.path, target)
    {
        out.push(Risk {
            kind: RiskKind::SymlinkOutside,
            key: None,
            reason: format!("symlink to {}, outside the tree", target.display()),
        });
    }
    out
}

fn git_risks(git: Option<&GitConfig>) -> Vec<Risk> {
    match git {
        None => vec![unread("not read")],
        Some(GitConfig::Unread(why)) => vec![unread(why)],
        Some(GitConfig::Texts { before, after }) => protected::risky_changes(before, after)
            .into_iter()
            .map(|r| {
                let shown = match &r.value {
                    Some(v) => format!("{} = {}", r.key, cut(v)),
                    None => r.key.clone(),
                };
                Risk {
                    kind: RiskKind::GitConfig,
                    reason: format!("{shown}: {}", r.reason),
                    key: Some(r.key),
                }
            })
            .collect(),
    }
}

fn unread(why: &str) -> Risk {
    Risk {
        kind: RiskKind::GitConfig,
        key: None,
        reason: format!("git config not checked ({why}): git obeys whatever it holds"),
    }
}

fn cut(v: &str) -> Cow<'_, str> {
    match v.char_indices().nth(VALUE_SHOWN) {
        Some((i, _)) => format!("{}...", &v[..i]).into(),
        None => v.into(),
    }
}

/// Execute, setuid and setgid bits on a file the change leaves.
fn mode_risks(c: &Change, mode: u32) -> Vec<Risk> {
    // A file where the host had none, or had another type: all bits are new.
    let old = match (c.kind, c.replaces) {
        (Kind::Modified, None) => c.old_mode,
        _ => None,
    };
    let risk = |kind, reason: String| Risk {
        kind,
        key: None,
        reason,
    };
    let mut out = Vec::new();
    let exec = mode & 0o111 != 0;
    match old {
        None if exec => out.push(risk(
            RiskKind::Executable,
            format!("new executable file (mode {mode:04o})"),
        )),
        Some(o) if exec && o & 0o111 == 0 => out.push(risk(
            RiskKind::Executable,
            format!("made executable (mode {o:04o} to {mode:04o})"),
        )),
        Some(_) if exec && !c.metadata_only => out.push(risk(
            RiskKind::Executable,
            "executable file changed".to_string(),
        )),
        _ => {}
    }
    let gained = |bit: u32| mode & bit != 0 && old.is_none_or(|o| o & bit == 0);
    if gained(0o4000) {
        out.push(risk(
            RiskKind::Setuid,
            format!("setuid bit set (mode {mode:04o}; commit drops it)"),
        ));
    }
    if gained(0o2000) {
        out.push(risk(
            RiskKind::Setgid,
            format!("setgid bit set (mode {mode:04o}; commit drops it)"),
        ));
    }
    out
}

/// Whether the symlink at `rel` (below `root`) with `target` points outside
/// `root`, by the text of the target.
fn leaves_tree(root: &Path, rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return !crate::spec::normalize(target).starts_with(crate::spec::normalize(root));
    }
    // Depth below the root of the link's directory, then walk the target.
    let mut depth: usize = rel
        .parent()
        .map(|p| {
            p.components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .count()
        })
        .unwrap_or(0);
    for comp in target.components() {
        match comp {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => {}
        }
    }
    false
}

/// The protection the review applies to an overlay of `root`: the built-in
/// list, with the `$HOME` entries that fall inside it.
/// The protection a review applies: the built-in list, with the patterns
/// the sandbox ran under (patterns that no longer parse are left out: the
/// built-in list still applies).
pub fn protection(
    root: &Path,
    home: &Path,
    protect: &[String],
    unprotect: &[String],
) -> Protection {
    let mut p = Protection::new(protect, unprotect)
        .or_else(|_| Protection::new(&[], &[]))
        .expect("the built-in patterns parse");
    p.add_home(root, home);
    p
}

/// The flags of each of `changes` (in the same order) of the overlay of
/// `lower` recorded in `upper`, reading the git config files it touches.
pub fn assess(
    lower: &Path,
    upper: &Path,
    changes: &[Change],
    protection: &Protection,
) -> Vec<Vec<Risk>> {
    changes
        .iter()
        .map(|c| {
            let git = (c.kind != Kind::Deleted
                && c.file_type == FileType::File
                && !c.metadata_only
                && is_git_config(&c.path))
            .then(|| git_texts(lower, upper, &c.path));
            risks(c, lower, protection, git.as_ref())
        })
        .collect()
}

fn git_texts(lower: &Path, upper: &Path, rel: &Path) -> GitConfig {
    let read = |root: &Path| review::read_file(root, rel, CONFIG_LIMIT);
    match (read(lower), read(upper)) {
        (Ok(before), Ok(Some(after))) => GitConfig::Texts {
            before: String::from_utf8_lossy(&before.unwrap_or_default()).into_owned(),
            after: String::from_utf8_lossy(&after).into_owned(),
        },
        (Ok(_), Ok(None)) => GitConfig::Unread("no regular file in the upper layer".into()),
        (Err(e), _) | (_, Err(e)) => GitConfig::Unread(e.to_string()),
    }
}

/// The reasons of `risks`, one line, as `diff` and `commit` print them.
pub fn shown(risks: &[Risk]) -> String {
    risks
        .iter()
        .map(|r| r.reason.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(path: &str, kind: Kind, file_type: FileType) -> Change {
        crate::overlay::review::change(Path::new(path), kind, file_type)
    }

    fn file(path: &str, kind: Kind, mode: u32, old: Option<u32>, metadata_only: bool) -> Change {
        Change {
            mode: Some(mode),
            old_mode: old,
            metadata_only,
            ..ch(path, kind, FileType::File)
        }
    }

    fn link(path: &str, target: &str) -> Change {
        Change {
            target: Some(target.into()),
            ..ch(path, Kind::Added, FileType::Symlink)
        }
    }

    fn texts(before: &str, after: &str) -> GitConfig {
        GitConfig::Texts {
            before: before.into(),
            after: after.into(),
        }
    }

    const HOOKS: &str = "[core]\n\trepositoryformatversion = 0\n";

    #[test]
    fn the_classifier_table() {
        use Kind::*;
        use RiskKind as R;
        let root = Path::new("/home/u/proj");
        let p = protection(root, Path::new("/home/u"), &[], &[]);
        let fsmonitor = texts(HOOKS, &format!("{HOOKS}\tfsmonitor = touch /tmp/pwned\n"));
        let harmless = texts(
            HOOKS,
            &format!("{HOOKS}[branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n"),
        );
        let unread = GitConfig::Unread("too large".into());
        let dir = |path: &str| Change {
            mode: Some(0o755),
            ..ch(path, Added, FileType::Dir)
        };
        #[rustfmt::skip]
        let table: Vec<(&str, Change, Option<&GitConfig>, Vec<RiskKind>)> = vec![
            ("plain new file", file("src/main.rs", Added, 0o644, None, false), None, vec![]),
            ("plain edit", file("README", Modified, 0o644, Some(0o644), false), None, vec![]),
            ("plain delete", ch("old.txt", Deleted, FileType::File), None, vec![]),
            ("new directory", dir("src/new"), None, vec![]),
            ("protected: direnv", file(".envrc", Added, 0o644, None, false), None, vec![R::Protected]),
            ("protected: new hook", file(".git/hooks/pre-commit", Added, 0o755, None, false), None, vec![R::Protected, R::Executable]),
            ("protected: deleted", ch(".vscode/tasks.json", Deleted, FileType::File), None, vec![R::Protected]),
            ("protected: new dir", dir(".vscode"), None, vec![R::Protected]),
            ("new executable", file("run.sh", Added, 0o755, None, false), None, vec![R::Executable]),
            ("chmod +x", file("run.sh", Modified, 0o755, Some(0o644), true), None, vec![R::Executable]),
            ("chmod -x", file("run.sh", Modified, 0o644, Some(0o755), true), None, vec![]),
            ("executable edited", file("run.sh", Modified, 0o755, Some(0o755), false), None, vec![R::Executable]),
            ("executable chmod 700", file("run.sh", Modified, 0o700, Some(0o755), true), None, vec![]),
            ("replaces a directory", Change { replaces: Some(FileType::Dir), ..file("x", Modified, 0o755, Some(0o755), false) }, None, vec![R::Executable]),
            ("setuid", file("tool", Added, 0o4755, None, false), None, vec![R::Executable, R::Setuid]),
            ("setgid added", file("tool", Modified, 0o2755, Some(0o755), true), None, vec![R::Setgid]),
            ("setuid kept", file("tool", Modified, 0o4755, Some(0o4755), true), None, vec![]),
            ("symlink to /etc", link("etc", "/etc"), None, vec![R::SymlinkOutside]),
            ("symlink up and out", link("a/b", "../../x"), None, vec![R::SymlinkOutside]),
            ("symlink inside", link("a/b", "../x"), None, vec![]),
            ("symlink inside, absolute", link("a/b", "/home/u/proj/x"), None, vec![]),
            ("symlink to a sibling tree", link("a", "/home/u/project2"), None, vec![R::SymlinkOutside]),
            ("symlink over a dotdot trick", link("a", "b/../../proj/x"), None, vec![R::SymlinkOutside]),
            ("git config: fsmonitor added", file(".git/config", Modified, 0o644, Some(0o644), false), Some(&fsmonitor), vec![R::GitConfig]),
            ("git config: harmless", file(".git/config", Modified, 0o644, Some(0o644), false), Some(&harmless), vec![]),
            ("git config: unread", file(".git/config", Modified, 0o644, Some(0o644), false), Some(&unread), vec![R::GitConfig]),
            ("git config: submodule", file(".git/modules/lib/x/config", Added, 0o644, None, false), Some(&fsmonitor), vec![R::GitConfig]),
            ("git config: now a symlink", Change { target: Some("/tmp/evil".into()), ..ch(".git/config", Modified, FileType::Symlink) }, None, vec![R::Protected, R::SymlinkOutside]),
            ("git config: deleted", ch(".git/config", Deleted, FileType::File), None, vec![R::Protected]),
            ("home entry inside the tree", file(".claude/settings.json", Added, 0o644, None, false), None, vec![R::Protected]),
        ];
        for (what, c, git, want) in table {
            let got: Vec<RiskKind> = risks(&c, root, &p, git).iter().map(|r| r.kind).collect();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn reasons_name_the_key_the_value_and_the_program() {
        use Kind::*;
        let p = protection(Path::new("/p"), Path::new("/h"), &[], &[]);
        let c = file(".git/config", Modified, 0o644, Some(0o644), false);
        let git = texts(
            "",
            "[core]\n\tfsmonitor = touch /tmp/pwned\n[alias]\n\tx = !sh\n",
        );
        let r = risks(&c, Path::new("/p"), &p, Some(&git));
        assert_eq!(r[0].key.as_deref(), Some("core.fsmonitor"));
        assert!(
            r[0].reason
                .starts_with("core.fsmonitor = touch /tmp/pwned: git runs it"),
            "{}",
            r[0].reason
        );
        assert_eq!(r[1].key.as_deref(), Some("alias.x"));
        // A key the host already had with the same value is not new.
        let same = texts(
            "[core]\nfsmonitor = a\n",
            "[core]\nfsmonitor = a\n[user]\nname = x\n",
        );
        assert!(risks(&c, Path::new("/p"), &p, Some(&same)).is_empty());
        let long = texts("", &format!("[core]\npager = {}\n", "x".repeat(500)));
        let r = risks(&c, Path::new("/p"), &p, Some(&long));
        assert!(r[0].reason.len() < 200, "{}", r[0].reason);
        let r = risks(&link("l", "/etc"), Path::new("/p"), &p, None);
        assert_eq!(shown(&r), "symlink to /etc, outside the tree");
    }

    #[test]
    fn git_config_files_are_found_where_git_reads_them() {
        for yes in [
            ".git/config",
            ".git/config.worktree",
            ".git/modules/lib/config",
            ".git/modules/a/b/config",
            ".git/worktrees/wt/config.worktree",
        ] {
            assert!(is_git_config(Path::new(yes)), "{yes}");
        }
        for no in [
            "config",
            "src/.git/config",
            ".git/hooks/config",
            ".git/modules/config",
            ".git/worktrees/wt/sub/config",
            ".gitconfig",
        ] {
            assert!(!is_git_config(Path::new(no)), "{no}");
        }
    }
}

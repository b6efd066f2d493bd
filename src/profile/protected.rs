//! The paths in a read-write share that a host program runs or obeys later,
//! outside any sandbox: git's hooks and config, direnv's `.envrc`, the
//! editors' task files, the build tools' configs, the coding agents' settings.
//! A write there turns one sandboxed run into code execution on the host the
//! next time the user runs git, cd's into the directory, opens the editor or
//! builds (issue 14). This module is the one documented list, a matcher for
//! it (with the user's `protect` / `unprotect` patterns), and the search for
//! the listed paths that exist under a share root, without walking the tree.
//!
//! Each entry says which program obeys it. What is *not* listed, and why, is
//! at the end of the lists: the project's own sources and build files
//! (`Makefile`, `pyproject.toml`, `build.rs`) run when the user builds, and
//! reviewing them is reviewing the project; version pins (`.nvmrc`,
//! `.tool-versions`) name a version, not a program.

use std::path::{Component, Path, PathBuf};

use super::secrets::glob;

/// One protected pattern and the program that obeys what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub pattern: &'static str,
    pub reason: &'static str,
}

const fn e(pattern: &'static str, reason: &'static str) -> Entry {
    Entry { pattern, reason }
}

/// Names inside a git directory (`.git/`, a worktree's or a submodule's git
/// directory, wherever it lives). Objects, refs, the index, logs and `HEAD`
/// are not here: `git commit`, `checkout` and `fetch` inside must keep working.
pub const GIT_DIR: &[Entry] = &[
    e(
        "hooks",
        "git runs the hooks in it (commit, checkout, merge, push)",
    ),
    e(
        "config",
        "git obeys it: core.fsmonitor, core.hooksPath, aliases and filters run commands",
    ),
    e(
        "config.worktree",
        "git reads it as config when extensions.worktreeConfig is set",
    ),
    e(
        "info",
        "git obeys info/attributes (filter and diff drivers) and info/exclude",
    ),
    e(
        "commondir",
        "git takes config and hooks from the directory it names",
    ),
];

/// Where git directories sit inside a share, relative to its root: the
/// repository's own, its submodules' (names may contain `/`, and submodules
/// nest) and its linked worktrees' administrative directories.
const GIT_DIR_PLACES: &[&str] = &[".git", ".git/modules/*/**", ".git/worktrees/*"];

/// The `.git` *file* of a worktree or submodule: `gitdir: PATH`. Only the
/// name itself is protected (a `.git` directory's other contents stay
/// writable).
pub const GIT_POINTER: Entry = e(
    ".git",
    "git follows its `gitdir:` line: a rewritten pointer hands git a planted config",
);

/// Relative to the root of every read-write share; a directory entry covers
/// everything under it.
pub const SHARE: &[Entry] = &[
    // git, around the git directory
    e(
        ".gitmodules",
        "git submodule update clones the URLs and checks out the paths it names",
    ),
    e(
        ".lfsconfig",
        "git-lfs obeys it: the servers it sends objects and credentials to",
    ),
    // git hook managers: they install a hook that runs what these name
    e(
        ".husky",
        "husky sets core.hooksPath here: git runs these hooks",
    ),
    e(
        ".pre-commit-config.yaml",
        "pre-commit's git hook runs the hooks it names on commit",
    ),
    e(
        "lefthook.yml",
        "lefthook's git hook runs the commands it names",
    ),
    e(
        ".lefthook.yml",
        "lefthook's git hook runs the commands it names",
    ),
    e(
        "lefthook-local.yml",
        "lefthook's git hook runs the commands it names",
    ),
    e(".lefthook", "lefthook's git hook runs the scripts in it"),
    e(
        ".overcommit.yml",
        "overcommit's git hook runs the commands it names",
    ),
    // other version control systems
    e(
        ".hg/hgrc",
        "Mercurial runs its [hooks] and obeys its [extensions] and %include",
    ),
    e(
        ".jj/repo/config.toml",
        "jj obeys it: ui.pager, ui.editor, fix.tools and aliases run commands",
    ),
    // shells entering the directory
    e(
        ".envrc",
        "direnv runs it in the user's shell on cd (after `direnv allow`)",
    ),
    // `.env` is left out: direnv and mise load it only when .envrc or a
    // mise config (both protected) opt in, and tools write it all the time.
    e(
        "mise.toml",
        "mise runs its hooks and [env] _.source scripts on cd",
    ),
    e(
        ".mise.toml",
        "mise runs its hooks and [env] _.source scripts on cd",
    ),
    e(
        "mise.local.toml",
        "mise runs its hooks and [env] _.source scripts on cd",
    ),
    e(
        ".mise.local.toml",
        "mise runs its hooks and [env] _.source scripts on cd",
    ),
    e(
        "mise/config.toml",
        "mise runs its hooks and [env] _.source scripts on cd",
    ),
    e(".mise", "mise reads config.toml and tasks from it"),
    e(".config/mise", "mise reads config.toml and conf.d from it"),
    e(
        ".config/mise.toml",
        "mise runs its hooks and [env] _.source scripts on cd",
    ),
    // editors and IDEs opening the directory
    e(
        ".vscode",
        "VS Code runs tasks.json on folder open and obeys settings.json (interpreter, terminal and tool paths), launch.json and mcp.json",
    ),
    e(
        ".idea",
        "JetBrains IDEs run its run configurations, startup tasks and external tools",
    ),
    e(
        ".devcontainer",
        "Dev Containers run initializeCommand on the host and build its Dockerfile",
    ),
    e(
        ".devcontainer.json",
        "Dev Containers run initializeCommand on the host",
    ),
    e(
        ".zed",
        "Zed runs its tasks and the language servers its settings name",
    ),
    e(
        ".helix",
        "Helix starts the language servers its languages.toml names",
    ),
    e(
        ".nvim.lua",
        "Neovim runs it on start with 'exrc' (after trust)",
    ),
    e(
        ".nvimrc",
        "Neovim runs it on start with 'exrc' (after trust)",
    ),
    e(".exrc", "Vim and Neovim run it on start with 'exrc'"),
    e(
        ".gdbinit",
        "gdb runs it on start when auto-load allows the directory",
    ),
    e(
        ".lldbinit",
        "lldb runs it on start when target.load-cwd-lldbinit is set",
    ),
    e(".pdbrc", "pdb runs its lines as debugger commands on start"),
    e(".irbrc", "irb loads it as Ruby code on start"),
    e(".pryrc", "pry loads it as Ruby code on start"),
    // build tools and package managers
    e(
        ".cargo/config",
        "cargo obeys it: build.rustc-wrapper, target runners and [env] run or steer programs",
    ),
    e(
        ".cargo/config.toml",
        "cargo obeys it: build.rustc-wrapper, target runners and [env] run or steer programs",
    ),
    e(
        "rust-toolchain",
        "rustup runs the toolchain it names, a `path` one included",
    ),
    e(
        "rust-toolchain.toml",
        "rustup runs the toolchain it names, a `path` one included",
    ),
    e(
        ".npmrc",
        "npm obeys it: script-shell, node-options (--require) and git run programs",
    ),
    e(".yarnrc", "yarn 1 runs the yarn-path it names"),
    e(".yarnrc.yml", "yarn runs the yarnPath and plugins it names"),
    e(
        ".yarn/releases",
        "yarn runs the release .yarnrc.yml names from here",
    ),
    e(".yarn/plugins", "yarn loads these plugins on every command"),
    e(".pnpmfile.cjs", "pnpm runs its hooks on install"),
    e("bunfig.toml", "bun runs the preload scripts it names"),
    e(
        ".mvn",
        "Maven obeys jvm.config, maven.config and extensions.xml and the wrapper runs from here",
    ),
    e(
        "gradle.properties",
        "Gradle obeys it: org.gradle.jvmargs can add a -javaagent",
    ),
    e(
        "gradle/wrapper",
        "gradlew runs the jar here and the distribution its properties name",
    ),
    e(
        ".bazelrc",
        "Bazel obeys it: --run_under and --workspace_status_command run programs",
    ),
    e(
        ".bundle/config",
        "Bundler obeys it: gem sources, paths and native build flags",
    ),
    e(
        ".venv/pip.conf",
        "pip obeys it in the active venv: the index packages come from",
    ),
    // coding agents: hooks, MCP servers and permissions they obey
    e(
        ".claude",
        "Claude Code runs settings.json hooks and obeys its permissions, commands, agents and skills",
    ),
    e(".mcp.json", "Claude Code starts the MCP servers it names"),
    e(
        ".codex",
        "Codex obeys config.toml (MCP servers, notify, approval policy) and its rules",
    ),
    e(".agents", "Codex loads the skills in it"),
    e(
        ".gemini",
        "Gemini CLI obeys settings.json: hooks, MCP servers and tool discovery commands",
    ),
    e(
        ".cursor",
        "Cursor runs hooks.json and starts the MCP servers mcp.json names",
    ),
    e(
        ".continue",
        "Continue starts the MCP servers its config names",
    ),
    e(
        ".aider.conf.yml",
        "aider runs the lint-cmd and test-cmd it names",
    ),
    e(".opencode", "opencode loads the plugins and commands in it"),
    e("opencode.json", "opencode starts the MCP servers it names"),
    e("opencode.jsonc", "opencode starts the MCP servers it names"),
    // Not listed: .gitattributes (the filter and diff drivers it names run
    // only when config defines them, and config is protected); .tool-versions
    // and .nvmrc (a version, not a program); .editorconfig; .pypirc
    // (credentials, not execution); .bzr and .svn (no client-side hooks in a
    // working copy); Makefile, pyproject.toml, package.json, build.rs (the
    // project itself: the review shows them); .venv/bin (written by every
    // install; the review flags new executables); CLAUDE.md and AGENTS.md
    // (instructions the agents edit as they work).
];

/// Under $HOME, protected when a profile shares them read-write (the
/// `ai-agent` profile binds the agents' directories). Within the agents'
/// directories only what holds hooks, servers or permissions: the rest is
/// state they write as they run.
pub const HOME: &[Entry] = &[
    e(
        ".claude/settings.json",
        "Claude Code runs its hooks, statusLine and apiKeyHelper and obeys its permissions",
    ),
    e(".claude/commands", "Claude Code runs these slash commands"),
    e(".claude/agents", "Claude Code runs these subagents"),
    e(".claude/skills", "Claude Code loads these skills"),
    e(".claude/hooks", "Claude Code hooks commonly live here"),
    e(
        ".claude/plugins",
        "Claude Code loads the hooks and MCP servers of these plugins",
    ),
    e(
        ".codex/config.toml",
        "Codex starts its MCP servers, runs notify and obeys its approval policy",
    ),
    e(".codex/hooks.json", "Codex runs these hooks"),
    e(
        ".codex/rules",
        "Codex auto-approves the commands these rules allow",
    ),
    e(".codex/skills", "Codex loads these skills"),
    e(".agents/skills", "Codex loads these skills"),
    e(
        ".gemini/settings.json",
        "Gemini CLI runs its hooks, MCP servers and tool discovery commands",
    ),
    e(".gemini/commands", "Gemini CLI runs these custom commands"),
    e(".gemini/extensions", "Gemini CLI loads these extensions"),
    e(".cursor/hooks.json", "Cursor runs these hooks"),
    e(".cursor/mcp.json", "Cursor starts these MCP servers"),
    e(
        ".cursor/cli-config.json",
        "cursor-agent obeys its permissions",
    ),
    e(
        ".aider.conf.yml",
        "aider runs the lint-cmd and test-cmd it names",
    ),
    e(".config/aider", "aider reads its configuration from here"),
    // shells and tools every session starts (sandbox-runtime protects these)
    e(".bashrc", "bash runs it in every interactive shell"),
    e(".bash_profile", "bash runs it in every login shell"),
    e(".bash_login", "bash runs it in every login shell"),
    e(".profile", "sh and bash run it in every login shell"),
    e(".zshrc", "zsh runs it in every interactive shell"),
    e(".zshenv", "zsh runs it in every shell"),
    e(".zprofile", "zsh runs it in every login shell"),
    e(".zlogin", "zsh runs it in every login shell"),
    e(
        ".config/fish",
        "fish runs config.fish and conf.d in every shell",
    ),
    e(".gitconfig", "git obeys it in every repository"),
    e(
        ".config/git",
        "git obeys config and attributes here in every repository",
    ),
    e(
        ".ripgreprc",
        "ripgrep obeys it (when RIPGREP_CONFIG_PATH names it): --pre runs a program",
    ),
    e(
        ".config/systemd/user",
        "systemd runs these user units at login",
    ),
    e(
        ".config/autostart",
        "the desktop session runs these at login",
    ),
    // Not listed: ~/.claude.json holds MCP servers but Claude Code rewrites it
    // at every start; read-only, the agent fails. The review must flag it.
];

/// The reason given for a user's own `protect` pattern.
pub const USER_REASON: &str = "named by the profile's `protect` key";

/// A pattern relative to a share root: components separated by `/`; `*`
/// inside a component matches any run of characters (so a lone `*` is any one
/// component) and a `**` component matches any number of components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<String>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("protect pattern {pattern:?}: {why}")]
pub struct PatternError {
    pub pattern: String,
    pub why: &'static str,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let fail = |why| PatternError {
            pattern: text.to_string(),
            why,
        };
        if text.starts_with('/') {
            return Err(fail("must be relative to the share root"));
        }
        let trimmed = text.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(fail("is empty"));
        }
        let parts: Vec<String> = trimmed.split('/').map(str::to_string).collect();
        for part in &parts {
            match part.as_str() {
                "" => return Err(fail("has an empty component")),
                "." | ".." => return Err(fail("has a `.` or `..` component")),
                _ => {}
            }
        }
        Ok(Pattern(parts))
    }

    /// Whether the pattern matches exactly this path.
    fn matches(&self, path: &[String]) -> bool {
        match_parts(&self.0, path)
    }

    /// Whether the pattern matches this path or one of its parents: a
    /// protected directory covers everything under it.
    fn covers(&self, path: &[String]) -> bool {
        (1..=path.len()).any(|n| self.matches(&path[..n])) || self.matches(&[])
    }
}

fn match_parts(pattern: &[String], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => (0..=path.len()).any(|i| match_parts(rest, &path[i..])),
        Some((p, rest)) => match path.split_first() {
            Some((c, tail)) => glob(p, c) && match_parts(rest, tail),
            None => false,
        },
    }
}

/// A share-relative path as components, `.` dropped and `..` applied; `None`
/// when it leaves the share (or is absolute): nothing outside is matched.
fn components(rel: &Path) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether a rule covers the path and everything under it, or the path only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Tree,
    Only,
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: Pattern,
    reason: &'static str,
    scope: Scope,
}

/// The protection of one share: the built-in list, the user's `protect`
/// patterns, and the user's `unprotect` patterns, which win
/// (`unprotect = ["**"]` releases everything).
#[derive(Debug, Clone)]
pub struct Protection {
    rules: Vec<Rule>,
    released: Vec<Pattern>,
}

impl Protection {
    pub fn new(protect: &[String], unprotect: &[String]) -> Result<Self, PatternError> {
        // Parsed once per process: a run asks at start and again at exit.
        static BUILTIN: std::sync::OnceLock<Vec<Rule>> = std::sync::OnceLock::new();
        let mut rules = BUILTIN.get_or_init(builtin_rules).clone();
        for p in protect {
            rules.push(Rule {
                pattern: Pattern::parse(p)?,
                reason: USER_REASON,
                scope: Scope::Tree,
            });
        }
        let released = unprotect
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<_, _>>()?;
        Ok(Protection { rules, released })
    }

    /// Adds the `HOME` entries that lie inside a share rooted at `root`
    /// (`~/.claude` shared: its `settings.json`; a shared file that is itself
    /// an entry: the whole share).
    pub fn add_home(&mut self, root: &Path, home: &Path) {
        for entry in HOME {
            let Ok(rel) = home
                .join(entry.pattern)
                .strip_prefix(root)
                .map(Path::to_path_buf)
            else {
                continue;
            };
            let text = rel.to_string_lossy();
            let text = if text.is_empty() { "**" } else { &*text };
            if let Ok(pattern) = Pattern::parse(text) {
                self.rules.push(Rule {
                    pattern,
                    reason: entry.reason,
                    scope: Scope::Tree,
                });
            }
        }
    }

    /// Why a share-relative path is protected, or `None` when it is not (or
    /// the user released it).
    pub fn reason(&self, rel: &Path) -> Option<&'static str> {
        let path = components(rel)?;
        if self.released.iter().any(|p| p.covers(&path)) {
            return None;
        }
        self.rules.iter().find_map(|r| {
            let hit = match r.scope {
                Scope::Tree => r.pattern.covers(&path),
                Scope::Only => r.pattern.matches(&path),
            };
            hit.then_some(r.reason)
        })
    }
}

/// The built-in rules: the git pointer, every git directory place crossed
/// with the git directory names, then the share list.
fn builtin_rules() -> Vec<Rule> {
    let mut rules = vec![Rule {
        pattern: Pattern::parse(GIT_POINTER.pattern).expect("built-in pattern"),
        reason: GIT_POINTER.reason,
        scope: Scope::Only,
    }];
    for place in GIT_DIR_PLACES {
        for entry in GIT_DIR {
            rules.push(Rule {
                pattern: Pattern::parse(&format!("{place}/{}", entry.pattern))
                    .expect("built-in pattern"),
                reason: entry.reason,
                scope: Scope::Tree,
            });
        }
    }
    for entry in SHARE {
        rules.push(Rule {
            pattern: Pattern::parse(entry.pattern).expect("built-in pattern"),
            reason: entry.reason,
            scope: Scope::Tree,
        });
    }
    rules
}

/// What discovery may ask of the filesystem; nothing else is touched. Paths
/// are absolute. Symlinks are followed, as git and the mount would.
pub trait Probe {
    fn exists(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;
    /// The start of a small file (a `.git` pointer, `commondir`, a config),
    /// or `None` when it can't be read.
    fn read_small(&self, path: &Path) -> Option<String>;
    /// The names in a directory, empty when it can't be read; it may stop
    /// past `ROOT_LIST_MAX` names.
    fn read_dir(&self, path: &Path) -> Vec<String>;
}

/// The real filesystem, through the host (where ambient input is read).
impl Probe for crate::host::Host {
    fn exists(&self, path: &Path) -> bool {
        crate::host::Host::exists(self, path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        crate::host::Host::is_dir(self, path)
    }
    fn read_small(&self, path: &Path) -> Option<String> {
        crate::host::Host::read_small(self, path)
    }
    fn read_dir(&self, path: &Path) -> Vec<String> {
        // One past the most `existing` lists, so it can tell "too many".
        crate::host::Host::read_dir(self, path, ROOT_LIST_MAX + 1)
    }
}

/// A protected path that exists, found under a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub reason: &'static str,
    /// The path lies outside the share (a worktree's or submodule's git
    /// directory elsewhere): protect it too if it is writable in the sandbox.
    pub outside_share: bool,
}

/// The most root entries listed at once (see `existing`); a `Probe` may
/// stop reading a directory past it.
pub const ROOT_LIST_MAX: usize = 4096;

/// Submodule names may contain `/`, and submodules nest: how deep discovery
/// follows `modules/` before it stops (a bound, not a walk).
const MAX_MODULE_DEPTH: usize = 8;

impl Protection {
    /// The protected paths that exist under the share at `root` (absolute),
    /// found by checking the listed names only, never by walking the tree.
    /// The git directory is found through a `.git` file wherever it lives;
    /// `core.hooksPath` in its config adds the directory it names. A `**`
    /// pattern is not searched for (that would walk the tree): the review
    /// still matches it.
    pub fn existing(&self, root: &Path, fs: &dyn Probe) -> Vec<Found> {
        let mut found: Vec<(PathBuf, Found)> = Vec::new();
        let mut add = |logical: PathBuf, path: PathBuf, reason: &'static str| {
            if found.iter().any(|(_, f)| f.path == path) {
                return;
            }
            let outside_share = !path.starts_with(root);
            found.push((
                logical,
                Found {
                    path,
                    reason,
                    outside_share,
                },
            ));
        };
        for (logical, path, reason) in git_paths(root, fs) {
            add(logical, path, reason);
        }
        // One read of the share's root answers, for every pattern, whether
        // its first name is there: most are not, and a stat each would cost
        // a hundred system calls at every start and exit. A root too large
        // to list cheaply is asked name by name instead.
        let top: Option<Vec<String>> = {
            let names = fs.read_dir(root);
            (names.len() < ROOT_LIST_MAX).then_some(names)
        };
        for rule in &self.rules {
            if rule.scope == Scope::Only {
                continue; // the git pointer, handled by git_paths
            }
            let first = rule.pattern.0.first().map(String::as_str).unwrap_or("");
            if let Some(top) = &top
                && !first.contains('*')
                && !top.iter().any(|n| n == first)
            {
                continue;
            }
            for rel in expand(&rule.pattern, root, fs) {
                add(rel.clone(), root.join(&rel), rule.reason);
            }
        }
        found
            .into_iter()
            .filter(|(logical, _)| match components(logical) {
                Some(parts) => !self.released.iter().any(|p| p.covers(&parts)),
                None => true,
            })
            .map(|(_, f)| f)
            .collect()
    }
}

/// The existing paths a pattern names under `root`, relative to it: literal
/// components are checked, a `*` component costs one directory read, a `**`
/// pattern yields nothing. Git directory rules are left to `git_paths`.
fn expand(pattern: &Pattern, root: &Path, fs: &dyn Probe) -> Vec<PathBuf> {
    if pattern.0.iter().any(|p| p == "**") || pattern.0.first().is_some_and(|p| p == ".git") {
        return Vec::new();
    }
    let mut here = vec![PathBuf::new()];
    for part in &pattern.0 {
        let mut next = Vec::new();
        for rel in here {
            if part.contains('*') {
                for name in fs.read_dir(&root.join(&rel)) {
                    if glob(part, &name) {
                        next.push(rel.join(name));
                    }
                }
            } else if fs.exists(&root.join(&rel).join(part)) {
                next.push(rel.join(part));
            }
        }
        here = next;
    }
    here
}

/// The git pointer and the protected names of the share's git directory,
/// its common directory, its submodules' and worktrees' administrative
/// directories: (path as if `.git` were a directory in the share, real
/// path, reason).
fn git_paths(root: &Path, fs: &dyn Probe) -> Vec<(PathBuf, PathBuf, &'static str)> {
    let dot_git = root.join(".git");
    let logical = PathBuf::from(".git");
    let mut out = Vec::new();
    let git_dir = if fs.is_dir(&dot_git) {
        dot_git
    } else if fs.exists(&dot_git) {
        out.push((logical.clone(), dot_git.clone(), GIT_POINTER.reason));
        match fs
            .read_small(&dot_git)
            .and_then(|text| parse_gitdir_file(&text))
        {
            Some(target) => normalize(&root.join(target)),
            None => return out,
        }
    } else {
        return out;
    };
    // A worktree's git directory holds HEAD and index; config and hooks come
    // from the common directory its `commondir` names.
    let common = fs
        .read_small(&git_dir.join("commondir"))
        .map(|text| normalize(&git_dir.join(text.trim())));
    protect_git_dir(&logical, &git_dir, fs, 0, &mut out);
    if let Some(common) = common {
        protect_git_dir(&logical, &common, fs, 0, &mut out);
        add_hooks_path(root, &logical, &common, fs, &mut out);
    } else {
        add_hooks_path(root, &logical, &git_dir, fs, &mut out);
    }
    out
}

fn protect_git_dir(
    logical: &Path,
    dir: &Path,
    fs: &dyn Probe,
    depth: usize,
    out: &mut Vec<(PathBuf, PathBuf, &'static str)>,
) {
    for entry in GIT_DIR {
        let path = dir.join(entry.pattern);
        if fs.exists(&path) {
            out.push((logical.join(entry.pattern), path, entry.reason));
        }
    }
    for name in fs.read_dir(&dir.join("worktrees")) {
        let wt = dir.join("worktrees").join(&name);
        for entry in GIT_DIR
            .iter()
            .filter(|e| matches!(e.pattern, "commondir" | "config.worktree"))
        {
            let path = wt.join(entry.pattern);
            if fs.exists(&path) {
                out.push((
                    logical.join("worktrees").join(&name).join(entry.pattern),
                    path,
                    entry.reason,
                ));
            }
        }
    }
    find_modules(
        &logical.join("modules"),
        &dir.join("modules"),
        fs,
        depth,
        out,
    );
}

/// Under `modules/`, a directory holding `HEAD` is a submodule's git
/// directory; any other directory is part of a name with `/` in it.
fn find_modules(
    logical: &Path,
    dir: &Path,
    fs: &dyn Probe,
    depth: usize,
    out: &mut Vec<(PathBuf, PathBuf, &'static str)>,
) {
    if depth >= MAX_MODULE_DEPTH {
        return;
    }
    for name in fs.read_dir(dir) {
        let (logical, path) = (logical.join(&name), dir.join(&name));
        if fs.exists(&path.join("HEAD")) {
            protect_git_dir(&logical, &path, fs, depth + 1, out);
        } else if fs.is_dir(&path) {
            find_modules(&logical, &path, fs, depth + 1, out);
        }
    }
}

/// `core.hooksPath` moves the hooks out of the git directory, often into the
/// work tree (husky's `.husky/_`); a relative one is taken from the work tree
/// root (git-config(1)).
fn add_hooks_path(
    root: &Path,
    logical: &Path,
    git_dir: &Path,
    fs: &dyn Probe,
    out: &mut Vec<(PathBuf, PathBuf, &'static str)>,
) {
    let Some(text) = fs.read_small(&git_dir.join("config")) else {
        return;
    };
    let Some(value) = parse_config(&text)
        .into_iter()
        .filter(|e| e.section == "core" && e.subsection.is_none() && e.key == "hookspath")
        .filter_map(|e| e.value)
        .next_back()
    else {
        return;
    };
    if value.starts_with('~') {
        return; // in $HOME: outside the share unless a profile binds it
    }
    let path = normalize(&root.join(&value));
    if fs.exists(&path) {
        let logical = path
            .strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| logical.join("hooks"));
        out.push((logical, path, HOOKS_PATH_REASON));
    }
}

pub const HOOKS_PATH_REASON: &str = "core.hooksPath names it: git runs the hooks in it";

/// `gitdir: PATH` from a `.git` file; relative paths are relative to the
/// file's directory (gitrepository-layout(5)).
fn parse_gitdir_file(text: &str) -> Option<PathBuf> {
    let line = text.lines().next()?;
    let path = line.strip_prefix("gitdir:")?.trim();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// Applies `.` and `..` without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// One `key = value` of a git config file, named as git names it: section
/// and key lower-cased (they are case-insensitive), the subsection as
/// written (case-sensitive), except in the old `[section.sub]` syntax, which
/// git lower-cases. A key without `=` is a boolean true: `value` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub section: String,
    pub subsection: Option<String>,
    pub key: String,
    pub value: Option<String>,
}

impl ConfigEntry {
    /// `section.subsection.key`, as `git config --list` prints it.
    pub fn name(&self) -> String {
        match &self.subsection {
            Some(sub) => format!("{}.{sub}.{}", self.section, self.key),
            None => format!("{}.{}", self.section, self.key),
        }
    }
}

/// The entries of a git config text, in order. Lenient: a line git would
/// refuse is skipped (git then refuses the whole file, and runs nothing).
/// `include` is not followed: the include keys are flagged instead.
pub fn parse_config(text: &str) -> Vec<ConfigEntry> {
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    let mut out = Vec::new();
    let mut section: Option<(String, Option<String>)> = None;
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' || c == ';' {
            skip_line(&mut chars);
        } else if c == '[' {
            chars.next();
            section = parse_header(&mut chars);
        } else if c.is_ascii_alphabetic() {
            let mut key = String::new();
            while let Some(&k) = chars.peek() {
                if !(k.is_ascii_alphanumeric() || k == '-') {
                    break;
                }
                key.push(k.to_ascii_lowercase());
                chars.next();
            }
            while chars.peek().is_some_and(|&c| c == ' ' || c == '\t') {
                chars.next();
            }
            let value = match chars.peek() {
                Some('=') => {
                    chars.next();
                    Some(parse_value(&mut chars))
                }
                None | Some('\n' | '\r' | '#' | ';') => None,
                Some(_) => {
                    skip_line(&mut chars);
                    continue;
                }
            };
            if let Some((s, sub)) = &section {
                out.push(ConfigEntry {
                    section: s.clone(),
                    subsection: sub.clone(),
                    key,
                    value,
                });
            }
        } else {
            skip_line(&mut chars);
        }
    }
    out
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_line(chars: &mut Chars) {
    for c in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

/// After `[`: `name]`, `name "sub"]` or the old `name.sub]`. `None` for a
/// header git would refuse; the keys under it are then dropped.
fn parse_header(chars: &mut Chars) -> Option<(String, Option<String>)> {
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        if !(c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            break;
        }
        name.push(c.to_ascii_lowercase());
        chars.next();
    }
    while chars.peek().is_some_and(|&c| c == ' ' || c == '\t') {
        chars.next();
    }
    let mut sub = None;
    if chars.peek() == Some(&'"') {
        chars.next();
        let mut s = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => s.push(chars.next()?),
                '\n' => return None,
                c => s.push(c),
            }
        }
        sub = Some(s);
    }
    if chars.next() != Some(']') || name.is_empty() {
        skip_line(chars);
        return None;
    }
    if sub.is_none()
        && let Some((s, old)) = name.split_once('.')
    {
        // the deprecated [section.sub]: the name is already lower-cased
        return Some((s.to_string(), Some(old.to_string())));
    }
    Some((name, sub))
}

/// After `=`: quotes group, `\"` `\\` `\n` `\t` `\b` escape, a backslash
/// before the newline continues the value, `#` or `;` outside quotes starts
/// a comment, and unquoted whitespace at either end is dropped.
fn parse_value(chars: &mut Chars) -> String {
    let mut value = String::new();
    let mut keep = 0; // length without trailing unquoted whitespace
    let mut quoted = false;
    while chars.peek().is_some_and(|&c| c == ' ' || c == '\t') {
        chars.next();
    }
    while let Some(c) = chars.next() {
        match c {
            '\n' => break,
            '\\' => match chars.next() {
                Some('\n') => continue,
                Some('\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                    continue;
                }
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('b') => value.push('\u{8}'),
                Some(other) => value.push(other),
                None => break,
            },
            '"' => {
                quoted = !quoted;
                keep = value.len();
                continue;
            }
            '#' | ';' if !quoted => {
                skip_line(chars);
                break;
            }
            c if c.is_whitespace() && !quoted => {
                value.push(c);
                continue;
            }
            c => value.push(c),
        }
        keep = value.len();
    }
    value.truncate(keep);
    value
}

/// A config key that makes git run a command or load other config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRisk {
    pub key: String,
    pub value: Option<String>,
    pub reason: &'static str,
}

/// Which values of a key are risky.
#[derive(Debug, Clone, Copy)]
enum When {
    Always,
    /// A command, unless the value is a boolean (`pager.log = false`).
    NotBool,
    /// `!command` (aliases, `submodule.<name>.update`).
    Bang,
    /// An `ext::` URL: git runs the command in it.
    ExtValue,
    /// `url."ext::...".insteadOf`: the subsection is the replacement URL.
    ExtSubsection,
    /// Anything but `never` (`protocol.allow`: opens the ext:: transport).
    NotNever,
    /// An absolute path (`sendemail.smtpServer`: runs it as sendmail).
    AbsolutePath,
}

/// (section, subsection pattern: `None` for none, `*` any run; key; when;
/// reason). From git-config(1), git-send-email(1), git-archive(1),
/// git-hook(1), gitattributes(5) and git-lfs-config(5). Section and key in
/// lower case.
#[rustfmt::skip]
const GIT_KEYS: &[(&str, Option<&str>, &str, When, &str)] = &[
    ("core", None, "fsmonitor", When::NotBool, "git runs it as the fsmonitor hook on status and most commands"),
    ("core", None, "hookspath", When::Always, "git runs the hooks of the directory it names"),
    ("core", None, "sshcommand", When::Always, "git runs it for every ssh fetch and push"),
    ("core", None, "gitproxy", When::Always, "git runs it for git:// fetches"),
    ("core", None, "pager", When::Always, "git runs it as the pager"),
    ("core", None, "editor", When::Always, "git runs it as the editor"),
    ("core", None, "askpass", When::Always, "git runs it to ask for passwords"),
    ("core", None, "alternaterefscommand", When::Always, "git runs it to list alternate refs"),
    ("core", None, "worktree", When::Always, "moves the work tree: a checkout writes files where it points"),
    ("sequence", None, "editor", When::Always, "git rebase -i runs it as the editor"),
    ("diff", None, "external", When::Always, "git diff runs it"),
    ("diff", Some("*"), "command", When::Always, "git diff runs it for the files of this driver"),
    ("diff", Some("*"), "textconv", When::Always, "git diff and log run it on the files of this driver"),
    ("difftool", Some("*"), "cmd", When::Always, "git difftool runs it"),
    ("difftool", Some("*"), "path", When::Always, "git difftool runs the program it names"),
    ("mergetool", Some("*"), "cmd", When::Always, "git mergetool runs it"),
    ("mergetool", Some("*"), "path", When::Always, "git mergetool runs the program it names"),
    ("merge", Some("*"), "driver", When::Always, "git merge runs it for the files of this driver"),
    ("filter", Some("*"), "clean", When::Always, "git add and status run it on the files of this filter"),
    ("filter", Some("*"), "smudge", When::Always, "git checkout runs it on the files of this filter"),
    ("filter", Some("*"), "process", When::Always, "git runs it as a long-running filter"),
    ("credential", None, "helper", When::Always, "git runs it and hands it credentials"),
    ("credential", Some("*"), "helper", When::Always, "git runs it and hands it credentials"),
    ("gpg", None, "program", When::Always, "git runs it to sign and verify"),
    ("gpg", Some("*"), "program", When::Always, "git runs it to sign and verify"),
    ("gpg", Some("ssh"), "defaultkeycommand", When::Always, "git runs it to pick the signing key"),
    ("include", None, "path", When::Always, "git loads the config file it names"),
    ("includeif", Some("*"), "path", When::Always, "git loads the config file it names"),
    ("alias", None, "*", When::Bang, "the alias runs a shell command"),
    ("pager", None, "*", When::NotBool, "git runs it as this command's pager"),
    ("interactive", None, "difffilter", When::Always, "git add -p pipes diffs through it"),
    ("browser", Some("*"), "cmd", When::Always, "git web--browse runs it"),
    ("browser", Some("*"), "path", When::Always, "git web--browse runs the program it names"),
    ("man", Some("*"), "cmd", When::Always, "git help runs it"),
    ("man", Some("*"), "path", When::Always, "git help runs the program it names"),
    ("guitool", Some("*"), "cmd", When::Always, "git gui runs it"),
    ("instaweb", None, "httpd", When::Always, "git instaweb runs it"),
    ("imap", None, "tunnel", When::Always, "git imap-send runs it"),
    ("uploadpack", None, "packobjectshook", When::Always, "git upload-pack runs it"),
    ("remote", Some("*"), "uploadpack", When::Always, "git fetch runs it (on the remote host, or here for a local path)"),
    ("remote", Some("*"), "receivepack", When::Always, "git push runs it (on the remote host, or here for a local path)"),
    ("remote", Some("*"), "url", When::ExtValue, "git fetch runs the command in an ext:: URL"),
    ("remote", Some("*"), "pushurl", When::ExtValue, "git push runs the command in an ext:: URL"),
    ("url", Some("*"), "insteadof", When::ExtSubsection, "rewrites URLs to an ext:: URL, whose command git runs"),
    ("url", Some("*"), "pushinsteadof", When::ExtSubsection, "rewrites URLs to an ext:: URL, whose command git runs"),
    ("protocol", None, "allow", When::NotNever, "allows the ext:: transport, which runs commands"),
    ("protocol", Some("ext"), "allow", When::NotNever, "allows the ext:: transport, which runs commands"),
    ("submodule", Some("*"), "update", When::Bang, "git submodule update runs the command"),
    ("trailer", Some("*"), "command", When::Always, "git interpret-trailers and commit --trailer run it"),
    ("trailer", Some("*"), "cmd", When::Always, "git interpret-trailers and commit --trailer run it"),
    ("hook", Some("*"), "command", When::Always, "git runs it as a hook (config-based hooks, git 2.54)"),
    ("sendemail", None, "smtpserver", When::AbsolutePath, "git send-email runs it as sendmail"),
    ("sendemail", None, "sendmailcmd", When::Always, "git send-email runs it"),
    ("sendemail", None, "tocmd", When::Always, "git send-email runs it"),
    ("sendemail", None, "cccmd", When::Always, "git send-email runs it"),
    ("sendemail", None, "headercmd", When::Always, "git send-email runs it"),
    ("tar", Some("*"), "command", When::Always, "git archive runs it"),
    ("lfs", Some("customtransfer.*"), "path", When::Always, "git-lfs runs it as a transfer agent"),
    ("lfs", Some("extension.*"), "clean", When::Always, "git-lfs runs it on add"),
    ("lfs", Some("extension.*"), "smudge", When::Always, "git-lfs runs it on checkout"),
    // Not listed: http.proxy and remote.<name>.vcs (a server or a
    // git-remote-<vcs> on PATH, not a command of the config's choosing);
    // web.browser, merge.tool, diff.tool, man.viewer (names; the commands
    // are the <tool>.cmd and .path keys above); safe.directory and
    // init.templateDir (not read from a repository's config).
];

fn is_bool(value: Option<&str>) -> bool {
    match value {
        None => true,
        Some(v) => matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0" | ""
        ),
    }
}

fn is_ext(url: &str) -> bool {
    url.trim_start().to_ascii_lowercase().starts_with("ext::")
}

/// Why this entry makes git run a command or load config, if it does.
pub fn classify(entry: &ConfigEntry) -> Option<&'static str> {
    let value = entry.value.as_deref();
    GIT_KEYS
        .iter()
        .find_map(|&(section, sub, key, when, reason)| {
            let sub_ok = match (sub, &entry.subsection) {
                (None, None) => true,
                (Some(p), Some(s)) => glob(p, s),
                _ => false,
            };
            if entry.section != section || !sub_ok || !glob(key, &entry.key) {
                return None;
            }
            let risky = match when {
                When::Always => true,
                When::NotBool => !is_bool(value),
                When::Bang => value.is_some_and(|v| v.trim_start().starts_with('!')),
                When::ExtValue => value.is_some_and(is_ext),
                When::ExtSubsection => entry.subsection.as_deref().is_some_and(is_ext),
                When::NotNever => value.is_none_or(|v| !v.eq_ignore_ascii_case("never")),
                When::AbsolutePath => {
                    value.is_some_and(|v| v.starts_with('/') || v.starts_with('~'))
                }
            };
            risky.then_some(reason)
        })
}

/// The keys of a config text that make git run a command or load config.
pub fn risky_keys(text: &str) -> Vec<GitRisk> {
    parse_config(text)
        .into_iter()
        .filter_map(|entry| {
            classify(&entry).map(|reason| GitRisk {
                key: entry.name(),
                value: entry.value,
                reason,
            })
        })
        .collect()
}

/// The risky keys of `after` that `before` did not have with the same value:
/// added or changed. A removed key runs nothing, so it is not reported.
pub fn risky_changes(before: &str, after: &str) -> Vec<GitRisk> {
    let old = risky_keys(before);
    risky_keys(after)
        .into_iter()
        .filter(|r| !old.iter().any(|o| o.key == r.key && o.value == r.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn default() -> Protection {
        Protection::new(&[], &[]).unwrap()
    }

    #[test]
    fn every_entry_parses_and_says_why() {
        for entry in GIT_DIR.iter().chain(SHARE).chain(HOME) {
            assert!(Pattern::parse(entry.pattern).is_ok(), "{}", entry.pattern);
            assert!(entry.reason.len() > 10, "{}", entry.pattern);
        }
        let mut names: Vec<&str> = SHARE.iter().map(|e| e.pattern).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SHARE.len(), "a name listed twice");
    }

    #[test]
    fn protected_paths_and_their_neighbours() {
        let p = default();
        // (path, protected?)
        let table: &[(&str, bool)] = &[
            (".git/hooks", true),
            (".git/hooks/pre-commit", true),
            (".git/config", true),
            (".git/info/attributes", true),
            (".git/config.worktree", true),
            (".git/commondir", true),
            (".git", true),
            (".git/modules/lib/hooks/post-checkout", true),
            (".git/modules/lib/config", true),
            (".git/modules/libs/foo/config", true),
            (".git/modules/a/modules/b/hooks/x", true),
            (".git/worktrees/wt/commondir", true),
            (".gitmodules", true),
            (".envrc", true),
            (".vscode/tasks.json", true),
            (".cargo/config.toml", true),
            (".claude/settings.local.json", true),
            ("./.npmrc", true),
            ("src/../.envrc", true),
            // git keeps working: objects, refs, index, logs, HEAD
            (".git/objects/ab/cdef", false),
            (".git/refs/heads/main", false),
            (".git/index", false),
            (".git/HEAD", false),
            (".git/logs/HEAD", false),
            (".git/modules/lib/objects/ab/cd", false),
            (".git/worktrees/wt/HEAD", false),
            // the project itself
            ("src/main.rs", false),
            ("Makefile", false),
            (".gitattributes", false),
            (".cargo/registry", false),
            // only at the share root
            ("sub/.envrc", false),
            ("vendor/x/.git/hooks/pre-commit", false),
            // not inside the share
            ("../.envrc", false),
            ("/etc/passwd", false),
        ];
        for &(path, want) in table {
            assert_eq!(p.reason(Path::new(path)).is_some(), want, "{path}");
        }
    }

    #[test]
    fn the_git_pointer_protects_only_itself() {
        let p = default();
        assert_eq!(p.reason(Path::new(".git")), Some(GIT_POINTER.reason));
        assert_eq!(p.reason(Path::new(".git/packed-refs")), None);
    }

    #[test]
    fn user_patterns_add_and_release() {
        let p = Protection::new(
            &strings(&["scripts/*.sh", "deploy/**/secrets", "tools"]),
            &strings(&[".vscode", ".git/hooks"]),
        )
        .unwrap();
        let table: &[(&str, Option<&str>)] = &[
            ("scripts/build.sh", Some(USER_REASON)),
            ("scripts/sub/build.sh", None),
            ("deploy/secrets", Some(USER_REASON)),
            ("deploy/a/b/secrets/key", Some(USER_REASON)),
            ("tools/x", Some(USER_REASON)),
            (".vscode/tasks.json", None),
            (".git/hooks/pre-commit", None),
            (".git/config", Some(GIT_DIR[1].reason)),
        ];
        for &(path, want) in table {
            assert_eq!(p.reason(Path::new(path)), want, "{path}");
        }
    }

    #[test]
    fn unprotect_everything() {
        let p = Protection::new(&strings(&["x"]), &strings(&["**"])).unwrap();
        for path in [".git/hooks/pre-commit", ".envrc", ".git", "x"] {
            assert_eq!(p.reason(Path::new(path)), None, "{path}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "/", "/etc", "a//b", "../x", "a/./b"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Pattern::parse("a/b/").unwrap(),
            Pattern::parse("a/b").unwrap()
        );
        let err = Protection::new(&[], &strings(&["/abs"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "protect pattern \"/abs\": must be relative to the share root"
        );
    }

    #[test]
    fn stars_and_double_stars() {
        let m = |pat: &str, path: &str| {
            let path: Vec<String> = path.split('/').map(str::to_string).collect();
            Pattern::parse(pat).unwrap().matches(&path)
        };
        assert!(m("*", ".hidden"));
        assert!(!m("*", "a/b"));
        assert!(m(".yarnrc*", ".yarnrc.yml"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/x/y/c"));
        assert!(m("**", "any/depth/at/all"));
        assert!(m(".git/modules/*/**/hooks", ".git/modules/a/hooks"));
        assert!(!m(".git/modules/*/**/hooks", ".git/modules/hooks"));
    }

    #[test]
    fn home_entries_inside_a_share() {
        let home = Path::new("/home/ana");
        // ~/.claude shared read-write: its settings are protected, its state is not
        let mut p = Protection::new(&[], &[]).unwrap();
        p.add_home(Path::new("/home/ana/.claude"), home);
        assert!(p.reason(Path::new("settings.json")).is_some());
        assert!(p.reason(Path::new("commands/deploy.md")).is_some());
        assert_eq!(p.reason(Path::new("projects/x.jsonl")), None);
        assert_eq!(p.reason(Path::new("todos/a.json")), None);
        // a shared file that is an entry: the whole share
        let mut p = Protection::new(&[], &[]).unwrap();
        p.add_home(Path::new("/home/ana/.gitconfig"), home);
        assert!(p.reason(Path::new("")).is_some());
        // a project share outside home gains nothing
        let mut p = Protection::new(&[], &[]).unwrap();
        p.add_home(Path::new("/src/app"), home);
        assert_eq!(p.reason(Path::new("settings.json")), None);
    }

    /// An in-memory tree: files with their text, directories implied.
    struct FakeFs(Vec<(&'static str, &'static str)>);

    impl Probe for FakeFs {
        fn exists(&self, path: &Path) -> bool {
            self.0.iter().any(|(f, _)| Path::new(f).starts_with(path))
        }
        fn is_dir(&self, path: &Path) -> bool {
            self.0
                .iter()
                .any(|(f, _)| Path::new(f).starts_with(path) && Path::new(f) != path)
        }
        fn read_small(&self, path: &Path) -> Option<String> {
            self.0
                .iter()
                .find(|(f, _)| Path::new(f) == path)
                .map(|(_, t)| t.to_string())
        }
        fn read_dir(&self, path: &Path) -> Vec<String> {
            let mut names: Vec<String> = self
                .0
                .iter()
                .filter_map(|(f, _)| Path::new(f).strip_prefix(path).ok())
                .filter_map(|rest| rest.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .filter(|n| !n.is_empty())
                .collect();
            names.sort();
            names.dedup();
            names
        }
    }

    fn found(p: &Protection, fs: &FakeFs, root: &str) -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> = p
            .existing(Path::new(root), fs)
            .into_iter()
            .map(|f| (f.path.display().to_string(), f.outside_share))
            .collect();
        v.sort();
        v
    }

    fn inside(paths: &[&str]) -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> = paths.iter().map(|p| (p.to_string(), false)).collect();
        v.sort();
        v
    }

    #[test]
    fn existing_in_a_plain_checkout() {
        let fs = FakeFs(vec![
            ("/p/.git/HEAD", "ref: refs/heads/main"),
            ("/p/.git/config", "[core]\n\tbare = false\n"),
            ("/p/.git/hooks/pre-commit.sample", ""),
            ("/p/.git/objects/ab/cd", ""),
            ("/p/.git/modules/lib/HEAD", ""),
            ("/p/.git/modules/lib/config", ""),
            ("/p/.git/modules/libs/deep/HEAD", ""),
            ("/p/.git/modules/libs/deep/hooks/x", ""),
            ("/p/.git/worktrees/wt/commondir", "../.."),
            ("/p/.git/worktrees/wt/HEAD", ""),
            ("/p/.envrc", "use nix"),
            ("/p/.vscode/tasks.json", "{}"),
            ("/p/src/main.rs", ""),
            ("/p/sub/.envrc", ""),
        ]);
        assert_eq!(
            found(&default(), &fs, "/p"),
            inside(&[
                "/p/.git/config",
                "/p/.git/hooks",
                "/p/.git/modules/lib/config",
                "/p/.git/modules/libs/deep/hooks",
                "/p/.git/worktrees/wt/commondir",
                "/p/.envrc",
                "/p/.vscode",
            ])
        );
    }

    #[test]
    fn existing_through_a_worktree_pointer() {
        // a linked worktree: its git directory and the common one live elsewhere
        let fs = FakeFs(vec![
            ("/wt/.git", "gitdir: /main/.git/worktrees/wt\n"),
            ("/wt/.cargo/config.toml", ""),
            ("/main/.git/worktrees/wt/HEAD", ""),
            ("/main/.git/worktrees/wt/commondir", "../..\n"),
            ("/main/.git/worktrees/wt/config.worktree", ""),
            ("/main/.git/config", "[core]\n\thooksPath = .githooks\n"),
            ("/main/.git/hooks/post-checkout", ""),
            ("/wt/.githooks/pre-push", ""),
        ]);
        assert_eq!(
            found(&default(), &fs, "/wt"),
            vec![
                ("/main/.git/config".to_string(), true),
                ("/main/.git/hooks".to_string(), true),
                ("/main/.git/worktrees/wt/commondir".to_string(), true),
                ("/main/.git/worktrees/wt/config.worktree".to_string(), true),
                ("/wt/.cargo/config.toml".to_string(), false),
                ("/wt/.git".to_string(), false),
                ("/wt/.githooks".to_string(), false),
            ]
        );
    }

    #[test]
    fn existing_through_a_relative_submodule_pointer() {
        let fs = FakeFs(vec![
            ("/p/lib/.git", "gitdir: ../.git/modules/lib"),
            ("/p/.git/modules/lib/HEAD", ""),
            ("/p/.git/modules/lib/config", ""),
            ("/p/.git/modules/lib/info/exclude", ""),
        ]);
        assert_eq!(
            found(&default(), &fs, "/p/lib"),
            vec![
                ("/p/.git/modules/lib/config".to_string(), true),
                ("/p/.git/modules/lib/info".to_string(), true),
                ("/p/lib/.git".to_string(), false),
            ]
        );
    }

    #[test]
    fn existing_respects_protect_and_unprotect() {
        let fs = FakeFs(vec![
            ("/p/.git/hooks/x", ""),
            ("/p/.git/config", ""),
            ("/p/.envrc", ""),
            ("/p/scripts/a.sh", ""),
            ("/p/scripts/b.py", ""),
            ("/p/deep/x/y", ""),
        ]);
        let p = Protection::new(
            &strings(&["scripts/*.sh", "deep/**/y"]),
            &strings(&[".git/hooks", ".envrc"]),
        )
        .unwrap();
        assert_eq!(
            found(&p, &fs, "/p"),
            inside(&["/p/.git/config", "/p/scripts/a.sh"])
        );
        let all = Protection::new(&[], &strings(&["**"])).unwrap();
        assert!(found(&all, &fs, "/p").is_empty());
    }

    #[test]
    fn no_git_no_git_paths() {
        let fs = FakeFs(vec![("/p/README", "")]);
        assert!(found(&default(), &fs, "/p").is_empty());
        let fs = FakeFs(vec![("/p/.git", "not a pointer")]);
        assert_eq!(found(&default(), &fs, "/p"), inside(&["/p/.git"]));
    }

    /// (config text, [(key name, value)])
    type ParseCase<'a> = (&'a str, &'a [(&'a str, Option<String>)]);

    fn names(text: &str) -> Vec<(String, Option<String>)> {
        parse_config(text)
            .into_iter()
            .map(|e| (e.name(), e.value))
            .collect()
    }

    #[test]
    fn config_parsing() {
        let s = |v: &str| Some(v.to_string());
        // (text, [(name, value)])
        let table: &[ParseCase<'_>] = &[
            ("[core]\n\teditor = vim\n", &[("core.editor", s("vim"))]),
            ("[Core]\n\tEDITOR=vim", &[("core.editor", s("vim"))]),
            ("[core] editor = vim", &[("core.editor", s("vim"))]),
            ("[core]\n bare\n", &[("core.bare", None)]),
            (
                "# c\n; c\n[core]\n pager = less # c\n",
                &[("core.pager", s("less"))],
            ),
            (
                "[core]\n pager = \"less # not a comment\" ; c",
                &[("core.pager", s("less # not a comment"))],
            ),
            (
                "[core]\n pager = \"  spaced  \"  \n",
                &[("core.pager", s("  spaced  "))],
            ),
            (
                "[core]\n pager = a\\\n   b\n",
                &[("core.pager", s("a   b"))],
            ),
            (
                "[core]\n pager = \"a\\\"b\\\\c\\tq\"",
                &[("core.pager", s("a\"b\\c\tq"))],
            ),
            (
                "[remote \"Origin\"]\n url = x",
                &[("remote.Origin.url", s("x"))],
            ),
            (
                "[remote \"a\\\"b\"]\n url = x",
                &[("remote.a\"b.url", s("x"))],
            ),
            (
                "[Remote.Origin]\n url = x",
                &[("remote.origin.url", s("x"))],
            ),
            (
                "[lfs \"customtransfer.t\"]\n path = x",
                &[("lfs.customtransfer.t.path", s("x"))],
            ),
            ("[core]\r\n\teditor = vim\r\n", &[("core.editor", s("vim"))]),
            ("\u{feff}[core]\neditor = e", &[("core.editor", s("e"))]),
            ("editor = before any section", &[]),
            (
                "[broken\neditor = x\n[core]\npager = p",
                &[("core.pager", s("p"))],
            ),
        ];
        for &(text, want) in table {
            let want: Vec<(String, Option<String>)> = want
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect();
            assert_eq!(names(text), want, "{text:?}");
        }
    }

    #[test]
    fn risky_keys_and_harmless_ones() {
        // (config text, risky?)
        let table: &[(&str, bool)] = &[
            ("[core]\n fsmonitor = touch /tmp/pwned", true),
            ("[core]\n fsmonitor = true", false),
            ("[core]\n fsMonitor = \"sh -c x\"", true),
            ("[core]\n hooksPath = /tmp/h", true),
            ("[core]\n sshCommand = ssh -i k", true),
            ("[core]\n editor = vim", true),
            ("[core]\n askPass = x", true),
            ("[core]\n bare = false", false),
            ("[sequence]\n editor = x", true),
            ("[diff \"pdf\"]\n textconv = pdftotext", true),
            ("[diff \"pdf\"]\n xfuncname = x", false),
            ("[diff]\n external = x", true),
            ("[merge \"ours\"]\n driver = true", true),
            ("[filter \"lfs\"]\n smudge = git-lfs smudge %f", true),
            ("[filter \"x\"]\n process = x", true),
            ("[filter \"x\"]\n required = true", false),
            ("[credential]\n helper = store", true),
            ("[credential \"https://h\"]\n helper = x", true),
            ("[gpg]\n program = x", true),
            ("[gpg \"ssh\"]\n program = x", true),
            ("[gpg \"ssh\"]\n defaultKeyCommand = x", true),
            ("[include]\n path = ../x", true),
            ("[includeIf \"gitdir:~/w/\"]\n path = w.inc", true),
            ("[alias]\n st = status", false),
            ("[alias]\n x = !sh -c evil", true),
            ("[alias]\n X = \" !sh\"", true),
            ("[pager]\n log = false", false),
            ("[pager]\n log = less -S", true),
            ("[uploadpack]\n packObjectsHook = x", true),
            ("[remote \"o\"]\n url = https://h/r", false),
            ("[remote \"o\"]\n url = ext::sh -c evil", true),
            ("[remote \"o\"]\n uploadpack = x", true),
            ("[url \"ext::sh -c evil\"]\n insteadOf = https://h/", true),
            ("[url \"https://mirror/\"]\n insteadOf = https://h/", false),
            ("[protocol]\n allow = always", true),
            ("[protocol \"ext\"]\n allow = never", false),
            ("[protocol \"file\"]\n allow = always", false),
            ("[submodule \"s\"]\n update = !evil", true),
            ("[submodule \"s\"]\n update = rebase", false),
            ("[trailer \"t\"]\n cmd = x", true),
            ("[hook \"lint\"]\n command = x", true),
            ("[sendemail]\n smtpServer = /usr/bin/evil", true),
            ("[sendemail]\n smtpServer = smtp.example.com", false),
            ("[tar \"tgz\"]\n command = x", true),
            ("[lfs \"customtransfer.t\"]\n path = x", true),
            ("[browser \"b\"]\n cmd = x", true),
            ("[interactive]\n diffFilter = x", true),
            ("[core]\n worktree = /home/ana", true),
            ("[http]\n proxy = http://p", false),
            ("[user]\n name = Ana", false),
            // subsection names are case-sensitive, section and key are not
            ("[GPG \"SSH\"]\n DEFAULTKEYCOMMAND = x", false),
            ("[GPG \"ssh\"]\n DEFAULTKEYCOMMAND = x", true),
            ("[Gpg.SSH]\n defaultKeyCommand = x", true),
        ];
        for &(text, want) in table {
            assert_eq!(!risky_keys(text).is_empty(), want, "{text:?}");
        }
    }

    #[test]
    fn the_issue_attack_is_named() {
        let after = "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = \"touch /tmp/pwned\"\n";
        assert_eq!(
            risky_keys(after),
            vec![GitRisk {
                key: "core.fsmonitor".to_string(),
                value: Some("touch /tmp/pwned".to_string()),
                reason: "git runs it as the fsmonitor hook on status and most commands",
            }]
        );
    }

    #[test]
    fn changes_between_two_configs() {
        let before =
            "[core]\n editor = vim\n[alias]\n x = !echo hi\n[credential]\n helper = store\n";
        // (after, keys reported)
        let table: &[(&str, &[&str])] = &[
            (before, &[]),
            (
                "[CORE]\n EDITOR = vim\n[alias]\n x = \"!echo hi\"\n[credential]\n helper = store",
                &[],
            ),
            (
                "[core]\n editor = evil\n[alias]\n x = !echo hi",
                &["core.editor"],
            ),
            (
                "[core]\n editor = vim\n pager = p\n[alias]\n x = !echo hi\n y = !y",
                &["core.pager", "alias.y"],
            ),
            ("[core]\n fsmonitor = false", &[]),
            (
                "[credential]\n helper = store\n helper = evil",
                &["credential.helper"],
            ),
            ("", &[]),
        ];
        for &(after, want) in table {
            let got: Vec<String> = risky_changes(before, after)
                .into_iter()
                .map(|r| r.key)
                .collect();
            assert_eq!(got, want, "{after:?}");
        }
    }
}

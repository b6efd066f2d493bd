//! Profiles: TOML files whose keys are nook's flags. This module finds
//! them (shipped, then the user's, then an explicit path), parses them
//! strictly, expands the fixed set of variables, follows `extends` and
//! returns the layers to merge, base first. Flags are the last layer.
//!
//! Merge rule: a profile's parents (in `extends` order, each with its own
//! parents first, each file applied once) come before the profile itself;
//! single values from a later layer replace earlier ones, lists append.
//! Within one file, filesystem entries apply parents-first by target depth
//! (so `hide = ["~/.x"]` lands on top of `ro-bind = ["~"]`), then in key
//! order; on the command line they apply in the order given.

pub mod firejail;
pub mod protected;
mod schema;
pub mod secrets;
mod vars;

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::host::Host;
use crate::settings::{Layer, merge};
pub use vars::Vars;

/// Shipped profiles, embedded in the binary.
pub const SHIPPED: &[(&str, &str)] = &[
    ("ai-agent", include_str!("../../profiles/ai-agent.toml")),
    ("browser", include_str!("../../profiles/browser.toml")),
    ("cargo", include_str!("../../profiles/cargo.toml")),
    ("chromium", include_str!("../../profiles/chromium.toml")),
    ("default", include_str!("../../profiles/default.toml")),
    ("firefox", include_str!("../../profiles/firefox.toml")),
    ("git", include_str!("../../profiles/git.toml")),
    ("installer", include_str!("../../profiles/installer.toml")),
    ("make", include_str!("../../profiles/make.toml")),
    ("node", include_str!("../../profiles/node.toml")),
    ("npm", include_str!("../../profiles/npm.toml")),
    ("npx", include_str!("../../profiles/npx.toml")),
    ("pip", include_str!("../../profiles/pip.toml")),
    ("pip3", include_str!("../../profiles/pip3.toml")),
    ("python", include_str!("../../profiles/python.toml")),
    ("python3", include_str!("../../profiles/python3.toml")),
    ("shell", include_str!("../../profiles/shell.toml")),
    ("strict", include_str!("../../profiles/strict.toml")),
];

/// Where a profile's text came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Shipped,
    User,
    File,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// For messages: a real path, or `<shipped>/NAME.toml`.
    pub path: PathBuf,
    pub text: String,
    pub kind: Kind,
}

/// Finds and loads profiles for one host.
pub struct Catalogue<'a> {
    host: &'a Host,
    vars: Vars,
    user_dir: PathBuf,
}

impl<'a> Catalogue<'a> {
    pub fn new(host: &'a Host) -> Self {
        let vars = Vars::from_host(host);
        let user_dir = vars.config_home().join("nook/profiles");
        Catalogue {
            host,
            vars,
            user_dir,
        }
    }

    /// The user's file overrides the shipped one of the same name. A path
    /// (with a '/' or ending in .toml) is read as given.
    pub fn find(&self, name: &str) -> Result<Option<Source>, Error> {
        if name.contains('/') || name.ends_with(".toml") {
            let path = if Path::new(name).is_absolute() {
                PathBuf::from(name)
            } else {
                self.host.cwd.join(name)
            };
            let text = std::fs::read_to_string(&path).map_err(|e| Error::At {
                at: path.display().to_string(),
                what: format!("cannot read the profile: {e}"),
            })?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Ok(Some(Source {
                name: stem,
                path,
                text,
                kind: Kind::File,
            }));
        }
        if !valid_name(name) {
            return Ok(None);
        }
        let user = self.user_dir.join(format!("{name}.toml"));
        if let Ok(text) = std::fs::read_to_string(&user) {
            return Ok(Some(Source {
                name: name.to_string(),
                path: user,
                text,
                kind: Kind::User,
            }));
        }
        Ok(SHIPPED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Source {
                name: n.to_string(),
                path: PathBuf::from(format!("<shipped>/{n}.toml")),
                text: text.to_string(),
                kind: Kind::Shipped,
            }))
    }

    /// Every profile name nook can find, with where it comes from.
    pub fn list(&self) -> Vec<Source> {
        let mut names: Vec<String> = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
        if let Ok(dir) = std::fs::read_dir(&self.user_dir) {
            for e in dir.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml")
                    && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
                    && valid_name(stem)
                    && !names.iter().any(|n| n == stem)
                {
                    names.push(stem.to_string());
                }
            }
        }
        names.sort();
        names
            .iter()
            .filter_map(|n| self.find(n).ok().flatten())
            .collect()
    }

    /// The profile to use when none is named: one named like the command
    /// (shipped or the user's, never one from the current directory: a
    /// cloned repository must not loosen its own sandbox), else "default".
    pub fn implicit(&self, command: &str) -> String {
        let base = Path::new(command)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !valid_name(&base) || base.ends_with(".toml") {
            return "default".to_string();
        }
        match self.find(&base) {
            Ok(Some(_)) => base,
            _ => "default".to_string(),
        }
    }

    /// The layers of `names`, parents first, each file once.
    pub fn layers(&self, names: &[String]) -> Result<Vec<Layer>, Error> {
        let mut out = Vec::new();
        let mut done: Vec<PathBuf> = Vec::new();
        for name in names {
            let src = self.find(name)?.ok_or_else(|| {
                Error::usage(
                    "--profile",
                    name,
                    format!(
                        "expected a profile name or a path to a .toml file; no {name}.toml in {} or among the shipped profiles",
                        self.user_dir.display()
                    ),
                )
                .with_hint("'nook profile list' shows the profiles nook can find")
            })?;
            self.walk(&src, &mut Vec::new(), &mut done, &mut out)?;
        }
        Ok(out)
    }

    fn walk(
        &self,
        src: &Source,
        stack: &mut Vec<PathBuf>,
        done: &mut Vec<PathBuf>,
        out: &mut Vec<Layer>,
    ) -> Result<(), Error> {
        if done.contains(&src.path) {
            return Ok(());
        }
        let parsed = schema::parse(&src.text, &src.path, &self.vars)?;
        stack.push(src.path.clone());
        for parent in &parsed.extends {
            let psrc = match self.find(&parent.v) {
                Ok(Some(p)) => p,
                Ok(None) | Err(_) => {
                    return Err(Error::At {
                        at: parent.from.to_string(),
                        what: format!(
                            "unknown parent profile '{}', expected a shipped or user profile name",
                            parent.v
                        ),
                    });
                }
            };
            if stack.contains(&psrc.path) {
                let chain: Vec<String> = stack
                    .iter()
                    .chain(std::iter::once(&psrc.path))
                    .map(|p| p.display().to_string())
                    .collect();
                return Err(Error::At {
                    at: parent.from.to_string(),
                    what: format!(
                        "'{}' extends itself through {}; expected a chain without cycles",
                        parent.v,
                        chain.join(" -> ")
                    ),
                });
            }
            self.walk(&psrc, stack, done, out)?;
        }
        stack.pop();
        done.push(src.path.clone());
        out.push(parsed.layer);
        Ok(())
    }

    /// Parse and resolve one file completely (parents included): what
    /// `nook profile check` does.
    pub fn check(&self, path: &str) -> Result<Layer, Error> {
        let layers = self.layers(&[path.to_string()])?;
        Ok(merge(layers))
    }

    /// The same for a profile not yet written: `text` as the file `path`
    /// would hold it (`nook learn` checks its proposal before writing it).
    pub fn check_text(&self, text: &str, path: &Path) -> Result<Layer, Error> {
        let src = Source {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_path_buf(),
            text: text.to_string(),
            kind: Kind::File,
        };
        let mut out = Vec::new();
        self.walk(&src, &mut Vec::new(), &mut Vec::new(), &mut out)?;
        Ok(merge(out))
    }

    /// The variables profiles expand on this host.
    pub fn vars(&self) -> &Vars {
        &self.vars
    }
}

/// The first sentence of a profile's opening comment.
pub fn summary(text: &str) -> String {
    let mut s = String::new();
    for l in text.lines() {
        let Some(l) = l.strip_prefix('#') else { break };
        s.push_str(l.trim());
        s.push(' ');
        if let Some(i) = s.find(". ") {
            s.truncate(i + 1);
            return s;
        }
    }
    s.trim().to_string()
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !n.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_matches_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        on_disk.sort();
        let shipped: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, shipped);
    }

    #[test]
    fn implicit_profile_follows_the_command_name() {
        let h = crate::host::Host::fake();
        let cat = Catalogue::new(&h);
        assert_eq!(cat.implicit("/usr/bin/npm"), "npm");
        assert_eq!(cat.implicit("python3"), "python3");
        assert_eq!(cat.implicit("ls"), "default");
        assert_eq!(cat.implicit("../x.toml"), "default");
    }
}

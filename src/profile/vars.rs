//! The fixed set of variables a profile may use, expanded in this one
//! place: `~` at the start of a path, and `${NAME}` anywhere.

use crate::error::Expected;
use std::path::PathBuf;

use crate::host::Host;

pub const NAMES: [&str; 10] = [
    "HOME",
    "CWD",
    "UID",
    "GID",
    "USER",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
];

#[derive(Debug, Clone)]
pub struct Vars {
    values: Vec<(&'static str, String)>,
}

impl Vars {
    pub fn from_host(host: &Host) -> Vars {
        let home = host.home.display().to_string();
        let xdg = |k: &str, default: String| {
            host.env
                .get(k)
                .filter(|v| v.starts_with('/'))
                .cloned()
                .unwrap_or(default)
        };
        let values = vec![
            ("HOME", home.clone()),
            ("CWD", host.cwd.display().to_string()),
            ("UID", host.uid.to_string()),
            ("GID", host.gid.to_string()),
            (
                "USER",
                host.user.clone().unwrap_or_else(|| host.uid.to_string()),
            ),
            (
                "XDG_RUNTIME_DIR",
                xdg("XDG_RUNTIME_DIR", format!("/run/user/{}", host.uid)),
            ),
            (
                "XDG_CONFIG_HOME",
                xdg("XDG_CONFIG_HOME", format!("{home}/.config")),
            ),
            (
                "XDG_DATA_HOME",
                xdg("XDG_DATA_HOME", format!("{home}/.local/share")),
            ),
            (
                "XDG_CACHE_HOME",
                xdg("XDG_CACHE_HOME", format!("{home}/.cache")),
            ),
            (
                "XDG_STATE_HOME",
                xdg("XDG_STATE_HOME", format!("{home}/.local/state")),
            ),
        ];
        Vars { values }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn config_home(&self) -> PathBuf {
        PathBuf::from(self.get("XDG_CONFIG_HOME").unwrap_or("/"))
    }

    /// Expand `${NAME}` everywhere and, when `path` is true, a leading `~`
    /// (alone or before '/'). Returns the unknown or malformed variable.
    pub fn expand(&self, s: &str, path: bool) -> Result<String, Expected> {
        let mut out = String::new();
        let mut rest = s;
        if path && (rest == "~" || rest.starts_with("~/")) {
            out.push_str(self.get("HOME").unwrap_or(""));
            rest = &rest[1..];
        }
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!("unterminated '${{' in '{s}'").into());
            };
            let name = &after[..end];
            match self.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    return Err(format!(
                        "unknown variable ${{{name}}}, expected one of {}",
                        NAMES
                            .iter()
                            .map(|n| format!("${{{n}}}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                    .into());
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_tilde_and_known_variables_only() {
        let v = Vars::from_host(&crate::host::Host::fake());
        assert_eq!(v.expand("~/.cache", true).unwrap(), "/home/ana/.cache");
        assert_eq!(v.expand("~user", true).unwrap(), "~user");
        assert_eq!(v.expand("~/x", false).unwrap(), "~/x");
        assert_eq!(
            v.expand("${XDG_CONFIG_HOME}/nook:${UID}", true).unwrap(),
            "/home/ana/.config/nook:1000"
        );
        assert_eq!(v.expand("${CWD}", true).unwrap(), "/home/ana/src/proj");
        assert!(
            v.expand("${SHELL}", true)
                .unwrap_err()
                .0
                .contains("unknown variable ${SHELL}")
        );
        assert!(
            v.expand("${HOME", true)
                .unwrap_err()
                .0
                .contains("unterminated")
        );
    }
}

//! The secrets a developer keeps, which no sandbox sees unless its profile
//! names them: paths under $HOME, hidden after every other mount, and
//! environment variables that carry credentials, dropped.

use std::path::{Path, PathBuf};

/// Under $HOME. Hidden even when a profile shares all of $HOME.
const HOME_SECRETS: &[&str] = &[
    // keys and agents
    ".ssh",
    ".gnupg",
    ".pki",
    // cloud and cluster credentials
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".config/doctl",
    ".config/rclone",
    ".s3cfg",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    ".config/gh",
    ".config/hub",
    ".config/glab-cli",
    // package registries and git hosting
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".npmrc",
    ".yarnrc",
    ".pypirc",
    ".gem/credentials",
    ".m2/settings-security.xml",
    // password stores and keyrings
    ".password-store",
    ".local/share/keyrings",
    ".local/share/kwalletd",
    ".config/op",
    ".config/Bitwarden",
    ".config/KeePassXC",
    // browser and mail profiles
    ".mozilla",
    ".thunderbird",
    ".config/google-chrome",
    ".config/chromium",
    ".config/BraveSoftware",
    ".config/microsoft-edge",
    ".config/vivaldi",
    ".var/app",
    // shell and REPL histories
    ".bash_history",
    ".zsh_history",
    ".histfile",
    ".local/share/fish/fish_history",
    ".python_history",
    ".node_repl_history",
    ".psql_history",
    ".mysql_history",
    ".sqlite_history",
    ".lesshst",
    ".viminfo",
];

/// The secret paths for a home directory, in a fixed order.
pub fn paths(home: &Path) -> Vec<PathBuf> {
    if home == Path::new("/") {
        return Vec::new();
    }
    HOME_SECRETS.iter().map(|p| home.join(p)).collect()
}

/// Variables dropped from the environment unless kept (`keep-env`) or set
/// explicitly (`setenv`). `*` matches any run of characters.
const SECRET_VARS: &[&str] = &[
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "KRB5CCNAME",
    "XAUTHORITY",
    "*_TOKEN",
    "*_TOKEN_*",
    "*_SECRET*",
    "*_PASSWORD*",
    "*_PASSWD*",
    "*_API_KEY*",
    "*_APIKEY*",
    "*_CREDENTIALS*",
    "*_PRIVATE_KEY*",
    "AWS_*",
    "AZURE_*",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "VAULT_*",
];

pub fn is_secret_var(name: &str) -> bool {
    SECRET_VARS.iter().any(|p| glob(p, name))
}

/// The patterns, for `nook profile explain`.
pub fn var_patterns() -> &'static [&'static str] {
    SECRET_VARS
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_variables() {
        for v in [
            "GITHUB_TOKEN",
            "NPM_TOKEN",
            "CI_JOB_TOKEN_X",
            "DB_PASSWORD",
            "MY_SECRET_KEY",
            "AWS_ACCESS_KEY_ID",
            "SSH_AUTH_SOCK",
            "OPENAI_API_KEY",
        ] {
            assert!(is_secret_var(v), "{v}");
        }
        for v in ["PATH", "HOME", "TERM", "LANG", "TOKENIZERS_PARALLELISM"] {
            assert!(!is_secret_var(v), "{v}");
        }
    }

    #[test]
    fn secrets_live_under_home() {
        let p = paths(Path::new("/home/ana"));
        assert!(p.contains(&PathBuf::from("/home/ana/.ssh")));
        assert!(p.iter().all(|p| p.starts_with("/home/ana")));
        assert!(paths(Path::new("/")).is_empty());
    }

    #[test]
    fn glob_matches_stars_anywhere() {
        assert!(glob("*_TOKEN", "GITHUB_TOKEN"));
        assert!(glob("*_SECRET*", "MY_SECRET_KEY"));
        assert!(glob("AWS_*", "AWS_"));
        assert!(!glob("AWS_*", "XAWS_A"));
        assert!(glob("A*B*C", "AxxBxxC"));
        assert!(!glob("A*B*C", "AxxCxxB"));
    }
}

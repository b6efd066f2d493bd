//! The catalogue: every shipped profile whose program Debian packages,
//! running that program for real under its profile, as the unprivileged
//! test user (see tests/common/mod.rs). Each test shows two things:
//!
//! 1. the program does its job (builds, installs, commits, renders), with
//!    the files it writes landing where the profile says;
//! 2. neither it nor anything it starts (a build script, an install
//!    script, a hook, a recipe, ssh) can read an SSH key planted in the
//!    test user's real `~/.ssh`, which the same probe reads without nook.
//!
//! Programs are named by their Debian path (`/usr/bin/git`, not whatever
//! PATH finds first): under root the harness gives the test user
//! `PATH=/usr/local/bin:/bin:/usr/bin`, and on our CI machine
//! /usr/local/bin holds a git that is not Debian's. The profile is chosen
//! implicitly from the command's basename, as users run it; each test
//! checks which one applied with `--print-spec`.
//!
//! A missing program fails the test (see `common::require`); `.ci/setup`
//! installs them all.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use common::*;

/// `require` that returns from the test when the feature is missing.
macro_rules! require {
    ($feature:expr, $($reason:tt)+) => {
        if !require($feature, &format!($($reason)+)) {
            return;
        }
    };
}

/// What the planted key contains; no output of a sandboxed run may show it.
const MARKER: &str = "NOOK-CATALOGUE-SSH-KEY-3c1f9a";

/// Tests of this file holding the planted key (they run in parallel), and
/// whether planting it made `~/.ssh`.
static KEY_USERS: Mutex<(usize, bool)> = Mutex::new((0, false));

/// A fake private key in the test user's real `~/.ssh`, there while any
/// test holds one. As root it is nooktest's `~/.ssh/id_ed25519`; as an
/// ordinary user it gets a name of its own, so a developer's real key is
/// never overwritten.
struct Key {
    path: PathBuf,
}

impl Key {
    fn plant(env: &TestEnv) -> Key {
        let ssh = env.user.home.join(".ssh");
        let path = if env.as_root {
            ssh.join("id_ed25519")
        } else {
            ssh.join(format!("nook-test-key-{}", std::process::id()))
        };
        let mut users = KEY_USERS.lock().unwrap_or_else(PoisonError::into_inner);
        if users.0 == 0 {
            users.1 = !ssh.exists();
            if users.1 {
                env.mkdir(&ssh);
                fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700)).expect("chmod ~/.ssh");
            }
            env.write(&path, &format!("{MARKER}\n"));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod key");
        }
        users.0 += 1;
        Key { path }
    }

    fn path(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        let mut users = KEY_USERS.lock().unwrap_or_else(PoisonError::into_inner);
        users.0 -= 1;
        if users.0 == 0 {
            let _ = fs::remove_file(&self.path);
            if users.1 {
                let _ = fs::remove_dir(self.path.parent().expect("~/.ssh"));
            }
        }
    }
}

/// Fail unless nothing in the run's output shows the key.
#[track_caller]
fn assert_no_key(out: &Output) {
    assert!(
        !out.stdout.contains(MARKER) && !out.stderr.contains(MARKER),
        "the sandboxed program read the SSH key\n{out}"
    );
}

/// The profiles `nook run CMD...` applies.
fn profiles(env: &TestEnv, cmd: &[&str]) -> serde_json::Value {
    let mut args = vec!["--print-spec", "--"];
    args.extend_from_slice(cmd);
    let out = env.run(&args).output();
    out.ok();
    let spec: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON: {e}\n{out}"));
    spec["profiles"].clone()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn have(program: &str) -> bool {
    Path::new(program).exists()
}

/// The shell probe used by several tests: prints `key: absent` or leaks.
fn cat_key(key: &Key) -> String {
    format!(
        "if cat {k} 2>/dev/null; then echo 'key: LEAKED'; else echo 'key: absent'; fi",
        k = shell_quote(&key.path())
    )
}

// ------------------------------------------------------------- the control

#[test]
fn the_planted_key_is_readable_without_nook_and_not_with_it() {
    // Without this, every "key: absent" below could be a broken probe.
    let env = TestEnv::new("cat-key");
    let key = Key::plant(&env);
    let out = env.sh(&cat_key(&key)).output();
    out.ok();
    assert_eq!(out.stdout, format!("{MARKER}\nkey: LEAKED\n"), "{out}");
    let out = env.run(&["--", "/bin/sh", "-c", &cat_key(&key)]).output();
    out.ok();
    assert_eq!(out.stdout, "key: absent\n", "{out}");
}

// ------------------------------------------------------------------ python

const PYTHON_PROBE: &str = r#"
import os, subprocess, sys
key = sys.argv[1]
print("python", sys.version_info.major, "bytecode-off", os.environ.get("PYTHONDONTWRITEBYTECODE"))
try:
    print("key: LEAKED", open(key).read().strip())
except FileNotFoundError:
    print("key: absent")
r = subprocess.run(["cat", key], capture_output=True, text=True)
print("child:", "LEAKED " + r.stdout.strip() if r.returncode == 0 else "absent")
with open("written-by-python.txt", "w") as f:
    f.write("ok\n")
"#;

#[test]
fn python3_runs_code_in_the_project_but_cannot_read_the_key() {
    let env = TestEnv::new("python3");
    require!(
        have("/usr/bin/python3"),
        "/usr/bin/python3 missing (package python3)"
    );
    let key = Key::plant(&env);
    assert_eq!(
        profiles(&env, &["/usr/bin/python3"]),
        serde_json::json!(["python3"])
    );
    // The same probe outside the sandbox reads the key.
    let out = env
        .sh(&format!(
            "/usr/bin/python3 -c {} {}",
            shell_quote(PYTHON_PROBE),
            shell_quote(&key.path())
        ))
        .output();
    out.ok();
    assert!(
        out.stdout.contains(&format!("key: LEAKED {MARKER}")),
        "{out}"
    );
    fs::remove_file(env.path("written-by-python.txt")).expect("control wrote its file");

    let out = env
        .run(&["--", "/usr/bin/python3", "-c", PYTHON_PROBE, &key.path()])
        .output();
    out.ok();
    assert_no_key(&out);
    assert_eq!(
        out.stdout, "python 3 bytecode-off 1\nkey: absent\nchild: absent\n",
        "{out}"
    );
    assert_eq!(read(&env.path("written-by-python.txt")), "ok\n");
}

// --------------------------------------------------------------------- pip

#[test]
fn pip_installs_a_local_package_whose_setup_py_cannot_read_the_key() {
    let env = TestEnv::new("pip");
    require!(
        have("/usr/bin/pip3"),
        "/usr/bin/pip3 missing (package python3-pip, with python3-setuptools)"
    );
    let key = Key::plant(&env);
    assert_eq!(
        profiles(&env, &["/usr/bin/pip3"]),
        serde_json::json!(["pip3"])
    );
    let out = env.run(&["--", "/usr/bin/pip3", "--version"]).output();
    out.ok();
    assert!(out.stdout.starts_with("pip "), "{out}");
    // A package whose setup.py, run by pip while it builds, goes for the
    // key: the supply-chain attack this profile is for.
    env.mkdir(&env.path("pkg"));
    env.mkdir(&env.path("pkg/hello_nook"));
    env.write(
        &env.path("pkg/setup.py"),
        &format!(
            r#"import os
from setuptools import setup
try:
    seen = "LEAKED " + open({key:?}).read().strip()
except OSError as e:
    seen = "absent (" + e.strerror + ")"
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "setup-saw.txt"), "w") as f:
    f.write(seen + "\n")
setup(name="hello-nook", version="1.0", packages=["hello_nook"])
"#,
            key = key.path()
        ),
    );
    env.write(
        &env.path("pkg/hello_nook/__init__.py"),
        "GREETING = 'hello from an installed package'\n",
    );
    let out = env
        .run(&[
            "--",
            "/usr/bin/pip3",
            "install",
            "--no-index",
            "--no-build-isolation",
            "--target",
            "./site",
            "./pkg",
        ])
        .timeout(Duration::from_secs(90))
        .output();
    out.ok();
    assert_no_key(&out);
    assert!(
        out.stdout.contains("Successfully installed hello-nook-1.0"),
        "{out}"
    );
    assert_eq!(
        read(&env.path("setup-saw.txt")),
        "absent (No such file or directory)\n"
    );
    let out = env
        .run(&[
            "--",
            "/usr/bin/python3",
            "-c",
            "import sys; sys.path.insert(0, 'site'); import hello_nook; print(hello_nook.GREETING)",
        ])
        .output();
    out.ok();
    assert_eq!(out.stdout, "hello from an installed package\n", "{out}");
}

// -------------------------------------------------------------------- node

const NODE_PROBE: &str = r#"
const fs = require("fs"), cp = require("child_process");
const key = process.argv[1];
console.log("node " + process.version.split(".")[0]);
try { console.log("key: LEAKED " + fs.readFileSync(key, "utf8").trim()); }
catch (e) { console.log("key: absent " + e.code); }
try { console.log("child: LEAKED " + cp.execFileSync("cat", [key], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim()); }
catch (e) { console.log("child: absent"); }
fs.writeFileSync("written-by-node.txt", "ok\n");
"#;

#[test]
fn node_runs_scripts_in_the_project_but_cannot_read_the_key() {
    let env = TestEnv::new("node");
    require!(
        have("/usr/bin/node"),
        "/usr/bin/node missing (package nodejs)"
    );
    let key = Key::plant(&env);
    assert_eq!(
        profiles(&env, &["/usr/bin/node"]),
        serde_json::json!(["node"])
    );
    let out = env
        .sh(&format!(
            "/usr/bin/node -e {} {}",
            shell_quote(NODE_PROBE),
            shell_quote(&key.path())
        ))
        .output();
    out.ok();
    assert!(
        out.stdout.contains(&format!("key: LEAKED {MARKER}")),
        "{out}"
    );
    fs::remove_file(env.path("written-by-node.txt")).expect("control wrote its file");

    let out = env
        .run(&["--", "/usr/bin/node", "-e", NODE_PROBE, &key.path()])
        .output();
    out.ok();
    assert_no_key(&out);
    let lines = out.lines();
    assert!(lines.len() == 3 && lines[0].starts_with("node v"), "{out}");
    assert_eq!(lines[1..], ["key: absent ENOENT", "child: absent"], "{out}");
    assert_eq!(read(&env.path("written-by-node.txt")), "ok\n");
}

// --------------------------------------------------------------------- npm

#[test]
fn npm_inits_and_installs_but_install_scripts_cannot_read_the_key() {
    let env = TestEnv::new("npm");
    require!(
        have("/usr/bin/npm"),
        "/usr/bin/npm missing (package npm or nodejs)"
    );
    let key = Key::plant(&env);
    assert_eq!(
        profiles(&env, &["/usr/bin/npm"]),
        serde_json::json!(["npm"])
    );
    let slow = Duration::from_secs(60);
    let out = env
        .run(&["--", "/usr/bin/npm", "--version"])
        .timeout(slow)
        .output();
    out.ok();
    assert!(
        out.stdout
            .trim()
            .split('.')
            .all(|n| n.parse::<u32>().is_ok()),
        "{out}"
    );
    // npm writes its cache and logs to ~/.npm: the sandbox's empty $HOME.
    let app = env.path("app");
    env.mkdir(&app);
    let out = env
        .run(&["--", "/bin/sh", "-c", "cd app && /usr/bin/npm init -y"])
        .timeout(slow)
        .output();
    out.ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&app.join("package.json"))).expect("package.json is JSON");
    assert_eq!(manifest["name"], "app", "{out}");
    // A local dependency whose postinstall script goes for the key.
    env.mkdir(&env.path("dep"));
    env.write(
        &env.path("dep/package.json"),
        r#"{"name": "dep", "version": "1.0.0", "scripts": {"postinstall": "node steal.js"}}"#,
    );
    env.write(
        &env.path("dep/steal.js"),
        &format!(
            r#"const fs = require("fs");
let seen;
try {{ seen = "LEAKED " + fs.readFileSync({key:?}, "utf8").trim(); }}
catch (e) {{ seen = "absent " + e.code; }}
fs.writeFileSync("postinstall-saw.txt", seen + "\n");
"#,
            key = key.path()
        ),
    );
    let out = env
        .run(&[
            "--",
            "/usr/bin/npm",
            "install",
            "--offline",
            "--no-audit",
            "--foreground-scripts",
            "--prefix",
            "app",
            "./dep",
        ])
        .timeout(slow)
        .output();
    out.ok();
    assert_no_key(&out);
    assert_eq!(
        read(&env.path("dep/postinstall-saw.txt")),
        "absent ENOENT\n"
    );
    assert!(app.join("node_modules/dep").exists(), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&app.join("package.json"))).expect("package.json is JSON");
    assert_eq!(manifest["dependencies"]["dep"], "file:../dep", "{out}");
}

// ------------------------------------------------------------------- cargo

#[test]
fn cargo_builds_a_crate_whose_build_script_cannot_read_the_key() {
    let env = TestEnv::new("cargo");
    // Debian's cargo and rustc: the ones a machine without rustup has.
    require!(
        have("/usr/bin/cargo") && have("/usr/bin/rustc"),
        "/usr/bin/cargo or /usr/bin/rustc missing (package cargo)"
    );
    let key = Key::plant(&env);
    assert_eq!(
        profiles(&env, &["/usr/bin/cargo"]),
        serde_json::json!(["cargo"])
    );
    let slow = Duration::from_secs(120);
    let out = env
        .run(&[
            "--",
            "/usr/bin/cargo",
            "new",
            "--offline",
            "--vcs",
            "none",
            "hello",
        ])
        .timeout(slow)
        .output();
    out.ok();
    assert!(env.path("hello/Cargo.toml").exists(), "{out}");
    // cargo new made these files, as the test user: write over them.
    env.write(
        &env.path("hello/build.rs"),
        &format!(
            r#"fn main() {{
    let seen = match std::fs::read_to_string({key:?}) {{
        Ok(s) => format!("LEAKED {{}}", s.trim()),
        Err(e) => format!("absent ({{:?}})", e.kind()),
    }};
    println!("cargo:rustc-env=KEY_SEEN_BY_BUILD_SCRIPT={{}}", seen);
}}
"#,
            key = key.path()
        ),
    );
    env.write(
        &env.path("hello/src/main.rs"),
        "fn main() {\n    println!(\"built in nook; build script saw the key: {}\", env!(\"KEY_SEEN_BY_BUILD_SCRIPT\"));\n}\n",
    );
    let out = env
        .run(&[
            "--",
            "/usr/bin/cargo",
            "build",
            "--offline",
            "--manifest-path",
            "hello/Cargo.toml",
        ])
        .timeout(slow)
        .output();
    out.ok();
    assert_no_key(&out);
    let out = env.run(&["--", "./hello/target/debug/hello"]).output();
    out.ok();
    assert_eq!(
        out.stdout, "built in nook; build script saw the key: absent (NotFound)\n",
        "{out}"
    );
}

#[test]
fn cargo_unpacks_downloaded_dependencies_inside_the_sandbox() {
    // A dependency cargo has downloaded but not unpacked (cargo's cache
    // cleaning removes unpacked sources first; a new project needs ones
    // never unpacked). The profile shows ~/.cargo/registry's index and
    // .crate files read-only; cargo must be able to unpack into the
    // sandbox's $HOME, and nothing it unpacks may reach the real one.
    // A local registry stands in for crates.io, with a HOME of its own.
    let mut env = TestEnv::new("cargo-registry");
    require!(
        have("/usr/bin/cargo") && have("/usr/bin/rustc"),
        "/usr/bin/cargo or /usr/bin/rustc missing (package cargo)"
    );
    let home = PathBuf::from(format!("{}-home", env.dir_str()));
    env.mkdir(&home);
    env.cleanup_later(home.clone());
    for d in [
        ".cargo",
        ".cargo/registry",
        ".cargo/registry/index",
        ".cargo/registry/cache",
    ] {
        env.mkdir(&home.join(d));
    }
    let reg = env.path("registry");
    env.write(
        &home.join(".cargo/config.toml"),
        &format!(
            "[source.crates-io]\nreplace-with = \"local\"\n[source.local]\nlocal-registry = {:?}\n",
            reg.display().to_string()
        ),
    );
    // The registry: one .crate and its index line (the checksum is checked).
    let out = env
        .sh(
            r#"set -e
mkdir -p crate/dep-0.1.0/src registry/index/3/d
printf '[package]\nname = "dep"\nversion = "0.1.0"\nedition = "2021"\n' > crate/dep-0.1.0/Cargo.toml
echo 'pub fn hi() -> &'"'"'static str { "hello from a registry dependency" }' > crate/dep-0.1.0/src/lib.rs
tar czf registry/dep-0.1.0.crate -C crate dep-0.1.0
sum=$(sha256sum registry/dep-0.1.0.crate | cut -d' ' -f1)
printf '{"name":"dep","vers":"0.1.0","deps":[],"cksum":"%s","features":{},"yanked":false}\n' "$sum" > registry/index/3/d/dep
"#,
        )
        .output();
    out.ok();
    env.mkdir(&env.path("src"));
    env.write(
        &env.path("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ndep = \"0.1.0\"\n",
    );
    env.write(
        &env.path("src/main.rs"),
        "fn main() {\n    println!(\"{}\", dep::hi());\n}\n",
    );
    let h = home.display().to_string();
    let out = env
        .run(&["--", "/usr/bin/cargo", "build", "--offline"])
        .env("HOME", &h)
        .timeout(Duration::from_secs(120))
        .output();
    out.ok();
    assert!(out.stderr.contains("Unpacking dep v0.1.0"), "{out}");
    let out = env
        .run(&["--", "./target/debug/app"])
        .env("HOME", &h)
        .output();
    out.ok();
    assert_eq!(out.stdout, "hello from a registry dependency\n", "{out}");
    assert!(
        !home.join(".cargo/registry/src").exists(),
        "unpacked sources reached the real ~/.cargo/registry"
    );
}

// --------------------------------------------------------------------- git

#[test]
fn git_commits_with_hooks_but_neither_hooks_nor_ssh_see_the_key() {
    let env = TestEnv::new("git");
    require!(have("/usr/bin/git"), "/usr/bin/git missing (package git)");
    let key = Key::plant(&env);
    assert_eq!(
        profiles(&env, &["/usr/bin/git"]),
        serde_json::json!(["git"])
    );
    let git = |args: &[&str]| {
        let mut all = vec!["--", "/usr/bin/git"];
        all.extend_from_slice(args);
        let out = env.run(&all).output();
        assert_no_key(&out);
        out
    };
    git(&["init", "-q"]).ok();
    // A hook runs whenever git commits: a cloned repository's hooks are
    // someone else's code.
    let hook = env.path(".git/hooks/pre-commit");
    env.write(
        &hook,
        &format!("#!/bin/sh\n{} > hook-saw.txt\n", cat_key(&key)),
    );
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod hook");
    env.write(&env.path("a.txt"), "hello\n");
    git(&["add", "a.txt"]).ok();
    git(&[
        "-c",
        "user.name=Nook Test",
        "-c",
        "user.email=nook@example.org",
        "commit",
        "-q",
        "-m",
        "first",
    ])
    .ok();
    assert_eq!(read(&env.path("hook-saw.txt")), "key: absent\n");
    let out = git(&["log", "--format=%an: %s"]);
    out.ok();
    assert_eq!(out.stdout, "Nook Test: first\n", "{out}");
    // git over ssh runs ssh, which would offer ~/.ssh/id_*: stand in for it
    // (on stderr: its stdout is git's protocol stream).
    let out = git(&[
        "-c",
        &format!(
            "core.sshCommand={{ {}; ls -A ~/.ssh; }} >&2; false",
            cat_key(&key)
        ),
        "ls-remote",
        "ssh://example.invalid/repo",
    ]);
    out.expect_code(128);
    assert!(out.stderr.contains("key: absent\n"), "{out}");
    assert!(
        out.stderr.contains("/.ssh': No such file or directory"),
        "{out}"
    );
}

// -------------------------------------------------------------------- make

#[test]
fn make_builds_in_the_project_but_recipes_cannot_read_the_key() {
    let env = TestEnv::new("make");
    require!(
        have("/usr/bin/make"),
        "/usr/bin/make missing (package make)"
    );
    let key = Key::plant(&env);
    assert_eq!(
        profiles(&env, &["/usr/bin/make"]),
        serde_json::json!(["make"])
    );
    env.write(&env.path("in.txt"), "hello\n");
    env.write(
        &env.path("Makefile"),
        &format!(
            "out.txt: in.txt\n\ttr a-z A-Z < in.txt > out.txt\n\t{} > key.txt\n",
            cat_key(&key).replace('$', "$$")
        ),
    );
    let out = env.run(&["--", "/usr/bin/make"]).output();
    out.ok();
    assert_no_key(&out);
    assert_eq!(read(&env.path("out.txt")), "HELLO\n");
    assert_eq!(read(&env.path("key.txt")), "key: absent\n");
}

// ------------------------------------------------------------------- shell

#[test]
fn shell_profile_shows_start_up_files_read_only_but_not_the_key() {
    let env = TestEnv::new("shell");
    let key = Key::plant(&env);
    let bashrc = env.user.home.join(".bashrc");
    require!(
        bashrc.exists(),
        "{} missing (useradd -m copies it from /etc/skel)",
        bashrc.display()
    );
    let out = env
        .run(&[
            "--profile",
            "shell",
            "--",
            "/bin/sh",
            "-c",
            &format!(
                "hostname; test -r ~/.bashrc && echo bashrc: readable; \
                 touch ~/.bashrc 2>/dev/null || echo bashrc: read-only; \
                 {}; ls -A ~/.ssh 2>/dev/null || echo '~/.ssh: absent'; \
                 echo made > made-in-shell.txt",
                cat_key(&key)
            ),
        ])
        .output();
    out.ok();
    assert_no_key(&out);
    assert_eq!(
        out.stdout, "nook\nbashrc: readable\nbashrc: read-only\nkey: absent\n~/.ssh: absent\n",
        "{out}"
    );
    assert_eq!(read(&env.path("made-in-shell.txt")), "made\n");
}

// ------------------------------------------------------------------ strict

#[test]
fn strict_profile_reads_the_project_but_cannot_write_it() {
    let env = TestEnv::new("strict");
    let key = Key::plant(&env);
    env.write(&env.path("data.txt"), "project data\n");
    let out = env
        .run(&[
            "--profile",
            "strict",
            "--",
            "/bin/sh",
            "-c",
            &format!(
                "cat data.txt; touch new.txt || echo cwd: read-only; \
                 echo \"FROM_OUTSIDE=${{FROM_OUTSIDE:-unset}}\"; \
                 touch ~/scratch /tmp/scratch && echo home and tmp: writable; {}",
                cat_key(&key)
            ),
        ])
        .env("FROM_OUTSIDE", "leaked")
        .output();
    out.ok();
    assert_no_key(&out);
    assert_eq!(
        out.stdout,
        "project data\ncwd: read-only\nFROM_OUTSIDE=unset\nhome and tmp: writable\nkey: absent\n",
        "{out}"
    );
    assert!(
        out.stderr
            .contains("touch: cannot touch 'new.txt': Read-only file system"),
        "{out}"
    );
    assert!(!env.path("new.txt").exists());
}

// --------------------------------------------------------------- installer

#[test]
fn installer_script_piped_to_sh_installs_into_a_home_that_vanishes() {
    let mut env = TestEnv::new("installer");
    let key = Key::plant(&env);
    let tag = format!("nook-installer-{}", std::process::id());
    // What `curl -fsSL https://example.org/install.sh | sh` would run.
    let script = format!(
        r#"set -e
mkdir -p "$HOME/.local/bin" /opt/{tag} /usr/local/bin
printf '#!/bin/sh\necho tool works\n' > "$HOME/.local/bin/{tag}"
chmod +x "$HOME/.local/bin/{tag}"
cp "$HOME/.local/bin/{tag}" /usr/local/bin/{tag}
echo data > /opt/{tag}/data
"$HOME/.local/bin/{tag}"
/usr/local/bin/{tag}
test -e {cwd} && echo 'project: seen'
echo edit > {cwd}/edited-by-installer
touch /usr/bin/{tag} 2>/dev/null || echo '/usr: read-only'
{probe}
"#,
        cwd = shell_quote(&env.dir_str()),
        probe = cat_key(&key),
    );
    // The project's overlay is kept beside the work directory (removed
    // with it).
    let data = format!("{}-data", env.dir_str());
    env.cleanup_later(PathBuf::from(&data));
    let out = env
        .run(&["--profile", "installer", "--", "/bin/sh"])
        .env("XDG_DATA_HOME", &data)
        .stdin(&script)
        .output();
    out.ok();
    assert_no_key(&out);
    assert_eq!(
        out.stdout, "tool works\ntool works\nproject: seen\n/usr: read-only\nkey: absent\n",
        "{out}"
    );
    // What it wrote in the project waits for review, off the host.
    assert!(
        !env.path("edited-by-installer").exists(),
        "a write reached the project"
    );
    assert!(
        out.stderr.contains("nook: changes kept in sandbox '"),
        "{out}"
    );
    // Nothing it installed is left on the host.
    for p in [
        env.user.home.join(format!(".local/bin/{tag}")),
        PathBuf::from(format!("/opt/{tag}")),
        PathBuf::from(format!("/usr/local/bin/{tag}")),
    ] {
        assert!(!p.exists(), "{} survived the sandbox", p.display());
    }
}

// ---------------------------------------------------------------- ai-agent

#[test]
fn ai_agent_keeps_its_own_config_and_api_key_but_not_other_secrets() {
    // No coding agent is packaged by Debian: the agent here is a shell
    // doing what agents do (read its settings, remember something, use
    // git with your identity). It runs with a HOME of its own, beside the
    // work directory, so the files it needs there are this test's alone.
    let mut env = TestEnv::new("ai-agent");
    require!(have("/usr/bin/git"), "/usr/bin/git missing (package git)");
    let home = PathBuf::from(format!("{}-home", env.dir_str()));
    env.mkdir(&home);
    env.cleanup_later(home.clone());
    env.mkdir(&home.join(".claude"));
    env.mkdir(&home.join(".ssh"));
    env.write(&home.join(".ssh/id_ed25519"), &format!("{MARKER}\n"));
    env.write(
        &home.join(".claude/settings.json"),
        "{\"theme\": \"dark\"}\n",
    );
    env.write(
        &home.join(".gitconfig"),
        "[user]\n\tname = Agent Smith\n\temail = agent@example.org\n",
    );
    let h = home.display().to_string();
    let script = format!(
        r#"echo "api key: ${{ANTHROPIC_API_KEY:-unset}}, github: ${{GITHUB_TOKEN:-unset}}"
cat ~/.claude/settings.json
echo remembered >> ~/.claude/history.jsonl && echo 'claude dir: writable'
echo x >> ~/.gitconfig 2>/dev/null || echo 'gitconfig: read-only'
/usr/bin/git init -q && echo change > change.txt && /usr/bin/git add change.txt &&
/usr/bin/git commit -q -m 'agent change' && /usr/bin/git log --format=%an
if cat {h}/.ssh/id_ed25519 2>/dev/null; then echo 'key: LEAKED'; else echo 'key: absent'; fi
"#
    );
    let out = env
        .run(&[
            "--profile",
            "ai-agent",
            "--keep-env",
            "ANTHROPIC_API_KEY",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ])
        .env("HOME", &h)
        .env("ANTHROPIC_API_KEY", "sk-ant-for-the-agent")
        .env("GITHUB_TOKEN", "gh-not-for-the-agent")
        .output();
    out.ok();
    assert_no_key(&out);
    assert_eq!(
        out.stdout,
        "api key: sk-ant-for-the-agent, github: unset\n{\"theme\": \"dark\"}\n\
         claude dir: writable\ngitconfig: read-only\nAgent Smith\nkey: absent\n",
        "{out}"
    );
    // Its memory persists; its commit is in the project.
    assert_eq!(read(&home.join(".claude/history.jsonl")), "remembered\n");
    assert!(env.path(".git/HEAD").exists());
}

// ----------------------------------------------------------------- browser

/// Headless chromium printing the DOM of `url`, with `flags` for nook.
fn chromium(env: &TestEnv, flags: &[&str], chromium_flags: &[&str], url: &str) -> Output {
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["--", "/usr/bin/chromium", "--headless"]);
    args.extend_from_slice(chromium_flags);
    args.extend(["--dump-dom", url]);
    let out = env.run(&args).timeout(Duration::from_secs(60)).output();
    assert_no_key(&out);
    out
}

#[test]
fn chromium_renders_pages_it_is_shown_and_not_the_key() {
    let env = TestEnv::new("chromium");
    require!(
        have("/usr/bin/chromium"),
        "/usr/bin/chromium missing (package chromium)"
    );
    let key = Key::plant(&env);
    assert_eq!(
        profiles(&env, &["/usr/bin/chromium"]),
        serde_json::json!(["chromium"])
    );
    env.write(
        &env.path("page.html"),
        "<html><body><p id=\"x\">static</p>\
         <script>document.getElementById('x').textContent = 'from-js'</script></body></html>\n",
    );
    let page = format!("file://{}/page.html", env.dir_str());
    let key_url = format!("file://{}", key.path());
    let rendered = "<p id=\"x\">from-js</p>";

    // Control: outside nook the same command shows the key. (With a HOME
    // in the work directory: chromium leaves its profile and caches there.)
    let control_home = env.path("control-home");
    env.mkdir(&control_home);
    let out = env
        .sh(&format!(
            "/usr/bin/chromium --headless --no-sandbox --dump-dom {} 2>/dev/null",
            shell_quote(&key_url)
        ))
        .env("HOME", &control_home.display().to_string())
        .timeout(Duration::from_secs(60))
        .output();
    out.ok();
    assert!(out.stdout.contains(MARKER), "control failed\n{out}");

    // Chromium's own sandbox needs user namespaces, which nook forbids
    // inside the sandbox (max_user_namespaces is 0 there): as shipped, it
    // refuses to start.
    let out = chromium(&env, &[], &[], &page);
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("No usable sandbox"), "{out}");

    // With --no-sandbox nook is the only sandbox: the key is not there,
    // and neither is the project (the browser profile does not share it).
    for url in [&key_url, &page] {
        let out = chromium(&env, &[], &["--no-sandbox"], url);
        out.ok();
        assert_eq!(out.stdout, "", "{out}");
        assert!(out.stderr.contains("net::ERR_FILE_NOT_FOUND"), "{out}");
    }
    // Shown the project, it renders the page and runs its script.
    let out = chromium(&env, &["--share-cwd", "ro"], &["--no-sandbox"], &page);
    out.ok();
    assert!(out.stdout.contains(rendered), "{out}");

    // With --allow-userns chromium's own sandbox works inside nook's.
    let out = chromium(&env, &["--allow-userns", "--share-cwd", "ro"], &[], &page);
    out.ok();
    assert!(out.stdout.contains(rendered), "{out}");
    let out = chromium(&env, &["--allow-userns"], &[], &key_url);
    out.ok();
    assert_eq!(out.stdout, "", "{out}");
}

//! Harness for the integration tests: run the real `nook` binary as an
//! unprivileged user and capture what it did.
//!
//! - As root (our machines and CI), nook runs as the dedicated test user
//!   `nooktest` (created by `.ci/setup`) through
//!   `setpriv --reuid=nooktest --regid=nooktest --init-groups --reset-env`,
//!   with HOME=/home/nooktest, in a fresh working directory under that home,
//!   made for each test and removed after it. setpriv execs, so the pid of
//!   the spawned child is the nook supervisor itself.
//! - As an ordinary user, nook runs directly, in a fresh directory under
//!   the user's HOME.
//!
//! A test whose host feature is missing calls [`require`]: it fails with
//! the reason. Only with `NOOK_TEST_ALLOW_SKIP=1` (for a developer's
//! machine) does it print `SKIP: reason` and return early instead, and
//! `NOOK_TEST_STRICT=1` (set by `.ci/run`) overrides even that.
//!
//! Every run has a deadline (20 s by default): a hung nook is killed and
//! the test fails with what it printed so far.

#![allow(dead_code)]

pub mod lab;
pub mod overlay;
pub mod vm;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const NOOK: &str = env!("CARGO_BIN_EXE_nook");

/// The unprivileged user the tests run nook as when they run as root.
pub const TEST_USER: &str = "nooktest";

/// How long one nook run may take before the test kills it and fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// True unless skipping was asked for: missing host features fail the test.
pub fn strict() -> bool {
    let is_one = |k| std::env::var(k).is_ok_and(|v| v == "1");
    is_one("NOOK_TEST_STRICT") || !is_one("NOOK_TEST_ALLOW_SKIP")
}

/// Gate a test on a host feature. Returns true when the feature is there.
/// Otherwise panics with the reason under `NOOK_TEST_STRICT=1`, or prints
/// `SKIP: reason` and returns false (the test then returns early).
pub fn require(feature: bool, reason: &str) -> bool {
    if feature {
        return true;
    }
    if strict() {
        panic!(
            "required host feature missing: {reason} (run .ci/setup; NOOK_TEST_ALLOW_SKIP=1 skips instead)"
        );
    }
    eprintln!("SKIP: {reason}");
    println!("SKIP: {reason}");
    false
}

/// The effective uid of this test process, read from /proc (no unsafe).
pub fn euid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("Uid: line in /proc/self/status")
}

/// A user from /etc/passwd.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

pub fn lookup_user_by_name(name: &str) -> Option<User> {
    lookup_user(|n, _| n == name)
}

pub fn lookup_user_by_uid(uid: u32) -> Option<User> {
    lookup_user(|_, u| u == uid)
}

fn lookup_user(pred: impl Fn(&str, u32) -> bool) -> Option<User> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let uid: u32 = f[2].parse().ok()?;
        let gid: u32 = f[3].parse().ok()?;
        pred(f[0], uid).then(|| User {
            name: f[0].to_string(),
            uid,
            gid,
            home: PathBuf::from(f[5]),
        })
    })
}

/// The primary gid of this test process, read from /proc.
fn egid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("Gid: line in /proc/self/status")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's world: who nook runs as, and a fresh working directory that
/// is removed (with anything registered by [`TestEnv::cleanup_later`]) when
/// the value is dropped.
pub struct TestEnv {
    /// The user nook runs as (nooktest under root, else the current user).
    pub user: User,
    /// True when the test process is root and drops to `user` via setpriv.
    pub as_root: bool,
    /// Fresh working directory under the user's HOME; nook's cwd.
    pub dir: PathBuf,
    cleanup: Vec<PathBuf>,
}

impl TestEnv {
    /// A fresh environment for the test called `name`.
    pub fn new(name: &str) -> TestEnv {
        let as_root = euid() == 0;
        let user = if as_root {
            lookup_user_by_name(TEST_USER).unwrap_or_else(|| {
                panic!("user {TEST_USER} is missing: run .ci/setup first (as root)")
            })
        } else {
            let uid = euid();
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .expect("HOME is set");
            let mut u = lookup_user_by_uid(uid).unwrap_or(User {
                name: uid.to_string(),
                uid,
                gid: egid(),
                home: home.clone(),
            });
            u.gid = egid();
            u.home = home;
            u
        };
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let base = if as_root {
            format!("nook-test-{name}-{}-{n}", std::process::id())
        } else {
            format!(".nook-test-{name}-{}-{n}", std::process::id())
        };
        let dir = user.home.join(base);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod work dir");
        let env = TestEnv {
            user,
            as_root,
            dir,
            cleanup: Vec::new(),
        };
        env.give(&env.dir);
        env
    }

    /// Hand a path we (maybe root) created over to the test user.
    pub fn give(&self, path: &Path) {
        if self.as_root {
            std::os::unix::fs::chown(path, Some(self.user.uid), Some(self.user.gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }

    /// Write a file owned by the test user (mode 0644).
    pub fn write(&self, path: &Path, content: &str) {
        fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
        self.give(path);
    }

    /// Create a directory owned by the test user.
    pub fn mkdir(&self, path: &Path) {
        fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        self.give(path);
    }

    /// A path inside the work directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The work directory as a string (for flags).
    pub fn dir_str(&self) -> String {
        self.dir.display().to_string()
    }

    /// Remove `path` when this environment is dropped.
    pub fn cleanup_later(&mut self, path: PathBuf) {
        self.cleanup.push(path);
    }

    /// `nook ARGS...`, run as the test user in the work directory.
    pub fn nook<S: AsRef<str>>(&self, args: &[S]) -> Cmd<'_> {
        Cmd::new(
            self,
            Program::Nook(args.iter().map(|s| s.as_ref().to_string()).collect()),
        )
    }

    /// `nook run ARGS...`: shorthand for the common case.
    pub fn run<S: AsRef<str>>(&self, args: &[S]) -> Cmd<'_> {
        let mut all = vec!["run".to_string()];
        all.extend(args.iter().map(|s| s.as_ref().to_string()));
        Cmd::new(self, Program::Nook(all))
    }

    /// `sh -c SCRIPT`, run as the test user in the work directory, with
    /// `$NOOK` set to the binary under test (for fd tests and the like).
    pub fn sh(&self, script: &str) -> Cmd<'_> {
        Cmd::new(self, Program::Shell(script.to_string()))
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for p in self.cleanup.iter().chain(std::iter::once(&self.dir)) {
            match fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => {
                    let _ = fs::remove_dir_all(p);
                }
                Ok(_) => {
                    let _ = fs::remove_file(p);
                }
                Err(_) => {}
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Program {
    Nook(Vec<String>),
    Shell(String),
}

/// A command to run as the test user: builder for environment, stdin and
/// timeout, then [`Cmd::output`] or [`Cmd::spawn`].
pub struct Cmd<'a> {
    env: &'a TestEnv,
    program: Program,
    vars: Vec<(String, String)>,
    unset: Vec<String>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    netns: Option<u32>,
}

impl<'a> Cmd<'a> {
    fn new(env: &'a TestEnv, program: Program) -> Self {
        Cmd {
            env,
            program,
            vars: Vec::new(),
            unset: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            netns: None,
        }
    }

    /// Run it in the network and mount namespaces of process `pid`
    /// (namespaces the test made, such as a [`lab::Lab`]'s; needs root,
    /// which then drops to the test user as usual), in the same working
    /// directory, looked up inside.
    pub fn in_netns(mut self, pid: u32) -> Self {
        self.netns = Some(pid);
        self
    }

    /// Set an environment variable for nook (outside the sandbox).
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.vars.push((k.to_string(), v.to_string()));
        self
    }

    /// Remove an environment variable for nook (outside the sandbox).
    pub fn env_remove(mut self, k: &str) -> Self {
        self.unset.push(k.to_string());
        self
    }

    /// Feed this to nook's standard input (default: /dev/null).
    pub fn stdin(mut self, data: &str) -> Self {
        self.stdin = Some(data.as_bytes().to_vec());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// How this command is shown in failure messages.
    pub fn describe(&self) -> String {
        let who = if self.env.as_root {
            format!("as {} ", self.env.user.name)
        } else {
            String::new()
        };
        let vars: String = self.vars.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        match &self.program {
            Program::Nook(args) => format!("{who}{vars}nook {}", shell_join(args)),
            Program::Shell(s) => format!("{who}{vars}sh -c {}", shell_quote(s)),
        }
    }

    fn command(&self) -> Command {
        let mut argv: Vec<OsString> = Vec::new();
        if let Some(pid) = self.netns {
            argv.push("nsenter".into());
            argv.push(format!("--mount=/proc/{pid}/ns/mnt").into());
            argv.push(format!("--net=/proc/{pid}/ns/net").into());
            // Entering a mount namespace moves to its root directory.
            argv.push(format!("--wdns={}", self.env.dir.display()).into());
        }
        if self.env.as_root {
            argv.extend(
                [
                    "setpriv",
                    &format!("--reuid={}", self.env.user.uid),
                    &format!("--regid={}", self.env.user.gid),
                    "--init-groups",
                    "--reset-env",
                    "/usr/bin/env",
                ]
                .map(OsString::from),
            );
            for k in &self.unset {
                argv.push("-u".into());
                argv.push(k.into());
            }
            argv.push(format!("NOOK={NOOK}").into());
            for (k, v) in &self.vars {
                argv.push(format!("{k}={v}").into());
            }
        }
        match &self.program {
            Program::Nook(args) => {
                argv.push(NOOK.into());
                argv.extend(args.iter().map(OsString::from));
            }
            Program::Shell(s) => {
                argv.extend(["/bin/sh", "-c"].map(OsString::from));
                argv.push(s.into());
            }
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.current_dir(&self.env.dir);
        if !self.env.as_root {
            cmd.env("NOOK", NOOK);
            for k in &self.unset {
                cmd.env_remove(k);
            }
            for (k, v) in &self.vars {
                cmd.env(k, v);
            }
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped());
        cmd.stderr(Stdio::piped());
        cmd
    }

    /// Start it and return at once (for signal tests). The child's pid is
    /// the nook supervisor's.
    pub fn spawn(self) -> Running {
        let description = self.describe();
        let mut child = self
            .command()
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {description}: {e}"));
        if let Some(data) = self.stdin.clone() {
            let mut stdin = child.stdin.take().expect("piped stdin");
            thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        Running::new(child, stdout, stderr, description, self.timeout)
    }

    /// Run it to completion and capture status, stdout and stderr. Fails the
    /// test if it runs longer than the timeout.
    pub fn output(self) -> Output {
        let timeout = self.timeout;
        self.spawn().wait(timeout)
    }
}

/// What a finished run left: exit status and output.
#[derive(Debug, Clone)]
pub struct Output {
    pub description: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code; fails the test if nook itself died by a signal.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(c) => c,
            None => panic!(
                "nook was killed by signal {:?}\n{}",
                self.status.signal(),
                self
            ),
        }
    }

    /// Fail the test unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "expected exit code {code}\n{self}"
        );
        self
    }

    /// Fail the test unless it exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Stdout lines, trimmed of the trailing newline.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "command: {}", self.description)?;
        writeln!(f, "status:  {}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// A running nook, for tests that talk to it while it runs.
pub struct Running {
    pub child: Child,
    pub description: String,
    stdout_lines: Receiver<String>,
    stderr_done: Receiver<String>,
    seen: Vec<String>,
    stdout_closed: bool,
    timeout: Duration,
    started: Instant,
}

impl Running {
    fn new(
        child: Child,
        stdout: ChildStdout,
        mut stderr: ChildStderr,
        description: String,
        timeout: Duration,
    ) -> Running {
        let (line_tx, stdout_lines) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line_tx
                            .send(String::from_utf8_lossy(&buf).into_owned())
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        let (err_tx, stderr_done) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            let _ = err_tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
        Running {
            child,
            description,
            stdout_lines,
            stderr_done,
            seen: Vec::new(),
            stdout_closed: false,
            timeout,
            started: Instant::now(),
        }
    }

    /// The pid of the nook supervisor.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.seen.concat()
    }

    /// Wait until a stdout line contains `needle`; fails the test (after
    /// killing nook) if it doesn't come within `within`.
    #[track_caller]
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) {
        if self.seen.iter().any(|l| l.contains(needle)) {
            return;
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout_lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(e) => {
                    if e == RecvTimeoutError::Disconnected {
                        self.stdout_closed = true;
                    }
                    let _ = self.child.kill();
                    let out = self.wait(Duration::from_secs(5));
                    panic!(
                        "no stdout line containing {needle:?} within {within:?} ({})\n{out}",
                        if e == RecvTimeoutError::Disconnected {
                            "stdout closed"
                        } else {
                            "timed out"
                        }
                    );
                }
            }
        }
    }

    /// Send a signal (by name, as kill(1) takes it: TERM, INT, KILL...) to
    /// the nook supervisor.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -s {sig} {} failed", self.pid());
    }

    /// Wait for exit (killing nook and failing the test after `within`),
    /// then collect the rest of its output. Output pipes still held open
    /// after nook exited (something in the sandbox survived it) fail the
    /// test after a few seconds.
    #[track_caller]
    pub fn wait(&mut self, within: Duration) -> Output {
        let deadline = Instant::now() + within;
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait().expect("try_wait") {
                Some(st) => break st,
                None if Instant::now() >= deadline => {
                    timed_out = true;
                    let _ = self.child.kill();
                    break self.child.wait().expect("wait after kill");
                }
                None => thread::sleep(Duration::from_millis(5)),
            }
        };
        let drain_deadline = Instant::now() + Duration::from_secs(5);
        let mut pipes_open = false;
        while !self.stdout_closed {
            let left = drain_deadline.saturating_duration_since(Instant::now());
            match self.stdout_lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => self.stdout_closed = true,
                Err(RecvTimeoutError::Timeout) => {
                    pipes_open = true;
                    break;
                }
            }
        }
        let left = drain_deadline.saturating_duration_since(Instant::now());
        let stderr = match self.stderr_done.recv_timeout(left) {
            Ok(s) => s,
            Err(_) => {
                pipes_open = true;
                String::from("<stderr still open>")
            }
        };
        let out = Output {
            description: self.description.clone(),
            status,
            stdout: self.seen.concat(),
            stderr,
        };
        if timed_out {
            panic!(
                "timed out after {:?} (nook killed)\n{out}",
                self.started.elapsed()
            );
        }
        if pipes_open {
            panic!(
                "nook exited but its stdout/stderr stayed open for 5 s: something in the sandbox outlived the supervisor\n{out}"
            );
        }
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Never leave a sandbox behind when a test fails half-way.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl<'a> Cmd<'a> {
    /// Shorthand: run and return the output.
    pub fn run(self) -> Output {
        self.output()
    }
}

/// Quote for display in failure messages.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub fn shell_join(args: &[String]) -> String {
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Pids of host processes whose command line contains `needle` (NUL
/// separators between arguments are shown as spaces).
pub fn host_pids_with_cmdline(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(raw) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline.trim_end().to_string()));
        }
    }
    found
}

/// The parent of host process `pid` (field 4 of /proc/PID/stat, after the
/// command name in parentheses, which may itself hold spaces or ')').
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Entries of a directory with their owner uid.
pub fn dir_entries_owned_by(dir: &Path, uid: u32) -> BTreeMap<String, u32> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(m) = fs::symlink_metadata(e.path())
                && m.uid() == uid
            {
                out.insert(e.file_name().to_string_lossy().into_owned(), m.uid());
            }
        }
    }
    out
}

/// Names of the network interfaces in a /proc/net/dev listing.
pub fn net_dev_names(proc_net_dev: &str) -> Vec<String> {
    let mut names: Vec<String> = proc_net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
        .collect();
    names.sort();
    names
}

/// First existing path among `candidates`.
pub fn find_tool(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| p.to_string())
}

/// Host mount points (field 5 of /proc/self/mountinfo, unescaped for
/// spaces only), as this test process sees them.
pub fn host_mount_points() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .collect()
}

/// The subordinate id range lines for `user` in an /etc/subuid-like file.
pub fn subid_lines(file: &str, user: &User) -> Vec<String> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let first = l.split(':').next().unwrap_or("");
            first == user.name || first == user.uid.to_string()
        })
        .map(str::to_string)
        .collect()
}

/// True when `prog` is found in PATH or the sbin directories.
pub fn which(prog: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .any(|d| !d.is_empty() && Path::new(d).join(prog).is_file())
}

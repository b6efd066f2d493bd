//! The profile file format: a mirror of the TOML (kebab-case keys, unknown
//! keys refused, every value with its position), and the one conversion
//! into a `Layer` that expands variables and checks paths, naming the
//! file, line and column on failure.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::layer::{CwdMode, Layer, Origin, Val};
use super::vars::Vars;
use crate::cli::FsFlag;
use crate::error::Error;
use crate::net::{DriverKind, Mode as NetMode};
use crate::security::landlock::Mode as LandlockMode;
use crate::security::seccomp::Mode as SeccompMode;

type S<T> = Option<Spanned<T>>;
type L<T> = Option<Vec<Spanned<T>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ProfileFile {
    extends: L<String>,
    uid: S<u32>,
    gid: S<u32>,
    subids: S<bool>,
    share_net: S<bool>,
    share_ipc: S<bool>,
    share_uts: S<bool>,
    share_pid: S<bool>,
    share_cgroup: S<bool>,
    no_default_view: S<bool>,
    share_cwd: S<String>,
    ro_bind: L<String>,
    bind: L<String>,
    ro_bind_try: L<String>,
    bind_try: L<String>,
    tmpfs: L<String>,
    dir: L<String>,
    symlink: L<String>,
    file: L<String>,
    file_from: L<String>,
    hide: L<String>,
    proc: L<String>,
    dev: L<String>,
    overlay: L<String>,
    tmp_overlay: L<String>,
    overlay_driver: S<String>,
    chdir: S<String>,
    hostname: S<String>,
    setenv: L<String>,
    unsetenv: L<String>,
    clearenv: S<bool>,
    keep_env: L<String>,
    pass_fd: L<i32>,
    strict: S<bool>,
    seccomp: S<String>,
    seccomp_allow: L<String>,
    seccomp_deny: L<String>,
    landlock: S<String>,
    allow_userns: S<bool>,
    network: Option<NetworkSection>,
    limits: Option<LimitsSection>,
}

/// `[limits]`: the same keys as the limit flags.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LimitsSection {
    memory: S<String>,
    memory_swap: S<String>,
    pids: S<u64>,
    cpus: S<f64>,
    cpu_weight: S<u64>,
    io_weight: S<u64>,
    io_max: L<String>,
    rlimit: L<String>,
    timeout: S<String>,
    disk_quota: S<String>,
}

/// `[network]`: the same keys as the network flags.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct NetworkSection {
    net: S<String>,
    net_driver: S<String>,
    allow_host_loopback: S<bool>,
    allow_host_port: L<u16>,
    publish: L<String>,
    net_allow: L<String>,
}

pub struct Parsed {
    pub extends: Vec<Val<String>>,
    pub layer: Layer,
}

/// 1-based line and column of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
    vars: &'a Vars,
    /// Byte offsets where each line starts: a value's line is a binary
    /// search, not a count from the top (imported profiles run to
    /// thousands of lines).
    line_starts: Vec<usize>,
}

impl Ctx<'_> {
    fn origin(&self, span: std::ops::Range<usize>, key: &'static str) -> Origin {
        let at = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= at);
        let col = at - self.line_starts[line - 1] + 1;
        Origin::File {
            path: self.path.to_path_buf(),
            line,
            col,
            key,
        }
    }

    fn err(&self, origin: &Origin, what: String) -> Error {
        Error::At {
            at: origin.to_string(),
            what,
        }
    }

    /// One of a fixed set of words, parsed; `what` says what is expected
    /// ("a mode, expected ...").
    fn choice<T>(
        &self,
        v: &S<String>,
        key: &'static str,
        parse: fn(&str) -> Option<T>,
        what: &str,
    ) -> Result<Option<Val<T>>, Error> {
        let Some(s) = v else { return Ok(None) };
        let from = self.origin(s.span(), key);
        match parse(s.get_ref()) {
            Some(v) => Ok(Some(Val { v, from })),
            None => Err(self.err(&from, format!("'{}' is not {what}", s.get_ref()))),
        }
    }

    fn plain<T: Clone>(&self, v: &S<T>, key: &'static str) -> Option<Val<T>> {
        v.as_ref().map(|s| Val {
            v: s.get_ref().clone(),
            from: self.origin(s.span(), key),
        })
    }

    /// A string value with variables expanded; `path_parts` says which
    /// ':'-separated parts are paths (for `~` and the absolute check).
    fn string(
        &self,
        s: &Spanned<String>,
        key: &'static str,
        path_parts: PathParts,
    ) -> Result<Val<String>, Error> {
        let from = self.origin(s.span(), key);
        let raw = s.get_ref();
        let (first, second) = match (path_parts, raw.split_once(':')) {
            (PathParts::None, _) => (raw.as_str(), None),
            (_, Some((a, b))) => (a, Some(b)),
            (_, None) => (raw.as_str(), None),
        };
        let first_is_path = !matches!(path_parts, PathParts::None | PathParts::Second);
        let second_is_path = matches!(
            path_parts,
            PathParts::Both | PathParts::Second | PathParts::FirstOptSecond
        );
        let mut parts = Vec::new();
        for (part, is_path) in [(Some(first), first_is_path), (second, second_is_path)] {
            let Some(part) = part else { continue };
            let e = self
                .vars
                .expand(part, is_path)
                .map_err(|m| self.err(&from, m))?;
            if is_path && !e.starts_with('/') {
                return Err(self.err(
                    &from,
                    format!(
                        "relative path '{part}' in '{raw}', expected an absolute path, ~/..., or one starting with ${{HOME}}, ${{CWD}} or another variable"
                    ),
                ));
            }
            parts.push(e);
        }
        Ok(Val {
            v: parts.join(":"),
            from,
        })
    }

    fn strings(
        &self,
        v: &L<String>,
        key: &'static str,
        parts: PathParts,
    ) -> Result<Vec<Val<String>>, Error> {
        v.iter()
            .flatten()
            .map(|s| self.string(s, key, parts))
            .collect()
    }
}

/// Which parts of a `A[:B]` value are paths.
#[derive(Clone, Copy)]
enum PathParts {
    None,
    /// `DST` or `DST:options` (tmpfs), `DST:CONTENT` (file).
    First,
    /// `TARGET:LINK` (symlink): the target may be relative.
    Second,
    /// `SRC[:DST]` (binds).
    FirstOptSecond,
    /// `DST:SRC` (file-from).
    Both,
}

pub fn parse(text: &str, path: &Path, vars: &Vars) -> Result<Parsed, Error> {
    let file: ProfileFile = toml::from_str(text).map_err(|e| {
        let (line, col) = line_col(text, e.span().map_or(0, |s| s.start));
        Error::At {
            at: format!("{}:{line}:{col}", path.display()),
            what: e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_string(),
        }
    })?;
    let line_starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let cx = Ctx {
        text,
        path,
        vars,
        line_starts,
    };

    let share_cwd = cx.choice(
        &file.share_cwd,
        "share-cwd",
        CwdMode::parse,
        "a mode, expected \"rw\", \"ro\" or \"no\"",
    )?;
    let seccomp = cx.choice(
        &file.seccomp,
        "seccomp",
        SeccompMode::parse,
        "a mode, expected \"default\", \"strict\" or \"off\"",
    )?;
    let landlock = cx.choice(
        &file.landlock,
        "landlock",
        LandlockMode::parse,
        "a mode, expected \"best-effort\", \"required\" or \"off\"",
    )?;
    let network = NetworkSection::default();
    let nw = file.network.as_ref().unwrap_or(&network);
    let no_limits = LimitsSection::default();
    let lim = file.limits.as_ref().unwrap_or(&no_limits);
    let net = cx.choice(
        &nw.net,
        "net",
        NetMode::parse,
        "a network mode, expected \"none\", \"host\" or \"user\"",
    )?;
    let net_driver = cx.choice(
        &nw.net_driver,
        "net-driver",
        DriverKind::parse,
        "a driver, expected \"auto\", \"pasta\" or \"slirp4netns\"",
    )?;

    let mut fs: Vec<(FsFlag, Val<String>)> = Vec::new();
    for (flag, values, parts) in [
        (FsFlag::RoBind, &file.ro_bind, PathParts::FirstOptSecond),
        (
            FsFlag::RoBindTry,
            &file.ro_bind_try,
            PathParts::FirstOptSecond,
        ),
        (FsFlag::Bind, &file.bind, PathParts::FirstOptSecond),
        (FsFlag::BindTry, &file.bind_try, PathParts::FirstOptSecond),
        (FsFlag::Tmpfs, &file.tmpfs, PathParts::First),
        (FsFlag::Dir, &file.dir, PathParts::First),
        (FsFlag::Symlink, &file.symlink, PathParts::Second),
        (FsFlag::File, &file.file, PathParts::First),
        (FsFlag::FileFrom, &file.file_from, PathParts::Both),
        (FsFlag::Proc, &file.proc, PathParts::First),
        (FsFlag::Dev, &file.dev, PathParts::First),
        (FsFlag::Overlay, &file.overlay, PathParts::FirstOptSecond),
        (
            FsFlag::TmpOverlay,
            &file.tmp_overlay,
            PathParts::FirstOptSecond,
        ),
        (FsFlag::Hide, &file.hide, PathParts::First),
    ] {
        for v in cx.strings(values, flag.key(), parts)? {
            fs.push((flag, v));
        }
    }
    // Parents first: a mount inside another's target must come after it.
    fs.sort_by_key(|(flag, v)| target(*flag, &v.v).components().count());

    let one = |v: &S<String>, key: &'static str, parts: PathParts| -> Result<_, Error> {
        v.as_ref().map(|s| cx.string(s, key, parts)).transpose()
    };
    let layer = Layer {
        uid: cx.plain(&file.uid, "uid"),
        gid: cx.plain(&file.gid, "gid"),
        subids: cx.plain(&file.subids, "subids"),
        share_net: cx.plain(&file.share_net, "share-net"),
        share_ipc: cx.plain(&file.share_ipc, "share-ipc"),
        share_uts: cx.plain(&file.share_uts, "share-uts"),
        share_pid: cx.plain(&file.share_pid, "share-pid"),
        share_cgroup: cx.plain(&file.share_cgroup, "share-cgroup"),
        no_default_view: cx.plain(&file.no_default_view, "no-default-view"),
        share_cwd,
        fs,
        chdir: one(&file.chdir, "chdir", PathParts::First)?,
        hostname: one(&file.hostname, "hostname", PathParts::None)?,
        setenv: cx.strings(&file.setenv, "setenv", PathParts::None)?,
        unsetenv: cx.strings(&file.unsetenv, "unsetenv", PathParts::None)?,
        clearenv: cx.plain(&file.clearenv, "clearenv"),
        keep_env: cx.strings(&file.keep_env, "keep-env", PathParts::None)?,
        pass_fd: file
            .pass_fd
            .iter()
            .flatten()
            .map(|s| Val {
                v: *s.get_ref(),
                from: cx.origin(s.span(), "pass-fd"),
            })
            .collect(),
        strict: cx.plain(&file.strict, "strict"),
        seccomp,
        seccomp_allow: cx.strings(&file.seccomp_allow, "seccomp-allow", PathParts::None)?,
        seccomp_deny: cx.strings(&file.seccomp_deny, "seccomp-deny", PathParts::None)?,
        landlock,
        allow_userns: cx.plain(&file.allow_userns, "allow-userns"),
        net,
        net_driver,
        allow_host_loopback: cx.plain(&nw.allow_host_loopback, "allow-host-loopback"),
        allow_host_port: nw
            .allow_host_port
            .iter()
            .flatten()
            .map(|s| Val {
                v: *s.get_ref(),
                from: cx.origin(s.span(), "allow-host-port"),
            })
            .collect(),
        publish: cx.strings(&nw.publish, "publish", PathParts::None)?,
        net_allow: cx.strings(&nw.net_allow, "net-allow", PathParts::None)?,
        memory: cx.plain(&lim.memory, "memory"),
        memory_swap: cx.plain(&lim.memory_swap, "memory-swap"),
        pids: cx.plain(&lim.pids, "pids"),
        cpus: cx.plain(&lim.cpus, "cpus"),
        cpu_weight: cx.plain(&lim.cpu_weight, "cpu-weight"),
        io_weight: cx.plain(&lim.io_weight, "io-weight"),
        io_max: cx.strings(&lim.io_max, "io-max", PathParts::None)?,
        rlimit: cx.strings(&lim.rlimit, "rlimit", PathParts::None)?,
        timeout: cx.plain(&lim.timeout, "timeout"),
        disk_quota: cx.plain(&lim.disk_quota, "disk-quota"),
        overlay_driver: cx.plain(&file.overlay_driver, "overlay-driver"),
    };
    let extends = file
        .extends
        .iter()
        .flatten()
        .map(|s| Val {
            v: s.get_ref().clone(),
            from: cx.origin(s.span(), "extends"),
        })
        .collect();
    Ok(Parsed { extends, layer })
}

/// The sandbox path an entry mounts on, for ordering.
fn target(flag: FsFlag, v: &str) -> PathBuf {
    let (a, b) = match v.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    PathBuf::from(match flag {
        FsFlag::Symlink => b.unwrap_or(a),
        FsFlag::RoBind
        | FsFlag::Bind
        | FsFlag::RoBindTry
        | FsFlag::BindTry
        | FsFlag::Overlay
        | FsFlag::TmpOverlay => b.unwrap_or(a),
        _ => a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::host;

    fn parse_str(text: &str) -> Result<Parsed, String> {
        parse(text, Path::new("/p/t.toml"), &Vars::from_host(&host())).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let cases = [
            (
                "uid = 1\nbogus = 2\n",
                "/p/t.toml:2:1: unknown field `bogus`, expected one of",
            ),
            (
                "share-net = \"yes\"\n",
                "/p/t.toml:1:13: invalid type: string \"yes\", expected a boolean",
            ),
            (
                "ro-bind = [\n  \"/usr\",\n  \"lib\",\n]\n",
                "/p/t.toml:3:3: ro-bind: relative path 'lib' in 'lib', expected an absolute path",
            ),
            (
                "tmpfs = [\"${NOPE}/x\"]\n",
                "/p/t.toml:1:10: tmpfs: unknown variable ${NOPE}, expected one of ${HOME}",
            ),
            ("uid = [\n", "/p/t.toml:1:8: "),
            (
                "share-cwd = \"maybe\"\n",
                "/p/t.toml:1:13: share-cwd: 'maybe' is not a mode, expected \"rw\", \"ro\" or \"no\"",
            ),
        ];
        for (text, want) in cases {
            let got = parse_str(text).err().unwrap_or_default();
            assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn values_expand_and_sort_parents_first() {
        let p = parse_str(
            "hide = [\"~/.cache/x\"]\nro-bind-try = [\"~\"]\ntmpfs = [\"~/.cache\"]\nsymlink = [\"usr/bin:/bin\"]\nsetenv = [\"A=~\"]\n",
        )
        .unwrap();
        let fs: Vec<(&str, &str)> = p
            .layer
            .fs
            .iter()
            .map(|(f, v)| (f.key(), v.v.as_str()))
            .collect();
        assert_eq!(
            fs,
            [
                ("symlink", "usr/bin:/bin"),
                ("ro-bind-try", "/home/ana"),
                ("tmpfs", "/home/ana/.cache"),
                ("hide", "/home/ana/.cache/x"),
            ]
        );
        assert_eq!(p.layer.setenv[0].v, "A=~");
    }
}

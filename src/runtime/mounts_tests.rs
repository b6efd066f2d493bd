//! The mount interpreter run on plans against a recorder instead of the
//! kernel: what it does for each operation, and in which order, checked
//! without namespaces or root. What the kernel then makes of it is for
//! the integration tests (tests/run.rs, tests/overlay.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use rustix::mount::MountAttrFlags;

use super::mounts::{MountSys, interpret};
use crate::error::{Step, StepError};
use crate::plan::{MountOp, Plan};
use crate::settings::{Key, Layer};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Missing,
    File,
    Dir,
}

/// The recorder's calls, to make one of them fail.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Call {
    Open,
    Stat,
    Clone,
    ReadOnly,
    NewFs,
    Attach,
    MountOn,
    MkdirP,
    Symlink,
    Write,
    Create,
    MountScratch,
    ScratchDir,
    MkdirStaged,
    Overlay,
    FuseOverlay,
    Seal,
}

/// A path the recorder was asked to open, and in which root.
struct Node {
    path: PathBuf,
    host: bool,
}

impl Node {
    fn name(&self) -> String {
        let p = self.path.display();
        if self.host {
            format!("host {p}")
        } else {
            p.to_string()
        }
    }
}

/// Logs each call as a line. Host paths exist, as directories, unless
/// told otherwise; paths in the new root exist once something was made
/// there, or when told. What a mount hides is not modelled: a path told
/// to exist exists throughout.
#[derive(Default)]
struct Recorder {
    log: Vec<String>,
    host: BTreeMap<PathBuf, Kind>,
    new: BTreeMap<PathBuf, Kind>,
    fails: Vec<(Call, PathBuf, Errno)>,
}

impl Recorder {
    fn host(mut self, path: &str, kind: Kind) -> Self {
        self.host.insert(path.into(), kind);
        self
    }

    fn new_root(mut self, path: &str, kind: Kind) -> Self {
        self.new.insert(path.into(), kind);
        self
    }

    /// `call` on `path` fails with `errno`.
    fn fail(mut self, call: Call, path: &str, errno: Errno) -> Self {
        self.fails.push((call, path.into(), errno));
        self
    }

    fn failing(&self, call: Call, path: &Path) -> Option<Errno> {
        self.fails
            .iter()
            .find(|(c, p, _)| *c == call && p == path)
            .map(|f| f.2)
    }

    /// Log `line`, with the errno when the call failed.
    fn note(&mut self, line: String, failed: Option<Errno>) -> Result<(), Errno> {
        match failed {
            Some(e) => {
                self.log.push(format!("{line}: {e:?}"));
                Err(e)
            }
            None => {
                self.log.push(line);
                Ok(())
            }
        }
    }

    fn record(&mut self, call: Call, path: &Path, line: String) -> Result<(), Errno> {
        let failed = self.failing(call, path);
        self.note(line, failed)
    }

    /// `path` and its missing parents now exist in the new root.
    fn made(&mut self, path: &Path, kind: Kind) {
        self.new.insert(path.to_path_buf(), kind);
        for p in path.ancestors().skip(1) {
            self.new.entry(p.to_path_buf()).or_insert(Kind::Dir);
        }
    }

    fn open(&mut self, path: &Path, host: bool) -> Result<Node, Errno> {
        let node = Node {
            path: path.to_path_buf(),
            host,
        };
        let kind = if host {
            self.host.get(path).copied().unwrap_or(Kind::Dir)
        } else {
            self.new.get(path).copied().unwrap_or(Kind::Missing)
        };
        let missing = (kind == Kind::Missing).then_some(Errno::ENOENT);
        let failed = self.failing(Call::Open, path).or(missing);
        self.note(format!("open {}", node.name()), failed)?;
        Ok(node)
    }
}

fn attrs(a: MountAttrFlags) -> String {
    [
        (MountAttrFlags::MOUNT_ATTR_RDONLY, "ro"),
        (MountAttrFlags::MOUNT_ATTR_NOSUID, "nosuid"),
        (MountAttrFlags::MOUNT_ATTR_NODEV, "nodev"),
        (MountAttrFlags::MOUNT_ATTR_NOEXEC, "noexec"),
    ]
    .into_iter()
    .filter(|(f, _)| a.contains(*f))
    .map(|(_, n)| n)
    .collect::<Vec<_>>()
    .join(",")
}

/// A detached mount: what it is, in words, and the path it was made
/// from or for (what `Recorder::fail` names).
struct Tree {
    what: String,
    path: PathBuf,
}

/// A call told to fail that names its own steps in the kernel's version
/// fails here with the step of its main system call there.
impl MountSys for Recorder {
    type Node = Node;
    type Tree = Tree;

    fn open_host(&mut self, path: &Path) -> Result<Node, Errno> {
        self.open(path, true)
    }

    fn open_new(&mut self, path: &Path) -> Result<Node, Errno> {
        self.open(path, false)
    }

    fn is_dir(&mut self, node: &Node) -> Result<bool, Errno> {
        let map = if node.host { &self.host } else { &self.new };
        let dir = map.get(&node.path) != Some(&Kind::File);
        let kind = if dir { "dir" } else { "file" };
        let line = format!("stat {}: {kind}", node.name());
        self.record(Call::Stat, &node.path, line)?;
        Ok(dir)
    }

    fn clone_tree(&mut self, node: &Node) -> Result<Tree, Errno> {
        let line = format!("clone {} (recursive)", node.name());
        self.record(Call::Clone, &node.path, line)?;
        Ok(Tree {
            what: node.name(),
            path: node.path.clone(),
        })
    }

    fn clone_staged(&mut self, path: &Path) -> Result<Tree, Errno> {
        self.record(Call::Clone, path, format!("clone {}", path.display()))?;
        Ok(Tree {
            what: path.display().to_string(),
            path: path.to_path_buf(),
        })
    }

    fn set_read_only(&mut self, tree: &Tree, recursive: bool) -> Result<(), Errno> {
        let how = if recursive { " (recursive)" } else { "" };
        let line = format!("read-only {}{how}", tree.what);
        self.record(Call::ReadOnly, &tree.path, line)
    }

    fn new_fs(
        &mut self,
        fstype: &str,
        opts: &[(&str, String)],
        a: MountAttrFlags,
        dst: &Path,
    ) -> Result<Tree, StepError> {
        let opts: Vec<String> = opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let what = format!("{fstype}({})", opts.join(","));
        self.record(Call::NewFs, dst, format!("new {what} {}", attrs(a)))
            .map_err(|e| {
                StepError::new(Step::MountNew, Some(dst), e).detail(format!("{fstype} on"))
            })?;
        Ok(Tree {
            what,
            path: dst.to_path_buf(),
        })
    }

    fn attach(&mut self, tree: &Tree, dst: &Path, dir: bool) -> Result<(), StepError> {
        let kind = if dir { "dir" } else { "file" };
        let line = format!("attach {} at {} ({kind})", tree.what, dst.display());
        self.record(Call::Attach, dst, line)
            .map_err(|e| StepError::new(Step::MoveMount, Some(dst), e))?;
        self.made(dst, if dir { Kind::Dir } else { Kind::File });
        Ok(())
    }

    fn mount_on(&mut self, tree: &Tree, node: &Node) -> Result<(), Errno> {
        let line = format!("mount {} on {}", tree.what, node.name());
        self.record(Call::MountOn, &node.path, line)
    }

    fn mkdir_p(&mut self, path: &Path) -> Result<(), StepError> {
        self.record(Call::MkdirP, path, format!("mkdir -p {}", path.display()))
            .map_err(|e| StepError::new(Step::CreateDir, Some(path), e))?;
        self.made(path, Kind::Dir);
        Ok(())
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> Result<(), StepError> {
        let line = format!("symlink {} -> {}", link.display(), target.display());
        self.record(Call::Symlink, link, line)
            .map_err(|e| StepError::new(Step::CreateSymlink, Some(link), e))?;
        self.made(link, Kind::File);
        Ok(())
    }

    fn write_staged(&mut self, path: &Path, content: &str) -> std::io::Result<()> {
        let line = format!("write {} {content:?}", path.display());
        self.record(Call::Write, path, line)
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
    }

    fn create_unreadable(&mut self, path: &Path) -> Result<(), Errno> {
        self.record(
            Call::Create,
            path,
            format!("create {} (mode 0)", path.display()),
        )
    }

    fn mount_scratch(&mut self, pool: &Path, size: Option<u64>) -> Result<(), Errno> {
        let size = size.map_or(String::new(), |s| format!(" size={s}"));
        let line = format!("mount scratch pool at {}{size}", pool.display());
        self.record(Call::MountScratch, pool, line)
    }

    fn scratch_dir(&mut self, path: &Path, mode: u32) -> Result<(), StepError> {
        let line = format!("scratch dir {} mode={mode:o}", path.display());
        self.record(Call::ScratchDir, path, line)
            .map_err(|e| StepError::new(Step::Create, Some(path), e))
    }

    fn mkdir_staged(&mut self, path: &Path) -> Result<(), Errno> {
        self.record(Call::MkdirStaged, path, format!("mkdir {}", path.display()))
    }

    fn native_overlay(&mut self, opts: &[(&str, &str)], dst: &Path) -> Result<(), StepError> {
        let opts: Vec<String> = opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let line = format!("overlay {} at {}", opts.join(","), dst.display());
        self.record(Call::Overlay, dst, line)
            .map_err(|e| StepError::new(Step::MountOverlay, Some(dst), e))?;
        self.made(dst, Kind::Dir);
        Ok(())
    }

    fn fuse_overlay(
        &mut self,
        program: &Path,
        (uid, gid): (u32, u32),
        options: &str,
        dst: &Path,
    ) -> Result<(), StepError> {
        let line = format!(
            "fuse-overlayfs {} as {uid}:{gid} -o {options} at {}",
            program.display(),
            dst.display()
        );
        self.record(Call::FuseOverlay, dst, line)
            .map_err(|e| StepError::new(Step::MountFuseOverlay, Some(dst), e))?;
        self.made(dst, Kind::Dir);
        Ok(())
    }

    fn seal_root(&mut self) -> Result<(), Errno> {
        self.record(Call::Seal, Path::new("/"), "seal /".to_string())
    }
}

fn plan_of(layer: &Layer) -> Plan {
    let spec = crate::spec::tests::spec_of(layer, &crate::host::Host::fake()).unwrap();
    crate::plan::build(&spec, None)
}

/// No default view: only what a test adds, on an empty root.
fn bare() -> Layer {
    Layer::default().with(Key::NoDefaultView, true)
}

fn run(rec: &mut Recorder, ops: &[MountOp], scratch_size: Option<u64>) -> Result<(), StepError> {
    interpret(rec, ops, scratch_size, false, false).map(drop)
}

/// `lines` appear in the log one after the other.
#[track_caller]
fn assert_run(log: &[String], lines: &[&str]) {
    let found = log
        .windows(lines.len())
        .any(|w| w.iter().zip(lines).all(|(a, b)| a == b));
    assert!(found, "{lines:#?}\nnot in a row in\n{log:#?}");
}

#[track_caller]
fn pos(log: &[String], line: &str) -> usize {
    log.iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("{line:?} not in\n{log:#?}"))
}

/// What procfs shows at the paths the plan makes read-only.
fn with_procfs(rec: Recorder) -> Recorder {
    rec.new_root("/proc/sys", Kind::Dir)
        .new_root("/proc/sysrq-trigger", Kind::File)
        .new_root("/proc/irq", Kind::Dir)
        .new_root("/proc/bus", Kind::Dir)
}

fn with_devices(mut rec: Recorder) -> Recorder {
    for d in ["null", "zero", "full", "random", "urandom", "tty"] {
        rec = rec.host(&format!("/dev/{d}"), Kind::File);
    }
    rec
}

#[test]
fn default_view_in_order() {
    let plan = plan_of(&Layer::default());
    let mut rec = with_devices(with_procfs(Recorder::default()));
    run(&mut rec, &plan.mounts, plan.scratch_size).unwrap();
    let log = &rec.log;
    // The system directories: whole trees, read-only all the way down.
    assert_run(
        log,
        &[
            "open host /usr",
            "stat host /usr: dir",
            "clone host /usr (recursive)",
            "read-only host /usr (recursive)",
            "attach host /usr at /usr (dir)",
            "open host /etc",
            "stat host /etc: dir",
            "clone host /etc (recursive)",
            "read-only host /etc (recursive)",
            "attach host /etc at /etc (dir)",
            "symlink /bin -> usr/bin",
        ],
    );
    // A fresh procfs, then read-only copies over the parts that could
    // reconfigure the host's kernel.
    assert_run(
        log,
        &[
            "new proc() nosuid,nodev,noexec",
            "attach proc() at /proc (dir)",
            "open /proc/sys",
            "clone /proc/sys (recursive)",
            "read-only /proc/sys (recursive)",
            "mount /proc/sys on /proc/sys",
            "open /proc/sysrq-trigger",
            "clone /proc/sysrq-trigger (recursive)",
            "read-only /proc/sysrq-trigger (recursive)",
            "mount /proc/sysrq-trigger on /proc/sysrq-trigger",
        ],
    );
    // /dev: a scratch area, the devices bound read-write onto files of
    // their own, a private devpts, the ptmx link into it, shm.
    assert_run(
        log,
        &[
            "mount scratch pool at /scratch",
            "scratch dir /scratch/1 mode=755",
            "clone /scratch/1",
            "attach /scratch/1 at /dev (dir)",
            "open host /dev/null",
            "stat host /dev/null: file",
            "clone host /dev/null (recursive)",
            "attach host /dev/null at /dev/null (file)",
        ],
    );
    assert_run(
        log,
        &[
            "attach host /dev/tty at /dev/tty (file)",
            "new devpts(ptmxmode=0666,mode=0620) nosuid,noexec",
            "attach devpts(ptmxmode=0666,mode=0620) at /dev/pts (dir)",
            "symlink /dev/ptmx -> pts/ptmx",
            "scratch dir /scratch/2 mode=1777",
            "clone /scratch/2",
            "attach /scratch/2 at /dev/shm (dir)",
        ],
    );
    assert!(!log.iter().any(|l| l.starts_with("read-only host /dev")));
    // The scratch pool is mounted once, for every area.
    assert_eq!(log.iter().filter(|l| l.contains("scratch pool")).count(), 1);
    // The working directory is the last thing mounted, read-write; then
    // the root itself is sealed.
    let n = log.len();
    assert_eq!(
        log[n - 5..],
        [
            "open host /home/ana/src/proj",
            "stat host /home/ana/src/proj: dir",
            "clone host /home/ana/src/proj (recursive)",
            "attach host /home/ana/src/proj at /home/ana/src/proj (dir)",
            "seal /",
        ]
    );
}

#[test]
fn read_only_cover_skips_only_a_missing_path() {
    let plan = plan_of(&Layer::default());
    // An older kernel without /proc/irq: the cover is optional.
    let mut rec = with_devices(with_procfs(Recorder::default()));
    rec.new.remove(Path::new("/proc/irq"));
    run(&mut rec, &plan.mounts, plan.scratch_size).unwrap();
    assert_run(&rec.log, &["open /proc/irq: ENOENT", "open /proc/bus"]);
    // Anything else is an error: the part would stay writable.
    let mut rec =
        with_devices(with_procfs(Recorder::default())).fail(Call::Open, "/proc/irq", Errno::EACCES);
    let e = run(&mut rec, &plan.mounts, plan.scratch_size).unwrap_err();
    assert_eq!(e.step, Step::Open);
    assert_eq!(e.path.as_deref(), Some("/proc/irq"));
    assert_eq!(e.errno(), Some(Errno::EACCES));
    assert_eq!(rec.log.last().unwrap(), "open /proc/irq: EACCES");
}

#[test]
fn optional_bind_of_a_missing_source_is_skipped() {
    let plan = plan_of(&bare().with(Key::BindTry, "/nook-test-absent:/opt/a".to_string()));
    let mut rec = Recorder::default().host("/nook-test-absent", Kind::Missing);
    run(&mut rec, &plan.mounts, plan.scratch_size).unwrap();
    assert_eq!(rec.log, ["open host /nook-test-absent: ENOENT", "seal /"]);
    // Only absence is forgiven: a source there but not to be opened is
    // an error even for the -try form.
    let mut rec = Recorder::default().fail(Call::Open, "/nook-test-absent", Errno::EACCES);
    let e = run(&mut rec, &plan.mounts, plan.scratch_size).unwrap_err();
    assert_eq!(e.step, Step::OpenBindSource);
    assert_eq!(e.errno(), Some(Errno::EACCES));
}

#[test]
fn required_bind_of_a_missing_source_fails_naming_it() {
    let plan = plan_of(&bare().with(Key::Bind, "/usr:/opt/u".to_string()));
    let mut rec = Recorder::default().host("/usr", Kind::Missing);
    let e = run(&mut rec, &plan.mounts, plan.scratch_size).unwrap_err();
    assert_eq!(e.step, Step::OpenBindSource);
    assert_eq!(e.path.as_deref(), Some("/usr"));
    assert_eq!(e.errno(), Some(Errno::ENOENT));
    assert_eq!(
        e.hint.as_deref(),
        Some(
            "the source must exist when the sandbox starts; use the -try form to make it optional"
        )
    );
    assert_eq!(
        e.to_string(),
        "opening bind source /usr: ENOENT (No such file or directory)"
    );
    // Nothing runs after the failure.
    assert_eq!(rec.log, ["open host /usr: ENOENT"]);
}

#[test]
fn hide_covers_a_directory_with_a_tmpfs_and_a_file_with_an_empty_file() {
    let plan = plan_of(
        &bare()
            .with(Key::Hide, "/opt/keys".to_string())
            .with(Key::Hide, "/opt/token".to_string())
            .with(Key::Hide, "/opt/netrc".to_string())
            .with(Key::Hide, "/opt/absent".to_string()),
    );
    let mut rec = Recorder::default()
        .new_root("/opt/keys", Kind::Dir)
        .new_root("/opt/token", Kind::File)
        .new_root("/opt/netrc", Kind::File);
    run(&mut rec, &plan.mounts, plan.scratch_size).unwrap();
    let log = &rec.log;
    assert_run(
        log,
        &[
            "open /opt/keys",
            "stat /opt/keys: dir",
            "new tmpfs(mode=0,size=4k) ro,nosuid,nodev,noexec",
            "attach tmpfs(mode=0,size=4k) at /opt/keys (dir)",
        ],
    );
    assert_run(
        log,
        &[
            "open /opt/token",
            "stat /opt/token: file",
            "create /files/hidden (mode 0)",
            "clone /files/hidden",
            "read-only /files/hidden",
            "attach /files/hidden at /opt/token (file)",
        ],
    );
    // The one empty file serves every hidden file.
    assert_run(
        log,
        &[
            "open /opt/netrc",
            "stat /opt/netrc: file",
            "clone /files/hidden",
            "read-only /files/hidden",
            "attach /files/hidden at /opt/netrc (file)",
        ],
    );
    assert_eq!(log.iter().filter(|l| l.starts_with("create")).count(), 1);
    // Nothing there, nothing to hide.
    pos(log, "open /opt/absent: ENOENT");
    assert!(!log.iter().any(|l| l.ends_with("at /opt/absent (dir)")));
}

#[test]
fn file_is_staged_then_bound_read_only() {
    let plan = plan_of(
        &bare()
            .with(Key::File, "/opt/motd:hello".to_string())
            .with(Key::File, "/opt/issue:".to_string()),
    );
    let mut rec = Recorder::default();
    run(&mut rec, &plan.mounts, plan.scratch_size).unwrap();
    assert_eq!(
        rec.log,
        [
            "write /files/1 \"hello\"",
            "clone /files/1",
            "read-only /files/1",
            "attach /files/1 at /opt/motd (file)",
            "write /files/2 \"\"",
            "clone /files/2",
            "read-only /files/2",
            "attach /files/2 at /opt/issue (file)",
            "seal /",
        ]
    );
}

/// A plan with one kept overlay of /usr at /mnt/o, native then fuse.
fn kept_overlay() -> (Plan, PathBuf, PathBuf) {
    let host = crate::host::Host::fake();
    host.programs.borrow_mut().insert(
        "fuse-overlayfs".into(),
        Some("/usr/bin/fuse-overlayfs".into()),
    );
    let layer = bare().with(Key::Overlay, "/usr:/mnt/o".to_string());
    let spec = crate::spec::tests::spec_of(&layer, &host).unwrap();
    let plan = crate::plan::build(&spec, Some(Path::new("/home/ana/.local/state/nook/sb")));
    let Some(MountOp::Overlay {
        layers: Some((upper, work)),
        ..
    }) = plan.mounts.first()
    else {
        panic!("expected a kept overlay first: {:?}", plan.mounts);
    };
    let (upper, work) = (upper.clone(), work.clone());
    (plan, upper, work)
}

#[test]
fn overlay_tries_native_then_fuse() {
    let (plan, upper, work) = kept_overlay();
    let (u, w) = (upper.display(), work.display());
    let native =
        format!("overlay lowerdir=/oldroot/usr,upperdir=/oldroot{u},workdir=/oldroot{w} at /mnt/o");
    let fuse = format!(
        "fuse-overlayfs /usr/bin/fuse-overlayfs as 1000:1000 -o lowerdir=/usr,upperdir={u},workdir={w} at /mnt/o"
    );

    // The first that mounts is kept.
    let mut rec = Recorder::default();
    run(&mut rec, &plan.mounts, plan.scratch_size).unwrap();
    assert_eq!(rec.log, [native.clone(), "seal /".to_string()]);

    // Native refused: fuse is tried next.
    let mut rec = Recorder::default().fail(Call::Overlay, "/mnt/o", Errno::EINVAL);
    run(&mut rec, &plan.mounts, plan.scratch_size).unwrap();
    assert_eq!(
        rec.log,
        [format!("{native}: EINVAL"), fuse.clone(), "seal /".into()]
    );

    // Both refused: the last failure, with the earlier one in its hint.
    let mut rec = Recorder::default()
        .fail(Call::Overlay, "/mnt/o", Errno::EINVAL)
        .fail(Call::FuseOverlay, "/mnt/o", Errno::ENODEV);
    let e = run(&mut rec, &plan.mounts, plan.scratch_size).unwrap_err();
    assert_eq!(e.step, Step::MountFuseOverlay);
    assert_eq!(e.errno(), Some(Errno::ENODEV));
    assert_eq!(
        e.hint.as_deref(),
        Some("tried before it: mounting overlay on /mnt/o: EINVAL (Invalid argument)")
    );
    assert_eq!(
        rec.log,
        [format!("{native}: EINVAL"), format!("{fuse}: ENODEV")]
    );
}

#[test]
fn throw_away_overlay_keeps_its_upper_layer_in_the_scratch_pool() {
    let plan = plan_of(&bare().with(Key::TmpOverlay, "/usr:/mnt/t".to_string()));
    let mut rec = Recorder::default();
    run(&mut rec, &plan.mounts, Some(1 << 20)).unwrap();
    assert_eq!(
        rec.log,
        [
            "mount scratch pool at /scratch size=1048576",
            "scratch dir /scratch/1 mode=755",
            "mkdir /scratch/1/upper",
            "mkdir /scratch/1/work",
            "overlay lowerdir=/oldroot/usr,upperdir=/scratch/1/upper,workdir=/scratch/1/work at /mnt/t",
            "seal /",
        ]
    );
}

#[test]
fn later_operations_cover_earlier_ones() {
    let plan = plan_of(&Layer::default().with(Key::Tmpfs, "/usr:size=1m".to_string()));
    let mut rec = with_devices(with_procfs(Recorder::default()));
    run(&mut rec, &plan.mounts, plan.scratch_size).unwrap();
    let log = &rec.log;
    let bind = pos(log, "attach host /usr at /usr (dir)");
    let tmpfs = pos(log, "attach tmpfs(mode=755,size=1048576) at /usr (dir)");
    assert!(bind < tmpfs, "{log:#?}");
    // Nothing is mounted at /usr after the tmpfs: it is what shows.
    assert!(
        !log[tmpfs + 1..]
            .iter()
            .any(|l| l.ends_with(" at /usr (dir)"))
    );
}

/// Nested in a sandbox whose /proc has covered parts, the kernel refuses
/// a new procfs: the parent's /proc, covers and all, takes its place and
/// init is told so (to warn); with --strict the refusal stands.
#[test]
fn refused_procfs_falls_back_to_the_parents_unless_strict() {
    let plan = plan_of(&Layer::default());
    let rec = || {
        with_devices(with_procfs(Recorder::default()))
            .host("/proc", Kind::Dir)
            .fail(Call::NewFs, "/proc", Errno::EPERM)
    };
    let mut r = rec();
    let built = interpret(&mut r, &plan.mounts, None, false, false).unwrap();
    assert!(built.parent_proc);
    assert_run(
        &r.log,
        &[
            "open host /proc",
            "clone host /proc (recursive)",
            "attach host /proc at /proc (dir)",
        ],
    );
    pos(&r.log, "read-only /proc/sys (recursive)");
    let mut r = rec();
    let e = interpret(&mut r, &plan.mounts, None, true, false).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EPERM), "{e}");
    let mut r = with_devices(with_procfs(Recorder::default()));
    let built = interpret(&mut r, &plan.mounts, None, false, false).unwrap();
    assert!(!built.parent_proc);
}

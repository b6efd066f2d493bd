//! Build the sandbox's root from the plan's mount operations. A `match`
//! over the operations, no policy: every decision was made by the planner.
//!
//! Layout while building (as bubblewrap does): a private staging tmpfs is
//! the root, the host's root sits at /oldroot, the sandbox's root at
//! /newroot. Host paths are resolved under /oldroot and sandbox paths under
//! /newroot with RESOLVE_IN_ROOT, so a symlink can't lead a mount out of
//! either tree. Mounts are made with the fd-based mount API (open_tree,
//! fsopen, move_mount), so no path is looked up twice.
//!
//! The interpreter (`interpret`) reaches the kernel only through
//! `MountSys`, so that unit tests (`mounts_tests`) can run it on a plan
//! with a recorder, without namespaces or root; `Kernel` is the real one.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use rustix::fs::{CWD, FileType, Mode, OFlags, ResolveFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags, fsconfig_create,
    fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
};

use crate::error::{Context, Step, StepError, from_rustix};
use crate::plan::{MountOp, OverlayWith};
use crate::sys;

use super::trace;

/// Where the staging tmpfs is mounted in our private mount namespace; any
/// directory that exists on the host will do.
const STAGING: &str = "/tmp";

pub fn build_root(
    ops: &[MountOp],
    scratch_size: Option<u64>,
    strict: bool,
    verbose: bool,
) -> Result<Built, StepError> {
    // Mount events must not travel back to the host. In a namespace owned
    // by a less privileged user namespace shared mounts already became
    // slaves (mount_namespaces(7)); this makes it explicit for all.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(Step::SlaveRoot, Some(Path::new("/")))?;
    mount(
        Some("tmpfs"),
        STAGING,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .step(Step::MountStaging, Some(Path::new(STAGING)))?;
    nix::unistd::chdir(STAGING).step(Step::Enter, Some(Path::new(STAGING)))?;
    for d in ["newroot", "oldroot", "files", "scratch"] {
        nix::unistd::mkdir(d, nix::sys::stat::Mode::from_bits_truncate(0o755))
            .step(Step::CreateStagingDir, Some(Path::new(d)))?;
    }
    nix::unistd::pivot_root(".", "oldroot").step(Step::PivotStaging, Some(Path::new(STAGING)))?;
    nix::unistd::chdir("/").step(Step::Enter, Some(Path::new("/")))?;
    mount(
        Some("tmpfs"),
        "/newroot",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .step(Step::MountRoot, None)?;

    let mut kernel = Kernel {
        root: open_dir("/newroot")?,
        host: open_dir("/oldroot")?,
    };
    let mut built = interpret(&mut kernel, ops, scratch_size, strict, verbose)?;
    drop(kernel);
    // The scratch pool is a mount of its own only when an area was made.
    built.pool = match scratch_size {
        Some(_) => {
            let dev = |p: &str| rustix::fs::stat(p).map(|s| s.st_dev).ok();
            (dev("/scratch") != dev("/"))
                .then(|| {
                    rustix::fs::open(
                        "/scratch",
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .ok()
                })
                .flatten()
        }
        None => None,
    };

    // pivot_root(".", ".") stacks the staging root, with the host's root
    // still at /oldroot in it, on top of the new one; detaching "." then
    // takes both away at once and leaves only the new root (pivot_root(2)
    // NOTES): after this nothing outside the plan is reachable. Every
    // mount that came from the host is a slave since the start (and every
    // one made here is private or a slave), so the detach propagates
    // nowhere.
    nix::unistd::chdir("/newroot").step(Step::Enter, Some(Path::new("/newroot")))?;
    nix::unistd::pivot_root(".", ".").step(Step::PivotNewRoot, None)?;
    umount2(".", MntFlags::MNT_DETACH).step(Step::DetachRoots, None)?;
    nix::unistd::chdir("/").step(Step::Enter, Some(Path::new("/")))?;
    Ok(built)
}

/// What the interpreter asks of the kernel, at the level of its own
/// helpers. Paths in the new root are resolved beneath it, host paths
/// beneath the host's root; paths in the staging area (/files, /scratch)
/// are plain paths, since the staging tmpfs is the root meanwhile.
///
/// A method that is one system call returns the errno and the
/// interpreter names the step (the same call is a different step in
/// different operations); a method of several calls names its own steps.
pub(super) trait MountSys {
    /// A path opened in the host's root or in the new root.
    type Node;
    /// A detached mount, not attached anywhere yet.
    type Tree;

    /// Open a host path. ENOENT is the interpreter's to judge: an
    /// optional bind is skipped.
    fn open_host(&mut self, path: &Path) -> Result<Self::Node, Errno>;
    /// Open a path in the new root (ENOENT as for `open_host`).
    fn open_new(&mut self, path: &Path) -> Result<Self::Node, Errno>;
    /// Whether `node` is a directory (else a file or a device: a bind
    /// target is made of the same kind).
    fn is_dir(&mut self, node: &Self::Node) -> Result<bool, Errno>;
    /// A recursive copy of the mount tree at `node`.
    fn clone_tree(&mut self, node: &Self::Node) -> Result<Self::Tree, Errno>;
    /// A copy of the one mount at staging path `path` (a staged file, a
    /// scratch area).
    fn clone_staged(&mut self, path: &Path) -> Result<Self::Tree, Errno>;
    fn set_read_only(&mut self, tree: &Self::Tree, recursive: bool) -> Result<(), Errno>;
    /// A new instance of filesystem `fstype`, meant for `dst`.
    fn new_fs(
        &mut self,
        fstype: &str,
        opts: &[(&str, String)],
        attrs: MountAttrFlags,
        dst: &Path,
    ) -> Result<Self::Tree, StepError>;
    /// Mount `tree` at `dst` in the new root, creating the mount point (a
    /// directory or an empty file) and its missing parents.
    fn attach(&mut self, tree: &Self::Tree, dst: &Path, dir: bool) -> Result<(), StepError>;
    /// Mount `tree` on `node`, which exists.
    fn mount_on(&mut self, tree: &Self::Tree, node: &Self::Node) -> Result<(), Errno>;
    /// Create a directory and its missing parents in the new root.
    fn mkdir_p(&mut self, path: &Path) -> Result<(), StepError>;
    /// Create symlink `link` in the new root; one that exists and points
    /// to `target` already will do.
    fn symlink(&mut self, target: &Path, link: &Path) -> Result<(), StepError>;
    fn write_staged(&mut self, path: &Path, content: &str) -> std::io::Result<()>;
    /// Create an empty file of mode 0 in the staging area.
    fn create_unreadable(&mut self, path: &Path) -> Result<(), Errno>;
    /// Mount the tmpfs that holds every scratch area at `pool`.
    fn mount_scratch(&mut self, pool: &Path, size: Option<u64>) -> Result<(), Errno>;
    /// Create scratch area `path` with exactly `mode`.
    fn scratch_dir(&mut self, path: &Path, mode: u32) -> Result<(), StepError>;
    /// Create a directory (mode 0755, less the umask) in the staging area.
    fn mkdir_staged(&mut self, path: &Path) -> Result<(), Errno>;
    /// Mount an overlayfs with these options at `dst` (as `attach`).
    fn native_overlay(&mut self, opts: &[(&str, &str)], dst: &Path) -> Result<(), StepError>;
    /// Mount a FUSE filesystem owned by `ids` at `dst` (as `attach`) and
    /// start fuse-overlayfs `program` serving it with `options` (host
    /// paths: the daemon sees the host's root).
    fn fuse_overlay(
        &mut self,
        program: &Path,
        ids: (u32, u32),
        options: &str,
        dst: &Path,
    ) -> Result<(), StepError>;
    /// Make the new root's own tmpfs read-only.
    fn seal_root(&mut self) -> Result<(), Errno>;
}

/// Run the plan's mount operations, in order, through `sys`.
pub(super) fn interpret<S: MountSys>(
    sys: &mut S,
    ops: &[MountOp],
    scratch_size: Option<u64>,
    strict: bool,
    verbose: bool,
) -> Result<Built, StepError> {
    let mut b = Builder {
        sys,
        files: 0,
        hidden_file: None,
        scratch_size,
        scratch_areas: 0,
        strict,
        parent_proc: false,
    };
    for op in ops {
        trace(verbose, "init", format_args!("{op}"));
        b.apply(op)?;
    }
    Ok(Built {
        pool: None,
        parent_proc: b.parent_proc,
    })
}

/// What the finished view holds for init beyond the mounts.
#[derive(Debug, Default)]
pub struct Built {
    /// With --disk-quota, the pool every scratch area lives in, for init
    /// to tell at the end whether the sandbox filled it.
    pub pool: Option<OwnedFd>,
    /// A new procfs was refused: /proc is the parent's (and lists its
    /// processes).
    pub parent_proc: bool,
}

struct Builder<'a, S: MountSys> {
    sys: &'a mut S,
    files: usize,
    hidden_file: Option<PathBuf>,
    /// The disk quota: the size of the one tmpfs behind every scratch area.
    scratch_size: Option<u64>,
    /// Scratch areas made so far (the pool is mounted with the first).
    scratch_areas: usize,
    /// A refused new procfs is an error rather than a borrowed /proc.
    strict: bool,
    parent_proc: bool,
}

impl<S: MountSys> Builder<'_, S> {
    fn apply(&mut self, op: &MountOp) -> Result<(), StepError> {
        match op {
            MountOp::BindHost {
                src,
                dst,
                read_only,
                optional,
            } => {
                let node = match self.sys.open_host(src) {
                    Ok(node) => node,
                    Err(Errno::ENOENT) if *optional => return Ok(()),
                    Err(e) => {
                        return Err(StepError::new(Step::OpenBindSource, Some(src), e)
                            .hint("the source must exist when the sandbox starts; use the -try form to make it optional"));
                    }
                };
                let is_dir = self
                    .sys
                    .is_dir(&node)
                    .step(Step::InspectBindSource, Some(src))?;
                let tree = self
                    .sys
                    .clone_tree(&node)
                    .step(Step::CloneMountTree, Some(src))?;
                if *read_only {
                    self.sys
                        .set_read_only(&tree, true)
                        .step(Step::MakeReadOnly, Some(src))?;
                }
                self.sys.attach(&tree, dst, is_dir)
            }
            MountOp::ReadOnly { dst, optional } => {
                let node = match self.sys.open_new(dst) {
                    Ok(node) => node,
                    Err(Errno::ENOENT) if *optional => return Ok(()),
                    Err(e) => return Err(StepError::new(Step::Open, Some(dst), e)),
                };
                let tree = self
                    .sys
                    .clone_tree(&node)
                    .step(Step::CloneMountTree, Some(dst))?;
                self.sys
                    .set_read_only(&tree, true)
                    .step(Step::MakeReadOnly, Some(dst))?;
                self.sys
                    .mount_on(&tree, &node)
                    .step(Step::MountReadOnlyCopy, Some(dst))
            }
            MountOp::Tmpfs {
                dst,
                size: None,
                mode,
            } => self.scratch_area(dst, *mode),
            MountOp::Tmpfs { dst, size, mode } => {
                let mut opts = vec![("mode", format!("{mode:o}"))];
                if let Some(s) = size {
                    opts.push(("size", s.to_string()));
                }
                let m = self.sys.new_fs(
                    "tmpfs",
                    &opts,
                    MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
                    dst,
                )?;
                self.sys.attach(&m, dst, true)
            }
            MountOp::Proc { dst } => {
                let fresh = self.sys.new_fs(
                    "proc",
                    &[],
                    MountAttrFlags::MOUNT_ATTR_NOSUID
                        | MountAttrFlags::MOUNT_ATTR_NODEV
                        | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                    dst,
                );
                match fresh {
                    Ok(m) => self.sys.attach(&m, dst, true),
                    // Inside another sandbox or a container, parts of the
                    // parent's /proc are covered (read-only /proc/sys,
                    // masked files), and the kernel refuses a new procfs
                    // that would show them uncovered (mount_too_revealing).
                    // What is left is the parent's own /proc, covers and
                    // all: the sandbox then sees the parent's processes.
                    Err(e) if e.errno() == Some(Errno::EPERM) && !self.strict => {
                        let proc = Path::new("/proc");
                        let node = self
                            .sys
                            .open_host(proc)
                            .map_err(|e| StepError::new(Step::Open, Some(proc), e))?;
                        let tree = self
                            .sys
                            .clone_tree(&node)
                            .step(Step::CloneMountTree, Some(proc))?;
                        self.sys.attach(&tree, dst, true)?;
                        self.parent_proc = true;
                        Ok(())
                    }
                    Err(e) if e.errno() == Some(Errno::EPERM) => {
                        Err(e.hint(super::init::PROC_REFUSED_HINT))
                    }
                    Err(e) => Err(e),
                }
            }
            MountOp::Devpts { dst } => {
                let m = self.sys.new_fs(
                    "devpts",
                    &[("ptmxmode", "0666".into()), ("mode", "0620".into())],
                    MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                    dst,
                )?;
                self.sys.attach(&m, dst, true)
            }
            MountOp::Dir { dst } => self.sys.mkdir_p(dst),
            MountOp::Symlink { target, link } => self.sys.symlink(target, link),
            MountOp::File { dst, content } => {
                self.files += 1;
                let staged = PathBuf::from(format!("/files/{}", self.files));
                self.sys
                    .write_staged(&staged, content)
                    .step(Step::Write, Some(&staged))?;
                self.bind_staged(&staged, dst)
            }
            MountOp::Hide { dst } => {
                let node = match self.sys.open_new(dst) {
                    Ok(node) => node,
                    Err(Errno::ENOENT) => return Ok(()),
                    Err(e) => return Err(StepError::new(Step::Open, Some(dst), e)),
                };
                if self.sys.is_dir(&node).step(Step::Inspect, Some(dst))? {
                    let m = self.sys.new_fs(
                        "tmpfs",
                        &[("mode", "0".into()), ("size", "4k".into())],
                        MountAttrFlags::MOUNT_ATTR_RDONLY
                            | MountAttrFlags::MOUNT_ATTR_NOSUID
                            | MountAttrFlags::MOUNT_ATTR_NODEV
                            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                        dst,
                    )?;
                    self.sys.attach(&m, dst, true)
                } else {
                    let staged = self.hidden_file()?;
                    self.bind_staged(&staged, dst)
                }
            }
            MountOp::Overlay {
                lower,
                dst,
                layers,
                with,
            } => self.overlay(lower, dst, layers.as_ref(), with),
            MountOp::SealRoot => self
                .sys
                .seal_root()
                .step(Step::SealRoot, Some(Path::new("/"))),
        }
    }

    /// Copy-on-write view of host directory `lower` at `dst`.
    fn overlay(
        &mut self,
        lower: &Path,
        dst: &Path,
        layers: Option<&(PathBuf, PathBuf)>,
        with: &[OverlayWith],
    ) -> Result<(), StepError> {
        let host = |p: &Path| format!("/oldroot{}", p.display());
        let (upper, work) = match layers {
            Some((u, w)) => (host(u), host(w)),
            None => {
                let area = self.new_scratch_dir(0o755)?;
                for d in ["upper", "work"] {
                    let p = area.join(d);
                    self.sys.mkdir_staged(&p).step(Step::Create, Some(&p))?;
                }
                (
                    area.join("upper").display().to_string(),
                    area.join("work").display().to_string(),
                )
            }
        };
        let lowerdir = host(lower);
        for p in [&lowerdir, &upper, &work] {
            if p.contains([',', ':', '\\']) {
                return Err(StepError::new(Step::MountOverlay, Some(dst), Errno::EINVAL)
                    .hint(format!("overlay paths can't hold ',', ':' or '\\': {p}")));
            }
        }
        // The plan lists the implementations to try, in order; the last
        // failure is reported, with the earlier ones in its hint.
        let mut earlier: Vec<String> = Vec::new();
        let mut last: Option<StepError> = None;
        for w in with {
            let tried = match w {
                OverlayWith::Native => self.sys.native_overlay(
                    &[
                        ("lowerdir", &lowerdir),
                        ("upperdir", &upper),
                        ("workdir", &work),
                    ],
                    dst,
                ),
                OverlayWith::Fuse { program, uid, gid } => match layers {
                    // The daemon runs chrooted into the host's root, where
                    // the host's paths hold.
                    Some((u, w)) => self.sys.fuse_overlay(
                        program,
                        (*uid, *gid),
                        &format!(
                            "lowerdir={},upperdir={},workdir={}",
                            lower.display(),
                            u.display(),
                            w.display()
                        ),
                        dst,
                    ),
                    None => Err(
                        StepError::new(Step::MountFuseOverlay, Some(dst), Errno::EINVAL)
                            .hint("fuse-overlayfs needs layers kept on the host"),
                    ),
                },
            };
            match tried {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Some(prev) = last.replace(e) {
                        earlier.push(prev.to_string());
                    }
                }
            }
        }
        let e = last.unwrap_or_else(|| {
            StepError::new(Step::MountOverlay, Some(dst), Errno::EINVAL)
                .hint("the plan names no overlay implementation")
        });
        if earlier.is_empty() {
            return Err(e);
        }
        let tried = format!("tried before it: {}", earlier.join("; "));
        Err(StepError {
            hint: Some(
                e.hint
                    .as_ref()
                    .map_or(tried.clone(), |h| format!("{h}; {tried}")),
            ),
            ..e
        })
    }

    /// A fresh directory in the scratch tmpfs (mounted with the first).
    fn new_scratch_dir(&mut self, mode: u32) -> Result<PathBuf, StepError> {
        let pool = Path::new("/scratch");
        if self.scratch_areas == 0 {
            self.sys
                .mount_scratch(pool, self.scratch_size)
                .step(Step::MountScratch, Some(pool))?;
        }
        self.scratch_areas += 1;
        let area = pool.join(self.scratch_areas.to_string());
        self.sys.scratch_dir(&area, mode)?;
        Ok(area)
    }

    /// A directory of the one scratch tmpfs, bound at `dst`: every area
    /// draws on the same size, so the disk quota caps them together
    /// (separate tmpfs mounts would each get their own).
    fn scratch_area(&mut self, dst: &Path, mode: u32) -> Result<(), StepError> {
        let area = self.new_scratch_dir(mode)?;
        let tree = self
            .sys
            .clone_staged(&area)
            .step(Step::CloneTree, Some(&area))?;
        self.sys.attach(&tree, dst, true)
    }

    /// Bind a file from the staging area read-only at `dst`.
    fn bind_staged(&mut self, staged: &Path, dst: &Path) -> Result<(), StepError> {
        let tree = self
            .sys
            .clone_staged(staged)
            .step(Step::CloneTree, Some(staged))?;
        self.sys
            .set_read_only(&tree, false)
            .step(Step::MakeReadOnly, Some(dst))?;
        self.sys.attach(&tree, dst, false)
    }

    fn hidden_file(&mut self) -> Result<PathBuf, StepError> {
        if let Some(p) = &self.hidden_file {
            return Ok(p.clone());
        }
        let p = PathBuf::from("/files/hidden");
        self.sys
            .create_unreadable(&p)
            .step(Step::Create, Some(&p))?;
        self.hidden_file = Some(p.clone());
        Ok(p)
    }
}

/// The kernel itself: the new root and the host's root held open, every
/// path resolved beneath one of them.
struct Kernel {
    root: OwnedFd,
    host: OwnedFd,
}

impl MountSys for Kernel {
    type Node = OwnedFd;
    type Tree = OwnedFd;

    fn open_host(&mut self, path: &Path) -> Result<OwnedFd, Errno> {
        resolve(&self.host, path, OFlags::PATH).map_err(from_rustix)
    }

    fn open_new(&mut self, path: &Path) -> Result<OwnedFd, Errno> {
        resolve(&self.root, path, OFlags::PATH).map_err(from_rustix)
    }

    fn is_dir(&mut self, node: &OwnedFd) -> Result<bool, Errno> {
        rustix::fs::fstat(node)
            .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
            .map_err(from_rustix)
    }

    fn clone_tree(&mut self, node: &OwnedFd) -> Result<OwnedFd, Errno> {
        open_tree(
            node,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_RECURSIVE
                | OpenTreeFlags::AT_EMPTY_PATH,
        )
        .map_err(from_rustix)
    }

    fn clone_staged(&mut self, path: &Path) -> Result<OwnedFd, Errno> {
        open_tree(
            CWD,
            path,
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .map_err(from_rustix)
    }

    fn set_read_only(&mut self, tree: &OwnedFd, recursive: bool) -> Result<(), Errno> {
        sys::mount_set_read_only(tree.as_fd(), recursive)
    }

    fn new_fs(
        &mut self,
        fstype: &str,
        opts: &[(&str, String)],
        attrs: MountAttrFlags,
        dst: &Path,
    ) -> Result<OwnedFd, StepError> {
        let on = format!("{fstype} on");
        let fail = |e: rustix::io::Errno| StepError::new(Step::MountNew, Some(dst), from_rustix(e));
        let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| fail(e).detail(&on))?;
        for (k, v) in opts {
            fsconfig_set_string(&fs, *k, v.as_str())
                .map_err(|e| fail(e).detail(format!("{on} ({k}={v})")))?;
        }
        fsconfig_create(&fs).map_err(|e| fail(e).detail(&on))?;
        fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(|e| fail(e).detail(&on))
    }

    fn attach(&mut self, tree: &OwnedFd, dst: &Path, dir: bool) -> Result<(), StepError> {
        let target = if dir {
            self.ensure_dir(dst)?
        } else {
            self.ensure_file(dst)?
        };
        move_mount(
            tree,
            "",
            &target,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .step(Step::MoveMount, Some(dst))
    }

    fn mount_on(&mut self, tree: &OwnedFd, node: &OwnedFd) -> Result<(), Errno> {
        move_mount(
            tree,
            "",
            node,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(from_rustix)
    }

    fn mkdir_p(&mut self, path: &Path) -> Result<(), StepError> {
        self.ensure_dir(path).map(drop)
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> Result<(), StepError> {
        let (parent, name) = split(link)?;
        let pfd = self.ensure_dir(parent)?;
        match rustix::fs::symlinkat(target, &pfd, name) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::EXIST) => {
                // Already there and the same: fine (bubblewrap does the same).
                match rustix::fs::readlinkat(&pfd, name, Vec::new()) {
                    Ok(t) if t.as_bytes() == target.as_os_str().as_encoded_bytes() => Ok(()),
                    _ => Err(
                        StepError::new(Step::CreateSymlink, Some(link), Errno::EEXIST)
                            .hint("something else already exists at this path"),
                    ),
                }
            }
            Err(e) => Err(
                StepError::new(Step::CreateSymlink, Some(link), from_rustix(e)).hint(ro_hint(e)),
            ),
        }
    }

    fn write_staged(&mut self, path: &Path, content: &str) -> std::io::Result<()> {
        std::fs::write(path, content)
    }

    fn create_unreadable(&mut self, path: &Path) -> Result<(), Errno> {
        rustix::fs::open(
            path,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(drop)
        .map_err(from_rustix)
    }

    fn mount_scratch(&mut self, pool: &Path, size: Option<u64>) -> Result<(), Errno> {
        let mut opts = "mode=0755".to_string();
        if let Some(s) = size {
            opts.push_str(&format!(",size={s}"));
        }
        mount(
            Some("tmpfs"),
            pool,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(opts.as_str()),
        )
    }

    fn scratch_dir(&mut self, path: &Path, mode: u32) -> Result<(), StepError> {
        rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)).step(Step::Create, Some(path))?;
        // Not subject to the umask, unlike mkdir's mode.
        rustix::fs::chmod(path, Mode::from_raw_mode(mode)).step(Step::SetMode, Some(path))
    }

    fn mkdir_staged(&mut self, path: &Path) -> Result<(), Errno> {
        rustix::fs::mkdir(path, Mode::from_raw_mode(0o755)).map_err(from_rustix)
    }

    fn native_overlay(&mut self, opts: &[(&str, &str)], dst: &Path) -> Result<(), StepError> {
        let step = Step::MountOverlay;
        let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).step(step, Some(dst))?;
        for (k, v) in opts {
            fsconfig_set_string(&fs, *k, *v)
                .step(step, Some(dst))
                .map_err(|e| e.detail(format!("({k}={v})")))?;
        }
        // Unprivileged overlayfs keeps its metadata in user.overlay.*
        // xattrs (Linux 5.11).
        rustix::mount::fsconfig_set_flag(&fs, "userxattr").step(step, Some(dst))?;
        fsconfig_create(&fs).map_err(|e| {
            StepError::new(step, Some(dst), from_rustix(e)).hint(
                "native overlayfs in a user namespace needs Linux 5.11 and an upper directory on a filesystem with user xattrs; try --overlay-driver fuse (package fuse-overlayfs)",
            )
        })?;
        let m = fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
        )
        .step(step, Some(dst))?;
        self.attach(&m, dst, true)
    }

    /// fuse-overlayfs on a FUSE mount nook makes itself (so no setuid
    /// fusermount is involved): the daemon serves the /dev/fuse descriptor,
    /// chrooted into the host's root, and lives in the sandbox's pid
    /// namespace, so it ends with the sandbox.
    fn fuse_overlay(
        &mut self,
        program: &Path,
        (uid, gid): (u32, u32),
        options: &str,
        dst: &Path,
    ) -> Result<(), StepError> {
        use std::os::fd::AsRawFd;
        let step = Step::MountFuseOverlay;
        let fuse = rustix::fs::open("/oldroot/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| StepError::new(Step::Open, Some(Path::new("/dev/fuse")), from_rustix(e))
                .hint("the fuse driver needs /dev/fuse readable and writable by you (chmod 0666 /dev/fuse)"))?;
        let fs = fsopen("fuse", FsOpenFlags::FSOPEN_CLOEXEC).step(step, Some(dst))?;
        for (k, v) in [
            ("fd", fuse.as_raw_fd().to_string()),
            ("rootmode", "40000".to_string()),
            ("user_id", uid.to_string()),
            ("group_id", gid.to_string()),
        ] {
            fsconfig_set_string(&fs, k, v.as_str())
                .step(step, Some(dst))
                .map_err(|e| e.detail(format!("({k}={v})")))?;
        }
        rustix::mount::fsconfig_set_flag(&fs, "default_permissions").step(step, Some(dst))?;
        fsconfig_create(&fs).step(step, Some(dst))?;
        let m = fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
        )
        .step(step, Some(dst))?;
        self.attach(&m, dst, true)?;
        // The daemon runs chrooted into the host's root, where the host's
        // path to it holds.
        let mut cmd = std::process::Command::new(program);
        cmd.arg("-o").arg(options).arg("/dev/fd/3");
        // Stdio::null would open /dev/null, which the staging root lacks.
        let null = || {
            std::fs::File::open("/oldroot/dev/null").step(Step::Open, Some(Path::new("/dev/null")))
        };
        cmd.stdin(null()?).stdout(null()?);
        sys::fuse_daemon(&mut cmd, fuse.as_raw_fd(), c"/oldroot");
        // It daemonizes once it serves the mount: its exit is the signal.
        let status = cmd
            .status()
            .step(step, Some(dst))
            .map_err(|e| e.hint("install the 'fuse-overlayfs' package"))?;
        if !status.success() {
            return Err(StepError::failed(step, Some(dst))
                .because(crate::error::exit_cause(status))
                .hint("fuse-overlayfs failed; it says why on standard error"));
        }
        Ok(())
    }

    fn seal_root(&mut self) -> Result<(), Errno> {
        sys::mount_set_read_only(self.root.as_fd(), false)
    }
}

impl Kernel {
    /// Open directory `path` inside the new root, creating it and its
    /// missing parents (mode 0755).
    fn ensure_dir(&self, path: &Path) -> Result<OwnedFd, StepError> {
        match resolve(&self.root, path, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(StepError::new(Step::OpenDir, Some(path), from_rustix(e))),
        }
        let (parent, name) = split(path)?;
        let pfd = self.ensure_dir(parent)?;
        match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(
                    StepError::new(Step::CreateDir, Some(path), from_rustix(e)).hint(ro_hint(e))
                );
            }
        }
        resolve(&self.root, path, OFlags::PATH | OFlags::DIRECTORY).step(Step::OpenDir, Some(path))
    }

    /// Open `path` inside the new root, creating an empty file if missing.
    fn ensure_file(&self, path: &Path) -> Result<OwnedFd, StepError> {
        let (parent, name) = split(path)?;
        let pfd = self.ensure_dir(parent)?;
        // Creating straight away is the common case (a fresh mount point)
        // and costs one call; anything unusual (a symlink, an unreadable
        // file, a directory) falls back to a full in-root lookup.
        match rustix::fs::openat(
            &pfd,
            name,
            OFlags::CREATE | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o444),
        ) {
            Ok(fd) => Ok(fd),
            Err(e @ rustix::io::Errno::ROFS) => {
                Err(
                    StepError::new(Step::CreateMountPoint, Some(path), from_rustix(e))
                        .hint(ro_hint(e)),
                )
            }
            Err(_) => resolve(&self.root, path, OFlags::PATH).step(Step::Open, Some(path)),
        }
    }
}

fn open_dir(p: &str) -> Result<OwnedFd, StepError> {
    rustix::fs::open(
        p,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(Step::Open, Some(Path::new(p)))
}

/// Open `path` with `root` as "/" (openat2 RESOLVE_IN_ROOT): `..` and
/// absolute symlinks stay inside `root`.
fn resolve(root: &OwnedFd, path: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    // EAGAIN: a mount or rename somewhere on the system raced with a `..`
    // step; openat2(2) says to retry.
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(rustix::io::Errno::AGAIN) if tries < 100 => tries += 1,
            other => return other,
        }
    }
}

fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr), StepError> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(StepError::new(Step::Create, Some(path), Errno::EINVAL)
            .hint("the root itself can't be created or replaced")),
    }
}

fn ro_hint(e: rustix::io::Errno) -> &'static str {
    if e == rustix::io::Errno::ROFS {
        "the parent is read-only in the sandbox; mount a --tmpfs or --dir at the parent first, or pick another path"
    } else {
        "the parent directory can't be written"
    }
}

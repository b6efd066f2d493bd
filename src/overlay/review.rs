//! The change review of an overlay: what a sandbox changed in a host
//! directory (`changes`, `patch`), applying it to the host (`commit`), and
//! dropping it (`discard`). Pure logic over a pair of host directories: the
//! *lower* one (the live host tree the sandbox saw) and the *upper* one
//! (where overlayfs or fuse-overlayfs put the sandbox's writes). Nothing
//! here mounts anything, and the overlay must not be mounted while `commit`
//! or `discard` run: overlayfs does not allow its layers to change under it.
//!
//! # Upper-layer formats
//!
//! Both drivers are read the same way, whichever wrote the layer:
//! - a *whiteout* (the entry was deleted) is a character device 0:0
//!   (native overlayfs; fuse-overlayfs when it can mknod), an empty regular
//!   file with xattr `user.overlay.whiteout`/`trusted.overlay.whiteout`
//!   (Linux 6.7+), or a file `.wh.NAME` (fuse-overlayfs without mknod);
//! - an *opaque* directory (its lower contents are hidden) has xattr
//!   `user.overlay.opaque`, `trusted.overlay.opaque` or
//!   `user.fuseoverlayfs.opaque` set to `y`, or contains `.wh..wh..opq`.
//!   The value `x` means "may contain xattr whiteouts", not opaque.
//!   `.wh..wh..opq` and `.wh..opq` are markers, never changes;
//! - other `*.overlay.*` xattrs (`origin`, `impure`, `uuid`, `metacopy`)
//!   are bookkeeping, never content. A `metacopy` file's data lives in the
//!   lower file, so only its mode is compared;
//! - a directory with `overlay.redirect` was renamed (only with
//!   `redirect_dir=on`; `userxattr` mounts never create one): it is listed
//!   conservatively, like an opaque directory, with `renamed_from` set, and
//!   `commit` skips it, everything below it and the deletion of its origin,
//!   so no content can be lost.
//!
//! # The rules
//!
//! - Only what the merged view shows is compared with the host: type,
//!   content, permission bits, symlink targets. Owners, times and xattrs
//!   are not compared (and not committed): an identical copy-up (a file
//!   opened for writing and not written) is no change.
//! - A new directory is one `Added` for itself and one for every entry
//!   below it; a deleted directory likewise one `Deleted` per entry.
//! - An opaque directory replaces the host directory's content; nook
//!   compares the new content with the old one name by name, recursively:
//!   host entries it lacks are `Deleted`, its entries the host lacks are
//!   `Added`, entries on both sides are `Modified` only when they differ.
//!   So `rm -rf d && git checkout d` in the sandbox shows nothing.
//! - An entry whose type changed (file replaced by a directory...) is one
//!   `Modified` with `replaces` set; the old directory's entries are
//!   `Deleted`, the new directory's `Added`.
//! - Sorted by path, component by component: a directory comes right before
//!   its entries.
//!
//! # What the mount must guarantee
//!
//! - `commit` and `discard` run only while no sandbox has the overlay
//!   mounted (overlayfs changes under a mounted overlay are undefined).
//! - Native overlayfs is mounted with `userxattr` (as it must be in a user
//!   namespace), which turns `redirect_dir` and `metacopy` off: renamed
//!   directories are copied, file data is always copied up.
//! - The upper and work directories are not reachable from inside the
//!   sandbox. Commit never writes outside `lower` whatever the upper layer
//!   holds, but a sandbox that could write the layer directly could make
//!   the review say what it likes.
//!
//! The format is not told, so fuse-overlayfs's names are read in a layer
//! native overlayfs wrote too: a sandbox that creates a file `.wh.X` (or
//! `.wh..wh..opq`) there shows X (or the directory's host entries) as
//! deleted, though it still sees them. The review then shows what commit
//! does, and the sandbox could have deleted them anyway; only its own view
//! differs.
//! - fuse-overlayfs runs without `xattr_permissions`: modes kept in xattrs
//!   would not be seen here.
//! - `since` is taken before the overlay is mounted.
//!
//! [`commit`] and [`discard`] live in their own modules and are re-exported
//! here; [`super::tree`] holds the file operations they all go through.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{self as rfs, OFlags};
use rustix::io::Errno;

use crate::error::Step;
use serde::Serialize;

use super::tree::{self, Meta, Tree};

mod commit;
mod discard;

pub use commit::commit;
pub use discard::discard;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Added,
    Modified,
    Deleted,
}

impl Kind {
    /// The one-letter form `nook diff` prints.
    pub fn letter(self) -> char {
        match self {
            Kind::Added => 'A',
            Kind::Modified => 'M',
            Kind::Deleted => 'D',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    File,
    Dir,
    Symlink,
    /// A device, fifo or socket: listed, never committed.
    Other,
}

impl FileType {
    fn of(kind: rfs::FileType) -> FileType {
        match kind {
            rfs::FileType::RegularFile => FileType::File,
            rfs::FileType::Directory => FileType::Dir,
            rfs::FileType::Symlink => FileType::Symlink,
            _ => FileType::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FileType::File => "file",
            FileType::Dir => "directory",
            FileType::Symlink => "symlink",
            FileType::Other => "special file",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Relative to the overlay root.
    pub path: PathBuf,
    pub kind: Kind,
    /// The upper entry's type; the host entry's for `Deleted`.
    pub file_type: FileType,
    /// `Modified` with the same content (or target): only the permission
    /// bits differ.
    pub metadata_only: bool,
    /// The upper size of an added or modified file.
    pub size: Option<u64>,
    /// `Modified` only: the host has another type of entry here, which the
    /// change replaces.
    pub replaces: Option<FileType>,
    /// A directory the sandbox renamed (overlay redirect): where it came
    /// from. `commit` does not apply these.
    pub renamed_from: Option<PathBuf>,
    /// The permission bits (0o7777) the change gives the entry: the upper
    /// entry's; `None` for `Deleted` and for symlinks.
    pub mode: Option<u32>,
    /// `Modified` only: the host entry's permission bits before (of the
    /// replaced entry when `replaces` is set); `None` for symlinks.
    pub old_mode: Option<u32>,
    /// An added or modified symlink: its new target, as written.
    pub target: Option<PathBuf>,
}

/// One path and why it was skipped, conflicts, or what was adjusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub path: PathBuf,
    pub why: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CommitReport {
    /// Applied to the host, in order (including host directories created
    /// as parents of a committed path).
    pub applied: Vec<Change>,
    /// Not applied, with the reason (special files, renames, symlinks on
    /// the host path, entries gone from the upper layer).
    pub skipped: Vec<Note>,
    /// Changed on the host after the sandbox started. Without `force`
    /// nothing at all was applied when this is not empty; with `force`
    /// these were overwritten.
    pub conflicts: Vec<Note>,
    /// Applied, but not exactly as in the sandbox (setuid/setgid dropped).
    pub notes: Vec<Note>,
    /// Upper-layer entries removed after the commit because the host now
    /// shows the same thing.
    pub cleaned: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{step} {}: {}", path.display(), errno_text(*errno))]
    Io {
        step: Step,
        path: PathBuf,
        errno: Errno,
    },
    #[error("renaming {} to {}: {}", from.display(), to.display(), errno_text(*errno))]
    Rename {
        from: PathBuf,
        to: PathBuf,
        errno: Errno,
    },
    /// A path argument nook cannot use, or a request it cannot honour.
    #[error("{}: {why}", path.display())]
    Path { path: PathBuf, why: String },
}

/// `EACCES (Permission denied)`, as the rest of nook prints errnos.
fn errno_text(e: Errno) -> String {
    let e = crate::error::from_rustix(e);
    format!("{e:?} ({})", e.desc())
}

/// The error for `step` on the displayed `path`.
fn fail(step: Step, path: PathBuf) -> impl FnOnce(Errno) -> ReviewError {
    move |errno| ReviewError::Io { step, path, errno }
}

impl From<ReviewError> for crate::error::Error {
    fn from(e: ReviewError) -> Self {
        use crate::error::{Error, StepError};
        let raw = crate::error::from_rustix;
        match e {
            ReviewError::Io { step, path, errno } => {
                StepError::new(step, Some(&path), raw(errno)).into()
            }
            ReviewError::Rename { from, to, errno } => {
                StepError::new(Step::Rename, Some(&to), raw(errno))
                    .detail(format!("{} to", from.display()))
                    .into()
            }
            ReviewError::Path { path, why } => Error::At {
                at: path.display().to_string(),
                what: why,
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Reading the upper layer

const OPAQUE_XATTRS: [&str; 3] = [
    "user.overlay.opaque",
    "trusted.overlay.opaque",
    "user.fuseoverlayfs.opaque",
];
const WHITEOUT_XATTRS: [&str; 2] = ["user.overlay.whiteout", "trusted.overlay.whiteout"];
const REDIRECT_XATTRS: [&str; 2] = ["user.overlay.redirect", "trusted.overlay.redirect"];
const METACOPY_XATTRS: [&str; 2] = ["user.overlay.metacopy", "trusted.overlay.metacopy"];
const ORIGIN_XATTRS: [&str; 3] = [
    "user.overlay.origin",
    "trusted.overlay.origin",
    "user.fuseoverlayfs.origin",
];
/// fuse-overlayfs: an opaque directory contains this file.
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// fuse-overlayfs creates this beside the marker; it means nothing to us.
const OPAQUE_MARKER_2: &str = ".wh..opq";
/// fuse-overlayfs without mknod: `.wh.NAME` is the whiteout of NAME.
const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// What one name in an upper directory is.
enum UpperName {
    Entry,
    Whiteout(OsString),
    Opaque,
    Marker,
}

fn classify(dir: BorrowedFd<'_>, name: &OsStr, m: &Meta) -> UpperName {
    let bytes = name.as_bytes();
    // The marker names first: fuse-overlayfs makes `.wh..opq` a device.
    if name == OPAQUE_MARKER {
        return UpperName::Opaque;
    }
    if name == OPAQUE_MARKER_2 {
        return UpperName::Marker;
    }
    if m.kind == rfs::FileType::CharacterDevice && m.rdev == (0, 0) {
        return UpperName::Whiteout(name.to_os_string());
    }
    if bytes.len() > WHITEOUT_PREFIX.len() && bytes.starts_with(WHITEOUT_PREFIX) {
        let target = OsStr::from_bytes(&bytes[WHITEOUT_PREFIX.len()..]);
        return UpperName::Whiteout(target.to_os_string());
    }
    if m.kind == rfs::FileType::RegularFile
        && m.size == 0
        && let Ok(f) = tree::open_file(dir, Path::new(name))
        && WHITEOUT_XATTRS.iter().any(|x| tree::xattr(&f, x).is_some())
    {
        return UpperName::Whiteout(name.to_os_string());
    }
    UpperName::Entry
}

fn is_opaque(dir: &OwnedFd) -> bool {
    OPAQUE_XATTRS
        .iter()
        .any(|x| tree::xattr(dir, x).as_deref() == Some(b"y"))
}

/// Where a redirected directory came from, relative to the root: an
/// absolute redirect is from the layer root, a relative one is a name in
/// the same parent directory (overlayfs.rst, "Redirect dir").
fn redirect(dir: &OwnedFd, rel: &Path) -> Option<PathBuf> {
    let value = REDIRECT_XATTRS.iter().find_map(|x| tree::xattr(dir, x))?;
    let value = Path::new(OsStr::from_bytes(&value));
    let from = match value.strip_prefix("/") {
        Ok(abs) => abs.to_path_buf(),
        Err(_) => tree::split(rel).0.join(value),
    };
    Some(tree::normal(&from).unwrap_or(from))
}

/// Whether a directory of the upper layer hides the host's entries below
/// it (opaque, redirected, or the fuse marker).
fn hides_lower(dir: &OwnedFd, rel: &Path) -> bool {
    is_opaque(dir)
        || redirect(dir, rel).is_some()
        || matches!(
            tree::stat_at(dir.as_fd(), OsStr::new(OPAQUE_MARKER)),
            Ok(Some(_))
        )
}

/// Whether a directory above `rel` in the upper layer hides the host's
/// entries (so removing `rel` from the upper layer would hide the host's
/// `rel` instead of revealing it).
fn hidden_below_ancestor(up: &Tree, rel: &Path) -> Result<bool, ReviewError> {
    let mut sofar = PathBuf::new();
    let Some(parent) = rel.parent() else {
        return Ok(false);
    };
    for name in parent.iter() {
        sofar.push(name);
        let dir = match up.open_dir(&sofar) {
            Ok(d) => d,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(false),
            Err(e) => return Err(fail(Step::Open, up.show(&sofar))(e)),
        };
        if hides_lower(&dir, &sofar) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The upper layer has an entry or a `.wh.` whiteout for `rel`.
fn upper_has(up: &Tree, rel: &Path) -> bool {
    matches!(up.lookup(rel), Ok(Some(_))) || matches!(up.lookup(&fuse_whiteout(rel)), Ok(Some(_)))
}

fn fuse_whiteout(rel: &Path) -> PathBuf {
    let (parent, name) = tree::split(rel);
    let mut wh = OsString::from(".wh.");
    wh.push(name);
    parent.join(wh)
}

/// Remove `rel` and its `.wh.` whiteout from the upper layer.
fn remove_upper(up: &Tree, rel: &Path) -> Result<usize, ReviewError> {
    let (parent_rel, name) = tree::split(rel);
    let parent = match up.open_at(parent_rel, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(0),
        Err(e) => return Err(fail(Step::Open, up.show(parent_rel))(e)),
    };
    let mut count = 0;
    for n in [
        name.to_os_string(),
        fuse_whiteout(Path::new(name)).into_os_string(),
    ] {
        count += tree::remove_tree(parent.as_fd(), &n).map_err(|(p, e)| ReviewError::Io {
            step: Step::Remove,
            path: up.show(parent_rel).join(p),
            errno: e,
        })?;
    }
    Ok(count)
}

// ---------------------------------------------------------------------------
// changes

/// What the sandbox changed below `lower`, as recorded in `upper`, limited
/// to `only` (relative paths: each one and everything below it; all when
/// empty). Sorted by path.
pub fn changes(lower: &Path, upper: &Path, only: &[PathBuf]) -> Result<Vec<Change>, ReviewError> {
    let only = normal_all(only)?;
    let (host, up) = open_both(lower, upper)?;
    scan(&host, &up, &only)
}

fn open_both(lower: &Path, upper: &Path) -> Result<(Tree, Tree), ReviewError> {
    let host = Tree::open(lower).map_err(fail(Step::OpenHostDir, lower.into()))?;
    let up = Tree::open(upper).map_err(fail(Step::OpenUpper, upper.into()))?;
    Ok((host, up))
}

fn normal_all(only: &[PathBuf]) -> Result<Vec<PathBuf>, ReviewError> {
    only.iter()
        .map(|p| {
            tree::normal(p).ok_or_else(|| ReviewError::Path {
                path: p.clone(),
                why: "expected a path relative to the overlay root, without '..'".into(),
            })
        })
        .collect()
}

fn scan(host: &Tree, up: &Tree, only: &[PathBuf]) -> Result<Vec<Change>, ReviewError> {
    let root = Path::new("");
    let up_root = up
        .open_dir(root)
        .map_err(fail(Step::OpenUpper, up.show(root)))?;
    let host_root = host
        .open_dir(root)
        .map_err(fail(Step::OpenHostDir, host.show(root)))?;
    let mut s = Scan {
        host,
        up,
        only,
        out: Vec::new(),
    };
    s.dir(root, &up_root, Some(&host_root), false)?;
    s.out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(s.out)
}

struct Scan<'a> {
    host: &'a Tree,
    up: &'a Tree,
    only: &'a [PathBuf],
    out: Vec<Change>,
}

impl Scan<'_> {
    /// `rel` is listed.
    fn wanted(&self, rel: &Path) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| rel.starts_with(o))
    }

    /// Something at or below `rel` may be listed.
    fn descend(&self, rel: &Path) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|o| rel.starts_with(o) || o.starts_with(rel))
    }

    fn push(&mut self, c: Change) {
        if self.wanted(&c.path) {
            self.out.push(c);
        }
    }

    /// Compare the upper directory `rel` with the host's (if any).
    /// `replaced`: the host's entries here are hidden (an opaque directory
    /// here or above), so every host name the upper lacks was deleted.
    fn dir(
        &mut self,
        rel: &Path,
        up: &OwnedFd,
        host: Option<&OwnedFd>,
        mut replaced: bool,
    ) -> Result<(), ReviewError> {
        let names = tree::list(up).map_err(fail(Step::List, self.up.show(rel)))?;
        let mut entries = Vec::with_capacity(names.len());
        let mut whiteouts = Vec::new();
        for name in names {
            let Some(m) = tree::stat_at(up.as_fd(), &name)
                .map_err(fail(Step::Inspect, self.up.show(&rel.join(&name))))?
            else {
                continue;
            };
            match classify(up.as_fd(), &name, &m) {
                UpperName::Entry => entries.push((name, m)),
                UpperName::Whiteout(target) => whiteouts.push(target),
                UpperName::Opaque => replaced = true,
                UpperName::Marker => {}
            }
        }
        if let Some(host) = host {
            let present: HashSet<&OsStr> = entries.iter().map(|(n, _)| n.as_os_str()).collect();
            let gone = if replaced {
                tree::list(host).map_err(fail(Step::List, self.host.show(rel)))?
            } else {
                whiteouts
            };
            for name in gone {
                let path = rel.join(&name);
                if present.contains(name.as_os_str()) || !self.descend(&path) {
                    continue;
                }
                if let Some(m) = tree::stat_at(host.as_fd(), &name)
                    .map_err(fail(Step::Inspect, self.host.show(&path)))?
                {
                    self.deleted(&path, host.as_fd(), &name, &m)?;
                }
            }
        }
        for (name, m) in entries {
            let path = rel.join(&name);
            if self.descend(&path) {
                self.entry(&path, up, host, &name, &m, replaced)?;
            }
        }
        Ok(())
    }

    /// The host entry `name` (in `dir`) and everything below it are gone.
    fn deleted(
        &mut self,
        rel: &Path,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        m: &Meta,
    ) -> Result<(), ReviewError> {
        self.push(change(rel, Kind::Deleted, FileType::of(m.kind)));
        if m.is_dir() {
            self.deleted_below(rel, dir, name)?;
        }
        Ok(())
    }

    fn deleted_below(
        &mut self,
        rel: &Path,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> Result<(), ReviewError> {
        let sub = tree::open_beneath(dir, Path::new(name), OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(fail(Step::Open, self.host.show(rel)))?;
        for child in tree::list(&sub).map_err(fail(Step::List, self.host.show(rel)))? {
            let path = rel.join(&child);
            if !self.descend(&path) {
                continue;
            }
            if let Some(m) = tree::stat_at(sub.as_fd(), &child)
                .map_err(fail(Step::Inspect, self.host.show(&path)))?
            {
                self.deleted(&path, sub.as_fd(), &child, &m)?;
            }
        }
        Ok(())
    }

    /// One upper entry that is not a whiteout, against the host's.
    fn entry(
        &mut self,
        rel: &Path,
        up: &OwnedFd,
        host: Option<&OwnedFd>,
        name: &OsStr,
        um: &Meta,
        replaced: bool,
    ) -> Result<(), ReviewError> {
        let hm = match host {
            Some(h) => {
                tree::stat_at(h.as_fd(), name).map_err(fail(Step::Inspect, self.host.show(rel)))?
            }
            None => None,
        };
        let ut = FileType::of(um.kind);
        let size = (ut == FileType::File).then_some(um.size);
        if um.is_dir() {
            let sub = tree::open_beneath(
                up.as_fd(),
                Path::new(name),
                OFlags::RDONLY | OFlags::DIRECTORY,
            )
            .map_err(fail(Step::Open, self.up.show(rel)))?;
            let renamed_from = redirect(&sub, rel);
            let hides = replaced || is_opaque(&sub) || renamed_from.is_some();
            let mode = Some(um.mode);
            match (hm, host) {
                (Some(h), Some(hdir)) if h.is_dir() => {
                    if renamed_from.is_some() || h.mode != um.mode {
                        self.push(Change {
                            metadata_only: renamed_from.is_none(),
                            renamed_from,
                            mode,
                            old_mode: Some(h.mode),
                            ..change(rel, Kind::Modified, FileType::Dir)
                        });
                    }
                    let hsub = tree::open_beneath(
                        hdir.as_fd(),
                        Path::new(name),
                        OFlags::RDONLY | OFlags::DIRECTORY,
                    )
                    .map_err(fail(Step::Open, self.host.show(rel)))?;
                    self.dir(rel, &sub, Some(&hsub), hides)
                }
                (Some(h), _) => {
                    self.push(Change {
                        replaces: Some(FileType::of(h.kind)),
                        renamed_from,
                        mode,
                        old_mode: (h.kind != rfs::FileType::Symlink).then_some(h.mode),
                        ..change(rel, Kind::Modified, FileType::Dir)
                    });
                    self.dir(rel, &sub, None, true)
                }
                (None, _) => {
                    self.push(Change {
                        renamed_from,
                        mode,
                        ..change(rel, Kind::Added, FileType::Dir)
                    });
                    self.dir(rel, &sub, None, true)
                }
            }
        } else {
            let mode = (ut != FileType::Symlink).then_some(um.mode);
            let target = match ut {
                FileType::Symlink => Some(PathBuf::from(
                    tree::read_link(up.as_fd(), name)
                        .map_err(fail(Step::ReadLink, self.up.show(rel)))?,
                )),
                _ => None,
            };
            let (Some(h), Some(hdir)) = (hm, host) else {
                self.push(Change {
                    size,
                    mode,
                    target,
                    ..change(rel, Kind::Added, ut)
                });
                return Ok(());
            };
            let ht = FileType::of(h.kind);
            let old_mode = (ht != FileType::Symlink).then_some(h.mode);
            if ht != ut || (ut == FileType::Other && (h.kind != um.kind || h.rdev != um.rdev)) {
                self.push(Change {
                    size,
                    replaces: (ht != ut).then_some(ht),
                    mode,
                    old_mode,
                    target,
                    ..change(rel, Kind::Modified, ut)
                });
                if h.is_dir() {
                    self.deleted_below(rel, hdir.as_fd(), name)?;
                }
                return Ok(());
            }
            let same = match ut {
                FileType::File => um.size == h.size && self.same_content(rel, up, hdir, name)?,
                FileType::Symlink => {
                    let b = tree::read_link(hdir.as_fd(), name)
                        .map_err(fail(Step::ReadLink, self.host.show(rel)))?;
                    target.as_deref() == Some(Path::new(&b))
                }
                FileType::Other | FileType::Dir => true,
            };
            if !same || (ut != FileType::Symlink && um.mode != h.mode) {
                self.push(Change {
                    size,
                    metadata_only: same,
                    mode,
                    old_mode,
                    target,
                    ..change(rel, Kind::Modified, ut)
                });
            }
            Ok(())
        }
    }

    /// Same bytes in the upper and host file `name` (sizes already equal).
    /// A file either side cannot read counts as different: it is listed,
    /// and commit says what is wrong with it.
    fn same_content(
        &self,
        rel: &Path,
        up: &OwnedFd,
        host: &OwnedFd,
        name: &OsStr,
    ) -> Result<bool, ReviewError> {
        let Ok(mut a) = tree::open_file(up.as_fd(), Path::new(name)) else {
            return Ok(false);
        };
        if METACOPY_XATTRS.iter().any(|x| tree::xattr(&a, x).is_some()) {
            // The data was never copied up: it is the host file's.
            return Ok(true);
        }
        let Ok(mut b) = tree::open_file(host.as_fd(), Path::new(name)) else {
            return Ok(false);
        };
        let mut x = vec![0u8; 64 * 1024];
        let mut y = vec![0u8; 64 * 1024];
        loop {
            let n = read_full(&mut a, &mut x)
                .map_err(|e| fail(Step::Read, self.up.show(rel))(tree::io_errno(&e)))?;
            let m = read_full(&mut b, &mut y)
                .map_err(|e| fail(Step::Read, self.host.show(rel))(tree::io_errno(&e)))?;
            if n != m || x[..n] != y[..m] {
                return Ok(false);
            }
            if n < x.len() {
                return Ok(true);
            }
        }
    }
}

/// A change of `kind` to `rel`, nothing else known yet.
pub fn change(rel: &Path, kind: Kind, file_type: FileType) -> Change {
    Change {
        path: rel.to_path_buf(),
        kind,
        file_type,
        metadata_only: false,
        size: None,
        replaces: None,
        renamed_from: None,
        mode: None,
        old_mode: None,
        target: None,
    }
}

/// The bytes of the regular file `rel` below `root` (a host directory or an
/// upper layer), for a caller that judges a change by its content (git
/// config). `None` when there is no regular file there: absent, another
/// type, or a symlink on the way (never followed). An error when it is
/// larger than `limit` bytes or cannot be read: the caller must not take
/// "unread" for "harmless".
pub fn read_file(root: &Path, rel: &Path, limit: u64) -> Result<Option<Vec<u8>>, ReviewError> {
    let t = Tree::open(root).map_err(fail(Step::Open, root.into()))?;
    let rel = tree::normal(rel).ok_or_else(|| ReviewError::Path {
        path: rel.to_path_buf(),
        why: "not a path relative to the overlay root".into(),
    })?;
    let f = match tree::open_file(t.fd(), &rel) {
        Ok(f) => f,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::INVAL) => return Ok(None),
        Err(e) => return Err(fail(Step::Open, t.show(&rel))(e)),
    };
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(Step::Read, t.show(&rel))(tree::io_errno(&e)))?;
    if buf.len() as u64 > limit {
        return Err(ReviewError::Path {
            path: t.show(&rel),
            why: format!("larger than {limit} bytes: not read"),
        });
    }
    Ok(Some(buf))
}

/// Fill `buf` unless the file ends first; the number of bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

// ---------------------------------------------------------------------------
// patch

/// Files larger than this are not diffed line by line.
const PATCH_LIMIT: u64 = 8 << 20;

/// A unified diff of one change: text files line by line (`similar`),
/// "Binary files ... differ" otherwise, a mode line for metadata-only
/// changes, the target for symlinks.
pub fn patch(lower: &Path, upper: &Path, c: &Change) -> Result<String, ReviewError> {
    let (host, up) = open_both(lower, upper)?;
    let rel = tree::normal(&c.path).ok_or_else(|| ReviewError::Path {
        path: c.path.clone(),
        why: "not a path relative to the overlay root".into(),
    })?;
    // The name is the sandbox's choice: a newline or escape in it must not
    // forge a line of the patch.
    let shown = crate::escape::path(&rel);
    let (a, b) = (format!("a/{shown}"), format!("b/{shown}"));
    let mut out = String::new();
    if let Some(old) = c.replaces {
        out.push_str(&format!(
            "{shown}: {} replaced by a {}\n",
            old.name(),
            c.file_type.name()
        ));
    }
    if let Some(from) = &c.renamed_from {
        out.push_str(&format!("{shown}: renamed from {}\n", from.display()));
    }
    let old_side = (c.kind == Kind::Modified && c.replaces.is_none()) || c.kind == Kind::Deleted;
    let new_side = c.kind != Kind::Deleted;
    if c.metadata_only {
        let h = host.lookup(&rel).ok().flatten();
        let u = up.lookup(&rel).ok().flatten();
        out.push_str(&format!("--- {a}\n+++ {b}\n"));
        if let (Some(h), Some(u)) = (h, u) {
            out.push_str(&format!(
                "old mode {:04o}\nnew mode {:04o}\n",
                h.mode, u.mode
            ));
        }
        return Ok(out);
    }
    match c.file_type {
        FileType::Dir => {
            let verb = match c.kind {
                Kind::Added => "new",
                Kind::Modified => "changed",
                Kind::Deleted => "deleted",
            };
            out.push_str(&format!("{verb} directory {shown}\n"));
        }
        FileType::Other => {
            out.push_str(&format!("special file {shown} (not committed)\n"));
        }
        FileType::File | FileType::Symlink => {
            let read = |t: &Tree, side: bool| -> Result<Option<Vec<u8>>, ReviewError> {
                if !side {
                    return Ok(None);
                }
                content(t, &rel, c.file_type).map(Some)
            };
            let old = read(&host, old_side)?;
            let new = read(&up, new_side)?;
            let a = if old.is_some() { a } else { "/dev/null".into() };
            let b = if new.is_some() { b } else { "/dev/null".into() };
            let (old, new) = (old.unwrap_or_default(), new.unwrap_or_default());
            match (text(&old), text(&new)) {
                (Some(o), Some(n)) => {
                    let diff = similar::TextDiff::configure()
                        .timeout(Duration::from_secs(2))
                        .diff_lines(o, n);
                    out.push_str(
                        &diff
                            .unified_diff()
                            .context_radius(3)
                            .header(&a, &b)
                            .to_string(),
                    );
                }
                _ => out.push_str(&format!("Binary files {a} and {b} differ\n")),
            }
        }
    }
    Ok(out)
}

/// The bytes of a file, or a symlink's target; nothing for files over the
/// patch limit (shown as binary).
fn content(t: &Tree, rel: &Path, ft: FileType) -> Result<Vec<u8>, ReviewError> {
    if ft == FileType::Symlink {
        let (parent, name) = tree::split(rel);
        let dir = t
            .open_at(parent, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(fail(Step::Open, t.show(parent)))?;
        let target =
            tree::read_link(dir.as_fd(), name).map_err(fail(Step::ReadLink, t.show(rel)))?;
        return Ok(target.as_bytes().to_vec());
    }
    let mut f = tree::open_file(t.fd(), rel).map_err(fail(Step::Open, t.show(rel)))?;
    let mut buf = Vec::new();
    (&mut f)
        .take(PATCH_LIMIT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(Step::Read, t.show(rel))(tree::io_errno(&e)))?;
    if buf.len() as u64 > PATCH_LIMIT {
        // Too large to diff: a NUL makes it "binary".
        return Ok(vec![0]);
    }
    Ok(buf)
}

/// Text when UTF-8 without NUL bytes (what diff(1) and git also look at).
fn text(b: &[u8]) -> Option<&str> {
    if b.contains(&0) {
        return None;
    }
    std::str::from_utf8(b).ok()
}

#[cfg(test)]
mod fixture {
    //! Temporary lower/upper pairs for the tests of review, commit and
    //! discard.
    use super::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    use rustix::fs::{Mode, XattrFlags};

    /// A lower and an upper directory under a fresh temporary directory.
    pub struct Fx {
        pub root: PathBuf,
        pub lower: PathBuf,
        pub upper: PathBuf,
    }

    static SEQ: AtomicUsize = AtomicUsize::new(0);

    impl Fx {
        pub fn new(tag: &str) -> Fx {
            let n = SEQ.fetch_add(1, Ordering::SeqCst);
            let root =
                std::env::temp_dir().join(format!("nook-review-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            let (lower, upper) = (root.join("lower"), root.join("upper"));
            fs::create_dir_all(&lower).unwrap();
            fs::create_dir_all(&upper).unwrap();
            Fx { root, lower, upper }
        }

        pub fn lo(&self, rel: &str) -> PathBuf {
            self.lower.join(rel)
        }

        pub fn up(&self, rel: &str) -> PathBuf {
            self.upper.join(rel)
        }

        pub fn changes(&self) -> Vec<Change> {
            changes(&self.lower, &self.upper, &[]).unwrap()
        }

        pub fn only(&self, only: &[&str]) -> Vec<Change> {
            let only: Vec<PathBuf> = only.iter().map(PathBuf::from).collect();
            changes(&self.lower, &self.upper, &only).unwrap()
        }

        pub fn summary(&self) -> Vec<String> {
            summary(&self.changes())
        }

        pub fn commit(&self, since: SystemTime, force: bool) -> CommitReport {
            let all = self.changes();
            commit(&self.lower, &self.upper, &all, since, force).unwrap()
        }
    }

    impl Drop for Fx {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    /// "A path", "M path (mode)", "M path (was file)", "D path".
    pub fn summary(cs: &[Change]) -> Vec<String> {
        cs.iter()
            .map(|c| {
                let mut s = format!("{} {}", c.kind.letter(), c.path.display());
                if c.metadata_only {
                    s.push_str(" (mode)");
                }
                if let Some(t) = c.replaces {
                    s.push_str(&format!(" (was {})", t.name()));
                }
                s
            })
            .collect()
    }

    pub fn write(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    pub fn mkdir(p: &Path) {
        fs::create_dir_all(p).unwrap();
    }

    pub fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    pub fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }

    pub fn xattr_set(p: &Path, name: &str, value: &[u8]) {
        rfs::lsetxattr(p, name, value, XattrFlags::empty()).unwrap();
    }

    pub fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    /// A whiteout the way native overlayfs makes it: a 0:0 character
    /// device, which any user may create since Linux 5.8 (the test would
    /// otherwise be testing the fuse format, which has its own test).
    pub fn whiteout(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        rfs::mknodat(
            rfs::CWD,
            p,
            rfs::FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .unwrap_or_else(|e| {
            panic!(
                "creating a whiteout device at {}: {e} (needs Linux 5.8 or later)",
                p.display()
            )
        });
    }

    pub fn fuse_whiteout_file(p: &Path) {
        let mut name = OsString::from(".wh.");
        name.push(p.file_name().unwrap());
        write(&p.with_file_name(name), "");
    }

    pub fn opaque(p: &Path) {
        mkdir(p);
        xattr_set(p, "user.overlay.opaque", b"y");
    }

    /// The whole tree as "path: what" lines, to compare host and expected.
    pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        pub fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let m = fs::symlink_metadata(&p).unwrap();
                let perm = m.permissions().mode() & 0o7777;
                if m.file_type().is_symlink() {
                    let t = fs::read_link(&p).unwrap();
                    out.insert(rel, format!("link {}", t.display()));
                } else if m.is_dir() {
                    out.insert(rel, format!("dir {perm:o}"));
                    walk(root, &p, out);
                } else {
                    out.insert(rel, format!("file {perm:o} {}", read(&p)));
                }
            }
        }
        walk(root, root, &mut out);
        out
    }

    /// When the sandbox "started": after the fixture's host files were
    /// written (file times come from the coarse clock, never ahead of it).
    pub fn started() -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::*;
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::time::Instant;

    // --- changes ---------------------------------------------------------

    #[test]
    fn added_file_and_new_directory_with_contents() {
        let fx = Fx::new("added");
        write(&fx.lo("keep"), "k");
        write(&fx.up("new.txt"), "hello");
        write(&fx.up("d/a"), "1");
        write(&fx.up("d/sub/b"), "22");
        assert_eq!(
            fx.summary(),
            ["A d", "A d/a", "A d/sub", "A d/sub/b", "A new.txt"]
        );
        let cs = fx.changes();
        let new = cs.iter().find(|c| c.path == Path::new("new.txt")).unwrap();
        assert_eq!(new.file_type, FileType::File);
        assert_eq!(new.size, Some(5));
        assert_eq!(cs[0].file_type, FileType::Dir);
        assert_eq!(cs[0].size, None);
    }

    #[test]
    fn modified_content_with_same_and_different_size() {
        let fx = Fx::new("modified");
        write(&fx.lo("same-size"), "abc");
        write(&fx.up("same-size"), "abd");
        write(&fx.lo("longer"), "abc");
        write(&fx.up("longer"), "abcdef");
        write(&fx.lo("d/inner"), "x");
        write(&fx.up("d/inner"), "y");
        write(&fx.lo("d/untouched"), "u");
        assert_eq!(fx.summary(), ["M d/inner", "M longer", "M same-size"]);
        let longer = &fx.changes()[1];
        assert_eq!(longer.size, Some(6));
        assert!(!longer.metadata_only);
    }

    #[test]
    fn identical_copy_up_is_not_a_change() {
        let fx = Fx::new("copyup");
        let big = "0123456789".repeat(20_000);
        write(&fx.lo("f"), &big);
        write(&fx.up("f"), &big);
        write(&fx.lo("d/g"), "g");
        write(&fx.up("d/g"), "g");
        // overlayfs bookkeeping is not content.
        xattr_set(&fx.up("f"), "user.overlay.origin", b"\x00\xfb\x1d");
        xattr_set(&fx.up("d"), "user.overlay.impure", b"y");
        xattr_set(&fx.upper, "user.overlay.uuid", b"0123456789abcdef");
        assert!(fx.changes().is_empty());
    }

    #[test]
    fn chmod_is_a_metadata_only_change() {
        let fx = Fx::new("chmod");
        write(&fx.lo("run.sh"), "#!/bin/sh\n");
        write(&fx.up("run.sh"), "#!/bin/sh\n");
        chmod(&fx.lo("run.sh"), 0o644);
        chmod(&fx.up("run.sh"), 0o755);
        mkdir(&fx.lo("d"));
        mkdir(&fx.up("d"));
        chmod(&fx.lo("d"), 0o755);
        chmod(&fx.up("d"), 0o700);
        assert_eq!(fx.summary(), ["M d (mode)", "M run.sh (mode)"]);
        // Content and mode both changed: a content change.
        write(&fx.up("run.sh"), "#!/bin/sh\necho hi\n");
        assert_eq!(fx.summary(), ["M d (mode)", "M run.sh"]);
    }

    #[test]
    fn changes_carry_modes_and_link_targets() {
        let fx = Fx::new("facts");
        write(&fx.lo("run.sh"), "#!/bin/sh\n");
        write(&fx.up("run.sh"), "#!/bin/sh\n");
        chmod(&fx.lo("run.sh"), 0o644);
        chmod(&fx.up("run.sh"), 0o4755);
        write(&fx.up("new"), "n");
        chmod(&fx.up("new"), 0o600);
        symlink("/etc", fx.up("etc")).unwrap();
        write(&fx.lo("gone"), "g");
        whiteout(&fx.up("gone"));
        let facts: Vec<_> = fx
            .changes()
            .into_iter()
            .map(|c| (c.path.display().to_string(), c.mode, c.old_mode, c.target))
            .collect();
        assert_eq!(
            facts,
            [
                ("etc".into(), None, None, Some(PathBuf::from("/etc"))),
                ("gone".into(), None, None, None),
                ("new".into(), Some(0o600), None, None),
                ("run.sh".into(), Some(0o4755), Some(0o644), None),
            ]
        );
    }

    #[test]
    fn read_file_reads_regular_files_only_and_never_through_a_link() {
        let fx = Fx::new("readfile");
        write(&fx.up("d/config"), "[core]\n");
        write(&fx.root.join("outside"), "secret");
        symlink(fx.root.join("outside"), fx.up("link")).unwrap();
        symlink(fx.root.join("."), fx.up("dirlink")).unwrap();
        let read = |rel: &str| read_file(&fx.upper, Path::new(rel), 64);
        assert_eq!(read("d/config").unwrap().as_deref(), Some(&b"[core]\n"[..]));
        assert_eq!(read("missing").unwrap(), None);
        assert_eq!(read("link").unwrap(), None);
        assert_eq!(read("dirlink/outside").unwrap(), None);
        assert_eq!(read("d").unwrap(), None);
        write(&fx.up("big"), &"x".repeat(65));
        let e = read("big").unwrap_err().to_string();
        assert!(e.contains("larger than 64 bytes"), "{e}");
    }

    #[test]
    fn whiteouts_delete_files_and_directories_with_their_entries() {
        let fx = Fx::new("whiteout");
        write(&fx.lo("gone.txt"), "x");
        write(&fx.lo("dir/a"), "a");
        write(&fx.lo("dir/sub/b"), "b");
        write(&fx.lo("kept"), "k");
        whiteout(&fx.up("gone.txt"));
        whiteout(&fx.up("dir"));
        // A whiteout for something the host never had is no change (the
        // sandbox created and deleted it).
        whiteout(&fx.up("never"));
        assert_eq!(
            fx.summary(),
            ["D dir", "D dir/a", "D dir/sub", "D dir/sub/b", "D gone.txt"]
        );
        assert_eq!(fx.changes()[0].file_type, FileType::Dir);
        assert_eq!(fx.changes()[4].size, None);
    }

    #[test]
    fn fuse_whiteout_files_delete_and_markers_are_never_changes() {
        let fx = Fx::new("fuse");
        write(&fx.lo("gone"), "x");
        write(&fx.lo("d/old"), "o");
        write(&fx.lo("d/same"), "s");
        fuse_whiteout_file(&fx.up("gone"));
        // fuse-overlayfs opaque directory: the marker file (and the
        // `.wh..opq` it creates beside it).
        write(&fx.up("d/.wh..wh..opq"), "");
        write(&fx.up("d/.wh..opq"), "");
        write(&fx.up("d/same"), "s");
        write(&fx.up("d/new"), "n");
        assert_eq!(fx.summary(), ["A d/new", "D d/old", "D gone"]);
    }

    #[test]
    fn xattr_whiteouts_delete_and_opaque_x_is_not_opaque() {
        let fx = Fx::new("xwhiteout");
        write(&fx.lo("d/gone"), "g");
        write(&fx.lo("d/kept"), "k");
        // Linux 6.7+: the directory is marked "x" (it may hold xattr
        // whiteouts), which does not make it opaque.
        mkdir(&fx.up("d"));
        xattr_set(&fx.up("d"), "user.overlay.opaque", b"x");
        write(&fx.up("d/gone"), "");
        xattr_set(&fx.up("d/gone"), "user.overlay.whiteout", b"");
        assert_eq!(fx.summary(), ["D d/gone"]);
    }

    #[test]
    fn opaque_directory_over_a_host_directory_is_compared_name_by_name() {
        let fx = Fx::new("opaque");
        write(&fx.lo("d/same"), "s");
        write(&fx.lo("d/changed"), "old");
        write(&fx.lo("d/vanished"), "v");
        write(&fx.lo("d/sub/deep"), "deep");
        write(&fx.lo("d/sub/kept"), "kept");
        opaque(&fx.up("d"));
        write(&fx.up("d/same"), "s");
        write(&fx.up("d/changed"), "new");
        write(&fx.up("d/added"), "a");
        // Below an opaque directory the host's subdirectories are hidden
        // too: `sub` shows only what the upper has.
        write(&fx.up("d/sub/kept"), "kept");
        assert_eq!(
            fx.summary(),
            ["A d/added", "M d/changed", "D d/sub/deep", "D d/vanished"]
        );
    }

    #[test]
    fn opaque_directory_by_fuse_marker_or_trusted_xattr() {
        let fx = Fx::new("opaque2");
        write(&fx.lo("a/old"), "o");
        write(&fx.lo("b/old"), "o");
        mkdir(&fx.up("a"));
        write(&fx.up("a/.wh..wh..opq"), "");
        write(&fx.up("a/new"), "n");
        mkdir(&fx.up("b"));
        write(&fx.up("b/new"), "n");
        let mut want = vec!["A a/new", "D a/old", "A b/new"];
        if is_root() {
            xattr_set(&fx.up("b"), "trusted.overlay.opaque", b"y");
            want.push("D b/old");
        }
        assert_eq!(fx.summary(), want);
    }

    #[test]
    fn opaque_new_directory_is_all_added() {
        let fx = Fx::new("opaque3");
        opaque(&fx.up("fresh"));
        write(&fx.up("fresh/x"), "x");
        write(&fx.up("fresh/.wh..wh..opq"), "");
        assert_eq!(fx.summary(), ["A fresh", "A fresh/x"]);
    }

    #[test]
    fn symlinks_added_changed_and_unchanged() {
        let fx = Fx::new("symlinks");
        symlink("target-a", fx.lo("same")).unwrap();
        symlink("target-a", fx.up("same")).unwrap();
        symlink("old", fx.lo("moved")).unwrap();
        symlink("new", fx.up("moved")).unwrap();
        symlink("/etc", fx.up("new-link")).unwrap();
        assert_eq!(fx.summary(), ["M moved", "A new-link"]);
        assert!(
            fx.changes()
                .iter()
                .all(|c| c.file_type == FileType::Symlink)
        );
    }

    #[test]
    fn type_changes_replace_the_host_entry() {
        let fx = Fx::new("types");
        write(&fx.lo("was-file"), "f");
        write(&fx.lo("was-dir/a"), "a");
        write(&fx.lo("was-file-2"), "f");
        opaque(&fx.up("was-file"));
        write(&fx.up("was-file/inside"), "i");
        write(&fx.up("was-dir"), "now a file");
        symlink("elsewhere", fx.up("was-file-2")).unwrap();
        assert_eq!(
            fx.summary(),
            [
                "M was-dir (was directory)",
                "D was-dir/a",
                "M was-file (was file)",
                "A was-file/inside",
                "M was-file-2 (was file)",
            ]
        );
    }

    #[test]
    fn only_limits_to_paths_and_below_and_rejects_escapes() {
        let fx = Fx::new("only");
        write(&fx.up("a/x"), "x");
        write(&fx.up("a/y/z"), "z");
        write(&fx.up("ab"), "ab");
        write(&fx.lo("gone/inner"), "i");
        whiteout(&fx.up("gone"));
        assert_eq!(summary(&fx.only(&["a/y"])), ["A a/y", "A a/y/z"]);
        // Component-wise: "a" does not match "ab".
        assert_eq!(
            summary(&fx.only(&["./a/"])),
            ["A a", "A a/x", "A a/y", "A a/y/z"]
        );
        assert_eq!(summary(&fx.only(&["gone/inner"])), ["D gone/inner"]);
        assert_eq!(summary(&fx.only(&["ab", "nothing"])), ["A ab"]);
        for bad in ["../etc", "/etc", ""] {
            let e = changes(&fx.lower, &fx.upper, &[PathBuf::from(bad)]).unwrap_err();
            assert!(matches!(e, ReviewError::Path { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_name_the_step_and_the_path() {
        let fx = Fx::new("errors");
        let missing = fx.root.join("no-such-upper");
        let e = changes(&fx.lower, &missing, &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "opening the upper layer {}: ENOENT (No such file or directory)",
                missing.display()
            )
        );
        let e = ReviewError::Rename {
            from: "/x/.nook-tmp-abc".into(),
            to: "/x/a".into(),
            errno: Errno::ACCESS,
        };
        assert_eq!(
            e.to_string(),
            "renaming /x/.nook-tmp-abc to /x/a: EACCES (Permission denied)"
        );
    }

    // --- patch -----------------------------------------------------------

    fn one(fx: &Fx, path: &str) -> Change {
        fx.changes()
            .into_iter()
            .find(|c| c.path == Path::new(path))
            .unwrap()
    }

    #[test]
    fn patch_shows_unified_diffs_modes_links_and_binaries() {
        let fx = Fx::new("patch");
        write(&fx.lo("t.txt"), "one\ntwo\nthree\n");
        write(&fx.up("t.txt"), "one\n2\nthree\n");
        write(&fx.up("new.txt"), "hello\n");
        write(&fx.lo("old.txt"), "bye\n");
        whiteout(&fx.up("old.txt"));
        fs::write(fx.up("bin"), b"\x00\x01\x02").unwrap();
        write(&fx.lo("mode"), "m");
        write(&fx.up("mode"), "m");
        chmod(&fx.lo("mode"), 0o644);
        chmod(&fx.up("mode"), 0o755);
        symlink("a", fx.lo("link")).unwrap();
        symlink("b", fx.up("link")).unwrap();
        mkdir(&fx.up("newdir"));
        let p = |path: &str| patch(&fx.lower, &fx.upper, &one(&fx, path)).unwrap();
        assert_eq!(
            p("t.txt"),
            "--- a/t.txt\n+++ b/t.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n"
        );
        assert_eq!(
            p("new.txt"),
            "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+hello\n"
        );
        assert_eq!(
            p("old.txt"),
            "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
        );
        assert_eq!(p("bin"), "Binary files /dev/null and b/bin differ\n");
        assert_eq!(
            p("mode"),
            "--- a/mode\n+++ b/mode\nold mode 0644\nnew mode 0755\n"
        );
        assert!(p("link").contains("-a\n"), "{}", p("link"));
        assert!(p("link").contains("+b\n"), "{}", p("link"));
        assert_eq!(p("newdir"), "new directory newdir\n");
    }

    // --- speed -----------------------------------------------------------

    /// 10,000 changes listed well under a second in a release build; the
    /// debug bound is looser. 9,000 new files and 1,000 modified ones of the
    /// same size, whose content must be read.
    #[test]
    fn ten_thousand_changes_are_listed_fast() {
        let fx = Fx::new("speed");
        speed_fixture(&fx, 90, 100, 1000);
        let start = Instant::now();
        let cs = fx.changes();
        let took = start.elapsed();
        assert_eq!(cs.len(), 90 + 9000 + 1000);
        eprintln!("changes: {} entries in {took:?}", cs.len());
        let bound = if cfg!(debug_assertions) { 3.0 } else { 1.0 };
        assert!(took.as_secs_f64() < bound, "{took:?}");
    }

    /// `dirs` new directories of `files` new files each, and `modified`
    /// same-size modified files in one host directory `m`.
    fn speed_fixture(fx: &Fx, dirs: usize, files: usize, modified: usize) {
        for d in 0..dirs {
            mkdir(&fx.up(&format!("d{d:03}")));
            for f in 0..files {
                fs::write(fx.up(&format!("d{d:03}/f{f:03}")), "x").unwrap();
            }
        }
        mkdir(&fx.lo("m"));
        mkdir(&fx.up("m"));
        for f in 0..modified {
            fs::write(fx.lo(&format!("m/f{f:05}")), "old content").unwrap();
            fs::write(fx.up(&format!("m/f{f:05}")), "new content").unwrap();
        }
    }

    /// The bigger measurement for the record (`cargo test --release --
    /// --ignored --nocapture review_timing`): 10,000 new files, then
    /// 10,000 same-size modifications, then committing them.
    #[test]
    #[ignore]
    fn review_timing() {
        let fx = Fx::new("timing");
        speed_fixture(&fx, 100, 100, 10_000);
        let start = Instant::now();
        let cs = fx.changes();
        eprintln!("changes: {} entries in {:?}", cs.len(), start.elapsed());
        let start = Instant::now();
        let r = commit(&fx.lower, &fx.upper, &cs, started(), false).unwrap();
        eprintln!(
            "commit: {} applied, {} cleaned in {:?}",
            r.applied.len(),
            r.cleaned,
            start.elapsed()
        );
        assert!(fx.changes().is_empty());
    }
}

//! A directory tree addressed through a file descriptor, never by a path
//! string: every lookup below the root goes through `openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, and every change is made with an
//! `*at()` call relative to the parent directory's descriptor with a single
//! name. A symlink anywhere in a path, whether the sandbox planted it in its
//! upper layer or it lies on the host, makes the lookup fail with `ELOOP`
//! instead of leading somewhere else; it can only ever be read, created,
//! replaced or removed as a link.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;

/// One open tree: the lower (host) directory or the upper layer.
#[derive(Debug)]
pub struct Tree {
    fd: OwnedFd,
    path: PathBuf,
}

/// What `statx` says about one entry, never following a symlink.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub kind: rfs::FileType,
    /// Permission bits, including setuid, setgid and sticky (0o7777).
    pub mode: u32,
    pub size: u64,
    pub rdev: (u32, u32),
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

impl Meta {
    pub fn is_dir(&self) -> bool {
        self.kind == rfs::FileType::Directory
    }

    /// Later than `since` by its content time or its inode-change time
    /// (ctime also moves on chmod, rename and link count changes, and
    /// cannot be set back by the user).
    pub fn changed_after(&self, since: SystemTime) -> bool {
        self.mtime > since || self.ctime > since
    }
}

/// Flags every lookup uses: stay below the directory, follow no symlink at
/// all (this also excludes /proc magic links).
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

impl Tree {
    /// Open `path` itself normally (the user named it; a symlink in it is
    /// the user's own choice), then never follow anything below it.
    pub fn open(path: &Path) -> Result<Tree, Errno> {
        let fd = rfs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Tree {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The host path of `rel`, for messages only: nothing is ever opened by
    /// this string.
    pub fn show(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.path.clone()
        } else {
            self.path.join(rel)
        }
    }

    /// Open `rel` below the root (the root itself when empty).
    pub fn open_at(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        open_beneath(self.fd(), rel, flags)
    }

    /// A read-only directory descriptor for `rel`, for listing and xattrs.
    pub fn open_dir(&self, rel: &Path) -> Result<OwnedFd, Errno> {
        self.open_at(rel, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    /// The entry at `rel`, or `None` when it (or a parent) does not exist.
    /// `ELOOP` (a symlink on the way) and `ENOTDIR` (a parent is not a
    /// directory) are returned as errors: the caller decides what they mean.
    pub fn lookup(&self, rel: &Path) -> Result<Option<Meta>, Errno> {
        match self.open_at(rel, OFlags::PATH | OFlags::NOFOLLOW) {
            Ok(fd) => stat_fd(&fd).map(Some),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `openat2(dir, rel, flags | O_NOFOLLOW | O_CLOEXEC, RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS)`. With `O_PATH` a symlink as the last component is
/// opened as the link itself (openat2(2)); otherwise it fails with `ELOOP`.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    loop {
        match rfs::openat2(
            dir,
            rel,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        ) {
            // openat2(2): EAGAIN when a concurrent rename or mount could
            // have let the lookup escape; the kernel asks to retry.
            Err(Errno::AGAIN) => continue,
            other => return other,
        }
    }
}

/// `statx` of one name in `dir`, not following it; `None` when absent.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<Meta>, Errno> {
    match rfs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, MASK) {
        Ok(st) => Ok(Some(meta(&st))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `statx` of an open descriptor (including an `O_PATH` one).
pub fn stat_fd(fd: &OwnedFd) -> Result<Meta, Errno> {
    rfs::statx(fd, "", AtFlags::EMPTY_PATH, MASK).map(|st| meta(&st))
}

const MASK: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::MODE)
    .union(StatxFlags::SIZE)
    .union(StatxFlags::ATIME)
    .union(StatxFlags::MTIME)
    .union(StatxFlags::CTIME);

fn meta(st: &rfs::Statx) -> Meta {
    let raw = u32::from(st.stx_mode);
    Meta {
        kind: rfs::FileType::from_raw_mode(raw),
        mode: raw & 0o7777,
        size: st.stx_size,
        rdev: (st.stx_rdev_major, st.stx_rdev_minor),
        atime: time(st.stx_atime.tv_sec, st.stx_atime.tv_nsec),
        mtime: time(st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec),
        ctime: time(st.stx_ctime.tv_sec, st.stx_ctime.tv_nsec),
    }
}

fn time(sec: i64, nsec: u32) -> SystemTime {
    match u64::try_from(sec) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nsec),
        // Before 1970: older than any sandbox.
        Err(_) => UNIX_EPOCH,
    }
}

/// The names in a directory opened for reading, without `.` and `..`.
pub fn list(dir: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let mut d = rfs::Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = d.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

/// The value of an xattr, or `None` when it is not set (or the filesystem
/// has no xattrs, or a `trusted.` name is invisible to an unprivileged
/// caller: all mean "not marked").
pub fn xattr<Fd: AsFd>(fd: Fd, name: &str) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    match rfs::fgetxattr(fd, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// The target of the symlink `name` in `dir`.
pub fn read_link(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OsString, Errno> {
    let target = rfs::readlinkat(dir, name, Vec::new())?;
    Ok(OsStr::from_bytes(target.as_bytes()).to_os_string())
}

/// Open the regular file `name` in `dir` for reading. `O_NONBLOCK` so that
/// a fifo swapped in after the type check cannot hang us; the type is
/// checked again on the open descriptor.
pub fn open_file(dir: BorrowedFd<'_>, name: &Path) -> Result<File, Errno> {
    let fd = open_beneath(dir, name, OFlags::RDONLY | OFlags::NONBLOCK)?;
    if stat_fd(&fd)?.kind != rfs::FileType::RegularFile {
        return Err(Errno::INVAL);
    }
    Ok(File::from(fd))
}

/// chmod the entry behind an `O_PATH` descriptor. `fchmod` refuses `O_PATH`
/// descriptors and `fchmodat(AT_SYMLINK_NOFOLLOW)` needs Linux 6.6, so go
/// through the descriptor's /proc link, which names exactly this inode (the
/// same thing glibc does). The caller has checked it is not a symlink.
pub fn chmod_fd(fd: &OwnedFd, mode: u32) -> Result<(), Errno> {
    let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
    rfs::chmodat(
        rfs::CWD,
        proc.as_str(),
        Mode::from_raw_mode(mode),
        AtFlags::empty(),
    )
}

/// Remove `name` in `dir` and, when it is a directory, everything below
/// it. Symlinks are removed as links, never followed; directories without
/// write permission for us are opened up first so their entries can go.
/// Returns the number of entries removed.
pub fn remove_tree(dir: BorrowedFd<'_>, name: &OsStr) -> Result<usize, (PathBuf, Errno)> {
    let at = |e: Errno, p: &Path| (p.to_path_buf(), e);
    let Some(m) = stat_at(dir, name).map_err(|e| at(e, Path::new(name)))? else {
        return Ok(0);
    };
    if !m.is_dir() {
        rfs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| at(e, Path::new(name)))?;
        return Ok(1);
    }
    if m.mode & 0o700 != 0o700 {
        // A directory we can't read (overlayfs leaves `work/work` mode
        // 000) can't be opened for reading: open it as a path first.
        let path = open_beneath(dir, Path::new(name), OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| at(e, Path::new(name)))?;
        chmod_fd(&path, (m.mode & 0o7777) | 0o700).map_err(|e| at(e, Path::new(name)))?;
    }
    let sub = open_beneath(dir, Path::new(name), OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(|e| at(e, Path::new(name)))?;
    let mut count = 0;
    for child in list(&sub).map_err(|e| at(e, Path::new(name)))? {
        count += remove_tree(sub.as_fd(), &child).map_err(|(p, e)| (Path::new(name).join(p), e))?;
    }
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(|e| at(e, Path::new(name)))?;
    Ok(count + 1)
}

/// The errno inside an `std::io::Error` (EIO when there is none).
pub fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Split a relative path into its parent and last name.
pub fn split(rel: &Path) -> (&Path, &OsStr) {
    let name = rel.file_name().unwrap_or(rel.as_os_str());
    let parent = rel.parent().unwrap_or(Path::new(""));
    (parent, name)
}

/// `rel` made of plain names only: not empty, not absolute, no `..`; `.`
/// components and trailing slashes are dropped. `None` otherwise.
pub fn normal(rel: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    }
}

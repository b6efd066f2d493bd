//! Applying reviewed changes to the host tree, and cleaning the upper
//! layer of what the host now shows.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes};
use std::hash::{BuildHasher, RandomState};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::super::tree::{self, Meta, Tree};
use super::{
    Change, CommitReport, FileType, Kind, Note, ORIGIN_XATTRS, ReviewError, change, fail,
    hidden_below_ancestor, open_both, remove_upper, scan, upper_has,
};
use crate::error::Step;

/// Apply `changes` (from [`super::changes`]) to the host tree `lower`,
/// reading new content from `upper`.
///
/// - Conflicts first, all or nothing: a host entry at a changed path whose
///   ctime or mtime is later than `since` (when the sandbox started), every
///   non-directory below a host directory being deleted or replaced, a
///   file modified in the sandbox that the host has since deleted. Without
///   `force`, when there is any, nothing is applied and the report lists
///   them. A directory's own times are no conflict: they move whenever an
///   entry is added or removed, including by an earlier partial commit.
///   (They are used once: a copied-up file now missing on the host was
///   deleted there only if its host directory changed after `since`; a
///   file renamed in the sandbox also carries its origin.)
/// - Files: a temporary file `.nook-tmp-*` in the same host directory
///   (`O_EXCL`, unpredictable name), content, mode (setuid and setgid
///   dropped, with a note), times, fsync, `renameat` over the target.
///   Symlinks are created as links, the same way. Directories get their
///   mode once their entries are in (so a read-only one can be filled).
///   Deletions last, deepest first; a directory is removed with everything
///   in it, links removed as links.
/// - Never through a symlink: every host path is resolved below `lower` with
///   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and changed with
///   `*at()` calls on the parent's descriptor. A change whose host path
///   goes through a symlink is skipped with the reason. Devices, fifos and
///   sockets are skipped too.
/// - Missing host parent directories are created like the upper ones.
/// - Afterwards the upper entries that the host now shows identically are
///   removed (unless an opaque directory above needs them to keep hiding
///   the rest of the host directory), so `diff` no longer lists them and
///   the layer does not keep a second copy.
pub fn commit(
    lower: &Path,
    upper: &Path,
    changes: &[Change],
    since: SystemTime,
    force: bool,
) -> Result<CommitReport, ReviewError> {
    let (host, up) = open_both(lower, upper)?;
    let mut list = Vec::with_capacity(changes.len());
    for c in changes {
        let path = tree::normal(&c.path).ok_or_else(|| ReviewError::Path {
            path: c.path.clone(),
            why: "not a path relative to the overlay root".into(),
        })?;
        list.push(Change { path, ..c.clone() });
    }
    list.sort_by(|a, b| a.path.cmp(&b.path));
    list.dedup_by(|a, b| a.path == b.path);

    let mut report = CommitReport::default();
    let renamed: Vec<&Path> = list
        .iter()
        .filter(|c| c.renamed_from.is_some())
        .map(|c| c.path.as_path())
        .collect();
    let origins: Vec<&Path> = list
        .iter()
        .filter_map(|c| c.renamed_from.as_deref())
        .collect();
    let mut todo = Vec::new();
    let mut refused_dirs = Vec::new();
    for c in &list {
        match refusal(c, &renamed, &origins) {
            Some(why) => {
                if c.file_type == FileType::Dir {
                    refused_dirs.push(c.path.clone());
                }
                report.skipped.push(Note {
                    path: c.path.clone(),
                    why,
                });
            }
            None => todo.push(c),
        }
    }

    for c in &todo {
        if let Some(why) = conflict(&host, &up, c, since)? {
            report.conflicts.push(Note {
                path: c.path.clone(),
                why,
            });
        }
    }
    if !report.conflicts.is_empty() && !force {
        return Ok(report);
    }

    let mut apply = Apply {
        host: &host,
        up: &up,
        report,
        dir_modes: Vec::new(),
        touched: BTreeSet::new(),
        skipped_dirs: refused_dirs,
    };
    for c in todo.iter().filter(|c| c.kind != Kind::Deleted) {
        apply.put(c)?;
    }
    for c in todo.iter().rev().filter(|c| c.kind == Kind::Deleted) {
        apply.delete(c)?;
    }
    apply.finish()?;
    let mut report = apply.report;
    report.cleaned = clean(&host, &up, &report.applied)?;
    Ok(report)
}

/// Why nook never applies `c`, if it doesn't.
fn refusal(c: &Change, renamed: &[&Path], origins: &[&Path]) -> Option<String> {
    if c.file_type == FileType::Other && c.kind != Kind::Deleted {
        return Some("a device, fifo or socket: nook never creates those on the host".into());
    }
    if let Some(r) = renamed.iter().find(|r| c.path.starts_with(r)) {
        return Some(format!(
            "{} was renamed inside the sandbox (overlay redirect); nook does not apply \
             directory renames (mount with redirect_dir=off)",
            r.display()
        ));
    }
    let removes = c.kind == Kind::Deleted || c.replaces.is_some();
    if removes
        && let Some(o) = origins
            .iter()
            .find(|o| c.path.starts_with(o) || o.starts_with(&c.path))
    {
        return Some(format!(
            "{} is the source of a directory renamed inside the sandbox, which is not applied",
            o.display()
        ));
    }
    None
}

/// Why applying `c` would overwrite something the host changed after
/// `since`, if it would.
fn conflict(
    host: &Tree,
    up: &Tree,
    c: &Change,
    since: SystemTime,
) -> Result<Option<String>, ReviewError> {
    let hm = match host.lookup(&c.path) {
        Ok(m) => m,
        // A symlink or a non-directory on the host path: apply skips it.
        Err(Errno::LOOP | Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(fail(Step::Inspect, host.show(&c.path))(e)),
    };
    match hm {
        Some(m) if !m.is_dir() => Ok(m
            .changed_after(since)
            .then(|| "changed on the host after the sandbox started".to_string())),
        Some(_) if c.kind == Kind::Deleted || c.file_type != FileType::Dir => {
            Ok(newer_below(host, &c.path, since)?.map(|p| {
                format!(
                    "{} inside it changed on the host after the sandbox started",
                    p.display()
                )
            }))
        }
        Some(_) => Ok(None),
        None if c.kind == Kind::Modified => {
            Ok(Some("deleted on the host after the sandbox started".into()))
        }
        None if c.kind == Kind::Added => {
            // Copied up (so the host had it when the sandbox changed it)
            // and now gone, in a host directory that changed since: the
            // host deleted it. A file renamed in the sandbox also has an
            // origin, but its host directory did not change.
            let parent = tree::split(&c.path).0;
            let parent_changed =
                matches!(host.lookup(parent), Ok(Some(m)) if m.changed_after(since));
            let copied_up = || {
                up.open_at(&c.path, OFlags::RDONLY | OFlags::NONBLOCK)
                    .is_ok_and(|fd| ORIGIN_XATTRS.iter().any(|x| tree::xattr(&fd, x).is_some()))
            };
            Ok((parent_changed && copied_up())
                .then(|| "deleted on the host after the sandbox started, and changed in it".into()))
        }
        None => Ok(None),
    }
}

/// The first non-directory below the host directory `rel` changed after
/// `since`.
fn newer_below(host: &Tree, rel: &Path, since: SystemTime) -> Result<Option<PathBuf>, ReviewError> {
    let dir = match host.open_dir(rel) {
        Ok(d) => d,
        Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT) => return Ok(None),
        Err(e) => return Err(fail(Step::Open, host.show(rel))(e)),
    };
    for name in tree::list(&dir).map_err(fail(Step::List, host.show(rel)))? {
        let path = rel.join(&name);
        match tree::stat_at(dir.as_fd(), &name).map_err(fail(Step::Inspect, host.show(&path)))? {
            Some(m) if m.is_dir() => {
                if let Some(p) = newer_below(host, &path, since)? {
                    return Ok(Some(p));
                }
            }
            Some(m) if m.changed_after(since) => return Ok(Some(path)),
            _ => {}
        }
    }
    Ok(None)
}

/// How far a host path can be reached without following a symlink.
enum Reach {
    Dir(OwnedFd),
    /// A component does not exist (named).
    Missing(PathBuf),
    /// A component is a symlink (`true`) or not a directory: why.
    Blocked(bool, String),
}

struct Apply<'a> {
    host: &'a Tree,
    up: &'a Tree,
    report: CommitReport,
    /// Final modes of the directories written, set last.
    dir_modes: Vec<(PathBuf, u32)>,
    /// Host directories whose entries changed: fsynced at the end.
    touched: BTreeSet<PathBuf>,
    /// Directories not applied: nothing below them is either.
    skipped_dirs: Vec<PathBuf>,
}

impl Apply<'_> {
    fn skip(&mut self, c: &Change, why: String) {
        if c.file_type == FileType::Dir && c.kind != Kind::Deleted {
            self.skipped_dirs.push(c.path.clone());
        }
        self.report.skipped.push(Note {
            path: c.path.clone(),
            why,
        });
    }

    fn applied(&mut self, c: &Change) {
        self.touched.insert(tree::split(&c.path).0.to_path_buf());
        self.report.applied.push(c.clone());
    }

    /// Walk to the host directory `rel` one name at a time. With `create`,
    /// missing directories are made like the upper layer's (the parents of
    /// a path committed without them).
    fn reach(&mut self, rel: &Path, create: bool) -> Result<Reach, ReviewError> {
        let mut fd = self
            .host
            .open_at(Path::new(""), OFlags::PATH | OFlags::DIRECTORY)
            .map_err(fail(Step::OpenHostDir, self.host.show(Path::new(""))))?;
        let mut sofar = PathBuf::new();
        for name in rel.iter() {
            sofar.push(name);
            let next = tree::open_beneath(
                fd.as_fd(),
                Path::new(name),
                OFlags::PATH | OFlags::DIRECTORY,
            );
            fd = match next {
                Ok(next) => next,
                Err(Errno::NOENT) if create => {
                    let mode = match self.up.lookup(&sofar) {
                        Ok(Some(m)) if m.is_dir() => m.mode,
                        _ => return Ok(Reach::Missing(sofar)),
                    };
                    match rfs::mkdirat(fd.as_fd(), name, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(fail(Step::CreateTheDir, self.host.show(&sofar))(e));
                        }
                    }
                    self.dir_modes.push((sofar.clone(), mode));
                    self.applied(&change(&sofar, Kind::Added, FileType::Dir));
                    tree::open_beneath(
                        fd.as_fd(),
                        Path::new(name),
                        OFlags::PATH | OFlags::DIRECTORY,
                    )
                    .map_err(fail(Step::Open, self.host.show(&sofar)))?
                }
                Err(Errno::NOENT) => return Ok(Reach::Missing(sofar)),
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    let link = matches!(tree::stat_at(fd.as_fd(), name),
                        Ok(Some(m)) if m.kind == rfs::FileType::Symlink);
                    let what = if link {
                        "is a symlink; nook never writes through one"
                    } else {
                        "is not a directory"
                    };
                    return Ok(Reach::Blocked(
                        link,
                        format!("{} on the host {what}", self.host.show(&sofar).display()),
                    ));
                }
                Err(e) => return Err(fail(Step::Open, self.host.show(&sofar))(e)),
            };
        }
        Ok(Reach::Dir(fd))
    }

    /// Apply an added or modified entry.
    fn put(&mut self, c: &Change) -> Result<(), ReviewError> {
        if let Some(d) = self.skipped_dirs.iter().find(|d| c.path.starts_with(d)) {
            let why = format!("inside {}, which was not applied", d.display());
            self.skip(c, why);
            return Ok(());
        }
        let (parent_rel, name) = tree::split(&c.path);
        let parent = match self.reach(parent_rel, true)? {
            Reach::Dir(fd) => fd,
            Reach::Missing(p) => {
                let why = format!(
                    "{} is neither on the host nor a directory in the upper layer",
                    p.display()
                );
                self.skip(c, why);
                return Ok(());
            }
            Reach::Blocked(_, why) => {
                self.skip(c, why);
                return Ok(());
            }
        };
        let um = match self.up.lookup(&c.path) {
            Ok(Some(m)) => m,
            Ok(None) => {
                self.skip(c, "no longer in the upper layer".into());
                return Ok(());
            }
            Err(Errno::LOOP | Errno::NOTDIR) => {
                self.skip(c, "the upper-layer path goes through a symlink".into());
                return Ok(());
            }
            Err(e) => return Err(fail(Step::Inspect, self.up.show(&c.path))(e)),
        };
        if FileType::of(um.kind) != c.file_type {
            self.skip(c, "changed in the upper layer since the review".into());
            return Ok(());
        }
        let hm = tree::stat_at(parent.as_fd(), name)
            .map_err(fail(Step::Inspect, self.host.show(&c.path)))?;
        match c.file_type {
            FileType::Dir => {
                match hm {
                    Some(h) if h.is_dir() => {}
                    Some(_) => {
                        self.remove(&parent, &c.path)?;
                        self.mkdir(&parent, &c.path)?;
                    }
                    None => self.mkdir(&parent, &c.path)?,
                }
                self.dir_modes.push((c.path.clone(), um.mode));
            }
            FileType::File
                if c.metadata_only && hm.is_some_and(|h| h.kind == rfs::FileType::RegularFile) =>
            {
                let fd = tree::open_beneath(parent.as_fd(), Path::new(name), OFlags::PATH)
                    .map_err(fail(Step::Open, self.host.show(&c.path)))?;
                if tree::stat_fd(&fd)
                    .map_err(fail(Step::Inspect, self.host.show(&c.path)))?
                    .kind
                    != rfs::FileType::RegularFile
                {
                    self.skip(c, "no longer a regular file on the host".into());
                    return Ok(());
                }
                let mode = self.file_mode(c, um.mode);
                tree::chmod_fd(&fd, mode)
                    .map_err(fail(Step::ChangeMode, self.host.show(&c.path)))?;
            }
            FileType::File => {
                let src = match tree::open_file(self.up.fd(), &c.path) {
                    Ok(f) => f,
                    Err(Errno::ACCESS) => {
                        self.skip(c, "the upper-layer copy is not readable".into());
                        return Ok(());
                    }
                    Err(e) => return Err(fail(Step::Open, self.up.show(&c.path))(e)),
                };
                let mode = self.file_mode(c, um.mode);
                self.write_file(&parent, &c.path, src, mode, &um, hm)?;
            }
            FileType::Symlink => {
                let up_parent = self
                    .up
                    .open_at(parent_rel, OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(fail(Step::Open, self.up.show(parent_rel)))?;
                let target = tree::read_link(up_parent.as_fd(), name)
                    .map_err(fail(Step::ReadLink, self.up.show(&c.path)))?;
                self.write_link(&parent, &c.path, &target, hm)?;
            }
            FileType::Other => unreachable!("refused before"),
        }
        self.applied(c);
        Ok(())
    }

    /// The mode a committed file gets: the sandbox's, less setuid and
    /// setgid (a sandbox must not leave behind a program that runs as the
    /// user for whoever else can start it).
    fn file_mode(&mut self, c: &Change, mode: u32) -> u32 {
        if mode & 0o6000 != 0 {
            self.report.notes.push(Note {
                path: c.path.clone(),
                why: format!(
                    "setuid/setgid dropped: mode {:04o} instead of {mode:04o}",
                    mode & 0o1777
                ),
            });
        }
        mode & 0o1777
    }

    fn mkdir(&mut self, parent: &OwnedFd, rel: &Path) -> Result<(), ReviewError> {
        let name = tree::split(rel).1;
        // 0700 until its entries are in; the real mode is set last.
        rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
            .map_err(fail(Step::CreateTheDir, self.host.show(rel)))
    }

    fn remove(&mut self, parent: &OwnedFd, rel: &Path) -> Result<usize, ReviewError> {
        let name = tree::split(rel).1;
        tree::remove_tree(parent.as_fd(), name).map_err(|(p, e)| ReviewError::Io {
            step: Step::Remove,
            path: self.host.show(tree::split(rel).0).join(p),
            errno: e,
        })
    }

    /// A temporary name in `parent` nobody can guess, and the file created
    /// there exclusively.
    fn temp_file(&self, parent: &OwnedFd, rel: &Path) -> Result<(OsString, File), ReviewError> {
        loop {
            let name = temp_name();
            match rfs::openat(
                parent,
                &name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => return Ok((name, File::from(fd))),
                Err(Errno::EXIST) => continue,
                Err(e) => {
                    let at = self.host.show(tree::split(rel).0).join(&name);
                    return Err(fail(Step::CreateTempFile, at)(e));
                }
            }
        }
    }

    fn write_file(
        &mut self,
        parent: &OwnedFd,
        rel: &Path,
        mut src: File,
        mode: u32,
        um: &Meta,
        hm: Option<Meta>,
    ) -> Result<(), ReviewError> {
        let (tmp, mut dst) = self.temp_file(parent, rel)?;
        let tmp_path = self.host.show(tree::split(rel).0).join(&tmp);
        let result = (|| {
            let io = |step: Step| {
                let p = tmp_path.clone();
                move |e: std::io::Error| fail(step, p)(tree::io_errno(&e))
            };
            std::io::copy(&mut src, &mut dst).map_err(io(Step::Write))?;
            dst.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(io(Step::SetMode))?;
            dst.set_times(
                FileTimes::new()
                    .set_accessed(um.atime)
                    .set_modified(um.mtime),
            )
            .map_err(io(Step::SetTimes))?;
            dst.sync_all().map_err(io(Step::Sync))?;
            self.replace(parent, &tmp, rel, hm)
        })();
        if result.is_err() {
            let _ = rfs::unlinkat(parent, &tmp, AtFlags::empty());
        }
        result
    }

    fn write_link(
        &mut self,
        parent: &OwnedFd,
        rel: &Path,
        target: &OsStr,
        hm: Option<Meta>,
    ) -> Result<(), ReviewError> {
        let tmp = loop {
            let name = temp_name();
            match rfs::symlinkat(target, parent, &name) {
                Ok(()) => break name,
                Err(Errno::EXIST) => continue,
                Err(e) => {
                    let at = self.host.show(tree::split(rel).0).join(&name);
                    return Err(fail(Step::CreateTheSymlink, at)(e));
                }
            }
        };
        let result = self.replace(parent, &tmp, rel, hm);
        if result.is_err() {
            let _ = rfs::unlinkat(parent, &tmp, AtFlags::empty());
        }
        result
    }

    /// Rename the finished `tmp` over `rel`. rename(2) replaces a file or
    /// link atomically but not a directory: one being replaced by a file or
    /// link goes first.
    fn replace(
        &mut self,
        parent: &OwnedFd,
        tmp: &OsStr,
        rel: &Path,
        hm: Option<Meta>,
    ) -> Result<(), ReviewError> {
        if hm.is_some_and(|h| h.is_dir()) {
            self.remove(parent, rel)?;
        }
        let name = tree::split(rel).1;
        rfs::renameat(parent, tmp, parent, name).map_err(|errno| ReviewError::Rename {
            from: self.host.show(tree::split(rel).0).join(tmp),
            to: self.host.show(rel),
            errno,
        })
    }

    /// Apply a deletion: already gone counts as done.
    fn delete(&mut self, c: &Change) -> Result<(), ReviewError> {
        let (parent_rel, name) = tree::split(&c.path);
        let parent = match self.reach(parent_rel, false)? {
            Reach::Dir(fd) => fd,
            // Gone with its parent (removed, or replaced by a file just now).
            Reach::Missing(_) | Reach::Blocked(false, _) => {
                self.report.applied.push(c.clone());
                return Ok(());
            }
            // The path leads through a link: what is there is not ours.
            Reach::Blocked(true, why) => {
                self.skip(c, why);
                return Ok(());
            }
        };
        if tree::stat_at(parent.as_fd(), name)
            .map_err(fail(Step::Inspect, self.host.show(&c.path)))?
            .is_some()
        {
            self.remove(&parent, &c.path)?;
        }
        self.applied(c);
        Ok(())
    }

    /// Directory modes, deepest first (a read-only parent last), then
    /// fsync every host directory whose entries changed, so the renames
    /// are on disk when commit returns.
    fn finish(&mut self) -> Result<(), ReviewError> {
        self.dir_modes.sort_by(|a, b| b.0.cmp(&a.0));
        for (rel, mode) in std::mem::take(&mut self.dir_modes) {
            let fd = self
                .host
                .open_at(&rel, OFlags::PATH | OFlags::DIRECTORY)
                .map_err(fail(Step::Open, self.host.show(&rel)))?;
            tree::chmod_fd(&fd, mode).map_err(fail(Step::ChangeMode, self.host.show(&rel)))?;
        }
        for rel in std::mem::take(&mut self.touched) {
            // Removed with its parent (a deleted directory's entries).
            let Ok(fd) = self.host.open_dir(&rel) else {
                continue;
            };
            File::from(fd)
                .sync_all()
                .map_err(|e| fail(Step::Sync, self.host.show(&rel))(tree::io_errno(&e)))?;
        }
        Ok(())
    }
}

fn temp_name() -> OsString {
    // RandomState is seeded from the OS's random source: the name cannot be
    // guessed in advance by whoever else can write to the directory.
    let n = RandomState::new().hash_one(SystemTime::now());
    OsString::from(format!(".nook-tmp-{n:016x}"))
}

/// After a commit: remove the upper entries at (or above) the committed
/// paths that the host now shows identically. The number removed.
fn clean(host: &Tree, up: &Tree, applied: &[Change]) -> Result<usize, ReviewError> {
    let mut candidates = BTreeSet::new();
    for c in applied {
        for a in c.path.ancestors() {
            if !a.as_os_str().is_empty() {
                candidates.insert(a.to_path_buf());
            }
        }
    }
    let mut removed: Vec<PathBuf> = Vec::new();
    let mut count = 0;
    for rel in candidates {
        if removed.iter().any(|r| rel.starts_with(r)) {
            continue;
        }
        // Under an opaque directory the upper copy is what hides the rest
        // of the host directory's content: it must stay.
        if hidden_below_ancestor(up, &rel)? || !upper_has(up, &rel) {
            continue;
        }
        if scan(host, up, std::slice::from_ref(&rel))?.is_empty() {
            count += remove_upper(up, &rel)?;
            removed.push(rel);
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, SystemTime};

    use rustix::fs::{self as rfs, Mode};

    // --- commit ----------------------------------------------------------

    /// A bit of everything, and the host must end up as the merged view.
    fn everything(fx: &Fx) -> BTreeMap<String, String> {
        write(&fx.lo("mod.txt"), "old");
        write(&fx.up("mod.txt"), "new content");
        write(&fx.lo("chmod.sh"), "#!");
        write(&fx.up("chmod.sh"), "#!");
        chmod(&fx.lo("chmod.sh"), 0o644);
        chmod(&fx.up("chmod.sh"), 0o750);
        write(&fx.up("added/deep/file"), "deep");
        chmod(&fx.up("added/deep"), 0o750);
        write(&fx.lo("gone.txt"), "g");
        whiteout(&fx.up("gone.txt"));
        write(&fx.lo("gonedir/a/b"), "b");
        symlink("x", fx.lo("gonedir/link")).unwrap();
        whiteout(&fx.up("gonedir"));
        write(&fx.lo("op/stale"), "s");
        write(&fx.lo("op/same"), "same");
        opaque(&fx.up("op"));
        write(&fx.up("op/same"), "same");
        write(&fx.up("op/fresh"), "f");
        symlink("../mod.txt", fx.up("link")).unwrap();
        write(&fx.lo("file2dir"), "f");
        opaque(&fx.up("file2dir"));
        write(&fx.up("file2dir/in"), "in");
        write(&fx.lo("dir2file/x"), "x");
        write(&fx.up("dir2file"), "now a file");
        write(&fx.lo("untouched"), "u");
        let mut want = BTreeMap::new();
        for (k, v) in [
            ("mod.txt", "file 644 new content"),
            ("chmod.sh", "file 750 #!"),
            ("added", "dir 755"),
            ("added/deep", "dir 750"),
            ("added/deep/file", "file 644 deep"),
            ("op", "dir 755"),
            ("op/same", "file 644 same"),
            ("op/fresh", "file 644 f"),
            ("link", "link ../mod.txt"),
            ("file2dir", "dir 755"),
            ("file2dir/in", "file 644 in"),
            ("dir2file", "file 644 now a file"),
            ("untouched", "file 644 u"),
        ] {
            want.insert(k.to_string(), v.to_string());
        }
        want
    }

    #[test]
    fn commit_applies_every_kind_and_cleans_the_upper_layer() {
        let fx = Fx::new("commit");
        let want = everything(&fx);
        let before = fx.changes();
        let report = fx.commit(started(), false);
        assert!(report.conflicts.is_empty(), "{:?}", report.conflicts);
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        assert_eq!(report.applied.len(), before.len());
        assert_eq!(snapshot(&fx.lower), want);
        assert!(fx.changes().is_empty(), "{:?}", fx.summary());
        // Everything the host now shows identically left the upper layer;
        // the opaque directory had nothing left to hide.
        assert!(snapshot(&fx.upper).is_empty(), "{:?}", snapshot(&fx.upper));
        assert!(report.cleaned > 0);
        // No temporary files left behind.
        assert!(!snapshot(&fx.lower).keys().any(|k| k.contains(".nook-tmp-")));
    }

    #[test]
    fn commit_keeps_the_host_inode_for_a_mode_change() {
        use std::os::unix::fs::MetadataExt;
        let fx = Fx::new("inode");
        write(&fx.lo("f"), "same");
        write(&fx.up("f"), "same");
        chmod(&fx.up("f"), 0o600);
        let ino = fs::metadata(fx.lo("f")).unwrap().ino();
        fx.commit(started(), false);
        assert_eq!(mode(&fx.lo("f")), 0o600);
        assert_eq!(fs::metadata(fx.lo("f")).unwrap().ino(), ino);
    }

    #[test]
    fn commit_of_part_of_a_new_directory_then_the_rest() {
        let fx = Fx::new("partial");
        opaque(&fx.up("d"));
        chmod(&fx.up("d"), 0o750);
        write(&fx.up("d/x"), "x");
        write(&fx.up("d/y"), "y");
        let part = fx.only(&["d/x"]);
        let report = commit(&fx.lower, &fx.upper, &part, started(), false).unwrap();
        // The parent was created like the upper one.
        assert_eq!(summary(&report.applied), ["A d", "A d/x"]);
        assert_eq!(mode(&fx.lo("d")), 0o750);
        assert_eq!(read(&fx.lo("d/x")), "x");
        // d is opaque: its copy of x must stay to keep the view, but it is
        // identical, so no longer a change.
        assert_eq!(fx.summary(), ["A d/y"]);
        fx.commit(started(), false);
        assert!(fx.changes().is_empty());
        assert!(snapshot(&fx.upper).is_empty(), "{:?}", snapshot(&fx.upper));
    }

    #[test]
    fn commit_gives_a_read_only_directory_its_mode_after_filling_it() {
        let fx = Fx::new("readonly");
        write(&fx.up("ro/inner/f"), "f");
        chmod(&fx.up("ro/inner"), 0o555);
        chmod(&fx.up("ro"), 0o500);
        let report = fx.commit(started(), false);
        assert!(report.skipped.is_empty());
        assert_eq!(mode(&fx.lo("ro")), 0o500);
        assert_eq!(mode(&fx.lo("ro/inner")), 0o555);
        assert_eq!(read(&fx.lo("ro/inner/f")), "f");
        chmod(&fx.lo("ro"), 0o755);
        chmod(&fx.lo("ro/inner"), 0o755);
    }

    #[test]
    fn commit_drops_setuid_and_says_so() {
        let fx = Fx::new("setuid");
        write(&fx.up("tool"), "#!/bin/sh\n");
        chmod(&fx.up("tool"), 0o4755);
        let report = fx.commit(started(), false);
        assert_eq!(mode(&fx.lo("tool")), 0o755);
        assert_eq!(report.notes.len(), 1);
        assert!(report.notes[0].why.contains("setuid"), "{:?}", report.notes);
    }

    #[test]
    fn special_files_are_listed_but_never_committed() {
        let fx = Fx::new("special");
        rfs::mkfifoat(rfs::CWD, fx.up("fifo"), Mode::from_raw_mode(0o644)).unwrap();
        write(&fx.up("plain"), "p");
        assert_eq!(fx.summary(), ["A fifo", "A plain"]);
        assert_eq!(fx.changes()[0].file_type, FileType::Other);
        let report = fx.commit(started(), false);
        assert_eq!(summary(&report.applied), ["A plain"]);
        assert_eq!(report.skipped.len(), 1);
        assert!(report.skipped[0].why.contains("fifo"));
        assert!(fs::symlink_metadata(fx.lo("fifo")).is_err());
        // It stays in the upper layer, still listed.
        assert_eq!(fx.summary(), ["A fifo"]);
    }

    #[test]
    fn redirected_directory_is_listed_and_not_applied() {
        let fx = Fx::new("redirect");
        write(&fx.lo("old/a"), "a");
        mkdir(&fx.up("new"));
        xattr_set(&fx.up("new"), "user.overlay.redirect", b"old");
        write(&fx.up("new/b"), "b");
        whiteout(&fx.up("old"));
        let cs = fx.changes();
        assert_eq!(summary(&cs), ["A new", "A new/b", "D old", "D old/a"]);
        assert_eq!(cs[0].renamed_from.as_deref(), Some(Path::new("old")));
        let report = fx.commit(started(), false);
        assert!(report.applied.is_empty(), "{:?}", report.applied);
        assert_eq!(report.skipped.len(), 4);
        assert_eq!(read(&fx.lo("old/a")), "a");
    }

    // --- conflicts -------------------------------------------------------

    #[test]
    fn conflicts_stop_everything_unless_forced() {
        let fx = Fx::new("conflict");
        write(&fx.lo("both.txt"), "host v1");
        write(&fx.up("both.txt"), "sandbox");
        write(&fx.up("fine.txt"), "fine");
        write(&fx.lo("deldir/host-new"), "h");
        whiteout(&fx.up("deldir"));
        let since = SystemTime::now() - Duration::from_secs(60);
        // The host files were written just now: after `since`.
        let report = fx.commit(since, false);
        let paths: Vec<_> = report
            .conflicts
            .iter()
            .map(|n| n.path.display().to_string())
            .collect();
        assert_eq!(paths, ["both.txt", "deldir", "deldir/host-new"]);
        assert!(
            report.conflicts[1]
                .why
                .contains("deldir/host-new inside it"),
            "{:?}",
            report.conflicts
        );
        assert!(report.applied.is_empty());
        assert_eq!(read(&fx.lo("both.txt")), "host v1");
        assert!(!fx.lo("fine.txt").exists());
        // Before the host changes: no conflict.
        assert!(
            fx.commit(SystemTime::now() + Duration::from_secs(60), false)
                .conflicts
                .is_empty()
        );
    }

    #[test]
    fn forced_commit_applies_over_conflicts() {
        let fx = Fx::new("force");
        write(&fx.lo("both.txt"), "host v1");
        write(&fx.up("both.txt"), "sandbox");
        let since = SystemTime::now() - Duration::from_secs(60);
        let report = fx.commit(since, true);
        assert_eq!(report.conflicts.len(), 1);
        assert_eq!(summary(&report.applied), ["M both.txt"]);
        assert_eq!(read(&fx.lo("both.txt")), "sandbox");
    }

    #[test]
    fn a_file_the_host_deleted_after_the_sandbox_changed_it_conflicts() {
        let fx = Fx::new("hostdel");
        mkdir(&fx.lo("d"));
        write(&fx.up("d/edited"), "sandbox edit");
        xattr_set(
            &fx.up("d/edited"),
            "user.fuseoverlayfs.origin",
            b"d/edited\0",
        );
        write(&fx.up("d/created"), "brand new");
        // The host's d changed (the deletion) just now.
        let since = SystemTime::now() - Duration::from_secs(60);
        let cs = fx.changes();
        assert_eq!(summary(&cs), ["A d/created", "A d/edited"]);
        let report = commit(&fx.lower, &fx.upper, &cs, since, false).unwrap();
        assert_eq!(report.conflicts.len(), 1, "{:?}", report.conflicts);
        assert_eq!(report.conflicts[0].path, Path::new("d/edited"));
        // A file the review saw modified, gone from the host since.
        write(&fx.lo("m"), "host");
        write(&fx.up("m"), "sandbox");
        let cs = fx.only(&["m"]);
        fs::remove_file(fx.lo("m")).unwrap();
        let report = commit(&fx.lower, &fx.upper, &cs, started(), false).unwrap();
        assert_eq!(report.conflicts.len(), 1);
        assert!(report.conflicts[0].why.contains("deleted on the host"));
    }

    // --- symlink attacks -------------------------------------------------

    #[test]
    fn a_sandbox_link_is_never_written_through() {
        let fx = Fx::new("attack1");
        let outside = fx.root.join("outside");
        write(&outside.join("passwd"), "root:x:0:0");
        // The upper layer has `a -> outside` and, from a stale or forged
        // review, a file `a/passwd`.
        symlink(&outside, fx.up("a")).unwrap();
        let mut cs = fx.changes();
        assert_eq!(summary(&cs), ["A a"]);
        cs.push(Change {
            size: Some(4),
            ..change(Path::new("a/passwd"), Kind::Added, FileType::File)
        });
        let report = commit(&fx.lower, &fx.upper, &cs, started(), false).unwrap();
        assert_eq!(summary(&report.applied), ["A a"]);
        assert_eq!(report.skipped.len(), 1);
        assert!(
            report.skipped[0].why.contains("symlink"),
            "{:?}",
            report.skipped
        );
        assert_eq!(read(&outside.join("passwd")), "root:x:0:0");
        // The link itself was committed as a link.
        assert_eq!(fs::read_link(fx.lo("a")).unwrap(), outside);
    }

    #[test]
    fn a_link_in_the_upper_layer_is_never_read_through() {
        let fx = Fx::new("attack-read");
        let secrets = fx.root.join("secrets");
        write(&secrets.join("id_rsa"), "PRIVATE");
        mkdir(&fx.lo("d"));
        // The upper `d` is a link to a directory of secrets; a forged
        // review asks for `d/id_rsa` to be copied into the host tree.
        symlink(&secrets, fx.up("d")).unwrap();
        let forged = [Change {
            size: Some(7),
            ..change(Path::new("d/id_rsa"), Kind::Added, FileType::File)
        }];
        let report = commit(&fx.lower, &fx.upper, &forged, started(), false).unwrap();
        assert!(report.applied.is_empty());
        assert!(
            report.skipped[0].why.contains("symlink"),
            "{:?}",
            report.skipped
        );
        assert!(!fx.lo("d/id_rsa").exists());
        let e = patch(&fx.lower, &fx.upper, &forged[0]).unwrap_err();
        assert!(e.to_string().contains("ELOOP"), "{e}");
    }

    #[test]
    fn a_host_symlink_on_the_path_is_replaced_or_refused_never_followed() {
        let fx = Fx::new("attack2");
        let elsewhere = fx.root.join("elsewhere");
        mkdir(&elsewhere);
        symlink(&elsewhere, fx.lo("dir")).unwrap();
        // The sandbox replaced the link with a real directory: the commit
        // replaces the host's link the same way.
        opaque(&fx.up("dir"));
        write(&fx.up("dir/x"), "x");
        let cs = fx.changes();
        assert_eq!(summary(&cs), ["M dir (was symlink)", "A dir/x"]);
        // Without the replacement (a partial or forged list), dir/x alone
        // must be refused: the host's dir is still a link.
        let report = commit(&fx.lower, &fx.upper, &cs[1..], started(), false).unwrap();
        assert!(report.applied.is_empty());
        assert!(
            report.skipped[0].why.contains("is a symlink"),
            "{:?}",
            report.skipped
        );
        assert!(snapshot(&elsewhere).is_empty());
        let report = commit(&fx.lower, &fx.upper, &cs, started(), false).unwrap();
        assert_eq!(report.applied.len(), 2, "{:?}", report.skipped);
        assert!(fs::symlink_metadata(fx.lo("dir")).unwrap().is_dir());
        assert_eq!(read(&fx.lo("dir/x")), "x");
        assert!(snapshot(&elsewhere).is_empty());
    }

    #[test]
    fn a_deletion_below_a_host_symlink_is_refused() {
        let fx = Fx::new("attack3");
        let elsewhere = fx.root.join("elsewhere");
        write(&elsewhere.join("precious"), "p");
        symlink(&elsewhere, fx.lo("link")).unwrap();
        let forged = [change(
            Path::new("link/precious"),
            Kind::Deleted,
            FileType::File,
        )];
        let report = commit(&fx.lower, &fx.upper, &forged, started(), false).unwrap();
        assert!(report.applied.is_empty());
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(read(&elsewhere.join("precious")), "p");
        // Deleting the link itself removes the link, not its target.
        whiteout(&fx.up("link"));
        let report = fx.commit(started(), false);
        assert_eq!(summary(&report.applied), ["D link"]);
        assert!(fs::symlink_metadata(fx.lo("link")).is_err());
        assert_eq!(read(&elsewhere.join("precious")), "p");
    }

    #[test]
    fn a_host_directory_is_removed_without_following_links_inside() {
        let fx = Fx::new("attack4");
        let elsewhere = fx.root.join("elsewhere");
        write(&elsewhere.join("precious"), "p");
        write(&fx.lo("d/f"), "f");
        symlink(&elsewhere, fx.lo("d/link")).unwrap();
        whiteout(&fx.up("d"));
        // Only the directory itself, not its listed entries: the recursive
        // removal must still take the link, not what it points to.
        let cs = fx.only(&["d"]);
        let report = commit(&fx.lower, &fx.upper, &cs[..1], started(), false).unwrap();
        assert_eq!(summary(&report.applied), ["D d"]);
        assert!(!fx.lo("d").exists());
        assert_eq!(read(&elsewhere.join("precious")), "p");
    }
}

//! Dropping the sandbox's changes from the upper layer.

use std::fs::{File, FileTimes};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use super::super::tree::{self, Meta, Tree};
use super::{
    FileType, ReviewError, fail, fuse_whiteout, hidden_below_ancestor, normal_all, open_both,
    remove_upper,
};
use crate::error::Step;

/// Drop the sandbox's changes at `only` (everything when empty), so the
/// sandbox sees the host again: upper entries, whiteouts and opaque
/// markers are removed. Below an opaque directory, removing the upper entry
/// would hide the host's instead, so the host's is copied into the upper
/// layer. The number of upper entries removed.
///
/// Takes `lower` for that copy. A path below a directory the sandbox
/// deleted or replaced cannot be brought back alone: that is an error
/// naming the directory to discard instead.
pub fn discard(lower: &Path, upper: &Path, only: &[PathBuf]) -> Result<usize, ReviewError> {
    let (host, up) = open_both(lower, upper)?;
    let root = Path::new("");
    if only.is_empty() {
        let dir = up
            .open_dir(root)
            .map_err(fail(Step::OpenUpper, up.show(root)))?;
        let mut count = 0;
        for name in tree::list(&dir).map_err(fail(Step::List, up.show(root)))? {
            count += tree::remove_tree(dir.as_fd(), &name).map_err(|(p, e)| ReviewError::Io {
                step: Step::Remove,
                path: up.show(root).join(p),
                errno: e,
            })?;
        }
        return Ok(count);
    }
    let mut paths = normal_all(only)?;
    paths.sort();
    paths.dedup();
    // All checked before anything is removed: an error leaves the layer as
    // it was.
    for rel in &paths {
        if let Some(a) = deleted_ancestor(&up, rel) {
            return Err(ReviewError::Path {
                path: rel.clone(),
                why: format!(
                    "inside {}, which the sandbox deleted or replaced; discard {} instead",
                    a.display(),
                    a.display()
                ),
            });
        }
    }
    let mut done: Vec<&Path> = Vec::new();
    let mut count = 0;
    for rel in &paths {
        if done.iter().any(|d| rel.starts_with(d)) {
            continue;
        }
        let hidden = hidden_below_ancestor(&up, rel)?;
        count += remove_upper(&up, rel)?;
        if hidden {
            restore(&host, &up, rel)?;
        }
        done.push(rel);
    }
    Ok(count)
}

/// The upper entry above `rel` that is not a directory (a whiteout or a
/// file replacing a host directory), if any.
fn deleted_ancestor(up: &Tree, rel: &Path) -> Option<PathBuf> {
    let parent = rel.parent()?;
    let mut sofar = PathBuf::new();
    for name in parent.iter() {
        sofar.push(name);
        match up.lookup(&sofar) {
            Ok(Some(m)) if m.is_dir() => {}
            Ok(Some(_)) => return Some(sofar),
            _ => {
                return matches!(up.lookup(&fuse_whiteout(&sofar)), Ok(Some(_))).then_some(sofar);
            }
        }
    }
    None
}

/// Copy the host's `rel` into the upper layer (below an opaque directory,
/// which hides the host's own). Missing upper parents are created like the
/// host's.
fn restore(host: &Tree, up: &Tree, rel: &Path) -> Result<(), ReviewError> {
    let Some(hm) = host.lookup(rel).ok().flatten() else {
        return Ok(());
    };
    let (parent_rel, _) = tree::split(rel);
    let mut fd = up
        .open_at(Path::new(""), OFlags::PATH | OFlags::DIRECTORY)
        .map_err(fail(Step::OpenUpper, up.show(Path::new(""))))?;
    let mut sofar = PathBuf::new();
    for name in parent_rel.iter() {
        sofar.push(name);
        match tree::open_beneath(
            fd.as_fd(),
            Path::new(name),
            OFlags::PATH | OFlags::DIRECTORY,
        ) {
            Ok(next) => fd = next,
            Err(Errno::NOENT) => {
                let mode = host.lookup(&sofar).ok().flatten().map_or(0o755, |m| m.mode);
                rfs::mkdirat(fd.as_fd(), name, Mode::from_raw_mode(0o700))
                    .map_err(fail(Step::CreateTheDir, up.show(&sofar)))?;
                fd = tree::open_beneath(
                    fd.as_fd(),
                    Path::new(name),
                    OFlags::PATH | OFlags::DIRECTORY,
                )
                .map_err(fail(Step::Open, up.show(&sofar)))?;
                // The host's exact mode, not the umask's: anything else
                // would show as a change.
                tree::chmod_fd(&fd, mode).map_err(fail(Step::ChangeMode, up.show(&sofar)))?;
            }
            Err(e) => return Err(fail(Step::Open, up.show(&sofar))(e)),
        }
    }
    copy_entry(host, up, fd.as_fd(), rel, &hm)
}

/// Copy one host entry (recursively for a directory) into the upper
/// directory `dst`. Devices, fifos and sockets are left out.
fn copy_entry(
    host: &Tree,
    up: &Tree,
    dst: BorrowedFd<'_>,
    rel: &Path,
    m: &Meta,
) -> Result<(), ReviewError> {
    let name = tree::split(rel).1;
    match FileType::of(m.kind) {
        FileType::File => {
            let mut src =
                tree::open_file(host.fd(), rel).map_err(fail(Step::Open, host.show(rel)))?;
            let fd = rfs::openat(
                dst,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(fail(Step::Create, up.show(rel)))?;
            let mut f = File::from(fd);
            let io =
                |step: Step| move |e: std::io::Error| fail(step, up.show(rel))(tree::io_errno(&e));
            std::io::copy(&mut src, &mut f).map_err(io(Step::Write))?;
            f.set_permissions(std::fs::Permissions::from_mode(m.mode))
                .map_err(io(Step::SetMode))?;
            f.set_times(FileTimes::new().set_accessed(m.atime).set_modified(m.mtime))
                .map_err(io(Step::SetTimes))?;
        }
        FileType::Symlink => {
            let (parent, _) = tree::split(rel);
            let hdir = host
                .open_at(parent, OFlags::PATH | OFlags::DIRECTORY)
                .map_err(fail(Step::Open, host.show(parent)))?;
            let target = tree::read_link(hdir.as_fd(), name)
                .map_err(fail(Step::ReadLink, host.show(rel)))?;
            rfs::symlinkat(&target, dst, name)
                .map_err(fail(Step::CreateTheSymlink, up.show(rel)))?;
        }
        FileType::Dir => {
            rfs::mkdirat(dst, name, Mode::from_raw_mode(0o700))
                .map_err(fail(Step::CreateTheDir, up.show(rel)))?;
            let sub = tree::open_beneath(dst, Path::new(name), OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(fail(Step::Open, up.show(rel)))?;
            let hdir = host
                .open_dir(rel)
                .map_err(fail(Step::Open, host.show(rel)))?;
            for child in tree::list(&hdir).map_err(fail(Step::List, host.show(rel)))? {
                let path = rel.join(&child);
                if let Some(cm) = tree::stat_at(hdir.as_fd(), &child)
                    .map_err(fail(Step::Inspect, host.show(&path)))?
                {
                    copy_entry(host, up, sub.as_fd(), &path, &cm)?;
                }
            }
            File::from(sub)
                .set_permissions(std::fs::Permissions::from_mode(m.mode))
                .map_err(|e| fail(Step::SetMode, up.show(rel))(tree::io_errno(&e)))?;
        }
        FileType::Other => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::*;
    use std::path::PathBuf;

    // --- discard ---------------------------------------------------------

    #[test]
    fn discard_everything_shows_the_host_again() {
        let fx = Fx::new("discard-all");
        write(&fx.lo("f"), "host");
        write(&fx.up("f"), "sandbox");
        write(&fx.up("new/x"), "x");
        whiteout(&fx.up("gone"));
        opaque(&fx.up("op"));
        write(&fx.up("op/.wh..wh..opq"), "");
        let n = discard(&fx.lower, &fx.upper, &[]).unwrap();
        assert!(n >= 5, "{n}");
        assert!(snapshot(&fx.upper).is_empty());
        assert!(fx.changes().is_empty());
    }

    #[test]
    fn discard_one_path_removes_its_whiteout_or_copy() {
        let fx = Fx::new("discard-one");
        write(&fx.lo("gone"), "g");
        write(&fx.lo("edited"), "host");
        whiteout(&fx.up("gone"));
        fuse_whiteout_file(&fx.up("gone2"));
        write(&fx.up("edited"), "sandbox");
        write(&fx.up("other"), "o");
        discard(
            &fx.lower,
            &fx.upper,
            &[PathBuf::from("gone"), PathBuf::from("edited")],
        )
        .unwrap();
        assert_eq!(fx.summary(), ["A other"]);
        assert!(!fx.up("gone2").exists());
    }

    #[test]
    fn discard_below_an_opaque_directory_brings_back_the_host_copy() {
        let fx = Fx::new("discard-opaque");
        write(&fx.lo("d/keep"), "host keep");
        write(&fx.lo("d/sub/deleted"), "host deleted");
        write(&fx.lo("d/edit"), "host edit");
        opaque(&fx.up("d"));
        write(&fx.up("d/keep"), "host keep");
        write(&fx.up("d/edit"), "sandbox edit");
        assert_eq!(fx.summary(), ["M d/edit", "D d/sub", "D d/sub/deleted"]);
        discard(
            &fx.lower,
            &fx.upper,
            &[PathBuf::from("d/edit"), PathBuf::from("d/sub")],
        )
        .unwrap();
        assert!(fx.changes().is_empty(), "{:?}", fx.summary());
        assert_eq!(read(&fx.up("d/sub/deleted")), "host deleted");
    }

    #[test]
    fn discard_inside_a_deleted_directory_names_the_directory() {
        let fx = Fx::new("discard-deleted");
        write(&fx.lo("d/x"), "x");
        whiteout(&fx.up("d"));
        let e = discard(&fx.lower, &fx.upper, &[PathBuf::from("d/x")]).unwrap_err();
        assert!(e.to_string().contains("discard d instead"), "{e}");
    }
}

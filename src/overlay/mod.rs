//! Overlays over host directories: the review of what a sandbox wrote to
//! its upper layer ([`review`]: diff, commit, discard), on top of
//! fd-relative file operations that never follow a symlink ([`tree`]).

pub mod review;
mod tree;

use std::os::fd::AsFd;
use std::path::Path;

use crate::error::{Step, StepError};

/// Remove the directory tree at `path` (a sandbox's directory) through
/// descriptors: a layer may hold links the sandbox planted, and none is
/// followed; overlayfs's mode-000 work directories are opened up on the
/// way. Nothing there is not an error.
pub fn remove_dir_tree(path: &Path) -> Result<(), StepError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let Some(name) = path.file_name() else {
        return Err(StepError::new(
            Step::Remove,
            Some(path),
            nix::errno::Errno::EINVAL,
        ));
    };
    let dir = rustix::fs::open(
        parent,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    );
    let dir = match dir {
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        other => other
            .map_err(|e| StepError::new(Step::Open, Some(parent), crate::error::from_rustix(e)))?,
    };
    tree::remove_tree(dir.as_fd(), name)
        .map(|_| ())
        .map_err(|(p, e)| {
            StepError::new(
                Step::Remove,
                Some(&parent.join(p)),
                crate::error::from_rustix(e),
            )
        })
}

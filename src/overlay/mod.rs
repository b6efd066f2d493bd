//! Overlays over host directories: the review of what a sandbox wrote to
//! its upper layer ([`review`]: diff, commit, discard), on top of
//! fd-relative file operations that never follow a symlink ([`tree`]).

pub mod review;
mod tree;

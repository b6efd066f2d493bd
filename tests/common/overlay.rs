//! For the tests of overlays and their review: each test keeps its
//! sandboxes in its own work directory (tests run side by side under one
//! HOME), and runs with each overlay driver.

use std::path::Path;

use super::{Cmd, TestEnv, require, which};

/// The overlay drivers a test runs with.
pub const DRIVERS: [&str; 2] = ["native", "fuse"];

/// The XDG_DATA_HOME of this test's sandboxes.
pub fn data(env: &TestEnv) -> String {
    env.path("data").display().to_string()
}

/// `nook run ARGS` with this test's sandboxes.
pub fn run<'a>(env: &'a TestEnv, args: &[&str]) -> Cmd<'a> {
    env.run(args).env("XDG_DATA_HOME", &data(env))
}

/// `nook ARGS` with this test's sandboxes.
pub fn nook<'a>(env: &'a TestEnv, args: &[&str]) -> Cmd<'a> {
    env.nook(args).env("XDG_DATA_HOME", &data(env))
}

/// Whether the fuse driver can run here (fails loudly in CI when not).
pub fn fuse_ready() -> bool {
    require(
        which("fuse-overlayfs") && Path::new("/dev/fuse").exists(),
        "fuse-overlayfs and /dev/fuse are needed for the fuse driver: run .ci/setup",
    )
}

//! Where a kept overlay's layers live in its sandbox's directory:
//! `DIR/layers/KEY/{upper,work}`, KEY derived from the overlay's host
//! directory and its place in the sandbox. The plan names them; `state`
//! makes and records them.

use std::path::{Path, PathBuf};

/// A stable directory name for one overlay: FNV-1a of lower and dst.
pub fn layer_key(lower: &Path, dst: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in lower
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .chain(&[0u8])
        .chain(dst.as_os_str().as_encoded_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub fn upper(dir: &Path, key: &str) -> PathBuf {
    dir.join("layers").join(key).join("upper")
}

pub fn work(dir: &Path, key: &str) -> PathBuf {
    dir.join("layers").join(key).join("work")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        let a = layer_key(Path::new("/home/u/p"), Path::new("/home/u/p"));
        assert_eq!(a, layer_key(Path::new("/home/u/p"), Path::new("/home/u/p")));
        assert_ne!(a, layer_key(Path::new("/home/u/p"), Path::new("/w")));
        assert_eq!(a.len(), 16);
    }
}

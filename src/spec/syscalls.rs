//! System call names and numbers of the architecture nook is built for,
//! for profiles and policies that name calls. The tables are the
//! `syscalls` crate's, generated from the kernel's own per-architecture
//! tables (`syscall_64.tbl` on x86-64, the generic `unistd.h` on aarch64);
//! the architecture is chosen at compile time, like the seccomp filter's
//! (`seccomp::ARCH`).

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("nook's seccomp filter is written for x86_64 and aarch64 only");

/// The architecture's name as people write it, for messages.
#[cfg(target_arch = "x86_64")]
pub const ARCH_NAME: &str = "x86-64";
/// The architecture's name as people write it, for messages.
#[cfg(target_arch = "aarch64")]
pub const ARCH_NAME: &str = "aarch64";

/// The number of the system call `name` on this architecture (64-bit ABI:
/// not x32 on x86-64, not arm32 compat on aarch64), or `None` when the
/// architecture has no such call (aarch64 has no `open`, `fork` or `iopl`).
pub fn number(name: &str) -> Option<i64> {
    #[cfg(target_arch = "x86_64")]
    let nr = number_x86_64(name);
    #[cfg(target_arch = "aarch64")]
    let nr = number_aarch64(name);
    nr
}

/// The name of call number `nr` on this architecture (as the kernel's
/// table spells it).
pub fn name(nr: i64) -> Option<&'static str> {
    let nr = usize::try_from(nr).ok()?;
    #[cfg(target_arch = "x86_64")]
    let sysno = syscalls::x86_64::Sysno::new(nr)?;
    #[cfg(target_arch = "aarch64")]
    let sysno = syscalls::aarch64::Sysno::new(nr)?;
    let n = sysno.name();
    #[cfg(target_arch = "aarch64")]
    let n = if n == "fstatat" { "newfstatat" } else { n };
    Some(n)
}

/// x86-64's table, as the crate has it.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn number_x86_64(name: &str) -> Option<i64> {
    let sysno: syscalls::x86_64::Sysno = name.parse().ok()?;
    Some(i64::from(sysno.id()))
}

/// aarch64's table, with two corrections to the crate's: the kernel (and
/// strace, libseccomp) call number 79 `newfstatat`, which the crate spells
/// `fstatat` (both are accepted); and the crate also lists the time64
/// calls 403-423, which the kernel defines only for 32-bit ABIs (on arm64
/// they answer ENOSYS), so they are not names of aarch64 calls here.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub(crate) fn number_aarch64(name: &str) -> Option<i64> {
    let name = if name == "newfstatat" {
        "fstatat"
    } else {
        name
    };
    let sysno: syscalls::aarch64::Sysno = name.parse().ok()?;
    let nr = i64::from(sysno.id());
    (!(403..=423).contains(&nr)).then_some(nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_on_the_build_architecture() {
        assert_eq!(number("read"), Some(libc::SYS_read));
        assert_eq!(number("openat"), Some(libc::SYS_openat));
        assert_eq!(number("keyctl"), Some(libc::SYS_keyctl));
        assert_eq!(number("clone3"), Some(libc::SYS_clone3));
        assert_eq!(number("no_such_call"), None);
        assert_eq!(number(""), None);
    }

    #[test]
    fn both_tables_are_there() {
        // The same name has different numbers: each table really is its
        // architecture's, not x86-64's relabelled.
        assert_eq!(number_x86_64("openat"), Some(257));
        assert_eq!(number_aarch64("openat"), Some(56));
        assert_eq!(number_x86_64("open_tree_attr"), Some(467));
        assert_eq!(number_aarch64("open_tree_attr"), Some(467));
        assert_eq!(number_x86_64("iopl"), Some(172));
        assert_eq!(number_aarch64("iopl"), None);
        assert_eq!(number_x86_64("newfstatat"), Some(262));
        assert_eq!(number_aarch64("newfstatat"), Some(79));
        assert_eq!(number_aarch64("fstatat"), Some(79));
        assert_eq!(number_aarch64("clock_gettime"), Some(113));
        assert_eq!(number_aarch64("clock_gettime64"), None);
        assert_eq!(number_aarch64("pidfd_send_signal"), Some(424));
    }
}

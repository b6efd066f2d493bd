//! Where nook itself runs: in the host's own namespaces, or nested in
//! another sandbox or a container, and under whose seccomp filter. Read
//! from /proc/self and the marks container engines leave, for `nook
//! doctor` and for the hint when a user namespace is refused.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Surroundings {
    /// In a user namespace other than the initial one: the uid map's
    /// lines, as `inside outside count`, joined by commas.
    pub user_ns: Option<String>,
    /// A seccomp filter is installed on nook (it is inherited by every
    /// sandbox nook makes, and can only be added to).
    pub seccomp_filter: bool,
    pub no_new_privs: bool,
    /// The container engine that left its mark, if any.
    pub container: Option<String>,
}

impl Surroundings {
    pub fn read() -> Surroundings {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let engine = if std::path::Path::new("/run/.containerenv").exists() {
            Some("podman".to_string())
        } else if std::path::Path::new("/.dockerenv").exists() {
            Some("docker".to_string())
        } else {
            std::env::var("container").ok().filter(|v| !v.is_empty())
        };
        Surroundings::from_texts(
            &read("/proc/self/status"),
            &read("/proc/self/uid_map"),
            engine,
        )
    }

    /// From /proc/self/status and /proc/self/uid_map as text.
    pub fn from_texts(status: &str, uid_map: &str, container: Option<String>) -> Surroundings {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
                .to_string()
        };
        let lines: Vec<String> = uid_map
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect();
        // The initial user namespace maps every id to itself.
        let initial = lines.len() == 1 && lines[0] == "0 0 4294967295";
        Surroundings {
            user_ns: (!initial && !lines.is_empty()).then(|| lines.join(", ")),
            seccomp_filter: field("Seccomp:") == "2",
            no_new_privs: field("NoNewPrivs:") == "1",
            container,
        }
    }

    /// Whether nook runs inside something: a user namespace, a seccomp
    /// filter or a container.
    pub fn nested(&self) -> bool {
        self.user_ns.is_some() || self.seccomp_filter || self.container.is_some()
    }

    /// One line: where nook runs.
    pub fn describe(&self) -> String {
        if !self.nested() {
            return "in the host's own user namespace, under no seccomp filter".into();
        }
        let mut parts = Vec::new();
        if let Some(c) = &self.container {
            parts.push(format!("in a {c} container"));
        }
        match &self.user_ns {
            Some(map) => parts.push(format!("in a user namespace (uid map {map})")),
            None => parts.push("in the host's own user namespace".into()),
        }
        if self.seccomp_filter {
            parts.push("under a seccomp filter it inherited".into());
        }
        parts.join(", ")
    }
}

/// What to do when a user namespace can't be made: read from the
/// sysctls that restrict it and from where nook runs.
pub fn userns_hint(e: nix::errno::Errno, around: &Surroundings) -> String {
    userns_hint_from(e, around, |p| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    })
}

pub(crate) fn userns_hint_from(
    e: nix::errno::Errno,
    around: &Surroundings,
    read: impl Fn(&str) -> Option<String>,
) -> String {
    use nix::errno::Errno;
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return "unprivileged user namespaces are disabled; enable them with 'sysctl kernel.unprivileged_userns_clone=1'".into();
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return "AppArmor restricts unprivileged user namespaces; allow them with 'sysctl kernel.apparmor_restrict_unprivileged_userns=0' or an AppArmor profile granting 'userns' to nook".into();
    }
    let outer = "start the outer sandbox with nested user namespaces allowed (nook: --allow-userns; bubblewrap: without --disable-userns)";
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        if around.user_ns.is_some() {
            return format!(
                "the sandbox or container nook runs in forbids nested user namespaces; {outer}"
            );
        }
        return "user namespaces are disabled; raise 'sysctl user.max_user_namespaces' above 0"
            .into();
    }
    if e == Errno::ENOSPC {
        return "the limit on user namespaces is reached; raise 'sysctl user.max_user_namespaces'"
            .into();
    }
    // A filter answers EPERM (Docker's profile) or ENOSYS (podman's
    // default errno); a kernel without user namespaces answers EINVAL.
    if matches!(e, Errno::EPERM | Errno::ENOSYS) && around.seccomp_filter {
        return format!(
            "a seccomp filter nook inherited refuses user namespaces; {outer}; for podman or docker: --security-opt seccomp=unconfined, or a profile that allows clone and unshare with CLONE_NEWUSER"
        );
    }
    if e == Errno::EPERM {
        return "user namespaces are refused here (in a chroot, or by a security module)".into();
    }
    "the kernel may lack CONFIG_USER_NS".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    const HOST_MAP: &str = "         0          0 4294967295\n";

    #[test]
    fn surroundings_from_proc() {
        let status = "Name:\tnook\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n";
        let host = Surroundings::from_texts(status, HOST_MAP, None);
        assert!(!host.nested(), "{host:?}");
        let status = "NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        let inner = Surroundings::from_texts(status, "      1001       1001          1\n", None);
        assert_eq!(inner.user_ns.as_deref(), Some("1001 1001 1"));
        assert!(inner.seccomp_filter && inner.no_new_privs);
        assert_eq!(
            inner.describe(),
            "in a user namespace (uid map 1001 1001 1), under a seccomp filter it inherited"
        );
        let podman = Surroundings::from_texts(
            "Seccomp:\t2\n",
            "0 1001 1\n1 200000 65536\n",
            Some("podman".into()),
        );
        assert!(podman.describe().starts_with(
            "in a podman container, in a user namespace (uid map 0 1001 1, 1 200000 65536)"
        ));
    }

    #[test]
    fn userns_hints_name_the_setting() {
        let with = |key: &'static str, val: &'static str| {
            move |p: &str| (p.ends_with(key)).then(|| val.to_string())
        };
        let host = Surroundings::default();
        assert!(
            userns_hint_from(Errno::EPERM, &host, with("unprivileged_userns_clone", "0"))
                .contains("sysctl kernel.unprivileged_userns_clone=1")
        );
        assert!(
            userns_hint_from(
                Errno::EACCES,
                &host,
                with("apparmor_restrict_unprivileged_userns", "1")
            )
            .contains("kernel.apparmor_restrict_unprivileged_userns=0")
        );
        assert!(
            userns_hint_from(Errno::ENOSPC, &host, with("max_user_namespaces", "0"))
                .contains("sysctl user.max_user_namespaces")
        );
        assert!(userns_hint_from(Errno::ENOSPC, &host, |_| None).contains("limit"));
    }

    #[test]
    fn nested_refusals_name_the_outer_sandbox() {
        let inner = Surroundings {
            user_ns: Some("1001 1001 1".into()),
            seccomp_filter: true,
            ..Default::default()
        };
        let zero = |p: &str| p.ends_with("max_user_namespaces").then(|| "0".to_string());
        let h = userns_hint_from(Errno::EPERM, &inner, zero);
        assert!(
            h.contains("forbids nested user namespaces") && h.contains("--allow-userns"),
            "{h}"
        );
        for e in [Errno::EPERM, Errno::ENOSYS] {
            let h = userns_hint_from(e, &inner, |_| None);
            assert!(
                h.contains("seccomp filter") && h.contains("seccomp=unconfined"),
                "{h}"
            );
        }
        let h = userns_hint_from(Errno::EPERM, &Surroundings::default(), |_| None);
        assert!(h.contains("chroot"), "{h}");
    }
}

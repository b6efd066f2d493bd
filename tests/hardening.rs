//! Hardening every sandbox gets whatever its profile: each test tries the
//! attack from inside and shows it blocked, and the same attack working
//! without nook.

mod common;

use common::TestEnv;

#[test]
fn nested_user_namespaces_are_refused() {
    let env = TestEnv::new("nested-userns");
    // Outside, as the same unprivileged user, it works.
    let out = env.sh("unshare -U true && echo outside-ok").output();
    out.ok();
    assert_eq!(out.stdout, "outside-ok\n", "{out}");
    let attempt = "unshare -U true; echo rc=$?; echo 100 > /proc/sys/user/max_user_namespaces; cat /proc/sys/user/max_user_namespaces";
    // Inside, seccomp refuses the namespace flags...
    let out = env.run(&["--", "sh", "-c", attempt]).output();
    out.ok();
    assert_eq!(out.stdout, "rc=1\n0\n", "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    // ...and without the filter, the limit of zero nested namespaces still
    // does, and it can't be raised again.
    let out = env
        .run(&["--seccomp", "off", "--", "sh", "-c", attempt])
        .output();
    out.ok();
    assert_eq!(out.stdout, "rc=1\n0\n", "{out}");
    assert!(out.stderr.contains("No space left on device"), "{out}");
    // A profile that allows them (as browsers need) gets them.
    let out = env
        .run(&[
            "--allow-userns",
            "--",
            "sh",
            "-c",
            "unshare -U true; echo rc=$?",
        ])
        .output();
    out.ok();
    assert_eq!(out.stdout, "rc=0\n", "{out}");
    // --uid 0 changes nothing: no capabilities either way.
    let out = env
        .run(&["--uid", "0", "--", "unshare", "-Ur", "true"])
        .output();
    out.expect_code(1);
}

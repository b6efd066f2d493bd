//! The cgroup v2 test VM itself (tests/vm/run.sh, tests/common/vm.rs): it
//! must give the test user exactly the delegation nook's cgroup tests rely
//! on, and run the binary under test. One boot per setup.
//!
//! This host's cgroup v2 hierarchy has no controllers (cgroup v1 holds
//! them), so these run in a QEMU microVM; the host's cgroups, mounts and
//! network are never touched.

mod common;

use common::NOOK;
use common::vm::{require_vm, run_in_vm, vm_field};

/// The value of `key=` in the script's output; fails the test if missing.
#[track_caller]
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    vm_field(out, key).unwrap_or_else(|| panic!("no `{key}=` line in the VM's output:\n{out}"))
}

/// Check each `(key, expected value, what it proves)` against the output.
#[track_caller]
fn expect_all(out: &str, checks: &[(&str, &str, &str)]) {
    for (key, want, why) in checks {
        assert_eq!(
            field(out, key),
            *want,
            "{why} ({key}=)\n--- VM output ---\n{out}"
        );
    }
}

#[test]
fn vm_delegates_a_cgroup_subtree() {
    if !require_vm() {
        return;
    }
    let script = r#"
cg=/sys/fs/cgroup/user.slice/u1001
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "cgroup=$(cat /proc/self/cgroup)"
echo "home=$HOME $(stat -c '%u %a' "$HOME") entries:$(ls -A "$HOME" | wc -l)"
echo "root_opts=$(awk '$5 == "/" { split($6, o, ","); print o[1] }' /proc/self/mountinfo)"
for d in /tmp /var/tmp /run /dev/shm; do
    echo "fstype_$d=$(awk -v d="$d" '$5 == d { for (i = 7; i < NF; i++) if ($i == "-") print $(i + 1) }' /proc/self/mountinfo)"
done
echo "tmp_writable=$(touch /tmp/x /var/tmp/x /dev/shm/x "$HOME/x" && echo yes)"
echo "userns=$(unshare -Ur cat /proc/self/uid_map | awk '{ print $1, $2, $3 }')"
echo "devices=$(stat -c '%a' /dev/net/tun /dev/fuse | tr '\n' ' ')"
echo "lo=$(cat /sys/class/net/lo/operstate)"

# The delegation root: the user's directory and delegatable files, root's limits.
echo "delegated_owner=$(stat -c %u $cg $cg/cgroup.procs $cg/cgroup.subtree_control | tr '\n' ' ')"
echo "limits_owner=$(stat -c %u $cg/memory.max $cg/pids.max | tr '\n' ' ')"
echo "subtree_control=$(cat $cg/cgroup.subtree_control)"

# A sibling cgroup of its own, limited, with a process moved in and killed.
mkdir $cg/probe && echo "mkdir=ok"
echo 50M > $cg/probe/memory.max && echo "set_memory_max=ok"
echo "memory_max=$(cat $cg/probe/memory.max)"
sleep 1000 &
pid=$!
echo $pid > $cg/probe/cgroup.procs && echo "move=ok"
echo "moved=$([ "$(cat $cg/probe/cgroup.procs)" = "$pid" ] && echo yes)"
echo 1 > $cg/probe/cgroup.kill && echo "kill=ok"
wait $pid
echo "sleep_status=$?"
echo "populated=$(grep populated $cg/probe/cgroup.events)"
rmdir $cg/probe && echo "rmdir=ok"

# Its own limits are not its to change.
if (echo 100M > $cg/memory.max) 2>/dev/null; then
    echo "own_memory_max=written"
else
    echo "own_memory_max=refused"
fi
echo "own_memory_max_after=$(cat $cg/memory.max)"

# The host-built (static) binary under test runs here.
echo "nook_version=$("$NOOK" --version)"
"#;
    let (code, out) = run_in_vm(script, false);
    assert_eq!(code, 0, "the VM script failed\n{out}");
    expect_all(
        &out,
        &[
            ("uid", "1001", "runs as the test user"),
            ("gid", "1001", "runs as the test user's group"),
            (
                "cgroup",
                "0::/user.slice/u1001/test",
                "starts in a leaf below the delegation root",
            ),
            (
                "home",
                "/home/nooktest 1001 700 entries:0",
                "HOME is an empty directory of the user's",
            ),
            ("root_opts", "ro", "the host's root is read-only"),
            ("fstype_/tmp", "tmpfs", "scratch is tmpfs"),
            ("fstype_/var/tmp", "tmpfs", "scratch is tmpfs"),
            ("fstype_/run", "tmpfs", "scratch is tmpfs"),
            ("fstype_/dev/shm", "tmpfs", "scratch is tmpfs"),
            ("tmp_writable", "yes", "scratch directories are writable"),
            ("userns", "0 1001 1", "unprivileged user namespaces work"),
            (
                "devices",
                "666 666",
                "/dev/net/tun and /dev/fuse are usable",
            ),
            ("lo", "unknown", "lo is up (a loopback reports `unknown`)"),
            (
                "delegated_owner",
                "1001 1001 1001",
                "the directory, cgroup.procs and cgroup.subtree_control are delegated",
            ),
            (
                "limits_owner",
                "0 0",
                "the subtree's own limits stay root's",
            ),
            (
                "subtree_control",
                "cpu io memory pids",
                "controllers are enabled for the user's cgroups",
            ),
            ("mkdir", "ok", "the user can make a sibling cgroup"),
            ("set_memory_max", "ok", "and limit it"),
            ("memory_max", "52428800", "memory.max reads back 50M"),
            ("move", "ok", "and move a process into it"),
            ("moved", "yes", "the process is listed there"),
            ("kill", "ok", "and kill it with cgroup.kill"),
            ("sleep_status", "137", "the sleep died of SIGKILL"),
            ("populated", "populated 0", "the cgroup is empty"),
            ("rmdir", "ok", "and remove it"),
            (
                "own_memory_max",
                "refused",
                "the user cannot raise the delegation root's limit",
            ),
            ("own_memory_max_after", "max", "the limit is unchanged"),
        ],
    );
    assert!(
        field(&out, "nook_version").starts_with("nook "),
        "the host-built nook binary ({NOOK}) runs in the VM\n{out}"
    );
}

#[test]
fn vm_systemd_user_scope_delegates() {
    if !require_vm() {
        return;
    }
    let script = r#"
echo "uid=$(id -u)"
echo "cgroup=$(cat /proc/self/cgroup)"
echo "xdg=$XDG_RUNTIME_DIR $(stat -c '%u %a' "$XDG_RUNTIME_DIR")"
echo "private_socket=$([ -S "$XDG_RUNTIME_DIR/systemd/private" ] && echo yes)"

# The session's cgroup is not the user's: no child cgroups, no limits.
session=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)
echo "session_owner=$(stat -c %u "$session")"
if mkdir "$session/x" 2>/dev/null; then echo "session_mkdir=allowed"; else echo "session_mkdir=refused"; fi
if (echo 50M > "$session/memory.max") 2>/dev/null; then echo "session_limit=allowed"; else echo "session_limit=refused"; fi

# The user manager hands out a delegated scope.
systemd-run --user --scope -p Delegate=yes --quiet -- sh -c '
    cg=$(cut -d: -f3 /proc/self/cgroup)
    echo "scope=$cg"
    echo "scope_owner=$(stat -c %u /sys/fs/cgroup$cg /sys/fs/cgroup$cg/cgroup.procs /sys/fs/cgroup$cg/cgroup.subtree_control | tr "\n" " ")"
    echo "scope_controllers=$(cat /sys/fs/cgroup$cg/cgroup.controllers)"
    ls -ld /sys/fs/cgroup$cg
    # What nook has to do there: leave the scope root for a leaf (no
    # processes in a cgroup that enables controllers), enable them, and
    # limit a sibling leaf.
    s=/sys/fs/cgroup$cg
    mkdir $s/self && echo $$ > $s/self/cgroup.procs &&
        echo "+memory +pids" > $s/cgroup.subtree_control &&
        mkdir $s/limited && echo 50M > $s/limited/memory.max &&
        echo "scope_child_memory_max=$(cat $s/limited/memory.max)"
'
echo "systemd_run=$?"
"#;
    let (code, out) = run_in_vm(script, true);
    assert_eq!(code, 0, "the VM script failed\n{out}");
    expect_all(
        &out,
        &[
            ("uid", "1001", "runs as the test user"),
            (
                "cgroup",
                "0::/user.slice/user-1001.slice/session-1.scope",
                "starts in the login session's scope",
            ),
            (
                "xdg",
                "/run/user/1001 1001 700",
                "XDG_RUNTIME_DIR is the user's",
            ),
            ("private_socket", "yes", "the user manager is up"),
            ("session_owner", "0", "the session scope is root's"),
            (
                "session_mkdir",
                "refused",
                "the session scope is not delegated",
            ),
            (
                "session_limit",
                "refused",
                "the session scope is not delegated",
            ),
            ("systemd_run", "0", "systemd-run --user --scope works"),
            (
                "scope_owner",
                "1001 1001 1001",
                "the scope is delegated to the user",
            ),
            (
                "scope_child_memory_max",
                "52428800",
                "the user can enable controllers in the scope and limit a child",
            ),
        ],
    );
    let scope = field(&out, "scope");
    assert!(
        scope.starts_with("/user.slice/user-1001.slice/user@1001.service/")
            && scope.ends_with(".scope"),
        "the scope is under the user manager\n{out}"
    );
    let controllers: Vec<&str> = field(&out, "scope_controllers").split(' ').collect();
    for c in ["memory", "pids"] {
        assert!(
            controllers.contains(&c),
            "the scope has the {c} controller\n{out}"
        );
    }
}

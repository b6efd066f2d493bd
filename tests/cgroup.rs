//! Delegated cgroup v2 limits through the real binary, as uid 1001, in the
//! test microVM (tests/vm/run.sh): this host's cgroup v2 has no
//! controllers and its cgroups are never touched. One VM boot per setup;
//! each script prints `key=value` lines the test checks.

mod common;

use common::vm::{require_vm, run_in_vm, vm_field};

#[track_caller]
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    vm_field(out, key).unwrap_or_else(|| panic!("no `{key}=` line in the VM's output:\n{out}"))
}

fn json_field(out: &str, key: &str, name: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(field(out, key))
        .unwrap_or_else(|e| panic!("{key}= is not JSON ({e}):\n{out}"));
    v[name]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}: no number {name}:\n{out}"))
}

/// In the plain setup nook runs in a leaf below a delegated cgroup, so it
/// makes its sandbox's leaf beside its own.
const PLAIN: &str = r#"
cg=/sys/fs/cgroup/user.slice/u1001
# A memory hog: tail buffers /dev/zero (no newline) without end.
$NOOK run --memory 50m -- tail /dev/zero 2>err.txt; echo "oom_status=$?"
echo "oom_said=$(grep -c "nook: killed: out of memory, limit 50 MiB" err.txt)"

# A fork bomb under --pids 20, stopped by the timeout; the machine answers.
$NOOK run --trace --pids 20 --timeout 4s --stats=json -- sh -c 'b() { b | b & }; b; exec sleep 100' 2>bomb.txt
echo "bomb_status=$?"
# The traced run kept the limit it hit, and `nook why` names it.
echo "bomb_why=$($NOOK why 2>&1 | grep -c 'limit pids: the run hit --pids 20')"
# The bomb's shells write their fork errors to the same stderr, and one
# killed mid-message leaves a partial line before the stats: keep the JSON.
echo "bomb_stats=$(tail -n1 bomb.txt | sed 's/^[^{]*//')"
echo "responsive=$(echo alive)"

# Half a core for a busy loop.
$NOOK run --cpus 0.5 --timeout 3s --stats=json -- sh -c 'while :; do :; done' 2>cpu.txt
echo "cpu_status=$?"
echo "cpu_stats=$(tail -n1 cpu.txt)"

# Stats against what the kernel counted: 30 MiB in /dev/shm is charged
# to the sandbox's memory cgroup.
$NOOK run --memory 200m --stats=json -- sh -c 'dd if=/dev/zero of=/dev/shm/x bs=1M count=30 2>/dev/null' 2>mem.txt
echo "mem_status=$?"
echo "mem_stats=$(tail -n1 mem.txt)"

# Teardown: a daemonized child and everything else go with the sandbox,
# and its leaf is removed.
$NOOK run --pids 50 -- sh -c 'setsid sleep 1000 & echo started'
echo "sleepers=$(pgrep -c -x sleep || true)"
echo "leaves=$(ls -d $cg/nook-* 2>/dev/null | wc -l)"
echo "own_cgroup=$(cat /proc/self/cgroup)"

# The other settings land in the leaf's files (io.max needs a block
# device, which the VM has none of).
$NOOK run --cpu-weight 50 --io-weight 40 --memory-swap 0 --memory 64m -- sleep 5 2>weights.err &
for i in $(seq 50); do leaf=$(ls -d $cg/nook-* 2>/dev/null | head -n1); [ -n "$leaf" ] && break; sleep 0.1; done
echo "weights=$(cat $leaf/cpu.weight) $(cat $leaf/io.weight | head -n1) $(cat $leaf/memory.swap.max) $(cat $leaf/memory.max)"
wait

# nook exec joins the sandbox's cgroup too: its leaf is its cgroup root.
$NOOK run -d --name c --memory 64m -- sleep 20 >/dev/null
echo "exec_cgroup=$($NOOK exec c -- cat /proc/self/cgroup)"
echo "exec_limit_procs=$(cat $(ls -d $cg/nook-* | head -n1)/cgroup.procs | wc -l)"
$NOOK stop c --time 1

# The sandbox sees its leaf as its cgroup root.
echo "inside_cgroup=$($NOOK run --memory 64m -- cat /proc/self/cgroup)"
# No limits asked: no cgroup is made.
$NOOK run -- true; echo "plain_status=$?"
echo "doctor=$($NOOK doctor | grep 'cgroup v2' | cut -c1-8)"
"#;

#[test]
fn limits_hold_in_a_delegated_cgroup() {
    if !require_vm() {
        return;
    }
    let (code, out) = run_in_vm(PLAIN, false);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        field(&out, "oom_status"),
        "137",
        "OOM kill is 128+9:\n{out}"
    );
    assert_eq!(
        field(&out, "oom_said"),
        "1",
        "the OOM kill is reported:\n{out}"
    );

    assert_eq!(field(&out, "bomb_status"), "124", "{out}");
    assert_eq!(field(&out, "bomb_why"), "1", "{out}");
    let pids = json_field(&out, "bomb_stats", "pids_peak");
    assert!(
        (5.0..=20.0).contains(&pids),
        "pids.peak {pids} within the limit:\n{out}"
    );
    assert_eq!(field(&out, "responsive"), "alive");

    assert_eq!(field(&out, "cpu_status"), "124", "{out}");
    let cpu = json_field(&out, "cpu_stats", "cpu_seconds");
    let wall = json_field(&out, "cpu_stats", "wall_seconds");
    let share = cpu / wall;
    assert!(
        (0.35..=0.65).contains(&share),
        "--cpus 0.5 gave {share:.2} of a core ({cpu:.2} s in {wall:.2} s):\n{out}"
    );

    assert_eq!(field(&out, "mem_status"), "0", "{out}");
    let peak = json_field(&out, "mem_stats", "memory_peak_bytes");
    assert!(
        (30.0 * 1048576.0..200.0 * 1048576.0).contains(&peak),
        "memory.peak {peak} covers the 30 MiB written:\n{out}"
    );
    let src: serde_json::Value = serde_json::from_str(field(&out, "mem_stats")).unwrap();
    assert_eq!(src["source"], "cgroup", "{out}");

    assert_eq!(field(&out, "weights"), "50 default 40 0 67108864", "{out}");
    assert_eq!(field(&out, "sleepers"), "0", "nothing survives:\n{out}");
    assert_eq!(field(&out, "leaves"), "0", "the leaf is removed:\n{out}");
    assert_eq!(field(&out, "own_cgroup"), "0::/user.slice/u1001/test");
    assert_eq!(field(&out, "inside_cgroup"), "0::/", "{out}");
    assert_eq!(
        field(&out, "exec_cgroup"),
        "0::/",
        "exec joins the leaf:\n{out}"
    );
    assert_eq!(field(&out, "plain_status"), "0", "{out}");
    assert_eq!(field(&out, "doctor").trim(), "ok", "{out}");
}

/// In the systemd setup nook's cgroup is not delegated; it asks the user
/// manager for a scope (systemd-run --user --scope -p Delegate=yes).
const SYSTEMD: &str = r#"
$NOOK run --memory 50m -- tail /dev/zero 2>err.txt; echo "oom_status=$?"
echo "oom_said=$(grep -c 'out of memory, limit 50 MiB' err.txt)"
echo "inside=$($NOOK run --pids 30 -- cat /proc/self/cgroup)"
echo "stats=$($NOOK run --pids 30 --stats=json -- true 2>&1 | tail -n1)"
# Without the manager's help (as if it were not there): a clear refusal.
NOOK_IN_SYSTEMD_SCOPE=1 $NOOK run --memory 50m -- true 2>refused.txt; echo "refused_status=$?"
echo "refused=$(head -n1 refused.txt)"
echo "left=$(find /sys/fs/cgroup/user.slice -name 'nook-*' | wc -l)"
"#;

#[test]
fn limits_through_a_systemd_user_scope() {
    if !require_vm() {
        return;
    }
    let (code, out) = run_in_vm(SYSTEMD, true);
    assert_eq!(code, 0, "{out}");
    assert_eq!(field(&out, "oom_status"), "137", "{out}");
    assert_eq!(field(&out, "oom_said"), "1", "{out}");
    assert_eq!(field(&out, "inside"), "0::/", "{out}");
    let stats: serde_json::Value = serde_json::from_str(field(&out, "stats"))
        .unwrap_or_else(|e| panic!("stats not JSON ({e}):\n{out}"));
    assert_eq!(stats["source"], "cgroup", "{out}");
    assert_eq!(field(&out, "refused_status"), "125", "{out}");
    assert!(
        field(&out, "refused").contains("is not delegated to you"),
        "{out}"
    );
    assert_eq!(field(&out, "left"), "0", "no leaf left behind:\n{out}");
}

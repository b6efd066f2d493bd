#!/usr/bin/env bash
# The cost of the default seccomp filter on syscall-heavy commands, inside
# nook with the filter and with --seccomp off, side by side in one hyperfine
# run per workload, printing the ratio of the means (target: under 1.05):
#   walk: `find /usr` + `du -s /usr` (getdents64, newfstatat: a build's shape)
#   dd:   dd copying one byte at a time (two million read/write calls, the
#         worst case: nothing but syscall entry and exit)
#
# Usage: bench/seccomp.sh            (RUNS=20 COUNT=1000000 by default)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
runs=${RUNS:-20}
count=${COUNT:-1000000}
. bench/common.sh
bench_setup seccomp

run_pair() {
    local label=$1 work_cmd=$2
    local with without json
    with="$(printf '%q ' "$nook" run -- sh -c "$work_cmd")"
    without="$(printf '%q ' "$nook" run --seccomp off -- sh -c "$work_cmd")"
    json=$work/seccomp-$label.json
    (cd "$work" && "${as_user[@]}" hyperfine -N --warmup 2 --runs "$runs" \
        --export-json "$json" -n filter "$with" -n no-filter "$without") >/dev/null
    python3 - "$json" "$label" <<'PY'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
on, off = res["filter"], res["no-filter"]
print(f"{sys.argv[2]}: filter {on['mean'] * 1e3:.1f} ms, no filter {off['mean'] * 1e3:.1f} ms, "
      f"ratio filter/no-filter (mean): {on['mean'] / off['mean']:.3f}")
PY
}

run_pair walk "find /usr >/dev/null 2>&1; du -s /usr >/dev/null 2>&1; true"
run_pair dd "dd if=/dev/zero of=/dev/null bs=1 count=$count status=none"

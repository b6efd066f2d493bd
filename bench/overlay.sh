#!/usr/bin/env bash
# Overlay cost, side by side in one hyperfine run: a metadata-heavy job
# (unpack a git checkout of 5,000 small files, stat every file, `git status`)
# in a host directory that nook shares
#   - directly (--bind: the host filesystem itself),
#   - through the native overlay (--overlay, upper layer on the same disk),
#   - through fuse-overlayfs (--overlay --overlay-driver fuse).
# Prints the ratios to the bind run; the target for native is <= 1.15.
# Then times `nook diff` of a sandbox with 10,000 changed files (target:
# under a second).
#
# As root, everything runs as the test user (nooktest, from .ci/setup).
# Usage: bench/overlay.sh     (RUNS=10 by default)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
runs=${RUNS:-10}
for tool in hyperfine git tar python3 fuse-overlayfs; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found; run .ci/setup" >&2; exit 1; }
done

. bench/common.sh
bench_setup overlay

# The job's input: a git repository of 5,000 files in 50 directories.
src=$work/src
mkdir -p "$src/repo"
python3 - "$src/repo" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(50):
    os.makedirs(f"{root}/d{d}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d}/f{f}.txt", "w") as fh:
            fh.write(f"file {d}/{f}\n" * 8)
PY
git -C "$src/repo" init -q
git -C "$src/repo" -c user.name=b -c user.email=b@b add -A
git -C "$src/repo" -c user.name=b -c user.email=b@b commit -qm init
tar -C "$src" -cf "$work/repo.tar" repo
rm -rf "$src"
mkdir "$work/area"
[ "$(id -u)" -eq 0 ] && chown -R nooktest: "$work"

area=$work/area
data=$work/data
job="rm -rf $area/w && mkdir $area/w && tar -xf $work/repo.tar -C $area/w && find $area/w -printf '%s\n' >/dev/null && git -C $area/w/repo status --porcelain | wc -l >/dev/null"
run_as() { (cd "$work" && "${as_user[@]}" env XDG_DATA_HOME="$data" "$@"); }
q() { printf '%q ' "$@"; }

bind_cmd="$(q env XDG_DATA_HOME="$data" "$nook" run --bind "$area" -- sh -c "$job")"
native_cmd="$(q env XDG_DATA_HOME="$data" "$nook" run --name bn --overlay "$area" -- sh -c "$job")"
fuse_cmd="$(q env XDG_DATA_HOME="$data" "$nook" run --name bf --overlay-driver fuse --overlay "$area" -- sh -c "$job")"
clean="$(q env XDG_DATA_HOME="$data" sh -c "$nook rm bn bf 2>/dev/null; true")"

for c in "$bind_cmd" "$native_cmd" "$fuse_cmd"; do
    run_as sh -c "$c" || { echo "bench: failed: $c" >&2; exit 1; }
done
json=$work/overlay.json
run_as hyperfine -N --warmup 1 --runs "$runs" --prepare "$clean" --export-json "$json" \
    -n bind "$bind_cmd" -n native "$native_cmd" -n fuse "$fuse_cmd" >/dev/null

# nook diff over 10,000 changed files.
run_as "$nook" run --name diffbench --overlay "$area" -- sh -c \
    "mkdir -p $area/many && cd $area/many && i=0; while [ \$i -lt 100 ]; do mkdir d\$i; j=0; while [ \$j -lt 100 ]; do echo x > d\$i/f\$j; j=\$((j+1)); done; i=\$((i+1)); done"
diff_json=$work/diff.json
run_as hyperfine -N --warmup 1 --runs 5 --export-json "$diff_json" \
    -n diff "$(q env XDG_DATA_HOME="$data" "$nook" diff diffbench)" >/dev/null
lines=$(run_as "$nook" diff diffbench | wc -l)

python3 - "$json" "$diff_json" "$lines" <<'PY'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
d = json.load(open(sys.argv[2]))["results"][0]
base = res["bind"]["mean"]
for n in ("bind", "native", "fuse"):
    r = res[n]
    print(f"{n:7} {r['mean'] * 1e3:8.1f} ms (stddev {r['stddev'] * 1e3:.1f})   ratio to bind {r['mean'] / base:.2f}")
print(f"nook diff of {sys.argv[3]} changes: {d['mean'] * 1e3:.0f} ms (stddev {d['stddev'] * 1e3:.0f})")
PY

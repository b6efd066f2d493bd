#!/usr/bin/env bash
# What protected paths cost at start: `nook run -- /bin/true` in a git
# checkout with the usual project files (.git with hooks and config,
# .vscode, .envrc, .cargo/config.toml), with the protections against the
# same run with `--unprotect '**'`, the two run alternately, medians and
# their difference (issue 14's target: within 10% or 1 ms, the larger).
#
# The check at exit looks at the protected names only, never the tree:
# FILES=100000 adds that many files to the checkout to show it.
#
# Usage: bench/protect.sh            (PAIRS=200 WARMUP=20 FILES=0 by default)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
pairs=${PAIRS:-200}
warmup=${WARMUP:-20}

for tool in git python3 setpriv; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found; run .ci/setup" >&2; exit 1; }
done

. bench/common.sh
bench_setup protect
install -m 0755 "$nook" "$work/nook"
nook=$work/nook
(cd "$work" && "${as_user[@]}" sh -c '
    git init -q -b main . && mkdir -p .vscode .cargo &&
    echo "{}" > .vscode/tasks.json && echo "[build]" > .cargo/config.toml &&
    echo "echo hi" > .envrc && echo x > file &&
    git add -A && git -c user.email=b@e -c user.name=b commit -q -m one')
files=${FILES:-0}
if [ "$files" -gt 0 ]; then
    (cd "$work" && "${as_user[@]}" python3 -c '
import os, sys
n = int(sys.argv[1])
for d in range(0, n, 1000):
    os.makedirs(f"tree/{d}", exist_ok=True)
    for i in range(d, min(d + 1000, n)):
        open(f"tree/{d}/{i}", "w").close()
' "$files")
    echo "bench: $files files added to the checkout"
fi

echo "bench: $pairs pairs after $warmup warm-up pairs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$work" && "${as_user[@]}" "$nook" run --print-plan -- /bin/true | grep -c 'ro-bind .* (optional)' |
    sed 's/^/bench: optional read-only binds in the plan (protections among them): /')

driver='
import os, statistics, sys, time
pairs, warmup = int(sys.argv[1]), int(sys.argv[2])
nook = sys.argv[3]
cmds = {"protected": [nook, "run", "--", "/bin/true"],
        "unprotected": [nook, "run", "--unprotect", "**", "--", "/bin/true"]}
env = dict(os.environ)

def once(argv):
    t = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {argv} exited with status {status}")
    return time.perf_counter_ns() - t

for _ in range(warmup):
    for argv in cmds.values():
        once(argv)
times = {name: [] for name in cmds}
for _ in range(pairs):
    for name, argv in cmds.items():
        times[name].append(once(argv))
med = {n: statistics.median(t) / 1e6 for n, t in times.items()}
for n in cmds:
    print(f"{n} median: {med[n]:.2f} ms")
base = med["unprotected"]
d = med["protected"] - base
print(f"protection adds {d:.2f} ms ({100 * d / base:.1f}%) per start")
'
(cd "$work" && "${as_user[@]}" python3 -c "$driver" "$pairs" "$warmup" "$nook")
echo "bench: load after: $(cut -d' ' -f1-3 /proc/loadavg)"

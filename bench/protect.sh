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
bench_install
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

(cd "$work" && "${as_user[@]}" python3 "$repo/bench/alternate.py" "$pairs" "$warmup" \
    protected unprotected 4 "$nook" run -- /bin/true "$nook" run --unprotect '**' -- /bin/true)
echo "bench: load after: $(cut -d' ' -f1-3 /proc/loadavg)"

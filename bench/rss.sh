#!/usr/bin/env bash
# Resident memory of the nook supervisor (the `nook run` process that stays
# outside the sandbox) while a sandbox runs. Budget: under 4 MiB (4096 kB).
# As root, nook runs as the test user nooktest (created by .ci/setup).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
limit_kb=4096

nook=$(cargo build --release --message-format=json |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "nook" and m.get("executable"):
        print(m["executable"])')

if [ "$(id -u)" -eq 0 ]; then
    id -u nooktest >/dev/null 2>&1 || { echo "rss: user nooktest missing; run .ci/setup first" >&2; exit 1; }
    work=$(mktemp -d /home/nooktest/bench-rss.XXXXXX)
    chown nooktest: "$work"
    as_user=(setpriv --reuid nooktest --regid nooktest --init-groups --reset-env)
else
    work=$(mktemp -d "$HOME/.nook-bench-rss.XXXXXX")
    as_user=()
fi
trap 'rm -rf "$work"' EXIT

# setpriv execs nook, so $! is the supervisor itself.
(cd "$work" && exec "${as_user[@]}" "$nook" run -- sleep 2) &
pid=$!
sleep 1
comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
if [ "$comm" != nook ]; then
    echo "rss: pid $pid is '${comm:-gone}', not the nook supervisor" >&2
    wait "$pid" || true
    exit 1
fi
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
status=0
wait "$pid" || status=$?
echo "supervisor VmRSS: $rss_kb kB (peak VmHWM: $hwm_kb kB)"
if [ "$status" -ne 0 ]; then
    echo "rss: nook run -- sleep 2 exited with $status" >&2
    exit 1
fi
if [ "$rss_kb" -ge "$limit_kb" ]; then
    echo "rss: over budget: $rss_kb kB >= $limit_kb kB" >&2
    exit 1
fi

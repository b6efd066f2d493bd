#!/usr/bin/env bash
# Resident memory of the nook supervisor (the `nook run` process that stays
# outside the sandbox) while a sandbox runs. Budget: under 4 MiB (4096 kB).
# As root, nook runs as the test user nooktest (created by .ci/setup).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
limit_kb=4096

. bench/common.sh
bench_setup rss

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

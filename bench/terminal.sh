#!/usr/bin/env bash
# The cost of the sandbox's own terminal (issue 18): `cat` of SIZE MiB to a
# terminal through nook's relay against without (target: at least 0.8x the
# throughput), and the keystroke echo latency the relay adds (target: under
# 1 ms, medians). The terminal is a pty bench/terminal.py makes; every
# command runs as the unprivileged test user.
#
# Usage: bench/terminal.sh   (SIZE=1024 MiB, ROUNDS=5, KEYS=200)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
. bench/common.sh
bench_setup terminal
bench_install
size=${SIZE:-1024}
python3 -c "import sys; line = b\"0123456789abcdefghijklmnopqrstuvwxyz\" * 2 + b\"\\n\"; sys.stdout.buffer.write(line * ($((size << 20)) // len(line)))" >"$work/data"
chmod 0755 "$work"
chmod 0644 "$work/data"
(cd "$work" && "${as_user[@]}" env HOME="$home" PATH=/usr/bin:/bin python3 "$repo/bench/terminal.py" "$nook" "$work/data" "${ROUNDS:-5}" "${KEYS:-200}")

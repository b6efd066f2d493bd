#!/usr/bin/env bash
# Startup cost against bubblewrap, measured alternately: `nook run -- /bin/true`
# with the default isolation, and the bwrap command that builds the same view
# (every namespace unshared, /usr and /etc read-only, the merged-/usr links,
# fresh /proc, /dev and /tmp, an empty $HOME, the current directory bound
# read-write). Prints both medians and the ratio of the medians; the target
# is <= 0.85.
#
# The two commands run in turns (nook, bwrap, nook, bwrap, ...), so that a
# burst of load from elsewhere on the machine falls on both alike; medians,
# because such bursts make the means meaningless. Each run is timed by wall
# clock around posix_spawn and waitpid in one small Python driver.
#
# nook is rootless, so as root both commands run as the test user (nooktest,
# created by .ci/setup): the driver itself is started through setpriv, which
# keeps the two commands wrapped identically and adds nothing to either.
#
# Usage: bench/startup.sh            (PAIRS=200 WARMUP=20 by default)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
pairs=${PAIRS:-200}
warmup=${WARMUP:-20}
if [ "$pairs" -lt 150 ]; then
    echo "bench: PAIRS=$pairs: at least 150 pairs make a comparison" >&2
    exit 1
fi

for tool in bwrap python3 setpriv; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found; run .ci/setup" >&2; exit 1; }
done

. bench/common.sh
bench_setup startup
# An installed copy, as `cargo install` would make it (see bench_install).
bench_install

# The bwrap twin of nook's default view.
bw=(bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --ro-bind /etc /etc)
for link in /bin /sbin /lib /lib64; do
    if [ -L "$link" ]; then
        bw+=(--symlink "$(readlink "$link")" "$link")
    elif [ -d "$link" ]; then
        bw+=(--ro-bind "$link" "$link")
    fi
done
bw+=(--proc /proc --dev /dev --tmpfs /tmp --tmpfs "$home")
if [ "$work" != "$home" ]; then
    bw+=(--bind "$work" "$work")
fi
bw+=(--chdir "$work" /bin/true)
nook_cmd=("$nook" run -- /bin/true)

echo "bench: nook:  $(printf '%q ' "${nook_cmd[@]}")"
echo "bench: bwrap: $(printf '%q ' "${bw[@]}")"
echo "bench: $pairs pairs after $warmup warm-up pairs; load: $(cut -d' ' -f1-3 /proc/loadavg)"

# Both must work before timing them.
(cd "$work" && "${as_user[@]}" "${nook_cmd[@]}") ||
    { echo "bench: '${nook_cmd[*]}' failed" >&2; exit 1; }
(cd "$work" && "${as_user[@]}" "${bw[@]}") ||
    { echo "bench: the bwrap command failed" >&2; exit 1; }

(cd "$work" && "${as_user[@]}" python3 "$repo/bench/alternate.py" "$pairs" "$warmup" nook bwrap \
    "${#nook_cmd[@]}" "${nook_cmd[@]}" "$(command -v bwrap)" "${bw[@]:1}")
echo "bench: load after: $(cut -d' ' -f1-3 /proc/loadavg)"

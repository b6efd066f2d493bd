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
# Run an installed copy, as `cargo install` would make it (and as bwrap is
# installed): the executable the linker wrote sits in the page cache in a
# form that costs nook about 30 more page faults per run here (284 against
# 254, the same bytes), which is a property of the build directory, not of
# nook.
install -m 0755 "$nook" "$work/nook"
nook=$work/nook

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

# argv: pairs, warmup, the length of nook's command, nook's command, bwrap's.
driver='
import os, statistics, sys, time
pairs, warmup, cut = (int(a) for a in sys.argv[1:4])
rest = sys.argv[4:]
cmds = {"nook": rest[:cut], "bwrap": rest[cut:]}
env = dict(os.environ)

def once(argv):
    t = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env)
    _, status = os.waitpid(pid, 0)
    ns = time.perf_counter_ns() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {argv[0]} exited with status {status}")
    return ns

for _ in range(warmup):
    for argv in cmds.values():
        once(argv)
times = {name: [] for name in cmds}
for _ in range(pairs):
    for name, argv in cmds.items():
        times[name].append(once(argv))
med = {n: statistics.median(t) / 1e6 for n, t in times.items()}
for n, t in times.items():
    q = statistics.quantiles(t, n=4)
    print(f"{n} median: {med[n]:.2f} ms (quartiles {q[0] / 1e6:.2f} / {q[2] / 1e6:.2f} ms)")
ratio = med["nook"] / med["bwrap"]
print(f"ratio nook/bwrap (medians, {pairs} pairs): {ratio:.2f}")
'
(cd "$work" && "${as_user[@]}" python3 -c "$driver" "$pairs" "$warmup" \
    "${#nook_cmd[@]}" "${nook_cmd[@]}" "$(command -v bwrap)" "${bw[@]:1}")
echo "bench: load after: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Startup cost, side by side in one hyperfine run: `nook run -- /bin/true`
# with the default isolation, and the bwrap command that builds the same view
# (every namespace unshared, /usr and /etc read-only, the merged-/usr links,
# fresh /proc, /dev and /tmp, an empty $HOME, the current directory bound
# read-write). Prints the ratio of the means; the target is <= 1.00.
#
# nook is rootless, so as root both commands run as the test user (nooktest,
# created by .ci/setup): hyperfine itself is started through setpriv, which
# keeps the two commands wrapped identically and adds nothing to either.
#
# Usage: bench/startup.sh            (RUNS=200 WARMUP=20 by default)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
runs=${RUNS:-200}
warmup=${WARMUP:-20}

for tool in hyperfine bwrap python3 setpriv; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found; run .ci/setup" >&2; exit 1; }
done

. bench/common.sh
bench_setup startup

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

nook_cmd="$(printf '%q ' "$nook" run -- /bin/true)"
bwrap_cmd="$(printf '%q ' "${bw[@]}")"
echo "bench: nook:  $nook_cmd"
echo "bench: bwrap: $bwrap_cmd"

# Both must work before timing them (hyperfine would also stop on a failure).
(cd "$work" && "${as_user[@]}" "$nook" run -- /bin/true) ||
    { echo "bench: '$nook run -- /bin/true' failed" >&2; exit 1; }
(cd "$work" && "${as_user[@]}" "${bw[@]}") ||
    { echo "bench: the bwrap command failed" >&2; exit 1; }

json=$work/startup.json
(cd "$work" && "${as_user[@]}" hyperfine -N --warmup "$warmup" --runs "$runs" \
    --export-json "$json" -n nook "$nook_cmd" -n bwrap "$bwrap_cmd")

python3 - "$json" <<'PY'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
nook, bwrap = res["nook"], res["bwrap"]
for name, r in (("nook", nook), ("bwrap", bwrap)):
    print(f"{name} mean: {r['mean'] * 1e3:.2f} ms (stddev {r['stddev'] * 1e3:.2f} ms, "
          f"median {r['median'] * 1e3:.2f} ms)")
print(f"ratio nook/bwrap (mean): {nook['mean'] / bwrap['mean']:.2f}")
PY

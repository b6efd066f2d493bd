#!/usr/bin/env bash
# `nook run --rootfs DIR -- /bin/true` against `nook run -- /bin/true`: a
# root filesystem as the system instead of the host's (issue 19; target:
# within 10%), alternating (A B A B, bench/alternate.py), medians, as the
# unprivileged test user. DIR is the test suite's (tests/common/rootfs.sh,
# built by .ci/setup).
#
# Usage: bench/rootfs.sh   (PAIRS=200, ROOTFS=/var/cache/nook-tests/podman-rootfs)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
rootfs=${ROOTFS:-/var/cache/nook-tests/podman-rootfs}
[ -x "$rootfs/bin/sh" ] || { echo "bench: no root filesystem at $rootfs; run .ci/setup" >&2; exit 1; }
. bench/common.sh
bench_setup rootfs
bench_install
a=("$nook" run --rootfs "$rootfs" -- /bin/true)
b=("$nook" run -- /bin/true)
cd "$work"
"${as_user[@]}" env HOME="$home" "${a[@]}" || { echo "bench: '${a[*]}' failed" >&2; exit 1; }
"${as_user[@]}" env HOME="$home" python3 "$repo/bench/alternate.py" "${PAIRS:-200}" 20 rootfs host \
    "${#a[@]}" "${a[@]}" "${b[@]}"

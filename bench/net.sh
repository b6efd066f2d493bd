#!/usr/bin/env bash
# User-mode networking, side by side in one run:
#
# 1. TCP throughput from a sandbox to an iperf3 server, for
#    - the host itself (no helper at all),
#    - pasta started by hand (`pasta -- iperf3 ...`) and nook --net user,
#    - slirp4netns started by hand and nook --net user --net-driver slirp4netns,
#    every helper with its default MTU of 65520 and the same options nook
#    gives it. Target: nook / by-hand >= 0.95 for each driver.
# 2. Startup: `nook run --net user -- true` against `nook run -- true`
#    (hyperfine). Target: no more than 30 ms apart.
#
# Never on the machine's own network: the "host" is a network namespace
# made here (veth, 10.199.0.1 and the server on 10.199.0.5), removed at
# exit. Must run as root (to make that namespace); every client runs as
# the unprivileged test user, as nook's users would.
#
# Usage: bench/net.sh    (SECS=5 per throughput run, best of TRIES=3;
#                         RUNS=100 startup runs)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
secs=${SECS:-5}
runs=${RUNS:-100}

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (it makes a network namespace)" >&2; exit 1; }
for tool in hyperfine iperf3 pasta slirp4netns nsenter python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found; run .ci/setup" >&2; exit 1; }
done

. bench/common.sh
bench_setup net

# The lab: a namespace holder with the server; killed (group) at exit.
setsid unshare --net sh -c '
    ip link set lo up
    ip link add lab0 type veth peer name lab1
    ip link set lab1 up
    ip addr add 10.199.0.1/24 dev lab0
    ip addr add 10.199.0.5/24 dev lab0
    ip link set lab0 up
    ip route add default via 10.199.0.254
    iperf3 -s -B 10.199.0.5 >/dev/null 2>&1 &
    exec sleep 3600' &
holder=$!
trap 'kill -- -$holder 2>/dev/null; rm -rf "$work"' EXIT
lab=(nsenter --net=/proc/$holder/ns/net)
for _ in $(seq 100); do
    "${lab[@]}" ss -Hltn 2>/dev/null | grep -q '10.199.0.5:5201' && break
    sleep 0.05
done

client=(iperf3 -c 10.199.0.5 -t "$secs" -J)
pasta_opts=(-f -q --config-net -t none -u none -T none -U none --no-map-gw)
slirp_opts=(--configure --mtu=65520 --disable-host-loopback)

# One iperf3 client run: "$@" is its command line; prints Gbit/s.
gbits() {
    (cd "$work" && "$@") | python3 -c '
import json, sys
bps = json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]
print("%.2f" % (bps / 1e9))'
}

# slirp4netns by hand: a fresh user+network namespace whose first process
# waits for the route slirp4netns adds, then runs the client.
slirp_by_hand() {
    local script
    script=$(printf '%q ' "${client[@]}")
    "${lab[@]}" "${as_user[@]}" bash -c '
        unshare --user --map-current-user --net bash -c "
            until grep -q \"^tap0\s*00000000\" /proc/net/route; do sleep 0.01; done
            exec '"$script"'" &
        pid=$!
        until [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do sleep 0.01; done
        slirp4netns '"${slirp_opts[*]}"' $pid tap0 >/dev/null 2>&1 &
        helper=$!
        wait $pid; status=$?
        kill $helper; wait $helper 2>/dev/null
        exit $status'
}

# pasta by hand, the way nook runs it: attached to a namespace by pid
# (not spawning the command itself), same options.
pasta_by_hand() {
    local script
    script=$(printf '%q ' "${client[@]}")
    "${lab[@]}" "${as_user[@]}" bash -c '
        unshare --user --map-current-user --net bash -c "
            until grep -q \"00000000\" <(cut -f2 /proc/net/route); do sleep 0.01; done
            exec '"$script"'" &
        pid=$!
        until [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do sleep 0.01; done
        pasta '"${pasta_opts[*]}"' $pid 2>/dev/null &
        helper=$!
        wait $pid; status=$?
        kill $helper; wait $helper 2>/dev/null
        exit $status'
}

# Throughput on this kind of machine swings by several times from run to
# run, so the variants take turns, TRIES rounds, and the medians compare.
tries=${TRIES:-5}
echo "bench: throughput, $secs s per run, $tries rounds, client -> iperf3 on 10.199.0.5"
: >"$work/tp.txt"
for _ in $(seq "$tries"); do
    {
        echo "host $(gbits "${lab[@]}" "${as_user[@]}" "${client[@]}")"
        echo "pasta_hand $(gbits pasta_by_hand)"
        echo "pasta_nook $(gbits "${lab[@]}" "${as_user[@]}" "$nook" run --net user -- "${client[@]}")"
        echo "slirp_hand $(gbits slirp_by_hand)"
        echo "slirp_nook $(gbits "${lab[@]}" "${as_user[@]}" "$nook" run --net user --net-driver slirp4netns -- "${client[@]}")"
    } >>"$work/tp.txt"
done

echo "bench: startup, --net user against --net none"
json=$work/net-startup.json
(cd "$work" && "${lab[@]}" "${as_user[@]}" hyperfine -N --warmup 10 --runs "$runs" \
    --export-json "$json" \
    -n none "$nook run -- /bin/true" \
    -n user "$nook run --net user -- /bin/true" >/dev/null)

python3 - "$json" "$work/tp.txt" <<'PY'
import json, statistics, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
runs = {}
for line in open(sys.argv[2]):
    k, v = line.split()
    runs.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in runs.items()}
show = lambda k: f"{med[k]:7.2f} Gbit/s (median of {', '.join(f'{x:.2f}' for x in runs[k])})"
print(f"host directly:           {show('host')}")
print(f"pasta by hand:           {show('pasta_hand')}")
print(f"nook --net user (pasta): {show('pasta_nook')}")
print(f"  ratio nook/by-hand (pasta, medians): {med['pasta_nook'] / med['pasta_hand']:.2f}")
print(f"slirp4netns by hand:     {show('slirp_hand')}")
print(f"nook (slirp4netns):      {show('slirp_nook')}")
print(f"  ratio nook/by-hand (slirp4netns, medians): {med['slirp_nook'] / med['slirp_hand']:.2f}")
none, user = res["none"], res["user"]
print(f"startup --net none: {none['mean'] * 1e3:.2f} ms, --net user: {user['mean'] * 1e3:.2f} ms, "
      f"added {(user['mean'] - none['mean']) * 1e3:.2f} ms")
PY

#!/usr/bin/env bash
# User-mode networking, side by side in one run:
#
# 1. TCP throughput from a sandbox to an iperf3 server, for
#    - the host itself (no helper at all),
#    - pasta started by hand (`pasta -- iperf3 ...`) and nook --net user,
#    - slirp4netns started by hand and nook --net user --net-driver slirp4netns,
#    every helper with its default MTU of 65520 and the same options nook
#    gives it. Target: nook / by-hand >= 0.95 for each driver; and
#    `--net user` with the default `--net-driver auto` at least 0.9x the
#    faster driver by hand.
# 2. Startup: `nook run --net user -- true` (auto) against `nook run --
#    true`, alternating (A B A B, bench/alternate.py), medians; the same
#    for each driver named. Target: auto adds at most 20 ms.
# 3. The egress gate (--net-allow by name), against the same driver without
#    an allow-list:
#    a. throughput, iperf3 to a name (`--net-allow iperf.test`), in the
#       same rounds as 1. Target: gate / without >= 0.9;
#    b. time to the first byte of an HTTPS request (curl's
#       time_starttransfer, name lookup included) to an allowed name,
#       ROUNDS rounds of one sandbox with the gate then one without, each
#       making BLOCK requests after one warm-up. Target: the medians no more
#       than 1 ms apart;
#    c. startup, `nook run --net user --net-allow pkg.test -- /bin/true`
#       against `nook run --net user -- /bin/true`, alternating (A B A B,
#       bench/alternate.py), medians. Target: no more than 5 ms apart.
#    Until the gate lands, an allow-list of names is resolved once at
#    start and enforced by address (nftables), and these figures measure
#    that.
#
# Never on the machine's own network: the "host" is a network namespace
# made here (veth, 10.199.0.1, the servers on 10.199.0.5: iperf3 and
# HTTPS; DNS on 10.199.0.53 answering iperf.test and pkg.test), with a
# mount namespace of its own where /etc/resolv.conf names that DNS (so
# nook and its helper see it as the host's resolver); both removed at
# exit. Must run as root (to make them); every client runs as the
# unprivileged test user, as nook's users would.
#
# Usage: bench/net.sh    (SECS=5 per throughput run, TRIES=5 rounds;
#                         RUNS=100 startup runs; ROUNDS=20 x BLOCK=10
#                         requests; PAIRS=200 gate startup pairs;
#                         GATE_ONLY=1 measures only the gate, part 3;
#                         DRIVERS_ONLY=1 only parts 1 and 2)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
secs=${SECS:-5}
runs=${RUNS:-100}
rounds=${ROUNDS:-20}
block=${BLOCK:-10}
pairs=${PAIRS:-200}
gate_only=${GATE_ONLY:-0}
drivers_only=${DRIVERS_ONLY:-0}

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (it makes a network namespace)" >&2; exit 1; }
for tool in hyperfine iperf3 pasta slirp4netns nsenter python3 curl openssl; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found; run .ci/setup" >&2; exit 1; }
done

. bench/common.sh
bench_setup net

# The lab's files: resolv.conf, the names, the web server's certificate.
labdir=$(mktemp -d /tmp/nook-bench-lab.XXXXXX)
chmod 755 "$labdir"
echo "nameserver 10.199.0.53" >"$labdir/resolv.conf"
echo '{"iperf.test": "10.199.0.5", "pkg.test": "10.199.0.5"}' >"$labdir/names.json"
chmod 644 "$labdir"/*
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$labdir/key.pem" -out "$labdir/cert.pem" -subj /CN=pkg.test \
    -addext 'subjectAltName=DNS:*.test,DNS:pkg.test' 2>/dev/null
py=$(command -v /usr/bin/python3 || command -v python3)

# The lab: a namespace holder with the servers; killed (group) at exit.
# The DNS and HTTPS servers are the tests' (tests/common/lab.py).
setsid unshare --net --mount --propagation private sh -c '
    mount --bind "$0/resolv.conf" /etc/resolv.conf
    ip link set lo up
    ip link add lab0 type veth peer name lab1
    ip link set lab1 up
    ip addr add 10.199.0.1/24 dev lab0
    ip addr add 10.199.0.5/24 dev lab0
    ip addr add 10.199.0.53/24 dev lab0
    ip link set lab0 up
    ip route add default via 10.199.0.254
    iperf3 -s -B 10.199.0.5 >/dev/null 2>&1 &
    "$1" "$2" "$0" --dns 10.199.0.53 --https 10.199.0.5 &
    exec sleep 3600' "$labdir" "$py" "$repo/tests/common/lab.py" &
holder=$!
trap 'kill -- -$holder 2>/dev/null; rm -rf "$work" "$labdir"' EXIT
# Entering a mount namespace moves to its root: back to the work directory.
lab=(nsenter --mount=/proc/$holder/ns/mnt --net=/proc/$holder/ns/net --wdns="$work")
ready=0
for _ in $(seq 200); do
    if [ "$("${lab[@]}" ss -Hltn 2>/dev/null | grep -cE '10.199.0.5:(5201|443) |10.199.0.53:53 ')" -eq 3 ] &&
        [ "$("${lab[@]}" ss -Hlun 2>/dev/null | grep -c '10.199.0.53:53 ')" -eq 1 ]; then
        ready=1
        break
    fi
    sleep 0.05
done
[ "$ready" = 1 ] || { echo "bench: the lab's servers (iperf3, HTTPS, DNS) are not listening after 10 s" >&2; exit 1; }

client=(iperf3 -c 10.199.0.5 -t "$secs" -J)
client_name=(iperf3 -c iperf.test -t "$secs" -J)
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
        if [ "$gate_only" != 1 ]; then
            echo "host $(gbits "${lab[@]}" "${as_user[@]}" "${client[@]}")"
            echo "pasta_hand $(gbits pasta_by_hand)"
            echo "pasta_nook $(gbits "${lab[@]}" "${as_user[@]}" "$nook" run --net user --net-driver pasta -- "${client[@]}")"
            echo "slirp_hand $(gbits slirp_by_hand)"
            echo "slirp_nook $(gbits "${lab[@]}" "${as_user[@]}" "$nook" run --net user --net-driver slirp4netns -- "${client[@]}")"
            echo "auto_nook $(gbits "${lab[@]}" "${as_user[@]}" "$nook" run --net user -- "${client[@]}")"
        fi
        [ "$drivers_only" = 1 ] && continue
        echo "name_open $(gbits "${lab[@]}" "${as_user[@]}" "$nook" run --net user -- "${client_name[@]}")"
        echo "name_gate $(gbits "${lab[@]}" "${as_user[@]}" "$nook" run --net user --net-allow iperf.test -- "${client_name[@]}")"
    } >>"$work/tp.txt"
done

if [ "$gate_only" != 1 ]; then
    echo "bench: startup, --net user (auto, pasta, slirp4netns) against --net none, $pairs alternating pairs each"
    none_cmd=("$nook" run -- /bin/true)
    for d in auto pasta slirp4netns; do
        user_cmd=("$nook" run --net user -- /bin/true)
        [ "$d" = auto ] || user_cmd=("$nook" run --net user --net-driver "$d" -- /bin/true)
        "${lab[@]}" "${as_user[@]}" "${user_cmd[@]}" || { echo "bench: '${user_cmd[*]}' failed" >&2; exit 1; }
        "${lab[@]}" "${as_user[@]}" "$py" "$repo/bench/alternate.py" "$pairs" 20 "user-$d" none \
            "${#user_cmd[@]}" "${user_cmd[@]}" "${none_cmd[@]}" >>"$work/net-startup.txt"
    done
else
    : >"$work/net-startup.txt"
fi
if [ "$drivers_only" = 1 ]; then
    : >"$work/ttfb.txt"
    : >"$work/gate-startup.txt"
else
# Time to first byte: one sandbox makes BLOCK requests (after one that
# warms up curl, the page cache and the gate's name cache), printing
# "LABEL SECONDS" for each; the two kinds take turns, ROUNDS times.
ttfb_block() {
    local label=$1
    shift
    "${lab[@]}" "${as_user[@]}" "$nook" run --net user "$@" -- sh -c '
        curl -ks -o /dev/null https://pkg.test/ || exit 1
        for _ in $(seq '"$block"'); do
            curl -ks -o /dev/null -w "%{time_starttransfer}\n" https://pkg.test/ || exit 1
        done' | sed "s/^/$label /"
}
echo "bench: time to first byte, $rounds rounds of $block HTTPS requests to pkg.test in each kind of sandbox"
: >"$work/ttfb.txt"
for _ in $(seq "$rounds"); do
    ttfb_block gate --net-allow pkg.test:443 >>"$work/ttfb.txt"
    ttfb_block open >>"$work/ttfb.txt"
done

echo "bench: startup, --net-allow pkg.test against no allow-list, $pairs alternating pairs"
gate_cmd=("$nook" run --net user --net-allow pkg.test -- /bin/true)
open_cmd=("$nook" run --net user -- /bin/true)
# Both must work before timing them.
"${lab[@]}" "${as_user[@]}" "${gate_cmd[@]}" || { echo "bench: '${gate_cmd[*]}' failed" >&2; exit 1; }
"${lab[@]}" "${as_user[@]}" "${open_cmd[@]}" || { echo "bench: '${open_cmd[*]}' failed" >&2; exit 1; }
"${lab[@]}" "${as_user[@]}" "$py" "$repo/bench/alternate.py" "$pairs" 20 gate open \
    "${#gate_cmd[@]}" "${gate_cmd[@]}" "${open_cmd[@]}" >"$work/gate-startup.txt"
fi

python3 - "$work/net-startup.txt" "$work/tp.txt" "$work/ttfb.txt" "$work/gate-startup.txt" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[2]):
    k, v = line.split()
    runs.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in runs.items()}
show = lambda k: f"{med[k]:7.2f} Gbit/s (median of {', '.join(f'{x:.2f}' for x in runs[k])})"
if "host" in med:
    print(f"host directly:           {show('host')}")
    print(f"pasta by hand:           {show('pasta_hand')}")
    print(f"nook --net user (pasta): {show('pasta_nook')}")
    print(f"  ratio nook/by-hand (pasta, medians): {med['pasta_nook'] / med['pasta_hand']:.2f}")
    print(f"slirp4netns by hand:     {show('slirp_hand')}")
    print(f"nook (slirp4netns):      {show('slirp_nook')}")
    print(f"  ratio nook/by-hand (slirp4netns, medians): {med['slirp_nook'] / med['slirp_hand']:.2f}")
    print(f"nook --net user (auto):  {show('auto_nook')}")
    best = max(med['pasta_hand'], med['slirp_hand'])
    print(f"  ratio auto/faster driver by hand (medians): {med['auto_nook'] / best:.2f} (target >= 0.90)")
for line in open(sys.argv[1]):
    print("startup, " + line.rstrip())
print("(startup target: user-auto - none <= +20 ms)")
if "name_open" not in med:
    sys.exit(0)
print("gate:")
print(f"  iperf3 to iperf.test, no allow-list:          {show('name_open')}")
print(f"  iperf3 to iperf.test, --net-allow iperf.test: {show('name_gate')}")
print(f"  ratio gate/without (medians): {med['name_gate'] / med['name_open']:.2f} (target >= 0.90)")
ttfb = {}
for line in open(sys.argv[3]):
    k, v = line.split()
    ttfb.setdefault(k, []).append(float(v) * 1e3)
tm = {k: statistics.median(v) for k, v in ttfb.items()}
for k, label in (("open", "no allow-list:         "), ("gate", "--net-allow pkg.test:443:")):
    q = statistics.quantiles(ttfb[k], n=4)
    print(f"  first byte, {label} {tm[k]:.2f} ms median of {len(ttfb[k])} (quartiles {q[0]:.2f} / {q[2]:.2f})")
print(f"  first byte, gate - without (medians): {tm['gate'] - tm['open']:+.2f} ms (target <= +1 ms)")
for line in open(sys.argv[4]):
    print("  startup, " + line.rstrip())
print("  (startup target: gate - open <= +5 ms)")
PY

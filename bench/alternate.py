"""Time two commands run alternately (A B A B ...), which cancels the
drift of a noisy machine that back-to-back runs suffer, and print each
median, then the ratio (A/B) and the difference (A-B) of the medians.

Usage: alternate.py PAIRS WARMUP NAME_A NAME_B N_A CMD_A... CMD_B...
(N_A is the number of words of CMD_A). Both commands must exit 0."""
import os
import statistics
import sys
import time

pairs, warmup = int(sys.argv[1]), int(sys.argv[2])
name_a, name_b, cut = sys.argv[3], sys.argv[4], int(sys.argv[5])
rest = sys.argv[6:]
cmds = {name_a: rest[:cut], name_b: rest[cut:]}
env = dict(os.environ)


def once(argv):
    t = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env)
    _, status = os.waitpid(pid, 0)
    ns = time.perf_counter_ns() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {argv} exited with status {status}")
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
a, b = med[name_a], med[name_b]
print(f"ratio {name_a}/{name_b} (medians, {pairs} pairs): {a / b:.2f}")
print(f"{name_a} - {name_b} (medians): {a - b:.2f} ms ({100 * (a - b) / b:.1f}%)")

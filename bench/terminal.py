"""The terminal relay's cost (bench/terminal.sh runs this as the test
user): a pty made here stands for the user's terminal.

1. Throughput: `cat` of a SIZE-byte file to the terminal, with and
   without nook in between (nook relays from the sandbox's own pty),
   alternating, ROUNDS rounds; MB/s medians and their ratio.
2. Keystroke echo latency: a program in raw mode echoes each byte it
   reads; the time from writing a byte to the terminal until it comes back,
   with and without nook; KEYS keystrokes per round; medians and the
   difference.

Usage: terminal.py NOOK FILE ROUNDS KEYS"""
import os, pty, select, statistics, sys, time

nook, path, rounds, keys = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
size = os.path.getsize(path)


def spawn(argv):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    return pid, fd


def drain(pid, fd):
    """Read everything until the command is done; bytes read."""
    n = 0
    while True:
        try:
            d = os.read(fd, 1 << 20)
        except OSError:
            break
        if not d:
            break
        n += len(d)
    os.waitpid(pid, 0)
    os.close(fd)
    return n


def throughput(argv):
    t = time.perf_counter()
    pid, fd = spawn(argv)
    n = drain(pid, fd)
    dt = time.perf_counter() - t
    if n < size:
        sys.exit(f"bench: {argv} gave {n} of {size} bytes")
    return size / dt / 1e6


# Echo each byte back, raw, from inside.
ECHO = ("import os, tty; tty.setraw(0)\n"
        "while True:\n"
        "    b = os.read(0, 1)\n"
        "    if not b or b == b'q': break\n"
        "    os.write(1, b)\n")


def latencies(argv):
    pid, fd = spawn(argv)
    # Wait until the echoer is up: it echoes a probe byte.
    buf = b""
    out = []
    time.sleep(0.3)
    for i in range(keys + 5):
        c = b"a"
        t = time.perf_counter()
        os.write(fd, c)
        got = b""
        while c not in got:
            r, _, _ = select.select([fd], [], [], 5)
            if not r:
                sys.exit(f"bench: no echo from {argv}")
            got += os.read(fd, 4096)
        if i >= 5:
            out.append((time.perf_counter() - t) * 1e6)
    os.write(fd, b"q")
    drain(pid, fd)
    return out


cat = ["/bin/cat", path]
via = [nook, "run", "--ro-bind", os.path.dirname(path), "--", "/bin/cat", path]
tp = {"direct": [], "nook": []}
for _ in range(rounds):
    tp["direct"].append(throughput(cat))
    tp["nook"].append(throughput(via))
md, mn = statistics.median(tp["direct"]), statistics.median(tp["nook"])
print(f"cat of {size >> 20} MiB to a terminal: direct {md:.0f} MB/s, through nook {mn:.0f} MB/s "
      f"(medians of {rounds}); ratio nook/direct {mn / md:.2f} (target >= 0.80)")

py = "/usr/bin/python3"
lat = {"direct": [], "nook": []}
for _ in range(rounds):
    lat["direct"] += latencies([py, "-c", ECHO])
    lat["nook"] += latencies([nook, "run", "--", py, "-c", ECHO])
ld, ln = statistics.median(lat["direct"]), statistics.median(lat["nook"])
print(f"keystroke echo: direct {ld:.0f} us, through nook {ln:.0f} us (medians of {len(lat['nook'])}); "
      f"added {ln - ld:.0f} us (target < 1000 us)")

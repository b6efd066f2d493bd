#!/usr/bin/env bash
# The cost of `nook run --trace`, side by side in one run:
#
# 1. Per watched system call: a loop of N stat(2) calls on a path in the
#    view, with --trace-stat (which watches stat) and without, alternating;
#    the difference of the medians divided by N is the cost of one watched
#    call (microseconds).
# 2. A real build: `make -j2` of a small C project (FILES sources, in a
#    read-write shared directory, cleaned between runs), with --trace and
#    without, then with --trace-stat and without, alternating. Target:
#    traced / plain <= 1.5.
# 3. The cargo profile building a small crate (MODS modules, no
#    dependencies, offline, from clean), with and without --trace,
#    alternating. Target: traced / plain <= 1.5.
# 4. Startup without --trace is untouched: `nook run -- true` against the
#    same binary's `nook run -- true`... measured by bench/startup.sh, not
#    here (the default path gains no work: the tracer exists only with
#    --trace).
#
# Usage: bench/trace.sh   (PAIRS=15 builds, N=20000 stats, FILES=40)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"
umask 022
pairs=${PAIRS:-15}
n=${N:-20000}
files=${FILES:-40}
for tool in make gcc python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done
. bench/common.sh
bench_setup trace
bench_install

# 1. One watched call: python's os.stat in a loop (the interpreter's own
#    start is the same on both sides and cancels out).
cat >"$work/stat.py" <<EOF
import os
for _ in range($n):
    os.stat("/usr/bin/env")
EOF
echo "bench: $n stat calls, with and without --trace-stat, $pairs alternating pairs"
out=$(cd "$work" && "${as_user[@]}" env HOME="$home" XDG_STATE_HOME="$work/state" \
    python3 "$repo/bench/alternate.py" "$pairs" 2 traced plain 6 \
    "$nook" run --trace-stat -- python3 "$work/stat.py" \
    "$nook" run -- python3 "$work/stat.py")
echo "$out" | sed 's/^/  /'
diff_ms=$(echo "$out" | sed -n 's/^traced - plain (medians): \([-0-9.]*\) ms.*/\1/p')
[ -n "$diff_ms" ] && python3 -c "print('  per watched call: %.1f us' % ($diff_ms * 1000 / $n))"

# 2. A build: FILES small C files and a Makefile, built from clean.
proj=$work/proj
mkdir -p "$proj"
for i in $(seq "$files"); do
    cat >"$proj/f$i.c" <<EOF
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
int f$i(int x) { char b[64]; snprintf(b, sizeof b, "%d", x * $i); return (int)strlen(b) + atoi(b); }
EOF
done
{
    echo 'int main(void) { return 0; }' >"$proj/main.c"
    printf 'OBJS = main.o'
    for i in $(seq "$files"); do printf ' f%s.o' "$i"; done
    printf '\nprog: $(OBJS)\n\tgcc -o $@ $(OBJS)\n%%.o: %%.c\n\tgcc -O1 -c $<\nclean:\n\trm -f *.o prog\n'
} >"$proj/Makefile"
chown -R --reference="$work" "$proj"
build=(sh -c 'make -s clean && make -s -j2')
for flag in --trace --trace-stat; do
    echo "bench: make -j2 of $files C files, with and without $flag, $pairs alternating pairs"
    (cd "$proj" && "${as_user[@]}" env HOME="$home" XDG_STATE_HOME="$work/state" \
        python3 "$repo/bench/alternate.py" "$pairs" 1 traced plain 9 \
        "$nook" run "$flag" --share-cwd rw -- "${build[@]}" \
        "$nook" run --share-cwd rw -- "${build[@]}") | sed 's/^/  /'
done
echo "  (target: traced / plain <= 1.5)"

# 3. A small crate, built by the cargo profile.
if command -v cargo >/dev/null; then
    crate=$work/crate
    mkdir -p "$crate/src"
    printf '[package]\nname = "tcrate"\nversion = "0.1.0"\nedition = "2021"\n' >"$crate/Cargo.toml"
    python3 - "$crate" "${MODS:-12}" <<'PY'
import sys
crate, mods = sys.argv[1], int(sys.argv[2])
main = "".join(f"mod m{i};\n" for i in range(mods))
main += "fn main() {\n" + "".join(f"    println!(\"{{}}\", m{i}::f(3));\n" for i in range(mods)) + "}\n"
open(f"{crate}/src/main.rs", "w").write(main)
for i in range(mods):
    body = "use std::collections::HashMap;\npub fn f(x: u64) -> u64 {\n"
    body += "    let mut m: HashMap<u64, String> = HashMap::new();\n"
    body += "".join(f"    m.insert({j}, format!(\"{{}}\", x * {j}));\n" for j in range(40))
    body += "    m.values().map(|s| s.len() as u64).sum()\n}\n"
    open(f"{crate}/src/m{i}.rs", "w").write(body)
PY
    chown -R --reference="$work" "$crate"
    cbuild=(sh -c 'rm -rf target && cargo build --offline -q')
    echo "bench: the cargo profile building a crate of ${MODS:-12} modules, with and without --trace, $pairs alternating pairs"
    (cd "$crate" && "${as_user[@]}" env HOME="$home" XDG_STATE_HOME="$work/state" PATH=/usr/bin:/bin \
        python3 "$repo/bench/alternate.py" "$pairs" 1 traced plain 11 \
        "$nook" run --trace --profile cargo --share-cwd rw -- "${cbuild[@]}" \
        "$nook" run --profile cargo --share-cwd rw -- "${cbuild[@]}") | sed 's/^/  /'
    echo "  (target: traced / plain <= 1.5)"
fi

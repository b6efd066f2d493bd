# Shared by the bench scripts (source it): builds nook and sets
#   nook     the release executable (its path comes from cargo, because
#            .cargo/config.toml names a target, which changes the directory)
#   home     the HOME nook runs with
#   work     a fresh working directory under it, removed on exit
#   as_user  the prefix that runs a command as the unprivileged user:
#            nook is rootless, so as root everything runs as nooktest
#            (created by .ci/setup)
# $1 names the benchmark, for messages and the directory name.
bench_setup() {
    local name=$1
    nook=$(cargo build --release --message-format=json |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "nook" and m.get("executable"):
        print(m["executable"])')
    if [ "$(id -u)" -eq 0 ]; then
        id -u nooktest >/dev/null 2>&1 || { echo "$name: user nooktest missing; run .ci/setup first" >&2; exit 1; }
        home=/home/nooktest
        work=$(mktemp -d "$home/bench-$name.XXXXXX")
        chown nooktest: "$work"
        as_user=(setpriv --reuid nooktest --regid nooktest --init-groups --reset-env)
    else
        home=$HOME
        work=$(mktemp -d "$home/.nook-bench-$name.XXXXXX")
        as_user=()
    fi
    trap 'rm -rf "$work"' EXIT
}

# Time an installed copy of nook, as bwrap is installed: the executable the
# linker wrote sits in the page cache in a form that costs about 30 more
# page faults per run here (284 against 254, the same bytes), a property of
# the build directory, not of nook.
# Sets nook to the copy in the work directory.
bench_install() {
    install -m 0755 "$nook" "$work/nook"
    nook=$work/nook
}

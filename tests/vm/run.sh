#!/usr/bin/env bash
# Run a shell script in a throwaway QEMU microVM as the unprivileged test user
# (uid 1001, nooktest) owning a delegated cgroup v2 subtree, for the tests
# that need cgroup v2 controllers this host's hierarchy does not have.
#
#   tests/vm/run.sh [--systemd-user] SCRIPT_FILE
#
# The guest boots Debian's own kernel (linux-image-amd64) with cgroup v2 only,
# sees the host's filesystem read-only at / over 9p (with tmpfs on /tmp,
# /var/tmp, /run, /dev/shm and an empty HOME), and runs `sh SCRIPT_FILE`;
# see tests/vm/guest.sh for the exact setup. The script's stdout and stderr
# stream to ours, and we exit with its status. Nothing on the host changes:
# no root, mounts, cgroups or network are needed or touched.
#
# If the VM does not boot, does not finish within VM_TIMEOUT seconds (300),
# or a host tool is missing, we print a line starting with "nook-vm: error:"
# on stderr (and the guest's console) and exit 125.
#
# The unpacked kernel and the initramfs are cached in $CARGO_TARGET_DIR/vm
# (target/vm), keyed by their inputs.
#
# Environment: VM_TIMEOUT (seconds), VM_MEMORY (QEMU -m, 1G), VM_SMP (1),
# VM_KERNEL (a /boot/vmlinuz-* to boot instead of the newest one),
# VM_VERBOSE=1 (show the guest's console on stderr after the run).
#
# Host packages: qemu-system-x86 linux-image-amd64 busybox-static xz-utils.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
cache=${CARGO_TARGET_DIR:-$repo/target}/vm
VM_TIMEOUT=${VM_TIMEOUT:-300}
VM_MEMORY=${VM_MEMORY:-1G}
VM_SMP=${VM_SMP:-1}
VM_USER=nooktest
VM_UID=1001
VM_GID=1001
VM_HOME=/home/$VM_USER
BUSYBOX=/bin/busybox
# Modules the guest loads at boot: virtio-mmio and 9p for the root, virtio
# ports for the script's output, then what nook's tests use.
MODULES=(virtio_mmio 9pnet_virtio 9p virtio_console overlay fuse tun)
# Bump when the initramfs layout changes in a way its inputs don't show.
LAYOUT=1

error() {
    echo "nook-vm: error: $*" >&2
    exit 125
}

usage() {
    echo "usage: $0 [--systemd-user] SCRIPT_FILE" >&2
    exit 2
}

mode=plain
case ${1:-} in
--systemd-user)
    mode=systemd-user
    shift
    ;;
-h | --help) usage ;;
esac
[ $# -eq 1 ] || usage
script=$1
[ -f "$script" ] && [ -r "$script" ] || error "cannot read the script $script"

# --- host tools --------------------------------------------------------------
qemu=$(command -v qemu-system-x86_64) ||
    error "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
[ -x "$BUSYBOX" ] || error "$BUSYBOX not found (apt-get install busybox-static)"
command -v xz >/dev/null || error "xz not found (apt-get install xz-utils)"
if [ -n "${VM_KERNEL:-}" ]; then
    vmlinuz=$VM_KERNEL
else
    vmlinuz=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1) || true
fi
[ -n "$vmlinuz" ] || error "no /boot/vmlinuz-*-amd64 (apt-get install linux-image-amd64)"
[ -r "$vmlinuz" ] || error "cannot read the kernel $vmlinuz"
kver=${vmlinuz##*/vmlinuz-}
moddir=/lib/modules/$kver
[ -r "$moddir/modules.dep" ] || error "$moddir/modules.dep missing for $vmlinuz"

# --- cached kernel and initramfs ----------------------------------------------
mkdir -p "$cache"

# The bzImage's payload as a plain ELF vmlinux: QEMU starts it through its
# PVH entry point, which skips the decompressor (~4 s under TCG).
build_vmlinux() { # OUT
    local off
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1)
    [ -n "$off" ] || error "no xz payload in $vmlinuz"
    tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$1.tmp" 2>/dev/null || true
    [ "$(head -c 4 "$1.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
        error "unpacking $vmlinuz did not give an ELF vmlinux"
    mv "$1.tmp" "$1"
}

# Module paths (relative to $moddir) in load order: each module after the
# modules it depends on (modules.dep lists the dependencies so that loading
# them from last to first works).
module_order() {
    local m line deps i
    local -A seen=()
    for m in "${MODULES[@]}"; do
        line=$(grep -E "(^|/)$m\.ko:" "$moddir/modules.dep") ||
            error "module $m not in $moddir/modules.dep"
        read -r -a deps <<<"${line#*:}"
        for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
            [ -n "${seen[${deps[i]}]:-}" ] || { seen[${deps[i]}]=1; echo "${deps[i]}"; }
        done
        line=${line%%:*}
        [ -n "${seen[$line]:-}" ] || { seen[$line]=1; echo "$line"; }
    done
}

build_initramfs() { # OUT
    local stage rel order
    order=$(module_order)
    stage=$(mktemp -d "$cache/stage.XXXXXX")
    mkdir -p "$stage/bin" "$stage/modules"
    cp "$BUSYBOX" "$stage/bin/busybox"
    cp "$here/init" "$stage/init"
    cp "$here/guest.sh" "$stage/guest.sh"
    chmod 0755 "$stage/init" "$stage/bin/busybox"
    for rel in $order; do
        cp "$moddir/$rel" "$stage/modules/"
        echo "${rel##*/}" >>"$stage/modules/order"
    done
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        "$BUSYBOX" cpio -o -H newc -R 0:0 >"$1.tmp" 2>/dev/null)
    rm -rf "$stage"
    mv "$1.tmp" "$1"
}

inputs_key() {
    {
        echo "layout $LAYOUT ${MODULES[*]}"
        stat -L -c '%n %s %Y' "$vmlinuz" "$BUSYBOX" "$moddir/modules.dep"
        cat "$here/init" "$here/guest.sh"
    } | sha256sum | cut -c1-16
}

vmlinux=$cache/vmlinux-$kver
key=$(inputs_key)
initramfs=$cache/initramfs-$key.cpio
stamp=$(stat -L -c '%s %Y' "$vmlinuz")
if [ ! -f "$vmlinux" ] || [ ! -f "$initramfs" ] || [ "$(cat "$vmlinux.src" 2>/dev/null)" != "$stamp" ]; then
    # Tests run in parallel: one builds, the others wait and reuse it.
    exec 9>"$cache/.lock"
    flock 9
    if [ ! -f "$vmlinux" ] || [ "$(cat "$vmlinux.src" 2>/dev/null)" != "$stamp" ]; then
        rm -f "$cache"/vmlinux-*
        build_vmlinux "$vmlinux"
        echo "$stamp" >"$vmlinux.src"
    fi
    if [ ! -f "$initramfs" ]; then
        rm -f "$cache"/initramfs-*.cpio
        build_initramfs "$initramfs"
    fi
    exec 9>&-
fi

# --- the guest's clock ---------------------------------------------------------
# microvm has no HPET or ACPI PM timer, and calibrating the TSC against the
# emulated PIT hangs some boots. Under TCG the guest's TSC ticks at the
# host's rate, so tell the kernel that rate.
tsc_khz() {
    local mhz
    mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz.*/\1/p' | head -n 1) || true
    if [ -z "$mhz" ]; then
        # dmesg may be restricted; without cpufreq, "cpu MHz" is the TSC's.
        mhz=$(sed -n 's/^cpu MHz[[:space:]]*: *\([0-9.]*\).*/\1/p' /proc/cpuinfo | head -n 1)
    fi
    [ -n "$mhz" ] && awk -v m="$mhz" 'BEGIN { printf "%d\n", m * 1000 }'
}
tsc=$(tsc_khz) || true
clock_args=""
if [ -n "$tsc" ] && [ "$tsc" -gt 0 ]; then
    clock_args="tsc_early_khz=$tsc tsc=reliable"
else
    echo "nook-vm: warning: host TSC rate unknown; the guest calibrates it (may hang until VM_TIMEOUT)" >&2
fi

# --- the job share: config and script in, status and console out ----------------
job=$(mktemp -d "${TMPDIR:-/tmp}/nook-vm.XXXXXX")
trap 'rm -rf "$job"' EXIT
cp "$script" "$job/script"
# A binary for the script ($VM_BIN), copied in: the guest covers /tmp and
# the test user's home, where a build (a CI clone) may well live.
if [ -n "${VM_BIN:-}" ]; then
    cp "$VM_BIN" "$job/bin" || error "cannot copy VM_BIN $VM_BIN"
fi
cat >"$job/config" <<EOF
VM_MODE=$mode
VM_UID=$VM_UID
VM_GID=$VM_GID
VM_USER=$VM_USER
VM_HOME=$VM_HOME
EOF

# The script's output streams to our stdout and stderr through two pipes
# that QEMU inherits as descriptors 3 and 4 (-add-fd). QEMU only takes a
# descriptor opened write-only (no terminals or sockets, which are
# read-write) and, without append=on, would truncate it; so it gets pipes of
# its own, and two cats copy them to wherever ours go.
exec 3> >(cat)
out_cat=$!
exec 4> >(cat >&2)
err_cat=$!
cmdline="console=ttyS0 rdinit=/init panic=-1 quiet cryptomgr.notests"
cmdline+=" cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 $clock_args"
cmdline+=" ${VM_APPEND:-}"

set +e
timeout --kill-after=5 "$VM_TIMEOUT" "$qemu" \
    -M microvm,x-option-roms=off -accel tcg -cpu max -m "$VM_MEMORY" -smp "$VM_SMP" \
    -nodefaults -no-user-config -display none -no-reboot \
    -chardev "file,id=console,path=$job/console" -serial chardev:console \
    -device virtio-serial-device \
    -add-fd fd=3,set=1 -chardev file,id=stdout,path=/dev/fdset/1,append=on \
    -device virtserialport,chardev=stdout,name=stdout \
    -add-fd fd=4,set=2 -chardev file,id=stderr,path=/dev/fdset/2,append=on \
    -device virtserialport,chardev=stderr,name=stderr \
    -fsdev local,id=root,path=/,security_model=none,multidevs=remap,readonly=on \
    -device virtio-9p-device,fsdev=root,mount_tag=root \
    -fsdev "local,id=job,path=$job,security_model=none" \
    -device virtio-9p-device,fsdev=job,mount_tag=job \
    -kernel "$vmlinux" -initrd "$initramfs" -append "$cmdline" </dev/null &
vm=$!
# A TERM or INT for us ends the VM too (timeout passes it on to QEMU).
interrupted=
trap 'interrupted=1; kill -TERM $vm 2>/dev/null' TERM INT
wait $vm
qemu_status=$?
# A signal interrupts the first wait; the second one collects QEMU.
if kill -0 $vm 2>/dev/null; then
    wait $vm
    qemu_status=$?
fi
trap - TERM INT
set -e
# Let the cats finish, so the script's output comes before our verdict.
exec 3>&- 4>&-
wait $out_cat $err_cat 2>/dev/null || true

show_console() {
    echo "nook-vm: --- guest console (last $1 lines) ---" >&2
    tail -n "$1" "$job/console" >&2 2>/dev/null || true
    echo "nook-vm: --- end of guest console ---" >&2
}

[ -z "$interrupted" ] || error "interrupted by a signal; the VM was stopped"
if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    show_console 400
    error "the VM did not finish within VM_TIMEOUT=$VM_TIMEOUT s (killed)"
fi
if [ ! -s "$job/status" ]; then
    show_console 400
    error "the VM ended (qemu exit status $qemu_status) without the script's exit status: it failed to boot or set up"
fi
[ "${VM_VERBOSE:-0}" != 1 ] || show_console 1000
exit "$(cat "$job/status")"

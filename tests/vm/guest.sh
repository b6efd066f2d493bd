# nook's test microVM, stage 2: PID 1 after switch_root, run by the static
# busybox that stage 1 (tests/vm/init) copied to /run/nook-vm. The root is
# the host's filesystem, read-only over 9p. This script, as root in the guest:
#
#  1. mounts /proc, /sys, cgroup2 (nsdelegate,memory_recursiveprot), /dev/pts,
#     tmpfs on /tmp /var/tmp /dev/shm and the test user's HOME, and the job
#     share (tag "job": config, script; status goes back there);
#  2. allows unprivileged user namespaces, brings up lo, opens /dev/net/tun
#     and /dev/fuse to everyone (as distributions do);
#  3. enables +memory +pids +cpu +io from the root down to user.slice and
#     delegates a subtree to the test user, either
#       plain:        user.slice/u$UID (delegated), script in u$UID/test, or
#       systemd-user: user.slice/user-$UID.slice/user@$UID.service (delegated)
#                     running `systemd --user`, script in the root-owned
#                     user-$UID.slice/session-1.scope;
#  4. runs `sh script` as the test user, its stdout and stderr through pipes
#     to the virtio ports "stdout" and "stderr" (run.sh's own stdout/stderr);
#  5. kills everything left in user.slice (cgroup.kill), writes the exit
#     status to the job share and powers off.
#
# Errors before the script runs print "nook-vm: setup failed: ..." on the
# console (run.sh shows it) and power off without a status.

BB=/run/nook-vm/busybox
# /proc first: busybox finds itself (for its applet links) through /proc/self/exe.
$BB mount -t proc -o nosuid,nodev,noexec proc /proc || $BB reboot -f
$BB mkdir -p /run/nook-vm/bin
$BB --install -s /run/nook-vm/bin
export PATH=/run/nook-vm/bin
umask 022

poweroff_now() {
    sync
    # poweroff needs ACPI; with -no-reboot a reboot ends QEMU just as well.
    poweroff -f
    reboot -f
}

fail() { # MESSAGE (also from a subshell: the console, not its stdout)
    echo "nook-vm: setup failed: $*" >/dev/console
    poweroff_now
    exit 1
}

# --- 1. mounts -------------------------------------------------------------
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fail "mount /sys"
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
    fail "mount cgroup2 on /sys/fs/cgroup"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts ||
    fail "mount /dev/pts"
ln -sf pts/ptmx /dev/ptmx
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
for d in /dev/shm /tmp /var/tmp; do
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$d" || fail "tmpfs on $d"
done

JOB=/run/nook-vm/job
mkdir -p $JOB
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job $JOB || fail "mount the job share"
# shellcheck disable=SC1091
. $JOB/config || fail "read $JOB/config"
# From config: VM_MODE (plain|systemd-user), VM_UID, VM_GID, VM_USER, VM_HOME.
UID_=$VM_UID
GID_=$VM_GID

# The script, where the test user can read it but not list its neighbours.
chmod 0711 /run/nook-vm
cp $JOB/script /run/nook-vm/script || fail "copy the script"
chmod 0644 /run/nook-vm/script
if [ -f $JOB/bin ]; then
    cp $JOB/bin /run/nook-vm/nook || fail "copy the binary"
    chmod 0755 /run/nook-vm/nook
fi

# HOME: an empty tmpfs owned by the test user.
if [ -d "$VM_HOME" ]; then
    mount -t tmpfs -o "mode=0700,uid=$UID_,gid=$GID_,nosuid,nodev" tmpfs "$VM_HOME" ||
        fail "tmpfs on $VM_HOME"
else
    # The host has no such directory to mount on: a tmpfs /home instead.
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /home || fail "tmpfs on /home"
    mkdir -p "$VM_HOME" && chown "$UID_:$GID_" "$VM_HOME" && chmod 0700 "$VM_HOME" ||
        fail "make $VM_HOME"
fi

# --- 2. kernel knobs and devices --------------------------------------------
hostname nook-vm
if [ -e /proc/sys/kernel/unprivileged_userns_clone ]; then
    echo 1 >/proc/sys/kernel/unprivileged_userns_clone || fail "allow unprivileged user namespaces"
fi
if [ "$(cat /proc/sys/user/max_user_namespaces)" -lt 1000 ]; then
    echo 15000 >/proc/sys/user/max_user_namespaces || fail "raise user.max_user_namespaces"
fi
ip link set lo up || fail "bring up lo"
chmod 0666 /dev/net/tun /dev/fuse || fail "chmod /dev/net/tun /dev/fuse"

# --- 3. cgroups --------------------------------------------------------------
CG=/sys/fs/cgroup
CTRL="+memory +pids +cpu +io"

enable() { # DIR: let DIR's children use the controllers
    echo "$CTRL" >"$1/cgroup.subtree_control" || fail "enable $CTRL in $1"
}

# What systemd's Delegate=yes does: the directory and the files the kernel
# lists as safe to delegate (/sys/kernel/cgroup/delegate) become the user's;
# the limits on DIR itself (memory.max, pids.max, ...) stay root's.
delegate() { # DIR
    chown "$UID_:$GID_" "$1" || fail "chown $1"
    while read -r f; do
        [ -e "$1/$f" ] || continue
        chown "$UID_:$GID_" "$1/$f" || fail "chown $1/$f"
    done </sys/kernel/cgroup/delegate
}

# Run COMMAND as the test user after moving this (forked) process into
# cgroup DIR, with stdin /dev/null and a clean environment: the login
# variables, NOOK_VM=1 and $EXTRA_ENV (VAR=VALUE words).
groups_opt=--clear-groups
if grep -q "^[^:]*:[^:]*:$UID_:" /etc/passwd; then
    groups_opt=--init-groups
fi
EXTRA_ENV=
as_user_in() { # DIR COMMAND...
    dir=$1
    shift
    (
        echo 0 >"$dir/cgroup.procs" || fail "move a process into $dir"
        # shellcheck disable=SC2086 # EXTRA_ENV is a list of words
        exec env -i HOME="$VM_HOME" USER="$VM_USER" LOGNAME="$VM_USER" SHELL=/bin/sh \
            PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin LANG=C.UTF-8 \
            NOOK_VM=1 $EXTRA_ENV \
            /usr/bin/setpriv --reuid="$UID_" --regid="$GID_" $groups_opt -- "$@"
    ) </dev/null
}

[ -x /usr/bin/setpriv ] || fail "/usr/bin/setpriv is missing on the host (util-linux)"

enable $CG
mkdir $CG/user.slice || fail "mkdir $CG/user.slice"
enable $CG/user.slice

case $VM_MODE in
plain)
    # user.slice/u$UID: delegated, with the controllers enabled for its
    # children; the script runs in a leaf below it that the user made, so
    # the script is not in the delegation root and nook can make siblings.
    DELEGATED=$CG/user.slice/u$UID_
    mkdir "$DELEGATED" || fail "mkdir $DELEGATED"
    delegate "$DELEGATED"
    enable "$DELEGATED"
    # Owned by the user with all its files, as if the user had made it
    # (cgroupfs gives a new cgroup's files to its creator).
    SCRIPT_CG=$DELEGATED/test
    mkdir "$SCRIPT_CG" && chown -R "$UID_:$GID_" "$SCRIPT_CG" || fail "make $SCRIPT_CG"
    ;;
systemd-user)
    # As systemd-logind and PID 1 would set it up for a login session:
    # user@$UID.service is delegated and runs the user's manager; the
    # session scope the script runs in stays root's, so a delegated cgroup
    # can only come from the user manager (systemd-run --user --scope -p
    # Delegate=yes).
    SLICE=$CG/user.slice/user-$UID_.slice
    mkdir "$SLICE" || fail "mkdir $SLICE"
    enable "$SLICE"
    MANAGER=$SLICE/user@$UID_.service
    mkdir "$MANAGER" || fail "mkdir $MANAGER"
    delegate "$MANAGER"
    SCRIPT_CG=$SLICE/session-1.scope
    mkdir "$SCRIPT_CG" || fail "mkdir $SCRIPT_CG"
    # Stand-in for PID 1: moving a process from session-1.scope into the
    # user manager's subtree needs write access to cgroup.procs of their
    # common ancestor, user-$UID.slice. On a real machine the user manager
    # gets EACCES there and asks PID 1 (AttachProcessesToUnit over the
    # system bus) to do it; there is no system manager here, so that one
    # file is the user's. The directory, its limits and session-1.scope
    # stay root's: the user still cannot make or limit cgroups there.
    chown "$UID_:$GID_" "$SLICE/cgroup.procs" || fail "chown $SLICE/cgroup.procs"

    XDG_RUNTIME_DIR=/run/user/$UID_
    mkdir -p "$XDG_RUNTIME_DIR" && chown "$UID_:$GID_" "$XDG_RUNTIME_DIR" &&
        chmod 0700 "$XDG_RUNTIME_DIR" || fail "make $XDG_RUNTIME_DIR"
    [ -x /usr/lib/systemd/systemd ] || fail "/usr/lib/systemd/systemd is missing on the host"
    # sd_booted(): a user manager refuses to start unless the system was
    # booted with systemd, which it tells by this directory.
    mkdir -p /run/systemd/system || fail "mkdir /run/systemd/system"
    # Its log goes to the console (run.sh shows it with VM_VERBOSE=1).
    EXTRA_ENV="XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR SYSTEMD_LOG_TARGET=console"
    as_user_in "$MANAGER" /usr/lib/systemd/systemd --user >/dev/console 2>&1 &
    manager_pid=$!
    i=0
    while [ ! -S "$XDG_RUNTIME_DIR/systemd/private" ]; do
        kill -0 $manager_pid 2>/dev/null || fail "systemd --user exited before it was ready"
        i=$((i + 1))
        [ $i -le 1200 ] || fail "systemd --user not ready after 120 s ($XDG_RUNTIME_DIR/systemd/private missing)"
        usleep 100000
    done
    EXTRA_ENV="XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus"
    ;;
*)
    fail "unknown VM_MODE $VM_MODE"
    ;;
esac

# --- 4. the script -----------------------------------------------------------
# Its stdout and stderr are FIFOs (pipes, as under cargo test, not the
# virtio ports' character devices); two readers copy them to the host.
port() { # NAME: the /dev node of the virtio port called NAME
    for p in /sys/class/virtio-ports/*; do
        if [ "$(cat "$p/name" 2>/dev/null)" = "$1" ]; then
            echo "/dev/${p##*/}"
            return 0
        fi
    done
    fail "no virtio port named $1"
}
out_port=$(port stdout)
err_port=$(port stderr)
mkfifo /run/nook-vm/stdout /run/nook-vm/stderr || fail "mkfifo"
cat /run/nook-vm/stdout >"$out_port" &
out_cat=$!
cat /run/nook-vm/stderr >"$err_port" &
err_cat=$!

(cd "$VM_HOME" && as_user_in "$SCRIPT_CG" /bin/sh /run/nook-vm/script) \
    >/run/nook-vm/stdout 2>/run/nook-vm/stderr
status=$?

# --- 5. clean up and report --------------------------------------------------
echo "nook-vm: the script exited with status $status; killing what is left in user.slice" >/dev/console
echo 1 >$CG/user.slice/cgroup.kill
wait $out_cat $err_cat
echo "$status" >$JOB/status
poweroff_now

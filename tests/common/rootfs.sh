#!/usr/bin/env bash
# Build the root filesystem tests/contained.rs gives rootless podman
# (`podman run --rootfs DIR:O`, as no image registry is reachable here) and
# tests/caps.rs gives `nook run --rootfs`: Debian bookworm's essential
# packages and apt (about 120 MB: /bin/sh, coreutils, apt), fetched by
# mmdebstrap from this machine's Debian mirror.
#
# Usage (as root, from .ci/setup): rootfs.sh DIR USER
#
# mmdebstrap runs as root and writes a tarball; USER then unpacks it inside
# podman's own user namespace (`podman unshare`), so every file belongs to
# whom USER's rootless containers see: root's files to USER, the others to
# USER's subordinate ids. Owned by the real root, podman could not create
# its mount points (/etc/hosts...) in the overlay's upper layer.
#
# DIR appears whole or not at all (built beside it, then renamed); an
# existing DIR is left alone. Needs podman, mmdebstrap and USER's
# containers.conf and subordinate ids (all from .ci/setup).
set -euo pipefail

dir=$1
user=$2
parent=$(dirname "$dir")
[ -d "$dir" ] && exit 0

# The machine's own Debian sources (deb822, Debian 12's default file),
# else mmdebstrap's default (deb.debian.org with updates and security).
mirror=()
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=(/etc/apt/sources.list.d/debian.sources)
fi

install -d -m 0755 "$parent"
work=$(mktemp -d "$parent/.rootfs-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"

# /etc/mtab: podman creates it in the lower directory (not the overlay) when
# it is missing, which USER may not do.
mmdebstrap --quiet --variant=apt \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='ln -s /proc/mounts "$1/etc/mtab"' \
    bookworm "$work/rootfs.tar" "${mirror[@]}"
chmod 0644 "$work/rootfs.tar"

# Device nodes can't be made in a user namespace; podman mounts /dev anyway.
install -d -o "$user" -g "$(id -g "$user")" -m 0755 "$work/rootfs"
(cd / && setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups --reset-env \
    podman --log-level=error unshare \
    tar -C "$work/rootfs" --numeric-owner -xpf "$work/rootfs.tar" --exclude='./dev/*')

mv "$work/rootfs" "$dir"

#!/usr/bin/env bash
# Root file system image of a VM test host: Debian DIST (bookworm, trixie) made by debootstrap,
# with the host's Debian cloud kernel modules and a unit that runs the test payload found on the
# second disk. Built once and cached; prints the image's path.
#
#   tests/vm/image.sh DIST
#
# The cache key is this script, DIST and the kernel version: change any and a new image is built.
# PODC_VM_CACHE (default /var/cache/podc-vm) is the cache directory. Needs root, debootstrap,
# mkfs.ext4 (e2fsprogs) and linux-image-cloud-amd64 installed on this machine; no loop mount.
set -euo pipefail

dist=${1:?usage: image.sh DIST}
cache=${PODC_VM_CACHE:-/var/cache/podc-vm}
kver=$(cd /lib/modules 2>/dev/null && printf '%s\n' *-cloud-amd64 | grep -v '^\*' | sort -V | tail -n 1)
[ -n "$kver" ] || { echo "image.sh: no cloud kernel in /lib/modules (apt-get install linux-image-cloud-amd64)" >&2; exit 2; }
key=$({ cat "$0"; echo "$dist $kver"; } | sha256sum | cut -c1-16)
img=$cache/$dist-$key.ext4
mkdir -p "$cache"
if [ -f "$img" ]; then echo "$img"; exit 0; fi

# One builder per image; a second caller waits and then finds it.
exec 9>"$cache/.lock-$dist"
flock 9
if [ -f "$img" ]; then echo "$img"; exit 0; fi

# The Debian archive this machine's apt already uses (never a host written here).
# shellcheck disable=SC2016 # $(SITE) is apt's field syntax, not the shell's
mirror=$(apt-get indextargets --format '$(SITE) $(RELEASE)' 'Identifier: Packages' 2>/dev/null |
    awk '$2 !~ /-/ { print $1; exit }')
[ -n "$mirror" ] || { echo "image.sh: no Debian archive in apt's sources" >&2; exit 2; }

work=$(mktemp -d "$cache/build-$dist.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
echo "image.sh: debootstrap $dist from the configured archive into $root" >&2
debootstrap --variant=minbase --include=systemd-sysv,systemd-container,dbus,udev,kmod,iproute2,nftables \
    "$dist" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; exit 2; }

# The kernel's modules (overlay, veth, ...) come from the host's installed cloud kernel.
mkdir -p "$root/usr/lib/modules"
cp -a "/lib/modules/$kver" "$root/usr/lib/modules/"

echo podc-vm >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# No password prompt on the serial console matters: nothing logs in. Keep boots quiet and short.
ln -sf /dev/null "$root/etc/systemd/system/getty.target"
apt_clean() { rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*; }
apt_clean

# The payload runner: the second disk (label podc-payload) carries `run`, the test itself.
cat >"$root/etc/systemd/system/podc-vm-payload.service" <<'UNIT'
[Unit]
Description=podc VM test payload (second disk)
After=multi-user.target
ConditionPathExists=/dev/disk/by-label/podc-payload

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /payload && mount -o ro /dev/disk/by-label/podc-payload /payload && exec /payload/run'
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/podc-vm-payload.service \
    "$root/etc/systemd/system/multi-user.target.wants/podc-vm-payload.service"

mkfs.ext4 -q -F -L podc-root -d "$root" "$work/root.ext4" 1536M >&2
mv "$work/root.ext4" "$img"
# Older images of this DIST are stale now.
find "$cache" -maxdepth 1 -name "$dist-*.ext4" ! -name "$(basename "$img")" -delete
echo "$img"

#!/usr/bin/env bash
# Boots one VM test host under qemu (software emulation) and runs tests/vm/guest.sh in it.
#
#   tests/vm/run.sh NAME DIST CGROUP DEB OUT
#
# NAME names the host in the output (e.g. debian12-v2); DIST is bookworm or trixie; CGROUP is
# v2 (systemd.unified_cgroup_hierarchy=1) or v1 (=0: the hybrid layout); DEB is the podc .deb
# (packaging/deb) the guest installs; OUT a directory for console.log (the whole serial console) and
# results.log (the guest's result lines, from its second serial port). The guest has no
# network device at all. Exits 0 when the guest powered itself off, 1 on a time-out
# (PODC_VM_TIMEOUT seconds, default 1200), 2 on a setup error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: run.sh NAME DIST CGROUP DEB OUT} dist=${2:?} cgroup=${3:?} deb=${4:?} out=${5:?}
case "$cgroup" in v2) unified=1 ;; v1) unified=0 ;; *) echo "run.sh: CGROUP is v1 or v2" >&2; exit 2 ;; esac

image=$("$here/image.sh" "$dist")
kver=$(cd /lib/modules && printf '%s\n' *-cloud-amd64 | sort -V | tail -n 1)
mkdir -p "$out"
rm -f "$out/console.log" "$out/results.log"

# The payload disk: podc's .deb, a static busybox for the app images, the checks and the pods.
payload=$(mktemp -d "$out/payload.XXXXXX")
trap 'rm -rf "$payload" "$out/payload.ext4"' EXIT
install -m 0644 "$deb" "$payload/podc.deb"
install -m 0755 /bin/busybox "$payload/busybox"
install -m 0755 "$here/guest.sh" "$payload/run"
cp -r "$here/pods" "$payload/pods"
# A registry for the guest to pull from, and the pod that pins its image's digest.
"$here/registry.sh" "$payload/registry"
sed "s/@DIGEST@/$(cat "$payload/registry/digest")/" "$here/pods/pulled.yaml.in" >"$payload/pods/pulled.yaml"
printf 'HOST=%s\nCGROUP=%s\n' "$name" "$cgroup" >"$payload/host.env"
size=$(($(du -sm "$payload" | cut -f1) + 16))
mkfs.ext4 -q -F -L podc-payload -d "$payload" "$out/payload.ext4" "${size}M" >/dev/null

# The root disk is the cached image, opened with snapshot=on: the guest's writes go to a
# temporary overlay that lives as long as this qemu process (so across the guest's reboot)
# and never reach the cache.
timeout --kill-after=10 "${PODC_VM_TIMEOUT:-1800}" \
    qemu-system-x86_64 -accel tcg -cpu max -m 1536 -smp 1 \
    -nodefaults -no-user-config -display none -nic none \
    -kernel "/boot/vmlinuz-$kver" -initrd "/boot/initrd.img-$kver" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.unified_cgroup_hierarchy=$unified" \
    -drive "file=$image,format=raw,if=virtio,snapshot=on" \
    -drive "file=$out/payload.ext4,format=raw,if=virtio,readonly=on" \
    -serial "file:$out/console.log" -serial "file:$out/results.log" || {
    rc=$?
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && { echo "run.sh: $name timed out" >&2; exit 1; }
    exit 2
}

#!/usr/bin/env bash
# Makes the image registry a VM test host pulls from: a busybox image whose config carries the
# defaults a pod without `exec` runs with, pushed into a throwaway docker-registry on this
# host's loopback, whose storage directory the guest then serves on its own 127.0.0.1:5000.
#
#   tests/vm/registry.sh OUT
#
# Writes OUT/storage (the registry's files), OUT/docker-registry (the binary; it needs only
# libc) and OUT/digest (the manifest digest the pod pins). Needs root (umoci unpack keeps
# owners), umoci, skopeo, docker-registry and a static busybox.
set -euo pipefail
out=${1:?usage: registry.sh OUT}
work=$(mktemp -d)
reg_pid=
cleanup() {
    [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The image: a static busybox, a working directory and a user the config names.
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:hello" >/dev/null
umoci unpack --image "$work/oci:hello" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/srv/hello"
install -m 0755 /bin/busybox "$rootfs/bin/busybox"
for tool in sh echo id pwd sleep cat; do ln -s busybox "$rootfs/bin/$tool"; done
printf 'root:x:0:0::/:/bin/sh\nhello:x:1000:1000::/srv/hello:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nhello:x:1000:\n' >"$rootfs/etc/group"
chown 1000:1000 "$rootfs/srv/hello"
umoci repack --image "$work/oci:hello" "$work/bundle" >/dev/null
# shellcheck disable=SC2016 # expanded by the app's shell, in the pod
umoci config --image "$work/oci:hello" \
    --config.entrypoint /bin/sh --config.entrypoint -c \
    --config.cmd 'echo "pulled: $GREETING in $(pwd) as $(id -u):$(id -g)"; echo changed >note && echo "wrote: $(cat note)"; exec sleep 3600' \
    --config.env GREETING=hello-from-the-image-config --config.env PATH=/bin \
    --config.workingdir /srv/hello --config.user hello >/dev/null

# A registry on a free loopback port of this host, only for as long as the push takes.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/storage"
cat >"$work/config.yml" <<CONFIG
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
CONFIG
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
    (exec 5<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
skopeo copy -q --dest-tls-verify=false --digestfile "$work/digest" \
    "oci:$work/oci:hello" "docker://127.0.0.1:$port/podc/hello:1"
kill "$reg_pid"
wait "$reg_pid" 2>/dev/null || true
reg_pid=

rm -rf "$out/storage"
mkdir -p "$out"
cp -a "$work/storage" "$out/storage"
install -m 0755 "$(command -v docker-registry)" "$out/docker-registry"
cp "$work/digest" "$out/digest"

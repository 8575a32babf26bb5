#!/usr/bin/env bash
# Boots the SD image under qemu-system-aarch64 (-M virt -cpu cortex-a72)
# with the kernel and initramfs taken from the image's own boot partition,
# and passes only when the bunkerd service inside answers /healthz through a
# port forward on 127.0.0.1, the first-boot growth of the root partition ran,
# and a QMP power-button press shuts the box down cleanly.
#
#   cross/image/boot-test.sh [IMAGE.img.zst]   (default: build.sh's output)
#
# Environment: BUNKER_BOOT_TIMEOUT (seconds to /healthz, default 900),
# BUNKER_IMAGE_DIR (as build.sh). The guest's network is qemu's user
# network with restrict=on: it reaches nothing but the port forward.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${BUNKER_IMAGE_DIR:-$HOME/.cache/bunker/image}"
timeout_s="${BUNKER_BOOT_TIMEOUT:-900}"
fail() { echo "boot-test: $*" >&2; exit 1; }
log() { echo "boot-test: $*" >&2; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)"
image="${1:-$cache/out/bunker-$version-arm64.img.zst}"
[ -f "$image" ] || fail "no image at $image (run cross/image/build.sh)"
[ -f "$image.sha256" ] || fail "no checksum $image.sha256 next to the image"

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
tools=(qemu-system-aarch64 mcopy curl python3 zstd sfdisk socat)
pkgs=(qemu-system-arm mtools curl python3 zstd fdisk socat)
missing=()
for i in "${!tools[@]}"; do
    command -v "${tools[$i]}" >/dev/null || missing+=("${pkgs[$i]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    sudo_ apt-get update -qq
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || fail "cannot install ${missing[*]}"
fi

(cd "$(dirname "$image")" && sha256sum --quiet -c "$(basename "$image").sha256") \
    || fail "$image does not match its sha256"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/bunker-boot-test.XXXXXX")"
qemu_pid=
cleanup() {
    # The console log outlives the test: it is what to read when it fails.
    if [ -f "$tmp/serial.log" ]; then
        mkdir -p "$cache/out" && cp "$tmp/serial.log" "$cache/out/boot-test-serial.log" \
            && echo "boot-test: console log kept in $cache/out/boot-test-serial.log" >&2
    fi
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    regtest_stop
    rm -rf "$tmp"
}
trap cleanup EXIT

start=$(date +%s)
disk="$tmp/disk.img"
zstd -q -d "$image" -o "$disk"
# A card bigger than the image, as in real life: first boot must grow root.
truncate -s +512M "$disk"

# Kernel and initramfs from the FAT boot partition, found via the partition
# table (mtools reads the partition in place: no loop device).
boot_start=$(sfdisk -J "$disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["start"])')
fat="$disk@@$(( boot_start * 512 ))"
kernel_name=$(mdir -b -i "$fat" ::/ | sed -n 's|^::/||p' | grep '^vmlinuz-' | sort -V | tail -n 1)
initrd_name=$(mdir -b -i "$fat" ::/ | sed -n 's|^::/||p' | grep '^initrd.img-' | sort -V | tail -n 1)
if [ -z "$kernel_name" ] || [ -z "$initrd_name" ]; then
    fail "no vmlinuz-*/initrd.img-* in the image's boot partition"
fi
mcopy -i "$fat" "::/$kernel_name" "$tmp/vmlinuz"
mcopy -i "$fat" "::/$initrd_name" "$tmp/initrd.img"
log "kernel $kernel_name, initramfs $initrd_name"

# A free port on loopback for the forward to the guest's admin page.
# Lightning in the guest (issue 6): a regtest chain on the host's loopback,
# reached from the guest at 10.0.2.100:18443 through one explicit slirp
# forward (the guest still reaches nothing else; `cmd:` runs one socat per
# connection, where a `tcp:` chardev would carry only the first), and the chain source given
# to bunker.service through the manager environment.
# shellcheck source=cross/regtest-chain.sh
. "$root/cross/regtest-chain.sh"
regtest_start "$tmp/chain" || fail "the regtest chain for the guest's Lightning node did not come up"
ln_env="systemd.setenv=BUNKER_LN_NETWORK=regtest systemd.setenv=BUNKER_LN_CHAIN=bitcoind:bunker:$REGTEST_PASSWORD@10.0.2.100:18443"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
serial="$tmp/serial.log"
qmp="$tmp/qmp.sock"

qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
    -kernel "$tmp/vmlinuz" -initrd "$tmp/initrd.img" \
    -append "root=LABEL=RASPIROOT rw console=ttyAMA0 net.ifnames=0 rootwait systemd.journald.forward_to_console=1 $ln_env" \
    -drive "file=$disk,format=raw,if=none,id=hd0" -device virtio-blk-pci,drive=hd0 \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8080,guestfwd=tcp:10.0.2.100:18443-cmd:socat - TCP:127.0.0.1:$REGTEST_PORT" -device virtio-net-pci,netdev=n0 \
    -qmp "unix:$qmp,server=on,wait=off" \
    -display none -monitor none -serial "file:$serial" -no-reboot &
qemu_pid=$!
log "qemu pid $qemu_pid, admin page forwarded to 127.0.0.1:$port, serial log $serial"

deadline=$(( $(date +%s) + timeout_s ))
body=
while :; do
    kill -0 "$qemu_pid" 2>/dev/null || { tail -n 40 "$serial" >&2; fail "qemu exited before /healthz answered"; }
    if grep -s -a -q 'bunker.service: Failed with result' "$serial"; then
        grep -a 'bunkerd\[' "$serial" | tail -n 20 >&2
        fail "bunker.service failed in the guest (its log lines above)"
    fi
    body=$(curl -s --max-time 5 "http://127.0.0.1:$port/healthz" || true)
    [ "$body" = ok ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
        tail -n 60 "$serial" >&2
        fail "no /healthz from the guest within ${timeout_s}s"
    fi
    sleep 3
done
healthz_s=$(( $(date +%s) - start ))
log "/healthz answered 'ok' after ${healthz_s}s"

# The service, not some other process, is ready: systemd says so on the console.
# ldk-node inside the booted aarch64 image, synced to the host's chain.
ln_deadline=$(( $(date +%s) + 600 ))
until grep -a -q 'Lightning node started' "$serial"; do
    if [ "$(date +%s)" -ge "$ln_deadline" ]; then
        grep -a -i 'lightning\|ldk\|chain' "$serial" | tail -n 20 >&2
        fail "the guest's Lightning node did not start within 600 s of /healthz"
    fi
    sleep 3
done
log "Lightning node started in the guest after $(( $(date +%s) - start ))s: $(grep -a -o 'Lightning node started.*' "$serial" | head -n 1)"

grep -q 'Started bunker.service\|Started .*Bunker storage box daemon' "$serial" \
    || { tail -n 60 "$serial" >&2; fail "console does not show bunker.service started"; }
# The journal goes to the console (forward_to_console on the kernel command
# line), so the daemon's own words and any complaint about our files show.
grep -q 'bunkerd is ready' "$serial" \
    || { tail -n 60 "$serial" >&2; fail "bunkerd's 'bunkerd is ready' log line is not on the console"; }
if grep -a -E '61-bunker\.rules|(sysusers|tmpfiles)\.d/bunker\.conf|bunker\.service:.*(Failed|Unknown|Invalid)' "$serial" >&2; then
    fail "systemd or udev complained about Bunker's files (lines above)"
fi
# The initramfs checked the root file system before mounting it (a box is
# unplugged while writing sooner or later).
grep -a -q 'RASPIROOT: clean' "$serial" \
    || { grep -a -i 'fsck' "$serial" >&2 || true; fail "the initramfs did not fsck the root file system"; }
grep -q 'bunker-growroot: grew ' "$serial" \
    || { grep -a 'growroot' "$serial" >&2 || true; fail "first-boot growth of the root partition did not run"; }

# Press the power button; the box must stop by itself.
"$here/qmp.py" "$qmp" system_powerdown >/dev/null || fail "QMP system_powerdown failed"
t=$(date +%s)
for _ in $(seq 1 120); do
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 1
done
if kill -0 "$qemu_pid" 2>/dev/null; then
    tail -n 40 "$serial" >&2
    fail "guest did not power off within 120 s of the power button"
fi
wait "$qemu_pid" || true
qemu_pid=
grep -q 'reboot: Power down' "$serial" || { tail -n 40 "$serial" >&2; fail "qemu stopped, but not by a clean power-off"; }
if grep -q 'bunker.service: .*\(Failed\|timed out\|SIGKILL\)' "$serial"; then
    grep 'bunker.service' "$serial" >&2
    fail "bunker.service did not stop cleanly"
fi
log "clean power-off $(( $(date +%s) - t ))s after the power button"
echo "boot to /healthz: ${healthz_s} s"

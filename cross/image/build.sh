#!/usr/bin/env bash
# Builds the Bunker SD-card image from Debian packages alone (no internet
# beyond Debian's mirror): a cached arm64 base root file system (base.sh),
# plus the cross-built bunkerd, its systemd units and config, assembled into
# an MBR disk image with a FAT32 boot partition (Raspberry Pi firmware,
# kernel, initramfs) and an ext4 root, without loop devices or mounts.
#
#   cross/image/build.sh              build (reusing the cached base)
#
# Environment:
#   BUNKER_BIN_DIR    where the aarch64 bunkerd and bunker are (default:
#                     cross/build.sh's output dir; cross/build.sh runs when
#                     they are missing there)
#   BUNKER_IMAGE_DIR  cache and output (default ~/.cache/bunker/image)
#   BUNKER_ZSTD_LEVEL compression level (default 10; CI uses 3, which is
#                     several times faster and a little bigger)
#
# Output: $BUNKER_IMAGE_DIR/out/bunker-VERSION-arm64.img.zst and .sha256;
# the time of each step goes to $BUNKER_IMAGE_DIR/out/timings.txt.
# Needs root (file ownership inside the image); installs missing packages.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${BUNKER_IMAGE_DIR:-$HOME/.cache/bunker/image}"
out_dir="$cache/out"
level="${BUNKER_ZSTD_LEVEL:-10}"
fail() { echo "image: $*" >&2; exit 1; }
log() { echo "image: $*" >&2; }
now() { date +%s; }

case "$level" in [1-9]|1[0-9]) ;; *) fail "BUNKER_ZSTD_LEVEL must be 1..19, not '$level'" ;; esac
[ "$(id -u)" -eq 0 ] || fail "must run as root: the root file system holds files of several owners"

# ---- tools ---------------------------------------------------------------
need=(mmdebstrap mkfs.vfat mcopy mkfs.ext4 sfdisk zstd systemctl systemd-sysusers)
pkgs=(mmdebstrap dosfstools mtools e2fsprogs fdisk zstd systemd systemd)
missing=()
for i in "${!need[@]}"; do
    command -v "${need[$i]}" >/dev/null || missing+=("${pkgs[$i]}")
done
[ -e /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# arm64 maintainer scripts run under qemu-user through binfmt_misc.
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt" \
        || fail "binfmt_misc is not mounted at $binfmt and cannot be (run: mount -t binfmt_misc binfmt_misc $binfmt)"
fi
if [ ! -e "$binfmt/qemu-aarch64" ]; then
    conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -r "$conf" ] || fail "$conf missing (apt-get install qemu-user-static)"
    grep -v '^#' "$conf" > "$binfmt/register" || fail "cannot register qemu-aarch64 from $conf in $binfmt"
fi
[ "$(head -n 1 "$binfmt/qemu-aarch64")" = enabled ] || fail "binfmt_misc entry qemu-aarch64 is disabled"

# ---- the daemon ----------------------------------------------------------
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)"
[ -n "$version" ] || fail "no workspace version in $root/Cargo.toml"
bin_dir="${BUNKER_BIN_DIR:-${BUNKER_CROSS_TARGET_DIR:-$HOME/.cache/bunker/target-aarch64}/aarch64-unknown-linux-gnu/appliance}"
if [ -z "${BUNKER_BIN_DIR:-}" ] && { [ ! -x "$bin_dir/bunkerd" ] || [ ! -x "$bin_dir/bunker" ]; }; then
    log "no cross-built bunkerd/bunker in $bin_dir; running cross/build.sh"
    "$root/cross/build.sh" >&2
fi
for b in bunkerd bunker; do
    [ -x "$bin_dir/$b" ] || fail "$b not found or not executable in $bin_dir"
    readelf -h "$bin_dir/$b" | grep -q 'Machine:.*AArch64' || fail "$bin_dir/$b is not an aarch64 ELF"
done

mkdir -p "$cache" "$out_dir"
timings="$out_dir/timings.txt"
: > "$timings"
record() { printf '%-28s %5d s\n' "$1" "$2" | tee -a "$timings" >&2; }

# ---- base root file system, cached by recipe -----------------------------
key="$(cat "$here/base.sh" "$here/initramfs-modules" "$here/overlay/etc/fstab" | sha256sum | cut -c1-16)"
base="$cache/base-$key.tar"
t=$(now)
if [ -s "$base" ]; then
    log "base root file system $base (cached)"
    base_state=warm
else
    log "building base root file system $base (takes ~10 min on 2 cores)"
    # mmdebstrap picks its output format from the name: keep .tar last.
    partial="$cache/base-$key.partial.tar"
    rm -f "$cache"/base-*.partial.tar
    "$here/base.sh" "$partial" || fail "mmdebstrap failed; see its output above"
    mv "$partial" "$base"
    # Older bases are dead weight once the recipe changed.
    find "$cache" -maxdepth 1 -name 'base-*.tar' ! -name "base-$key.tar" ! -name '*.partial.tar' -delete
    base_state=cold
fi
record "base rootfs ($base_state)" $(( $(now) - t ))

# ---- assemble the root file system ---------------------------------------
t=$(now)
work="$cache/work"
rm -rf "$work"
mkdir -p "$work/rootfs"
rootfs="$work/rootfs"
tar -C "$rootfs" --numeric-owner -xpf "$base"

for b in bunkerd bunker; do
    install -D -m 0755 "$bin_dir/$b" "$rootfs/usr/bin/$b"
done
"$root/systemd/install.sh" "$rootfs"
# Files both images carry, then what only the Debian image needs.
cp -a "$root/buildroot/board/bunker/rootfs-overlay/." "$rootfs/"
cp -a "$here/overlay/." "$rootfs/"
install -D -m 0644 "$root/README.md" "$rootfs/usr/share/doc/bunker/README.md"

# The user and groups now, so that files below get their owners; sysusers
# creates the same again on the box if they are missing.
systemd-sysusers --root="$rootfs" >/dev/null
# The admin page is on the LAN (and on qemu's port forward in the boot test).
# Until the page has a login, anyone on the LAN can open it.
cfg="$rootfs/etc/bunker/bunker.toml"
install -D -m 0640 -g "$(awk -F: '$1=="bunker"{print $3}' "$rootfs/etc/group")" \
    "$root/firmware/bunkerd/bunker.example.toml" "$cfg"
sed -i 's/^addr = "127\.0\.0\.1:8080"$/addr = "0.0.0.0:8080"/' "$cfg"
grep -q '^addr = "0.0.0.0:8080"$' "$cfg" || fail "could not set web.addr to 0.0.0.0:8080 in $cfg (example config changed?)"
# The image's daemon must accept the image's config (an example config newer
# than the binary would otherwise only show as a service failing on boot).
# Runs the arm64 binary in the image's root under qemu-user.
if ! out=$(chroot "$rootfs" /usr/bin/bunkerd --config /etc/bunker/bunker.toml --print-config 2>&1 >/dev/null); then
    fail "the image's bunkerd rejects the image's config: $out (rebuild it: cross/build.sh)"
fi
chgrp "$(awk -F: '$1=="bunker"{print $3}' "$rootfs/etc/group")" "$rootfs/etc/bunker"
chmod 0750 "$rootfs/etc/bunker"

# raspi-firmware's kernel hooks read this on every kernel update on the box;
# cmdline.txt is what they would write from it.
printf 'ROOTPART=LABEL=RASPIROOT\nCONSOLES="serial0,115200 tty1"\n' > "$rootfs/etc/default/raspi-firmware"
echo "console=serial0,115200 console=tty1 root=LABEL=RASPIROOT rw fsck.repair=yes net.ifnames=0 rootwait" \
    > "$rootfs/boot/firmware/cmdline.txt"
ls "$rootfs"/boot/firmware/vmlinuz-* "$rootfs"/boot/firmware/initrd.img-* >/dev/null 2>&1 \
    || fail "no kernel or initramfs in /boot/firmware of the base (raspi-firmware hooks did not run?)"

# First boot: a new machine id, no interactive first-boot questions.
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
ln -sf /dev/null "$rootfs/etc/systemd/system/systemd-firstboot.service"
ln -sf /usr/share/zoneinfo/UTC "$rootfs/etc/localtime"
echo UTC > "$rootfs/etc/timezone"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
systemctl --root="$rootfs" --quiet enable \
    bunker.service bunker-growroot.service systemd-networkd.service \
    systemd-resolved.service systemd-timesyncd.service avahi-daemon.service
record "rootfs customisation" $(( $(now) - t ))

# ---- file systems and the disk image ------------------------------------
t=$(now)
boot_mib=256
boot_img="$work/boot.vfat"
mkfs.vfat -F 32 -n RASPIFIRM -C "$boot_img" $(( boot_mib * 1024 )) >/dev/null
mcopy -s -p -m -i "$boot_img" "$rootfs"/boot/firmware/* ::/
find "$rootfs/boot/firmware" -mindepth 1 -delete

# Root: what it holds plus a third, at least 256 MiB of room; it grows to
# the whole card on first boot.
used_mib=$(( $(du -s -B1M --apparent-size "$rootfs" | cut -f1) ))
root_mib=$(( used_mib + used_mib / 3 + 256 ))
root_img="$work/root.ext4"
mkfs.ext4 -q -F -L RASPIROOT -d "$rootfs" "$root_img" "${root_mib}M" \
    || fail "mkfs.ext4 -d failed"

img="$work/bunker.img"
start_mib=4
total_mib=$(( start_mib + boot_mib + root_mib ))
rm -f "$img"
truncate -s "${total_mib}M" "$img"
sfdisk --quiet "$img" <<PARTS || fail "sfdisk failed on $img"
label: dos
unit: sectors
start=$(( start_mib * 2048 )), size=$(( boot_mib * 2048 )), type=c, bootable
start=$(( (start_mib + boot_mib) * 2048 )), size=$(( root_mib * 2048 )), type=83
PARTS
dd if="$boot_img" of="$img" bs=1M seek="$start_mib" conv=notrunc,sparse status=none
dd if="$root_img" of="$img" bs=1M seek=$(( start_mib + boot_mib )) conv=notrunc,sparse status=none
record "image assembly" $(( $(now) - t ))

# ---- compress ------------------------------------------------------------
t=$(now)
name="bunker-$version-arm64.img.zst"
zstd -q -f -T0 "-$level" "$img" -o "$out_dir/$name.partial"
mv "$out_dir/$name.partial" "$out_dir/$name"
(cd "$out_dir" && sha256sum "$name" > "$name.sha256")
rm -rf "$work"
record "compression (zstd -$level)" $(( $(now) - t ))
log "$out_dir/$name ($(( $(stat -c %s "$out_dir/$name") / 1048576 )) MiB, raw ${total_mib} MiB)"
echo "$out_dir/$name"

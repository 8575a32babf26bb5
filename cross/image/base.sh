#!/usr/bin/env bash
# The recipe of the image's base root file system: Debian bookworm arm64
# from Debian's mirror only, with the kernel, the Raspberry Pi boot firmware,
# systemd, udev, networking, avahi and the tools for first-boot growth.
# Nothing of Bunker is in it, so a new bunkerd does not rebuild it.
#
#   cross/image/base.sh OUT.tar
#
# build.sh caches OUT.tar under a name made of the hash of this file and of
# every file it reads (recipe_files below), so changing the recipe rebuilds
# it and nothing else does.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: base.sh OUT.tar}"
mirror="${BUNKER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${BUNKER_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
suite=bookworm

packages=(
    systemd systemd-sysv systemd-timesyncd systemd-resolved udev dbus kmod
    linux-image-arm64 initramfs-tools zstd raspi-firmware
    avahi-daemon libnss-mdns
    fdisk e2fsprogs iproute2
)

# Initramfs settings go in before the kernel is installed, so that its
# postinst builds the small initramfs at once. FSTYPE=ext4 makes it pack
# e2fsck, so that a box unplugged while writing checks its root before
# mounting it (its fsck hook would otherwise probe the root device, which
# does not exist in the chroot, and leave fsck out). (only files no package owns:
# a pre-existing conffile would stop dpkg at a question); /boot/firmware must
# exist for raspi-firmware's hooks to copy kernel, initramfs and device
# trees there.
setup_hook=$(cat <<HOOK
set -e
mkdir -p "\$1/boot/firmware" "\$1/etc/initramfs-tools/conf.d" "\$1/usr/share/initramfs-tools/modules.d"
printf 'MODULES=list\nCOMPRESS=zstd\nFSTYPE=ext4\n' > "\$1/etc/initramfs-tools/conf.d/bunker"
cp "$here/initramfs-modules" "\$1/usr/share/initramfs-tools/modules.d/bunker"
cp "$here/overlay/etc/fstab" "\$1/etc/fstab"
HOOK
)

# raspi-firmware's settings are a conffile: change it after installation,
# then run its kernel hook again so cmdline.txt names the root by label (the
# same settings make later kernel updates on the box keep it so).
customize_hook=$(cat <<'HOOK'
set -e
printf 'ROOTPART=LABEL=RASPIROOT\nCONSOLES="serial0,115200 tty1"\n' > "$1/etc/default/raspi-firmware"
for v in "$1"/boot/vmlinuz-*; do
    chroot "$1" /etc/kernel/postinst.d/z50-raspi-firmware "${v#"$1"/boot/vmlinuz-}"
done
rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin
HOOK
)

mmdebstrap --variant=apt --architectures=arm64 \
    --components="main non-free-firmware" \
    --include="$(IFS=,; echo "${packages[*]}")" \
    --setup-hook="$setup_hook" \
    --customize-hook="$customize_hook" \
    "$suite" "$out" \
    "deb $mirror $suite main non-free-firmware" \
    "deb $mirror $suite-updates main non-free-firmware" \
    "deb $security $suite-security main non-free-firmware"

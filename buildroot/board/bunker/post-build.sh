#!/usr/bin/env bash
# Buildroot post-build script: what the Buildroot image shares with the
# Debian one (cross/image/build.sh) besides the bunker package's own files.
# Called by Buildroot with TARGET_DIR as $1 and BR2_CONFIG in the environment.
set -euo pipefail

target="${1:?usage: post-build.sh TARGET_DIR}"
board="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$board/../../.." && pwd)"

# The service files (the package installs them too; doing it here keeps a
# rebuild of the overlay in step with systemd/ without rebuilding Rust).
"$repo/systemd/install.sh" "$target"

# The data root is created by tmpfiles on boot; the config is readable by
# the daemon's group only.
if [ -f "$target/etc/bunker/bunker.toml" ]; then
    chmod 0640 "$target/etc/bunker/bunker.toml"
fi

# The admin page listens on the LAN in the image; until it has a login,
# anyone on the LAN can open it (same choice as the Debian image).
if [ -f "$target/etc/bunker/bunker.toml" ]; then
    sed -i 's/^addr = "127\.0\.0\.1:8080"$/addr = "0.0.0.0:8080"/' "$target/etc/bunker/bunker.toml"
fi

# The boot partition is mounted where Debian's raspi-firmware puts it.
mkdir -p "$target/boot/firmware"
if ! grep -q '^LABEL=RASPIFIRM' "$target/etc/fstab"; then
    echo 'LABEL=RASPIFIRM /boot/firmware vfat rw,noatime,nofail,umask=0077 0 2' >> "$target/etc/fstab"
fi

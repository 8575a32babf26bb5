#!/usr/bin/env bash
# Buildroot post-image script: assembles sdcard.img with genimage from the
# board's genimage.cfg, listing every boot file the rpi-firmware package
# and the kernel produced, then compresses it for Raspberry Pi Imager.
# Called by Buildroot with BINARIES_DIR as $1; BUILD_DIR in the environment.
set -euo pipefail

binaries="${1:?usage: post-image.sh BINARIES_DIR}"
board="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${BUILD_DIR:?BUILD_DIR is not set (run from Buildroot)}"

cfg="$binaries/genimage.cfg"
files=()
for f in "$binaries"/*.dtb "$binaries"/rpi-firmware/*; do
    [ -e "$f" ] || continue
    files+=("${f#"$binaries"/}")
done
kernel=$(sed -n 's/^kernel=//p' "$binaries/rpi-firmware/config.txt")
[ -n "$kernel" ] || { echo "post-image: no kernel= line in rpi-firmware/config.txt" >&2; exit 1; }
files+=("$kernel")
boot_files=$(printf '\\t\\t\\t"%s",\\n' "${files[@]}")
sed "s|#BOOT_FILES#|${boot_files}|" "$board/genimage.cfg" > "$cfg"

# genimage copies its root path; an empty one keeps it from copying the
# whole target tree (the ext4 image is already built).
rootpath="$(mktemp -d)"
trap 'rm -rf "$rootpath"' EXIT
rm -rf "$BUILD_DIR/genimage.tmp"
genimage \
    --rootpath "$rootpath" \
    --tmppath "$BUILD_DIR/genimage.tmp" \
    --inputpath "$binaries" \
    --outputpath "$binaries" \
    --config "$cfg"

zstd -q -f -T0 -10 "$binaries/sdcard.img" -o "$binaries/sdcard.img.zst"
(cd "$binaries" && sha256sum sdcard.img.zst > sdcard.img.zst.sha256)
echo "post-image: $binaries/sdcard.img.zst"

#!/usr/bin/env bash
# Installs the service files into a root file system tree, at the paths a
# Debian or Buildroot system reads them from. Shared by verify.sh, the
# Debian image (cross/image) and the Buildroot package, so all three carry
# the same files.
#
#   systemd/install.sh DESTDIR
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DESTDIR" >&2
    exit 2
fi
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$1"

install -D -m 0644 "$src/bunker.service"  "$dest/usr/lib/systemd/system/bunker.service"
install -D -m 0644 "$src/bunker.sysusers" "$dest/usr/lib/sysusers.d/bunker.conf"
install -D -m 0644 "$src/bunker.tmpfiles" "$dest/usr/lib/tmpfiles.d/bunker.conf"
install -D -m 0644 "$src/61-bunker.rules" "$dest/usr/lib/udev/rules.d/61-bunker.rules"
install -D -m 0644 "$src/bunker-growroot.service" "$dest/usr/lib/systemd/system/bunker-growroot.service"
install -D -m 0755 "$src/growroot" "$dest/usr/lib/bunker/growroot"
install -D -m 0644 "$src/80-bunker.preset" "$dest/usr/lib/systemd/system-preset/80-bunker.preset"
# Mounting adopted USB data disks (root helper; the daemon keeps no capability).
install -D -m 0644 "$src/bunker-mount.service" "$dest/usr/lib/systemd/system/bunker-mount.service"
install -D -m 0644 "$src/bunker-mount.path" "$dest/usr/lib/systemd/system/bunker-mount.path"
install -D -m 0755 "$src/bunker-mount" "$dest/usr/lib/bunker/bunker-mount"
install -D -m 0644 "$src/61-bunker-mount.rules" "$dest/usr/lib/udev/rules.d/61-bunker-mount.rules"

#!/usr/bin/env bash
# Checks the service files the way systemd itself reads them: stages a root
# file system with the files at their installed paths (and a stand-in for
# /usr/bin/bunkerd, so that ExecStart resolves), then
#   - systemd-analyze verify --root=STAGE bunker.service  (fails on ANY output)
#   - systemd-sysusers --root=STAGE   creates the user and groups
#   - systemd-tmpfiles --root=STAGE --create   creates the data root with the
#     owner and modes the service expects
#
#   systemd/verify.sh
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stage="$(mktemp -d "${TMPDIR:-/tmp}/bunker-systemd-verify.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
fail() { echo "systemd/verify: $*" >&2; exit 1; }

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
    command -v "$tool" >/dev/null || fail "$tool not found (apt-get install systemd)"
done

# The units a real system has (sysinit.target, network-online.target, ...),
# from this machine's systemd, so dependencies resolve as on the box.
mkdir -p "$stage/usr/lib/systemd"
cp -a "$(realpath /usr/lib/systemd/system)" "$stage/usr/lib/systemd/system" \
    || fail "cannot copy this machine's systemd units"
"$src/install.sh" "$stage"
mkdir -p "$stage/etc" "$stage/usr/bin" "$stage/usr/sbin" "$stage/var/lib"
printf '#!/bin/sh\nexit 0\n' > "$stage/usr/bin/bunkerd"
chmod 0755 "$stage/usr/bin/bunkerd"
cp "$stage/usr/bin/bunkerd" "$stage/usr/sbin/nologin"
# Other programs the units run come with any base system.
cp /usr/bin/touch "$stage/usr/bin/touch"
: > "$stage/etc/passwd"
: > "$stage/etc/group"

# 1. The unit, as systemd parses it. Any line at all (warning, unknown key,
#    missing executable) is a failure: systemd only warns about mistakes
#    that silently turn hardening off.
out="$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify --root="$stage" bunker.service bunker-growroot.service \
    bunker-mount.service bunker-mount.path 2>&1)" \
    || fail "systemd-analyze verify failed: $out"
if [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    fail "systemd-analyze verify printed the lines above"
fi

# 2. sysusers: the user and every supplementary group the unit names exist.
out="$(systemd-sysusers --root="$stage" 2>&1)" || fail "systemd-sysusers failed: $out"
grep -q '^bunker:' "$stage/etc/passwd" || fail "sysusers did not create user bunker"
groups="$(sed -n 's/^SupplementaryGroups=//p' "$src/bunker.service")"
for g in bunker $groups; do
    line="$(grep "^$g:" "$stage/etc/group")" || fail "sysusers did not create group $g named by the unit"
    if [ "$g" != bunker ]; then
        case ",${line##*:}," in
            *,bunker,*) ;;
            *) fail "user bunker is not a member of group $g ($line)" ;;
        esac
    fi
done
# Every group the udev rules hand devices to is one that sysusers creates.
while read -r g; do
    grep -q "^$g:" "$stage/etc/group" || fail "udev rule uses group $g that sysusers does not create"
done < <(grep -o 'GROUP="[^"]*"' "$src/61-bunker.rules" | sed 's/GROUP="\(.*\)"/\1/' | sort -u)

# 3. tmpfiles: the data root exists, owned by bunker, mode 0700.
out="$(systemd-tmpfiles --root="$stage" --create 2>&1)" || fail "systemd-tmpfiles failed: $out"
[ -z "$out" ] || fail "systemd-tmpfiles printed: $out"
uid="$(awk -F: '$1=="bunker"{print $3}' "$stage/etc/passwd")"
[ "$(stat -c '%a %u' "$stage/var/lib/bunker")" = "700 $uid" ] \
    || fail "/var/lib/bunker is $(stat -c '%a %u' "$stage/var/lib/bunker"), want 700 owned by bunker ($uid)"
[ -d "$stage/var/lib/bunker/disks" ] || fail "/var/lib/bunker/disks not created"

# 4. The data root named in the unit is the one ExecStart passes and the one
#    tmpfiles creates: a mismatch would leave the daemon read-only.
grep -q '^ReadWritePaths=/var/lib/bunker$' "$src/bunker.service" || fail "ReadWritePaths is not exactly the data root"
grep -q -- '--data-dir /var/lib/bunker' "$src/bunker.service" || fail "ExecStart does not use the data root"

echo "systemd/verify: ok (systemd $(systemd-analyze --version | awk 'NR==1{print $2}'))"

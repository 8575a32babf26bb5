#!/usr/bin/env bash
# Fetches Bitcoin Knots' bitcoind for Bunker's regtest chain and prints the
# directory that holds it.
#
# Debian ships Knots only in sid (package `bitcoin-knots`), built against sid's
# glibc, so it is not installed into the system: the package and the sid shared
# libraries it needs (libc6 included, for sid's own ld-linux-x86-64.so.2) are
# downloaded with `apt-get download` through a private sources list and private
# apt state, unpacked with `dpkg-deb -x`, and laid out as
#
#   <dir>/bin/bitcoind, <dir>/bin/bitcoin-cli
#   <dir>/lib/ld-linux-x86-64.so.2 and every shared library, flat
#
# Run it as:
#   <dir>/lib/ld-linux-x86-64.so.2 --library-path <dir>/lib <dir>/bin/bitcoind -regtest ...
# (<dir>/bitcoind is a small wrapper that does exactly that.)
#
# Cached: a second run only checks the cache and prints the directory.
# If Debian cannot be reached, CI falls back to the same bundle kept in
# ../shared/vendor (beside the repository), checked against its sha256 file.
#
# Environment:
#   BUNKER_CACHE           cache root (default ~/.cache/bunker)
#   BUNKER_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   BUNKER_BITCOIND_NO_DOWNLOAD=1  skip Debian, use the vendored bundle only
#
# stdout: the directory, and nothing else. Progress goes to stderr.
set -euo pipefail

log() { printf 'fetch-bitcoind: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "$(uname -m)" in
  x86_64) ;;
  *) die "only amd64 hosts are supported (this is $(uname -m)); the regtest chain runs on the build machine" ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache_root="${BUNKER_CACHE:-$HOME/.cache/bunker}"
dest="$cache_root/bitcoind-knots"
mirror="${BUNKER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
vendor_tar="$repo/../shared/vendor/bitcoind-knots-29.4-amd64.tar.xz"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# True when $1 holds a bundle whose bitcoind starts through its own loader.
bundle_ok() {
  local d="$1"
  [[ -x "$d/lib/ld-linux-x86-64.so.2" && -x "$d/bin/bitcoind" && -f "$d/.complete" ]] || return 1
  "$d/lib/ld-linux-x86-64.so.2" --library-path "$d/lib" "$d/bin/bitcoind" -version >/dev/null 2>&1
}

# Writes the wrappers that run the binaries through the bundle's own loader, so
# tools that want one executable path (test harnesses, scripts) can use them.
write_wrappers() {
  local d="$1" tool
  for tool in bitcoind bitcoin-cli; do
    cat >"$d/$tool" <<EOF
#!/bin/sh
# Runs $tool with Debian sid's loader and libraries from this bundle.
here="\$(cd "\$(dirname "\$0")" && pwd)"
exec "\$here/lib/ld-linux-x86-64.so.2" --library-path "\$here/lib" "\$here/bin/$tool" "\$@"
EOF
    chmod 755 "$d/$tool"
  done
}

mkdir -p "$cache_root"
# One fetch at a time: several test binaries may ask at once.
exec 9>"$cache_root/.bitcoind-knots.lock"
flock -w 600 9 || die "timed out waiting for another fetch (lock $cache_root/.bitcoind-knots.lock)"

if bundle_ok "$dest"; then
  echo "$dest"
  exit 0
fi

work="$(mktemp -d "$cache_root/.bitcoind-knots.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Debian route: private apt configuration, sources, state and cache; nothing of
# the system's apt setup is read or changed.
fetch_from_debian() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
    log "apt-get or dpkg-deb missing"; return 1; }
  [[ -r "$keyring" ]] || { log "Debian archive keyring $keyring missing"; return 1; }
  local apt="$work/apt"
  mkdir -p "$apt/etc/sources.list.d" "$apt/etc/apt.conf.d" "$apt/etc/preferences.d" \
    "$apt/state/lists/partial" "$apt/cache/archives/partial" "$work/debs" "$work/root"
  : >"$apt/status"
  cat >"$apt/etc/sources.list" <<EOF
deb [arch=amd64 signed-by=$keyring] $mirror sid main
EOF
  cat >"$apt/apt.conf" <<EOF
Dir::Etc "$apt/etc";
Dir::Etc::sourcelist "$apt/etc/sources.list";
Dir::Etc::sourceparts "$apt/etc/sources.list.d";
Dir::Etc::parts "$apt/etc/apt.conf.d";
Dir::Etc::preferencesparts "$apt/etc/preferences.d";
Dir::State "$apt/state";
Dir::State::lists "$apt/state/lists";
Dir::State::status "$apt/status";
Dir::Cache "$apt/cache";
Dir::Cache::archives "$apt/cache/archives";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
Acquire::Retries "2";
Acquire::http::Timeout "30";
// Mirrors reached from here may serve a snapshot of sid whose Release file
// has passed its Valid-Until; the signature is still checked.
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
Debug::NoLocking "true";
EOF
  export APT_CONFIG="$apt/apt.conf"
  log "updating the package lists of Debian sid from $mirror"
  timeout 300 apt-get -q update -o APT::Sandbox::User=root >&2 || { log "apt-get update failed"; return 1; }

  # Every package bitcoin-knots needs at run time: the closure of Depends and
  # Pre-Depends (no Recommends), followed only through shared-library
  # packages. Tools that library packages' maintainer scripts want (debconf,
  # adduser, ...) are not needed to run a binary and are not followed.
  keep() { grep -E '^(lib[a-z0-9.+-]*|zlib1g|gcc-[0-9]+-base|openssl-provider-legacy)$' \
             | grep -vE '^(libc-bin|libc-l10n|libc-dev-bin|libdebconfclient0)$' || true; }
  local pkgs="bitcoin-knots" frontier="bitcoin-knots" next
  apt-cache show bitcoin-knots >/dev/null 2>&1 || { log "bitcoin-knots not found in sid"; return 1; }
  while [[ -n "$frontier" ]]; do
    # shellcheck disable=SC2086
    next="$(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances $frontier 2>/dev/null \
      | sed -nE 's/^ *\|?(Pre)?Depends: ([^ <>]+).*/\2/p' | sort -u | keep)"
    frontier="$(comm -13 <(sort -u <<<"$pkgs") <(sort -u <<<"$next") | tr '\n' ' ')"
    frontier="${frontier% }"
    [[ -n "$frontier" ]] && pkgs="$(printf '%s\n%s\n' "$pkgs" "$(tr ' ' '\n' <<<"$frontier")" | sort -u)"
  done
  log "downloading: $(tr '\n' ' ' <<<"$pkgs")"
  # shellcheck disable=SC2086
  (cd "$work/debs" && timeout 600 apt-get -q download -o APT::Sandbox::User=root $pkgs >&2) \
    || { log "apt-get download failed"; return 1; }

  local deb
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
  done
  (cd "$work/debs" && ls -1 *.deb) >"$work/PACKAGES.txt"

  local out="$work/bundle"
  mkdir -p "$out/bin" "$out/lib"
  cp -a "$work/root/usr/bin/bitcoind" "$work/root/usr/bin/bitcoin-cli" "$out/bin/"
  # Libraries live in usr/lib/x86_64-linux-gnu (and lib/ on non-merged-usr
  # packages); the loader may also sit in usr/lib64 as a link.
  local libdir
  for libdir in "$work/root/lib/x86_64-linux-gnu" "$work/root/usr/lib/x86_64-linux-gnu"; do
    [[ -d "$libdir" ]] && cp -a "$libdir"/. "$out/lib/"
  done
  [[ -e "$out/lib/ld-linux-x86-64.so.2" ]] || die "sid's libc6 did not bring ld-linux-x86-64.so.2"
  # The loader must be a real file: it is run directly.
  if [[ -L "$out/lib/ld-linux-x86-64.so.2" ]]; then
    cp --remove-destination "$(readlink -f "$out/lib/ld-linux-x86-64.so.2")" "$out/lib/ld-linux-x86-64.so.2"
  fi
  chmod 755 "$out/lib/ld-linux-x86-64.so.2"
  cp "$work/PACKAGES.txt" "$out/PACKAGES.txt"
  echo "$out"
}

fetch_from_vendor() {
  [[ -f "$vendor_tar" ]] || { log "no vendored bundle at $vendor_tar"; return 1; }
  local want got
  want="$(awk '{print $1}' "$vendor_tar.sha256")"
  got="$(sha256sum "$vendor_tar" | awk '{print $1}')"
  [[ -n "$want" && "$want" == "$got" ]] || { log "vendored bundle checksum $got does not match $want"; return 1; }
  mkdir -p "$work/vendor"
  tar -xJf "$vendor_tar" -C "$work/vendor"
  echo "$work/vendor"
}

bundle=""
if [[ "${BUNKER_BITCOIND_NO_DOWNLOAD:-0}" != 1 ]]; then
  bundle="$(fetch_from_debian)" || bundle=""
fi
if [[ -z "$bundle" ]]; then
  log "Debian route unavailable; using the vendored bundle (CI fallback)"
  bundle="$(fetch_from_vendor)" || die "neither Debian sid nor the vendored bundle gave a bitcoind"
fi

write_wrappers "$bundle"
touch "$bundle/.complete"
bundle_ok "$bundle" || die "the fetched bitcoind does not start: $("$bundle/bitcoind" -version 2>&1 | head -3)"
rm -rf "$dest.old"
[[ -e "$dest" ]] && mv "$dest" "$dest.old"
mv "$bundle" "$dest"
rm -rf "$dest.old"
log "ready: $("$dest/bitcoind" -version | head -1)"
echo "$dest"

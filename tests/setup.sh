#!/usr/bin/env bash
# Installs what building and testing Bunker needs on Debian/Ubuntu, and
# nothing that is already there. Safe to run again; quick when all is there.
#
#   tests/setup.sh          packages for building and running a box
#   tests/setup.sh test     plus what the test suite needs
#
# Needs root or sudo for apt. The Rust toolchain itself (cargo) is expected
# to be installed already (rustup or Debian's cargo).
set -euo pipefail

mode="${1:-run}"
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found. Install Rust first (https://rustup.rs or 'apt-get install cargo')." >&2
    exit 1
fi

# C toolchain for bundled SQLite and blake3's assembly; pkg-config for -sys crates.
packages=(build-essential pkg-config ca-certificates)
if [ "$mode" = test ]; then
    # procps (ps) and iproute2 (ip netns) for process and network tests;
    # Debian's Chromium for the admin page's browser tests (playwright-core
    # drives it: no browser is downloaded), and Node.js to run them.
    packages+=(procps iproute2 chromium)
    command -v node >/dev/null 2>&1 || packages+=(nodejs)
    command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    sudo_ apt-get update -qq
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ]; then
    # The browser tests' one npm dependency (playwright-core), exactly as
    # locked; skipped when that version is already installed.
    browser="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/browser"
    want="$(node -p "require('$browser/package-lock.json').packages['node_modules/playwright-core'].version")"
    have="$(node -p "try { require('$browser/node_modules/playwright-core/package.json').version } catch { '' }")"
    if [ "$want" != "$have" ]; then
        echo "setup: installing playwright-core $want for the browser tests" >&2
        (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi

#!/usr/bin/env bash
# The README's run command: installs what is missing, builds the release
# binaries and runs four boxes on this machine with no hardware, paying each
# other on a private regtest Bitcoin chain:
#   - bitcoind (Bitcoin Knots) fetched once and cached by
#     firmware/ln/regtest/fetch-bitcoind.sh, on a throw-away regtest chain;
#   - box 1..4: bunkerd on loopback, data under
#     ~/.local/share/bunker-sandbox/boxN (or $BUNKER_SANDBOX_DIR/boxN),
#     admin pages on http://localhost:8080 .. 8083, bootstrapped to each
#     other, short audit/settlement intervals;
#   - every wallet funded and a channel between every pair of boxes, opened
#     through each daemon's own wallet API.
# Ctrl-C stops the boxes, then the chain. Every start begins with fresh
# boxes: the chain lives only while the sandbox runs.
#
#   tests/sandbox.sh            four boxes
#   tests/sandbox.sh --boxes 2  two
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tests/setup.sh" run

# The bitcoind bundle first: a clear message if it cannot be fetched.
BUNKER_BITCOIND_DIR="$("$root/firmware/ln/regtest/fetch-bitcoind.sh")"
export BUNKER_BITCOIND_DIR

cargo build --manifest-path "$root/Cargo.toml" --release -p bunkerd --bins
cargo build --manifest-path "$root/Cargo.toml" --release -p bunker-tests --bin sandbox
target_dir="${CARGO_TARGET_DIR:-$root/target}"

exec "$target_dir/release/sandbox" --bin-dir "$target_dir/release" "$@"

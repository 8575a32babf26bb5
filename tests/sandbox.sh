#!/usr/bin/env bash
# The README's run command: installs what is missing, builds bunkerd and
# runs a box on this machine with no hardware: data under
# ~/.local/share/bunker-sandbox (or $BUNKER_SANDBOX_DIR), admin page on
# http://localhost:8080. Ctrl-C stops it cleanly.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tests/setup.sh" run

cargo build --manifest-path "$root/Cargo.toml" --release -p bunkerd
target_dir="${CARGO_TARGET_DIR:-$root/target}"
sandbox="${BUNKER_SANDBOX_DIR:-$HOME/.local/share/bunker-sandbox}"
mkdir -p "$sandbox"

echo "sandbox: box 1 data in $sandbox/box1, admin page on http://localhost:8080 (Ctrl-C stops it)" >&2
exec "$target_dir/release/bunkerd" --data-dir "$sandbox/box1" --web-addr 127.0.0.1:8080

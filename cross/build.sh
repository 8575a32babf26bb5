#!/usr/bin/env bash
# Builds bunkerd for the box (aarch64-unknown-linux-gnu) with Debian's own
# Rust toolchain for arm64 (rustc-web + libstd-rust-web-dev:arm64), because
# rustup cannot add targets on machines without internet beyond Debian's
# mirror. Then runs the result under qemu-user as a smoke test: --version,
# and a daemon that answers /healthz and stops cleanly on SIGTERM.
#
#   cross/build.sh            appliance build, prints the binary's path and size
#
# The profile is `appliance` (root Cargo.toml: fat LTO, one codegen unit,
# size-optimised except the crypto and hashing crates, stripped), not
# `release`, which stays the fast x86 build of tests and benches.
#
# Installs its own packages when missing (needs root or sudo).
# Output: $BUNKER_CROSS_TARGET_DIR (default ~/.cache/bunker/target-aarch64)
#         /aarch64-unknown-linux-gnu/appliance/{bunkerd,bunker}
#         bunkerd.map: the linker's map of bunkerd, whose input sections
#         still name every function after strip; the bytes per crate
#         in BENCHMARKS.md come from it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=aarch64-unknown-linux-gnu

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# libc6:arm64 (multiarch) is what qemu runs the binary with; see below.
packages=(rustc-web libstd-rust-web-dev:arm64 libc6:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static binutils-aarch64-linux-gnu curl python3)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
    echo "cross: installing ${packages[*]}" >&2
    dpkg --print-foreign-architectures | grep -qx arm64 || sudo_ dpkg --add-architecture arm64
    sudo_ apt-get update -qq
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

export RUSTC=/usr/bin/rustc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_DIR="${BUNKER_CROSS_TARGET_DIR:-$HOME/.cache/bunker/target-aarch64}"

"$RUSTC" --version >&2
start=$(date +%s)
profile=appliance
# bunkerd through `cargo rustc` only to hand its link a map file; the CLI
# (`bunker`, for the image) separately, so neither build relinks the other.
cargo rustc --manifest-path "$root/Cargo.toml" --profile "$profile" --target "$target" -p bunkerd --bin bunkerd \
    -- -C "link-arg=-Wl,-Map=$CARGO_TARGET_DIR/bunkerd.map"
cargo build --manifest-path "$root/Cargo.toml" --profile "$profile" --target "$target" -p bunkerd --bin bunker
echo "cross: built in $(( $(date +%s) - start )) s" >&2

bin="$CARGO_TARGET_DIR/$target/$profile/bunkerd"
# The profile says strip = "symbols", yet the fat-LTO bunkerd linked here
# still carried its symbol table (38.8 MB against 29.1 MB stripped): strip
# both binaries in place, since the image takes them from this directory.
aarch64-linux-gnu-strip "$bin" "$CARGO_TARGET_DIR/$target/$profile/bunker"
if ! readelf -h "$bin" | grep -q 'Machine:.*AArch64'; then
    echo "cross: $bin is not an aarch64 ELF" >&2
    exit 1
fi
# Run it under qemu-user WITHOUT `-L /usr/aarch64-linux-gnu`: with -L, the
# loader comes from libc6-arm64-cross (2.36-8cross1) but ld.so's search path
# still finds libc.so.6 from libc6:arm64 (2.36-9+deb12uN) in
# /lib/aarch64-linux-gnu; the two glibc builds disagree on private internals
# and the first pthread_create spins forever. Without -L, loader and libc
# both come from libc6:arm64, as on a real box.
version=$(qemu-aarch64-static "$bin" --version)
echo "cross: qemu-aarch64-static says: $version" >&2
[ "$version" = "bunkerd $(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)" ] || {
    echo "cross: unexpected --version output" >&2
    exit 1
}

# Smoke test of the daemon itself: start, answer /healthz, stop on SIGTERM.
smoke="$(mktemp -d)"
port=$(( 20000 + RANDOM % 20000 ))
qemu-aarch64-static "$bin" --data-dir "$smoke/data" --web-addr "127.0.0.1:$port" 2>"$smoke/log" &
pid=$!
healthz=""
for _ in $(seq 300); do
    if healthz=$( { exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && tail -n1 <&3; } 2>/dev/null); then
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -TERM "$pid" 2>/dev/null || true
rc=0
wait "$pid" || rc=$?
if [ "$healthz" != "ok" ] || [ "$rc" -ne 0 ]; then
    echo "cross: the aarch64 daemon under qemu did not answer /healthz and stop cleanly (healthz=${healthz:-none}, exit $rc):" >&2
    cat "$smoke/log" >&2
    rm -rf "$smoke"
    exit 1
fi
rm -rf "$smoke"
echo "cross: aarch64 bunkerd under qemu answered /healthz and stopped cleanly" >&2

# Lightning on aarch64 (issue 6): the same binary with ldk-node built from its
# seed, on a real regtest bitcoind (the x86 Bitcoin Knots bundle the tests use,
# on loopback). Lightning is up when the wallet API gives a node id and a new
# regtest deposit address.
# shellcheck source=cross/regtest-chain.sh
. "$root/cross/regtest-chain.sh"
ln_smoke="$(mktemp -d)"
ln_fail() {
    echo "cross: $*" >&2
    [ -f "$ln_smoke/log" ] && tail -n 40 "$ln_smoke/log" >&2
    kill -TERM "${ln_pid:-}" 2>/dev/null || true
    regtest_stop
    rm -rf "$ln_smoke"
    exit 1
}
regtest_start "$ln_smoke/chain" || ln_fail "regtest bitcoind did not come up"
BUNKER_LN_NETWORK=regtest BUNKER_LN_CHAIN="bitcoind:bunker:$REGTEST_PASSWORD@127.0.0.1:$REGTEST_PORT" \
    qemu-aarch64-static "$bin" --data-dir "$ln_smoke/box" --web-addr "127.0.0.1:$port" 2>"$ln_smoke/log" &
ln_pid=$!
api() { curl -fsS --max-time 30 --unix-socket "$ln_smoke/box/bunkerd.sock" "$@"; }
wallet=""
for _ in $(seq 600); do
    wallet=$(api http://bunker/api/wallet 2>/dev/null) && break
    kill -0 "$ln_pid" 2>/dev/null || ln_fail "the aarch64 daemon exited before Lightning ran"
    sleep 0.5
done
printf '%s' "$wallet" | grep -q '"node_id":"0[23][0-9a-f]\{64\}"' || ln_fail "no Lightning node id from the aarch64 daemon within 300 s: ${wallet:-nothing}"
address=$(api -X POST http://bunker/api/wallet/address) || ln_fail "no deposit address"
printf '%s' "$address" | grep -q '"address":"bcrt1' || ln_fail "unexpected deposit address answer: $address"
kill -TERM "$ln_pid"
rc=0
wait "$ln_pid" || rc=$?
regtest_stop
[ "$rc" -eq 0 ] || ln_fail "the aarch64 daemon with Lightning did not stop cleanly (exit $rc)"
rm -rf "$ln_smoke"
echo "cross: aarch64 bunkerd ran ldk-node on a regtest chain (node id and a bcrt1 deposit address) and stopped cleanly" >&2
aarch64-linux-gnu-strip -o "$CARGO_TARGET_DIR/bunkerd.stripped" "$bin"
echo "cross: $bin"
echo "cross: stripped size $(stat -c %s "$CARGO_TARGET_DIR/bunkerd.stripped") bytes"

#!/usr/bin/env bash
# Sourced (not run) by cross/build.sh and cross/image/boot-test.sh: a
# throw-away regtest chain on loopback, from the same Bitcoin Knots bundle the
# tests use (firmware/ln/regtest/fetch-bitcoind.sh), so that an aarch64
# bunkerd can start its Lightning node against a real chain.
#
#   regtest_start DIR   starts bitcoind with its data in DIR, mines 101 blocks;
#                       sets REGTEST_PORT, REGTEST_PASSWORD, REGTEST_PID
#   regtest_stop        stops it (safe to call twice)

regtest_cli() {
    "$REGTEST_BUNDLE/bitcoin-cli" -regtest -rpcport="$REGTEST_PORT" -rpcuser=bunker \
        -rpcpassword="$REGTEST_PASSWORD" -rpcclienttimeout=10 "$@"
}

regtest_start() {
    local dir=$1 root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    REGTEST_BUNDLE="$("$root/firmware/ln/regtest/fetch-bitcoind.sh")"
    REGTEST_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    REGTEST_PASSWORD="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    mkdir -p "$dir"
    "$REGTEST_BUNDLE/bitcoind" -regtest -datadir="$dir" -rpcport="$REGTEST_PORT" -rpcuser=bunker \
        -rpcpassword="$REGTEST_PASSWORD" -server=1 -listen=0 -dnsseed=0 -fixedseeds=0 -listenonion=0 \
        -printtoconsole=0 -rpcbind=127.0.0.1 -rpcallowip=127.0.0.1 -fallbackfee=0.00001 &
    REGTEST_PID=$!
    # bitcoind needs a few seconds on an idle machine but a minute or more on
    # 2 loaded cores (CI builds beside it): wait up to 180 s, unless it died.
    local deadline=$((SECONDS + 180))
    until regtest_cli getblockchaininfo >/dev/null 2>&1; do
        if ! kill -0 "$REGTEST_PID" 2>/dev/null; then
            echo "regtest: bitcoind exited during start-up" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "regtest: bitcoind did not answer RPC within 180 s" >&2
            return 1
        fi
        sleep 0.5
    done
    regtest_cli createwallet miner >/dev/null || return 1
    regtest_cli generatetoaddress 101 "$(regtest_cli getnewaddress)" >/dev/null || return 1
}

regtest_stop() {
    if [ -n "${REGTEST_PID:-}" ]; then
        kill -TERM "$REGTEST_PID" 2>/dev/null || true
        wait "$REGTEST_PID" 2>/dev/null || true
        REGTEST_PID=
    fi
}

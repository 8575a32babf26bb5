#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every
# test of the workspace, then the admin page's browser tests (headless
# Chromium against a real bunkerd). Ends with one line "N passed, M failed"
# that counts both.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tests/setup.sh test

log="$(mktemp)"
blog="$(mktemp)"
trap 'rm -f "$log" "$blog"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?

# Browser tests: they start target/debug/bunkerd (or $CARGO_TARGET_DIR/debug),
# so build it first; a failed build counts as a failed test run.
browser_status=0
if cargo build -p bunkerd --bins --locked 2>&1 | tail -n 3; then
    (cd tests/browser && node --test --test-concurrency=1 .) 2>&1 | tee "$blog" || browser_status=$?
else
    browser_status=1
    echo "# fail 1 (cargo build -p bunkerd failed; browser tests not run)" >"$blog"
fi
[ "$browser_status" -eq 0 ] || status=$browser_status

# Sum cargo's per-binary "test result:" lines and node's "# pass N" /
# "# fail N" / "# cancelled N" lines (a cancelled test did not pass).
awk '/^test result:/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { print p + 0, f + 0 }' "$log" >"$log.sum"
awk '/^# pass [0-9]+$/ { p += $3 } /^# (fail|cancelled) [0-9]+/ { f += $3 } END { print p + 0, f + 0 }' "$blog" >"$blog.sum"
read -r cp cf <"$log.sum"
read -r bp bf <"$blog.sum"
rm -f "$log.sum" "$blog.sum"
if [ "$browser_status" -ne 0 ] && [ "$bf" -eq 0 ]; then
    bf=1 # the runner failed without saying which test
fi
printf '%d passed, %d failed\n' "$((cp + bp))" "$((cf + bf))"
exit "$status"

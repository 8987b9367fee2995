#!/usr/bin/env bash
# The whole test suite: unit and scenario tests of the pure cores, agreement with Pacemaker, and the
# lab tests with real daemons. Exits non-zero if any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

echo "==> swift test (unit, scenario, property and lab tests)"
# Serial: lab, volume and QEMU tests share two cores and time-sensitive daemons.
swift test --no-parallel 2>&1 | tee "$log" || status=1

echo "==> agreement with Pacemaker (crm_simulate) on the CIB corpus"
if [ -x scripts/compare-pacemaker.sh ]; then
    bash scripts/compare-pacemaker.sh .build/debug/clevervm 2>&1 | tee -a "$log" || status=1
fi

echo "==> differential test against Pacemaker: 500 random CIBs (scripts/differential-pacemaker.py)"
# Not all seeds agree yet (414 of 500 when this floor was set): the floor catches a regression; the summary line
# says how far from all 500 we are.
if command -v crm_simulate >/dev/null; then
    python3 scripts/differential-pacemaker.py --seeds 500 --quiet --min-agree 482 2>&1 | tee -a "$log" || status=1
fi

echo "==> web console on a lab: /metrics after a move, the browser tests (Chromium)"
bash scripts/test-web.sh 2>&1 | tee -a "$log" || status=1

echo "==> installation on three Debian machines (systemd-nspawn): the package, docs/install.md run literally, a failover, upgrade and purge"
# Last: the package links the debug build again with the static runtime (scripts/build-deb.sh --debug).
bash scripts/test-install.sh --debug 2>&1 | tee -a "$log" || status=1

total=$(grep -Eo 'Test run with [0-9]+ tests?' "$log" | grep -Eo '[0-9]+' | tail -1 || true)
failed=$(grep -Ec '^✘ Test [^ ]+\(.*\) failed after' "$log" || true)
compare=$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 || true)
echo "==> summary: swift test: ${total:-0} tests, ${failed:-0} failed; pacemaker agreement: ${compare:-not run}"
if [ "${total:-0}" = "0" ] && [ "$status" = "0" ]; then
    echo "no test ran" >&2
    exit 1
fi
exit "$status"

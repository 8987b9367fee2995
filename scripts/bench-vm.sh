#!/bin/sh
# Medians of live-migration downtime and hibernate move time (stop + start) for a 256 MiB test guest under TCG,
# two "hosts" on this machine, disk from nbdkit. Usage: scripts/bench-vm.sh [RUNS]   (default 10; needs root,
# qemu-system-x86, nbdkit; builds the test guest into /tmp/cvq-guest).
set -eu
RUNS=${1:-10}
cd "$(dirname "$0")/.."
CLEVERVM_BENCH_RUNS=$RUNS swift test --filter CleverQEMUTests.VMBenchmark 2>&1 | tee /tmp/cvq-bench.log | grep '^BENCH' || {
    echo "bench-vm: failed; see /tmp/cvq-bench.log" >&2
    tail -30 /tmp/cvq-bench.log >&2
    exit 1
}

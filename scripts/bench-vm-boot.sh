#!/bin/sh
# Medians of firmware boot time (cold start to the guest kernel's first console line, and to the test guest's
# GUEST UP) through SeaBIOS and OVMF from the VM's disk, beside QEMU's kernel loader as the reference; and
# live-migration downtime (median, p95) of a 1 GiB guest dirtying 50 MiB/s beside the 256 MiB idle guest.
# All under TCG, two "hosts" on this machine, disks from nbdkit.
#   scripts/bench-vm-boot.sh [RUNS]   (default 5; root; qemu-system-x86, ovmf, nbdkit, fdisk, mtools)
set -eu
RUNS=${1:-5}
cd "$(dirname "$0")/.."
CLEVERVM_BENCH_RUNS=$RUNS swift test --skip-build \
    --filter 'CleverQEMUTests.VMBenchmark/(firmwareBootTime|liveMigrationDowntimeUnderLoad)' 2>&1 |
    tee /tmp/cvq-bench-boot.log | grep '^BENCH' || {
    echo "bench-vm-boot: failed; see /tmp/cvq-bench-boot.log" >&2
    tail -30 /tmp/cvq-bench-boot.log >&2
    exit 1
}

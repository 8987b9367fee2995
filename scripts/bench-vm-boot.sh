#!/bin/sh
# Medians of firmware boot time (cold start to the guest kernel's first console line, and to the test guest's
# GUEST UP) through SeaBIOS and OVMF from the VM's disk, beside QEMU's kernel loader as the reference; and
# live-migration downtime (median, p95) of a 1 GiB guest dirtying 50 MiB/s beside the 256 MiB idle guest; and the
# Debian guest's boot (scripts/build-debian-guest.sh) to its kernel's first line, systemd's multi-user target and
# its TCP service answering. All under TCG, two "hosts" on this machine, disks from nbdkit.
#   scripts/bench-vm-boot.sh [RUNS] [FILTER]   (default 5 runs, all three; FILTER picks benchmarks by name, e.g.
#                                               debianBootTime; root, lab lock; qemu-system-x86, ovmf, nbdkit, fdisk,
#                                               mtools, kmod, debootstrap)
set -eu
RUNS=${1:-5}
FILTER=${2:-firmwareBootTime|liveMigrationDowntimeUnderLoad|debianBootTime}
cd "$(dirname "$0")/.."
CLEVERVM_BENCH_RUNS=$RUNS swift test --skip-build \
    --filter "CleverQEMUTests.VMBenchmark/($FILTER)" 2>&1 |
    tee /tmp/cvq-bench-boot.log | grep '^BENCH' || {
    echo "bench-vm-boot: failed; see /tmp/cvq-bench-boot.log" >&2
    tail -30 /tmp/cvq-bench-boot.log >&2
    exit 1
}

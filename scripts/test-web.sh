#!/usr/bin/env bash
# The web console against a real lab cluster: /metrics after a move (curl), then the browser tests (headless
# Debian chromium driven by Playwright, scripts/web-browser-test.py: pages, a live move, a ping cut, a split brain,
# the VM's screen in noVNC and its serial console); screenshots in .build/web-screenshots.
# Needs root and a build (swift build --product clevervm --product clevervm-web); holds the machine-wide lab lock.
#   bash scripts/test-web.sh            (CONFIG=examples/lab.yaml VM=vm for the lighter process lab)
set -euo pipefail
cd "$(dirname "$0")/.."
C=${CLEVERVM:-.build/debug/clevervm}
config=${CONFIG:-examples/lab-vm.yaml}
vm=${VM:-mba7}
export CLEVERVM="$C" VM="$vm" OUT=.build/web-screenshots
# The machine-wide lab lock, unless the caller already holds it (CLEVERVM_LAB_LOCKED=1, e.g. a whole suite run
# under flock): a second flock on a new descriptor would wait for ourselves.
if [ -z "${CLEVERVM_LAB_LOCKED:-}" ]; then
    exec 9>/tmp/clevervm-lab.lock
    flock 9
fi
# The lab's config plus a spare replicated volume with no VM on it, for the planted split brain (after-sb policies left
# at DRBD's default, disconnect, so it waits for the operator; a long monitor interval, so the cluster does not see
# the briefly promoted other side while the split brain is planted).
# The VM also gets a screen (display: vnc, for noVNC) and a shell on its serial console (guest.shell=1), for the
# console checks: the browser types into the serial console and reads the answer.
lab_config=$(mktemp --suffix=.yaml)
{
    sed '/^constraints:/,$d' "$config" | sed 's/^\(    kernel-args: .*\)$/\1 guest.shell=1\n    display: vnc/'
    cat <<'YAML'
  - id: scratch
    type: volume
    size: 4MiB
    backing: /var/lib/clevervm/scratch.img
    protocol: C
    port: 7791
    secret-file: /etc/clevervm/volumes.secret
    monitor: 60s

YAML
    sed -n '/^constraints:/,$p' "$config"
} > "$lab_config"
cleanup() { "$C" lab down >/dev/null 2>&1 || true; rm -f "$lab_config"; }
trap cleanup EXIT
"$C" lab down >/dev/null 2>&1 || true
"$C" lab up --config "$lab_config"

metrics() { "$C" lab exec gw -- curl -s --max-time 10 "http://198.51.100.11:9664/metrics"; }
host_of() { metrics | sed -n "s/^clevervm_vm_host{vm=\"$vm\",node=\"\([a-z]*\)\"} 1.0$/\1/p"; }
failures=0
expect_metric() {
    local scrape started=$SECONDS
    scrape=$(metrics) || echo "     (curl of /metrics failed after $((SECONDS - started)) s)"
    if grep -qF -- "$1" <<<"$scrape"; then echo "ok   /metrics has $1"; return; fi
    echo "FAIL /metrics lacks $1; the scrape ($(wc -l <<<"$scrape") lines) had:"
    grep -E "^(clevervm_agent_up|${1%%\{*})" <<<"$scrape" | sed 's/^/     /' || true
    failures=$((failures + 1))
}

echo "==> /metrics before and after a move"
expect_metric 'clevervm_agent_up 1.0'
expect_metric 'ha_cluster_corosync_quorate 1.0'
from=$(host_of)
to=$([ "$from" = alpha ] && echo beta || echo alpha)
echo "$vm runs on $from; clevervm migrate --node $from --to $to"
"$C" lab exec alpha -- clevervm migrate --node "$from" --to "$to" >/dev/null
for _ in $(seq 1 240); do [ "$(host_of)" = "$to" ] && break; sleep 0.5; done
expect_metric "clevervm_vm_host{vm=\"$vm\",node=\"$to\"} 1.0"
expect_metric "clevervm_node_unfit{node=\"$from\"} 1.0"
# Settled: the VM's state series says running (not moving) once the move is over.
for _ in $(seq 1 120); do metrics | grep -qF "clevervm_vm_state{vm=\"$vm\",state=\"running\"} 1.0" && break; sleep 0.5; done
expect_metric "clevervm_vm_state{vm=\"$vm\",state=\"running\"} 1.0"
metrics | grep -E "^clevervm_vm_(last_migration|migrations)" || true
"$C" lab exec alpha -- clevervm unmigrate --node "$from" >/dev/null
sleep 2

echo "==> browser tests"
python3 scripts/web-browser-test.py || failures=$((failures + 1))
echo "==> web lab tests: $failures failed"
exit $((failures > 0))

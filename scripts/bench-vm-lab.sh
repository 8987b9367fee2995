#!/usr/bin/env bash
# Benchmark of the whole installation in the lab, with a real VM (256 MiB, TCG) on replicated volumes:
#   live   — cut the active host's ping; the guest's downtime as QEMU measured it (query-migrate)
#   hibernate — the same with `migration: hibernate`: time from the cut until the guest runs again on the
#            other host (ping loss detection + save + switch-over + resume)
#   failover — power off the active host; time until QEMU runs on the survivor
# Prints each run and the median / min / max of each.   bash scripts/bench-vm-lab.sh [RUNS] (default 10; root)
# PARTS="failover" (or any of: live failover hibernate) runs only those parts. CONFIG=FILE: the lab config of the
# live and failover parts (default examples/lab-vm-watchdog.yaml).
# FAST=1: the failover part runs the fastest safe watchdog setting (token 500 ms, qdevice timeout 1 s, W 1 s) instead
# of examples/lab-vm-watchdog.yaml's (token 1000 ms, qdevice timeout 3 s, W 2 s); both print the survivors' derived wait.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
parts=" ${PARTS:-live failover hibernate} "
want() { [[ "$parts" == *" $1 "* ]]; }
C="$PWD/.build/debug/clevervm"
lab=vmbench
root=/run/clevervm-lab/$lab/hosts
logs=${BENCH_LOGS:-}
trap '[ -n "$logs" ] && mkdir -p "$logs" && for h in alpha beta; do cp -r "$root/$h/logs" "$logs/$h" 2>/dev/null; cp "$root/$h"/run/clevervm/*.log "$logs/$h/" 2>/dev/null; done; "$C" lab down --name $lab >/dev/null 2>&1 || true; rm -f /tmp/clevervm-bench-hibernate.yaml' EXIT

status() { "$C" lab exec --name $lab "$1" -- clevervm status --json 2>/dev/null; }
vm_host() { status "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(" ".join(n for x in r["resources"] if x["id"]=="mba7" for n in x["roles"]))' 2>/dev/null || true; }
settled() { status "$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)
ok = r["quorate"] and all(n["online"] for n in r["nodes"]) and not r["pendingActions"] and all(not x["target"] for x in r["resources"])
ok = ok and all("UpToDate/UpToDate" in (x.get("replication") or "UpToDate/UpToDate") for x in r["resources"])
sys.exit(0 if ok else 1)' 2>/dev/null; }
wait_settled() { for _ in $(seq 1 300); do settled "$1" && return 0; sleep 0.5; done; echo "did not settle" >&2; return 1; }
other() { [ "$1" = alpha ] && echo beta || echo alpha; }
summary() { printf '%s\n' "${@:2}" | python3 -c "
import sys, statistics
v = [float(x) for x in sys.stdin if x.strip()]
print(f'$1: median {statistics.median(v):.3f}, min {min(v):.3f}, max {max(v):.3f} ({len(v)} runs)')"; }

up() { "$C" lab down --name $lab >/dev/null 2>&1 || true; "$C" lab up --name $lab --config "$1" | tail -1; wait_settled alpha; }

live=(); fail=(); hib=()
config=${CONFIG:-examples/lab-vm-watchdog.yaml}
if [ -n "${FAST:-}" ]; then
    config=/tmp/clevervm-bench-fast.yaml
    sed -e 's/^    watchdog-timeout: 2s/    watchdog-timeout: 1s\n    token: 500ms/' -e 's/^  ping: \[198.51.100.1\]/&\n  timeout: 1s\n  sync-timeout: 2s/' \
        examples/lab-vm-watchdog.yaml > "$config"
fi
# (a config without any of these, such as examples/lab-vm.yaml via CONFIG=, prints an empty settings line)
{ grep -E '^    (watchdog-timeout|token):|^  (timeout|sync-timeout):' "$config" || true; } | tr -s ' ' | paste -sd, | sed 's/^/settings:/'
up "$config"
want live && echo "==> live migration: cut the active host's ping"
want live && for run in $(seq 1 "$runs"); do
    active=$(vm_host alpha); target=$(other "$active")
    "$C" lab cut-ping --name $lab "$active"
    for _ in $(seq 1 150); do [ "$(vm_host "$target")" = "$target" ] && break; sleep 0.2; done
    ms=$(status "$target" | python3 -c 'import json,sys; r=json.load(sys.stdin); print([x for x in r["resources"] if x["id"]=="mba7"][0]["lastMove"]["downtimeMilliseconds"])')
    live+=("$ms"); echo "run $run: $active -> $target live, guest downtime $ms ms"
    "$C" lab restore-ping --name $lab "$active"; wait_settled "$target"
done

want failover && echo "==> failover: power off the active host"
want failover && for run in $(seq 1 "$runs"); do
    active=$(vm_host alpha); [ -n "$active" ] || active=$(vm_host beta); survivor=$(other "$active")
    t0=$(date +%s.%N)
    "$C" lab power off --name $lab "$active"
    pidfile="$root/$survivor/run/clevervm/mba7.qemu.pid"
    for _ in $(seq 1 300); do [ -f "$pidfile" ] && [ "$(stat -c %Y.%N "$pidfile" | cut -c1-20)" \> "$t0" ] && break; sleep 0.05; done
    t1=$(stat -c %.9Y "$pidfile")
    s=$(echo "$t1 - $t0" | bc -l); fail+=("$s"); printf 'run %d: power off %s -> QEMU running on %s after %.2f s\n' "$run" "$active" "$survivor" "$s"
    "$C" lab power on --name $lab "$active" >/dev/null; wait_settled "$survivor"
done

if want hibernate; then
    echo "==> hibernate move: cut the active host's ping, with migration: hibernate"
    sed 's/migration: live/migration: hibernate/' examples/lab-vm.yaml > /tmp/clevervm-bench-hibernate.yaml
    up /tmp/clevervm-bench-hibernate.yaml
fi
want hibernate && for run in $(seq 1 "$runs"); do
    active=$(vm_host alpha); target=$(other "$active")
    t0=$(date +%s.%N)
    "$C" lab cut-ping --name $lab "$active"
    for _ in $(seq 1 300); do [ "$(vm_host "$target")" = "$target" ] && break; sleep 0.1; done
    t1=$(date +%s.%N); s=$(echo "$t1 - $t0" | bc -l); hib+=("$s")
    printf 'run %d: %s -> %s by hibernate, running again after %.2f s (includes ~2 s of ping loss detection)\n' "$run" "$active" "$target" "$s"
    "$C" lab restore-ping --name $lab "$active"; wait_settled "$target"
done

echo
want live && summary "live migration guest downtime, ms (target < 300)" "${live[@]}"
want failover && summary "failover, power off -> QEMU running on the survivor, s (target < 5)" "${fail[@]}"
want hibernate && summary "hibernate move, ping cut -> guest running on the other host, s (target < 15; the old installation: 90)" "${hib[@]}"
true

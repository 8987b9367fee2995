#!/usr/bin/env bash
# Benchmark: time from powering off the active host to the stand-in VM running on the survivor, in
# the lab (real Corosync, qnetd and agents). Prints each run, then median, min and max beside the
# Corosync token and consensus times that bound failure detection.
#   bash scripts/bench-failover.sh [RUNS]      (default 10; needs root; builds nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
clevervm="$PWD/.build/debug/clevervm"
[ -x "$clevervm" ] || { echo "build first: swift build" >&2; exit 1; }
lab=bench
trap '"$clevervm" lab down --name $lab >/dev/null 2>&1 || true' EXIT
"$clevervm" lab down --name $lab >/dev/null 2>&1 || true
echo "==> lab up (examples/lab.yaml)"
"$clevervm" lab up --name $lab --config examples/lab.yaml | tail -1
root=/run/clevervm-lab/$lab/hosts

# The stand-in appends "HOST EPOCH" ten times a second to its host's /var/lib/clevervm/standin.log.
last_write() { tail -n 1 "$root/$1/var-lib-clevervm/standin.log" 2>/dev/null | awk "{print \$2}" || true; }
first_after() { awk -v t="$2" '$2 > t { print $2; exit }' "$root/$1/var-lib-clevervm/standin.log" 2>/dev/null || true; }
settled() {
    "$clevervm" lab exec "$1" --name $lab -- clevervm status --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
ok = r["quorate"] and all(n["online"] for n in r["nodes"]) and not r["pendingActions"] and all(not x["target"] for x in r["resources"])
sys.exit(0 if ok else 1)' 2>/dev/null
}

results=()
for run in $(seq 1 "$runs"); do
    a=$(last_write alpha); b=$(last_write beta)
    if [ "$(echo "${a:-0} > ${b:-0}" | bc)" = 1 ]; then active=alpha; survivor=beta; else active=beta; survivor=alpha; fi
    t0=$(date +%s.%N)
    "$clevervm" lab power off "$active" --name $lab
    t1=""
    for _ in $(seq 1 300); do
        t1=$(first_after "$survivor" "$t0"); [ -n "$t1" ] && break; sleep 0.1
    done
    [ -n "$t1" ] || { echo "run $run: the VM did not come back on $survivor within 30 s" >&2; exit 1; }
    seconds=$(echo "$t1 - $t0" | bc -l)
    results+=("$seconds")
    printf 'run %2d: power off %-5s -> running on %-5s after %.2f s\n' "$run" "$active" "$survivor" "$seconds"
    "$clevervm" lab power on "$active" --name $lab >/dev/null
    for _ in $(seq 1 100); do settled "$survivor" && break; sleep 0.3; done
done

conf="$root/alpha/etc-corosync/corosync.conf"
token=$(awk '$1=="token:" {print $2}' "$conf"); consensus=$(awk '$1=="consensus:" {print $2}' "$conf")
printf '%s\n' "${results[@]}" | sort -n | python3 -c "
import sys, statistics
v = [float(x) for x in sys.stdin]
print(f'failover (power off -> running on survivor), {len(v)} runs: median {statistics.median(v):.2f} s, '
      f'min {min(v):.2f} s, max {max(v):.2f} s, stdev {statistics.pstdev(v):.2f} s')
print(f'reference: corosync token ${token} ms + consensus ${consensus} ms (failure detection), survivors\' watchdog wait '
      f'qdevice timeout $(awk '$1=="timeout:" {print $2}' "$conf") ms + W $(awk '/watchdog-timeout/ {print $2}' examples/lab.yaml) + 0.25 s; Pacemaker setups: tens of seconds; Proxmox HA: about 120 s')
"

#!/usr/bin/env bash
# The main job: install, build, and run the lab demo of the two-host installation of the design brief —
# a real Corosync cluster of two hosts and a gateway (qnetd + ping target) in network namespaces on this
# machine, a CleverVM agent per host, a VM (QEMU, a tiny Linux guest writing numbered records to its
# disk) on replicated volumes, a floating address and ping — then the faults the installation exists for.
#   bash scripts/demo.sh          run the demo and tear the lab down
#   bash scripts/demo.sh --keep   leave the lab up afterwards (`.build/debug/clevervm lab down` removes it)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
C="$PWD/.build/debug/clevervm"
config=examples/lab-vm.yaml
keep=no; [ "${1:-}" = "--keep" ] && keep=yes
if [ "$keep" = no ]; then trap '"$C" lab down >/dev/null 2>&1 || true' EXIT; fi
run=/run/clevervm-lab/clevervm/hosts

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
vm_on() { "$C" lab exec "$1" -- clevervm status --json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin); print(",".join(n for x in r["resources"] if x["id"]=="mba7" for n in x["roles"]))' 2>/dev/null || true; }
wait_vm_on() { for _ in $(seq 1 $(( $2 * 5 ))); do [ "$(vm_on "$1")" = "$1" ] && return 0; sleep 0.2; done; return 1; }
last() { cat "$run/$1/run/clevervm/mba7.console.log" 2>/dev/null | tr -d '\r' | grep "^$2 " | tail -1 | cut -d' ' -f2 || true; }
# Waits up to $2 seconds until the guest on $1 has printed a numbered $3 line (ACK, RESUME) on its console.
wait_record() { for _ in $(seq 1 $(( $2 * 10 ))); do [ -n "$(last "$1" "$3")" ] && return 0; sleep 0.1; done; return 1; }
# Waits up to $2 seconds until the cluster seen from $1 has nothing left to do (no pending action, no resource
# away from its target).
settled() { "$C" lab exec "$1" -- clevervm status --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if not r["pendingActions"] and all(not x["target"] for x in r["resources"]) else 1)' 2>/dev/null; }
wait_settled() { for _ in $(seq 1 $(( $2 * 5 ))); do settled "$1" && return 0; sleep 0.2; done; return 1; }
pingd_on() { "$C" lab exec "$1" -- clevervm status --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(next((n["attributes"].get("pingd", "") for n in r["nodes"] if n["name"] == sys.argv[1]), ""))' "$1" 2>/dev/null || true; }
wait_pingd() { for _ in $(seq 1 $(( $2 * 5 ))); do p=$(pingd_on "$1"); [ -n "$p" ] && [ "$p" != 0 ] && return 0; sleep 0.2; done; return 1; }

step "what the scheduler will do (offline): start-up, then the active host loses its gateway"
"$C" simulate --config "$config" --event 'attr alpha pingd=0' | tail -22

step "lab up: bridge, gateway with qnetd, hosts alpha and beta with corosync, qdevice and a clevervm agent"
"$C" lab down >/dev/null 2>&1 || true
"$C" lab up --config "$config"
# The scheduler picks the VM's first host (alpha, unless something there failed at start-up): follow it.
A=$(vm_on alpha); case "$A" in alpha|beta) ;; *) A=alpha ;; esac
B=$([ "$A" = alpha ] && echo beta || echo alpha)
wait_record $A 60 ACK || { echo "the guest on $A has written no record within 60 s (its console: $run/$A/run/clevervm/mba7.console.log)" >&2; exit 1; }
echo; echo "the guest on $A has written record $(last $A ACK) (its console: $run/$A/run/clevervm/mba7.console.log)"

step "a client on the gateway opens a TCP session to the floating address 198.51.100.50:7777 (the guest's echo service)"
session_out=$(mktemp /tmp/clevervm-demo-session-XXXXXX); session_go=$session_out.go
"$C" lab exec gw -- python3 -u -c '
import os, socket, sys, time
# The guest has booted; its echo service and the forwarding of the floating address may need a moment more.
deadline = time.monotonic() + 30
while True:
    try:
        s = socket.create_connection(("198.51.100.50", 7777), timeout=5); break
    except OSError as error:
        if time.monotonic() > deadline: sys.exit("  no TCP session to 198.51.100.50:7777 within 30 s: %s" % error)
        time.sleep(0.2)
s.settimeout(20)
s.sendall(b"hello before the move\n"); print("  sent, and the guest echoed:", s.recv(100).decode().strip())
while not os.path.exists(sys.argv[1]): time.sleep(0.05)
s.sendall(b"hello after the move, same connection\n"); print("  sent, and the guest echoed:", s.recv(100).decode().strip())
' "$session_go" > "$session_out" 2>&1 &
session_pid=$!
for _ in $(seq 1 400); do grep -q echoed "$session_out" && break; kill -0 "$session_pid" 2>/dev/null || break; sleep 0.1; done
cat "$session_out"

step "$A loses its gateway (lab cut-ping $A): the VM moves live to $B, its disks promoted there first"
"$C" lab cut-ping $A
wait_vm_on $B 60
wait_settled $B 30 || true
"$C" lab exec $B -- clevervm status
echo; echo "the same TCP session, after the move:"
touch "$session_go"; wait "$session_pid" || true
tail -n +2 "$session_out"; rm -f "$session_out" "$session_go"

step "$A's gateway is back: nothing moves back by itself (stickiness)"
"$C" lab restore-ping $A
wait_pingd $A 30 || true
wait_settled $A 30 || true
"$C" lab exec $A -- clevervm status | sed -n '/Resources:/,$p'

step "$B, where the VM runs, loses power (lab power off $B)"
acknowledged=$(last $B ACK)
start=$(date +%s.%N)
"$C" lab power off $B
for _ in $(seq 1 300); do [ -n "$(last $A RESUME)" ] && [ "$(last $A RESUME)" != 0 ] && break; sleep 0.1; done
end=$(date +%s.%N)
"$C" lab exec $A -- clevervm status
printf "\nthe guest had acknowledged record %s on $B; it booted on $A %.1f s after the power-off and found its disk ending at record %s\n" \
    "$acknowledged" "$(echo "$end - $start" | bc -l)" "$(last $A RESUME)"

step "why the VM runs where it runs (clevervm explain mba7, on the live cluster)"
"$C" lab exec $A -- clevervm explain mba7

step "what happened (clevervm events)"
"$C" lab exec $A -- clevervm events --last 25 | grep -v "attribute" || true

if [ "$keep" = yes ]; then
    echo; echo "The lab is still up: \`$C lab exec alpha -- clevervm status\`; \`$C lab down\` removes it."
fi
echo; echo "Web console of each host: https://198.51.100.11:7443/ and https://198.51.100.12:7443/ from inside the lab (first login: /run/clevervm-lab/clevervm/console-login.json; --keep keeps it up; bash scripts/test-web.sh drives it in a browser)"

#!/usr/bin/env bash
# The main job: install, build, and run the lab demo of the two-host installation: a real Corosync
# cluster of two hosts and a gateway (qnetd + ping target) in network namespaces on this machine,
# a CleverVM agent per host; then the faults the installation exists for.
#   bash scripts/demo.sh          run the demo and tear the lab down
#   bash scripts/demo.sh --keep   leave the lab up afterwards (`clevervm lab down` removes it)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
clevervm="$PWD/.build/debug/clevervm"
keep=no; [ "${1:-}" = "--keep" ] && keep=yes
if [ "$keep" = no ]; then trap '"$clevervm" lab down >/dev/null 2>&1 || true' EXIT; fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
active() { "$clevervm" lab exec "$1" -- clevervm status --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(",".join(n for x in r["resources"] if x["id"]=="vm" for n in x["roles"]))'; }
wait_vm_on() {  # host, seconds
    for _ in $(seq 1 $(( $2 * 5 ))); do [ "$(active "$3" 2>/dev/null)" = "$1" ] && return 0; sleep 0.2; done; return 1
}

step "what the scheduler will do (offline): start-up, then the active host loses its gateway"
"$clevervm" simulate --config examples/lab.yaml --event 'attr alpha pingd=0'

step "lab up: bridge, gateway with qnetd, hosts alpha and beta with corosync, qdevice and a clevervm agent"
"$clevervm" lab down >/dev/null 2>&1 || true
"$clevervm" lab up --config examples/lab.yaml

step "alpha loses its gateway (lab cut-ping alpha): everything moves to beta"
"$clevervm" lab cut-ping alpha
wait_vm_on beta 20 beta && "$clevervm" lab exec beta -- clevervm status

step "alpha's gateway is back: nothing moves back by itself (stickiness)"
"$clevervm" lab restore-ping alpha
sleep 3
"$clevervm" lab exec alpha -- clevervm status

step "beta is powered off (lab power off beta): alpha takes over"
start=$(date +%s.%N)
"$clevervm" lab power off beta
wait_vm_on alpha 30 alpha
end=$(date +%s.%N)
"$clevervm" lab exec alpha -- clevervm status
printf '\nfailover: the stand-in VM runs on alpha %.1f s after beta lost power\n' "$(echo "$end - $start" | bc -l)"

step "why the VM runs where it runs (clevervm explain vm, live)"
"$clevervm" lab exec alpha -- clevervm explain vm

if [ "$keep" = yes ]; then
    echo; echo "The lab is still up: try \`$clevervm lab exec alpha -- clevervm status\`; \`$clevervm lab down\` removes it."
fi

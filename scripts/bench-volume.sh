#!/usr/bin/env bash
# Benchmark: the same fio jobs through NBD against
#   (a) nbdkit's file plugin, (b) a CleverVM volume without a peer, (c) a CleverVM volume replicating under
#   protocol C to a peer in a lab network namespace (cvv-a / cvv-b on bridge cvvbr0, 198.51.100.201-202),
# plus fio directly on a file (the raw file-write limit), all on the same file system, printed side by side.
# Usage: scripts/bench-volume.sh [SECONDS_PER_JOB] [SIZE_MIB]     (root; builds the release binary)
set -euo pipefail
RUNTIME=${1:-5}
SIZE_MIB=${2:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/.build/release/clevervm-volume"
WORK=$(mktemp -d /tmp/cvv-bench-XXXXXX)
PIDS=()
NS_A=cvv-a; NS_B=cvv-b; BR=cvvbr0
MTU=${CVV_BENCH_MTU:-1500}    # the lab link's MTU (9000 for a jumbo-frame replication network)
ONLY=${CVV_BENCH_ONLY:-}      # e.g. "seqwrite" to run only matching jobs
cleanup() {
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
    ip netns del $NS_A 2>/dev/null || true
    ip netns del $NS_B 2>/dev/null || true
    ip link del $BR 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && swift build -c release --product clevervm-volume >/dev/null)
SIZE=$((SIZE_MIB * 1024 * 1024))
for name in nbdkit solo primary secondary raw; do
    dd if=/dev/zero of="$WORK/$name.img" bs=1M count="$SIZE_MIB" status=none
done
echo "bench-volume-secret-0123456789abcdef" > "$WORK/secret"; chmod 600 "$WORK/secret"

config() { # node peer listen peeraddr file
    local peer=""
    if [ -n "$2" ]; then
        peer=", \"listen\": \"$3\", \"peer\": {\"name\": \"$2\", \"address\": \"$4\"}, \"secretFile\": \"$WORK/secret\""
    fi
    cat > "$WORK/$1.json" <<JSON
{"name": "vol0", "node": "$1", "size": $SIZE, "backing": "$WORK/$5.img", "metaDir": "$WORK/$1.meta",
 "nbdSocket": "$WORK/$1.nbd", "controlSocket": "$WORK/$1.ctl", "protocolMode": "C",
 "afterSplitBrain0": "disconnect", "afterSplitBrain1": "disconnect", "afterSplitBrain2": "disconnect",
 "allowTwoPrimaries": false, "resyncRateMiB": 2000, "activityLogExtents": 1237 $peer}
JSON
}
wait_for() { for _ in $(seq 1 200); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timeout: $1" >&2; return 1; }

# (a) nbdkit file plugin.
nbdkit -f -U "$WORK/nbdkit.nbd" file "$WORK/nbdkit.img" & PIDS+=($!)
wait_for "nbdinfo --size 'nbd+unix:///?socket=$WORK/nbdkit.nbd'"

# (b) volume without a peer.
config solo "" "" "" solo
"$BIN" serve --config "$WORK/solo.json" 2>"$WORK/solo.log" & PIDS+=($!)
wait_for "'$BIN' status --config '$WORK/solo.json'"
"$BIN" promote --force --config "$WORK/solo.json" >/dev/null

# (c) protocol C to a peer in a namespace: primary in cvv-a (198.51.100.201), secondary in cvv-b (.202).
ip link add $BR type bridge && ip link set $BR up
for pair in "$NS_A 198.51.100.201" "$NS_B 198.51.100.202"; do
    set -- $pair
    ip netns add "$1"
    ip link add "$1-h" type veth peer name eth0 netns "$1"
    ip link set "$1-h" master $BR up mtu "$MTU"
    ip netns exec "$1" ip link set eth0 mtu "$MTU"
    ip netns exec "$1" ip addr add "$2/24" dev eth0
    ip netns exec "$1" ip link set eth0 up
    ip netns exec "$1" ip link set lo up
done
if [ "${CVV_BENCH_PEER:-netns}" = loopback ]; then
    PEER_DESC="loopback"
    config alpha beta 127.0.0.1:17789 127.0.0.1:17790 primary
    config beta alpha 127.0.0.1:17790 127.0.0.1:17789 secondary
    "$BIN" serve --config "$WORK/alpha.json" 2>"$WORK/alpha.log" & PIDS+=($!)
    "$BIN" serve --config "$WORK/beta.json" 2>"$WORK/beta.log" & PIDS+=($!)
else
    PEER_DESC="netns cvv-b, MTU $MTU"
    config alpha beta 198.51.100.201:7789 198.51.100.202:7789 primary
    config beta alpha 198.51.100.202:7789 198.51.100.201:7789 secondary
    ip netns exec $NS_A "$BIN" serve --config "$WORK/alpha.json" 2>"$WORK/alpha.log" & PIDS+=($!)
    ip netns exec $NS_B "$BIN" serve --config "$WORK/beta.json" 2>"$WORK/beta.log" & PIDS+=($!)
fi
wait_for "'$BIN' status --config '$WORK/alpha.json' | grep -q Connected"
"$BIN" promote --force --config "$WORK/alpha.json" >/dev/null
wait_for "'$BIN' status --config '$WORK/alpha.json' | grep -q 'Connected Primary/Secondary UpToDate/UpToDate'"

declare -A URI=(
    [a]="nbd+unix:///?socket=$WORK/nbdkit.nbd"
    [b]="nbd+unix:///vol0?socket=$WORK/solo.nbd"
    [c]="nbd+unix:///vol0?socket=$WORK/alpha.nbd"
)
JOBS=("seqwrite-1M-qd1 write 1M 1" "seqwrite-1M-qd16 write 1M 16" "randwrite-4k-qd1 randwrite 4k 1"
      "randwrite-4k-qd16 randwrite 4k 16" "randread-4k-qd1 randread 4k 1" "randread-4k-qd16 randread 4k 16")
RESULTS="$WORK/results.txt"; : > "$RESULTS"
measure() { # target name rw bs qd
    local json="$WORK/$1-$2.json"
    if [ "$1" = raw ]; then
        fio --name="$2" --filename="$WORK/raw.img" --ioengine=io_uring --rw="$3" --bs="$4" --iodepth="$5" \
            --size="${SIZE_MIB}m" --runtime="$RUNTIME" --time_based --output-format=json >"$json"
    else
        fio --name="$2" --ioengine=nbd --uri="${URI[$1]}" --rw="$3" --bs="$4" --iodepth="$5" \
            --size="${SIZE_MIB}m" --runtime="$RUNTIME" --time_based --output-format=json >"$json"
    fi
    python3 - "$json" "$1" "$2" >>"$RESULTS" <<'PY'
import json, sys
text = open(sys.argv[1]).read()  # the nbd engine prints a line before the JSON
job = json.loads(text[text.index("{"):])["jobs"][0]
side = job["write"] if job["write"]["io_bytes"] > 0 else job["read"]
print(sys.argv[2], sys.argv[3], side["bw_bytes"] / 1048576, side["iops"])
PY
}
for job in "${JOBS[@]}"; do
    set -- $job
    if [ -n "$ONLY" ] && [[ "$1" != *"$ONLY"* ]]; then continue; fi
    for target in a b c raw; do measure "$target" "$1" "$2" "$3" "$4"; done
done
"$BIN" status --config "$WORK/alpha.json"

python3 - "$RESULTS" "$RUNTIME" "$SIZE_MIB" "$PEER_DESC" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    target, job, mib, iops = line.split()
    rows.setdefault(job, {})[target] = (float(mib), float(iops))
print(f"\nfio through NBD, {sys.argv[2]} s per job, {sys.argv[3]} MiB file; MiB/s (IOPS)")
print(f"  (a) nbdkit file plugin  (b) CleverVM volume, no peer  (c) CleverVM protocol C to a peer ({sys.argv[4]})")
print(f"{'job':<20}{'(a) nbdkit':>22}{'(b) volume':>22}{'(c) protocol C':>22}{'raw file':>22}{'b/a':>8}{'c/a':>8}")
for job, r in rows.items():
    def cell(t):
        mib, iops = r[t]
        return f"{mib:9.1f} ({iops:8.0f})"
    a = r["a"][0]
    print(f"{job:<20}{cell('a'):>22}{cell('b'):>22}{cell('c'):>22}{cell('raw'):>22}"
          f"{r['b'][0] / a * 100:7.0f}%{r['c'][0] / a * 100:7.0f}%")
print("targets: (b) >= 90% of (a); (c) >= 80% of (a) for sequential writes")
PY

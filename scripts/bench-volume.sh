#!/usr/bin/env bash
# Benchmark: the same fio jobs through NBD against
#   (a) nbdkit's file plugin, (b) a CleverVM volume without a peer, (c) a CleverVM volume replicating under
#   protocol C to a peer in a lab network namespace (cvv-a / cvv-b on bridge cvvbr0, 198.51.100.201-202),
# plus fio directly on a file (the raw file-write limit), all on the same file system, printed side by side.
# plus (d), the reference for (c): nbdkit relaying over the same lab link to nbdkit on the peer.
# Each job runs ROUNDS times per target, interleaved; the table shows medians, and the CPU time the servers
# spent per GiB moved (user + system, softirq work done in their threads included).
# Usage: scripts/bench-volume.sh [SECONDS_PER_JOB] [SIZE_MIB] [ROUNDS]     (root; builds the release binary)
set -euo pipefail
RUNTIME=${1:-5}
SIZE_MIB=${2:-1024}
ROUNDS=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CVV_BENCH_BIN:-$ROOT/.build/release/clevervm-volume}  # another build of the volume server to compare
WORK=$(mktemp -d /tmp/cvv-bench-XXXXXX)
PIDS=()
NS_A=cvv-a; NS_B=cvv-b; NS_SW=cvv-sw; BR=cvvbr0
MTU=${CVV_BENCH_MTU:-1500}    # the lab link's MTU (9000 for a jumbo-frame replication network)
ONLY=${CVV_BENCH_ONLY:-}      # e.g. "seqwrite" to run only matching jobs
TARGETS=${CVV_BENCH_TARGETS:-a b c d raw}  # e.g. "a c" for a quicker comparison of protocol C alone
cleanup() {
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
    ip netns del $NS_A 2>/dev/null || true
    ip netns del $NS_B 2>/dev/null || true
    ip netns del $NS_SW 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -n "${CVV_BENCH_BIN:-}" ] || (cd "$ROOT" && swift build -c release --product clevervm-volume >/dev/null)
SIZE=$((SIZE_MIB * 1024 * 1024))
for name in nbdkit solo primary secondary relaypeer raw; do
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
declare -A SERVERS  # target -> the PIDs whose CPU time counts for it
nbdkit -f -U "$WORK/nbdkit.nbd" file "$WORK/nbdkit.img" & PIDS+=($!); SERVERS[a]=$!
wait_for "nbdinfo --size 'nbd+unix:///?socket=$WORK/nbdkit.nbd'"

# (b) volume without a peer.
config solo "" "" "" solo
"$BIN" serve --config "$WORK/solo.json" 2>"$WORK/solo.log" & PIDS+=($!); SERVERS[b]=$!
wait_for "'$BIN' status --config '$WORK/solo.json'"
"$BIN" promote --force --config "$WORK/solo.json" >/dev/null

# (c) protocol C to a peer in a namespace: primary in cvv-a (198.51.100.201), secondary in cvv-b (.202).
# The bridge sits in a namespace of its own, like a switch: nothing in the host's namespace changes, and bridged
# frames skip the host's netfilter hooks (br_netfilter), as they would on a real replication network.
ip netns add $NS_SW
ip netns exec $NS_SW sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
    net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
SW="ip netns exec $NS_SW"
$SW ip link add $BR type bridge && $SW ip link set $BR up
for pair in "$NS_A 198.51.100.201" "$NS_B 198.51.100.202"; do
    set -- $pair
    ip netns add "$1"
    $SW ip link add "$1-h" type veth peer name eth0 netns "$1"
    $SW ip link set "$1-h" master $BR up mtu "$MTU"
    ip netns exec "$1" ip link set eth0 mtu "$MTU"
    ip netns exec "$1" ip addr add "$2/24" dev eth0
    ip netns exec "$1" ip link set eth0 up
    ip netns exec "$1" ip link set lo up
done
if [ "${CVV_BENCH_PEER:-netns}" = loopback ]; then
    PEER_DESC="loopback"
    config alpha beta 127.0.0.1:17789 127.0.0.1:17790 primary
    config beta alpha 127.0.0.1:17790 127.0.0.1:17789 secondary
    "$BIN" serve --config "$WORK/alpha.json" 2>"$WORK/alpha.log" & PIDS+=($!); SERVERS[c]=$!
    "$BIN" serve --config "$WORK/beta.json" 2>"$WORK/beta.log" & PIDS+=($!); SERVERS[c]+=" $!"
else
    PEER_DESC="netns cvv-b, MTU $MTU"
    config alpha beta 198.51.100.201:7789 198.51.100.202:7789 primary
    config beta alpha 198.51.100.202:7789 198.51.100.201:7789 secondary
    ip netns exec $NS_A "$BIN" serve --config "$WORK/alpha.json" 2>"$WORK/alpha.log" & PIDS+=($!); SERVERS[c]=$!
    ip netns exec $NS_B "$BIN" serve --config "$WORK/beta.json" 2>"$WORK/beta.log" & PIDS+=($!); SERVERS[c]+=" $!"
fi
wait_for "'$BIN' status --config '$WORK/alpha.json' | grep -q Connected"
"$BIN" promote --force --config "$WORK/alpha.json" >/dev/null
wait_for "'$BIN' status --config '$WORK/alpha.json' | grep -q 'Connected Primary/Secondary UpToDate/UpToDate'"

# (d) the reference for (c): the same lab link with nbdkit at both ends. nbdkit's nbd plugin in cvv-a relays each
# request over TCP to nbdkit's file plugin in cvv-b, which writes it there: the network half of replication
# (receive, send, receive, write) with nothing written on the first host.
ip netns exec $NS_B nbdkit -f -i 198.51.100.202 -p 10809 file "$WORK/relaypeer.img" & PIDS+=($!); SERVERS[d]=$!
wait_for "ip netns exec $NS_A nbdinfo --size nbd://198.51.100.202:10809"
ip netns exec $NS_A nbdkit -f -U "$WORK/relay.nbd" nbd hostname=198.51.100.202 port=10809 & PIDS+=($!)
SERVERS[d]+=" $!"
wait_for "nbdinfo --size 'nbd+unix:///?socket=$WORK/relay.nbd'"

declare -A URI=(
    [a]="nbd+unix:///?socket=$WORK/nbdkit.nbd"
    [b]="nbd+unix:///vol0?socket=$WORK/solo.nbd"
    [c]="nbd+unix:///vol0?socket=$WORK/alpha.nbd"
    [d]="nbd+unix:///?socket=$WORK/relay.nbd"
)
JOBS=("seqwrite-1M-qd1 write 1M 1" "seqwrite-1M-qd16 write 1M 16" "randwrite-4k-qd1 randwrite 4k 1"
      "randwrite-4k-qd16 randwrite 4k 16" "randread-4k-qd1 randread 4k 1" "randread-4k-qd16 randread 4k 16")
RESULTS="$WORK/results.txt"; : > "$RESULTS"
cpu_ticks() { # PID... -> their user + system clock ticks
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
measure() { # target name rw bs qd
    local json="$WORK/$1-$2.json" before after
    before=$(cpu_ticks ${SERVERS[$1]:-})
    if [ "$1" = raw ]; then
        fio --name="$2" --filename="$WORK/raw.img" --ioengine=io_uring --rw="$3" --bs="$4" --iodepth="$5" \
            --size="${SIZE_MIB}m" --runtime="$RUNTIME" --time_based --output-format=json >"$json"
    else
        fio --name="$2" --ioengine=nbd --uri="${URI[$1]}" --rw="$3" --bs="$4" --iodepth="$5" \
            --size="${SIZE_MIB}m" --runtime="$RUNTIME" --time_based --output-format=json >"$json"
    fi
    after=$(cpu_ticks ${SERVERS[$1]:-})
    python3 - "$json" "$1" "$2" "$((after - before))" "$(getconf CLK_TCK)" >>"$RESULTS" <<'PY'
import json, sys
text = open(sys.argv[1]).read()  # the nbd engine prints a line before the JSON
job = json.loads(text[text.index("{"):])["jobs"][0]
side = job["write"] if job["write"]["io_bytes"] > 0 else job["read"]
cpu_ms_per_gib = int(sys.argv[4]) * 1000 / int(sys.argv[5]) / max(side["io_bytes"] / 2**30, 1e-9)
print(sys.argv[2], sys.argv[3], side["bw_bytes"] / 1048576, side["iops"], cpu_ms_per_gib)
PY
}
for job in "${JOBS[@]}"; do
    set -- $job
    if [ -n "$ONLY" ] && [[ "$1" != *"$ONLY"* ]]; then continue; fi
    for round in $(seq 1 "$ROUNDS"); do
        echo "$1: round $round of $ROUNDS" >&2
        for target in $TARGETS; do measure "$target" "$1" "$2" "$3" "$4"; done
    done
done
"$BIN" status --config "$WORK/alpha.json"

python3 - "$RESULTS" "$RUNTIME" "$SIZE_MIB" "$PEER_DESC" "$ROUNDS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    target, job, mib, iops, cpu = line.split()
    rows.setdefault(job, {}).setdefault(target, []).append((float(mib), float(iops), float(cpu)))
print(f"\nfio through NBD, {sys.argv[2]} s per job, {sys.argv[3]} MiB file, median of {sys.argv[5]} rounds")
print(f"  (a) nbdkit file plugin  (b) CleverVM volume, no peer  (c) CleverVM protocol C to a peer ({sys.argv[4]})")
print("  (d) reference for (c): nbdkit relaying over the same link to nbdkit's file plugin on the peer")
print("  raw: fio on a file, no NBD")
columns = [("a", "(a) nbdkit"), ("b", "(b) volume"), ("c", "(c) protocol C"), ("d", "(d) nbdkit relay"),
           ("raw", "raw file")]
ratios = [("b", "a"), ("c", "a"), ("d", "a"), ("c", "d")]
def median(samples, field):
    return statistics.median(sample[field] for sample in samples)
def table(title, field, digits, with_ratios):
    print(f"\n{title}")
    print(f"{'job':<20}" + "".join(f"{name:>18}" for _, name in columns)
          + ("".join(f"{f'{x}/{y}':>7}" for x, y in ratios) if with_ratios else ""))
    for job, r in rows.items():
        def cell(t):
            return f"{median(r[t], field):.{digits}f}" if t in r and not (t == "raw" and field == 2) else "-"
        def ratio(x, y):
            return f"{median(r[x], 0) / median(r[y], 0) * 100:6.0f}%" if x in r and y in r else f"{'-':>7}"
        print(f"{job:<20}" + "".join(f"{cell(t):>18}" for t, _ in columns)
              + ("".join(ratio(x, y) for x, y in ratios) if with_ratios else ""))
table("MiB/s", 0, 1, True)
print("\nMiB/s, lowest-highest round")
print(f"{'job':<20}" + "".join(f"{name:>18}" for _, name in columns))
for job, r in rows.items():
    def spread(t):
        if t not in r:
            return "-"
        values = [sample[0] for sample in r[t]]
        return f"{min(values):.0f}-{max(values):.0f}"
    print(f"{job:<20}" + "".join(f"{spread(t):>18}" for t, _ in columns))
table("IOPS", 1, 0, False)
table("server CPU, ms per GiB moved (both hosts' servers for (c) and (d); raw: none)", 2, 0, False)
print("\ntargets: (b) >= 90% of (a); (c) >= 80% of (a) for sequential writes")
print("(d) does less than (c), nothing is written on the first host: d/a bounds what any implementation of (c)")
print("can reach on this machine; c/d is how close CleverVM comes to that bound")
PY

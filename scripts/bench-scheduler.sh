#!/usr/bin/env bash
# Scheduler cost: CleverVM beside Pacemaker (crm_simulate -x CIB -G graph.xml) on the same CIB.
#
#   scripts/bench-scheduler.sh [CLEVERVM_BINARY]      (default: .build/release/clevervm)
#
# CIBs: NODES x N primitives (16 x 250, 500, 1000, 2000 and 32 x 4000; BENCH_SIZES="16x250 ..." picks others),
# every node online and nothing running yet; each primitive has a location score, chains of four follow one
# another by INFINITY colocations and mandatory orders, and every tenth carries the ping rule (-INFINITY where
# pingd is not defined or 0). Per size, in CPU seconds (user + system, so a busy machine skews it less): CleverVM's
# whole `simulate --cib --json` run (import, settle, plan, output; measured without --timing, whose extra
# schedules are not part of a run) and the wall time of one schedule (median of 5, from a second run with
# --timing), Pacemaker's crm_simulate computing its transition graph, and each side's peak memory (GNU time's
# maximum resident set); then, per doubling of the resources, how much CleverVM's whole run grew (the target:
# at most 2.2x). BENCH_PACEMAKER_TIMEOUT (seconds, default 900) bounds each crm_simulate run; a run cut off
# prints "> limit". The machine's load (uptime) is printed first and last: the numbers mean little without it.
# Then the two-host installation (Tests/Corpus/pacemaker/two-host-healthy.xml): one reschedule, median of 5.
# Run it alone on the machine: flock /tmp/clevervm-lab.lock scripts/bench-scheduler.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
binary="${1:-$root/.build/release/clevervm}"
sizes="${BENCH_SIZES:-16x250 16x500 16x1000 16x2000 32x4000}"
limit="${BENCH_PACEMAKER_TIMEOUT:-900}"
[ -x "$binary" ] || { echo "no CleverVM binary at $binary (swift build -c release --product clevervm)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is needed (Debian: time)" >&2; exit 2; }
have_pacemaker=yes
command -v crm_simulate >/dev/null || have_pacemaker=no
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# CPU seconds (user + system: the machine may be shared) and peak KiB of a command, from GNU time:
# "SECONDS KIB"; "timeout" if cut off.
measure() {
    local out="$1"; shift
    if /usr/bin/time -f '%U %S %M' -o "$work/time" "$@" >"$out" 2>"$work/stderr"; then
        awk '{ printf "%.2f %d\n", $1 + $2, $3 }' "$work/time"
    elif [ "$?" = 124 ]; then
        echo timeout
    else
        echo "failed: $(tail -1 "$work/stderr")" >&2; echo failed
    fi
}

echo "load before: $(uptime)"
printf '%-9s  %-28s  %-30s  %s\n' "size" "clevervm total / schedule" "crm_simulate -G" "peak memory (clevervm / pacemaker)"
previous_count=""; previous_s=""; growth=""
for size in $sizes; do
    nodes="${size%x*}"; count="${size#*x}"
    cib="$work/bench-$size.xml"
    python3 "$here/gen-bench-cib.py" "$nodes" "$count" >"$cib"
    read -r ours_s ours_kib < <(measure "$work/ours.json" "$binary" simulate --cib "$cib" --json)
    "$binary" simulate --cib "$cib" --json --timing >"$work/timed.json"
    schedule="$(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["timing"]["scheduleSeconds"])' "$work/timed.json")"
    if [ -n "$previous_count" ] && [ "$count" = "$((previous_count * 2))" ]; then
        growth="$growth $previous_count->$count: $(python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print("%.2fx" % (b / a) if a > 0 else "-")' "$previous_s" "$ours_s")"
    fi
    previous_count="$count"; previous_s="$ours_s"
    theirs="not installed"; theirs_kib="-"
    if [ "$have_pacemaker" = yes ]; then
        result="$(measure "$work/pcmk.log" timeout "$limit" crm_simulate -x "$cib" -G "$work/graph.xml")"
        if [ "$result" = timeout ]; then theirs="> ${limit} s"; else
            theirs="$(echo "$result" | cut -d' ' -f1) s"; theirs_kib="$(echo "$result" | cut -d' ' -f2)"
        fi
    fi
    printf '%-9s  %-28s  %-30s  %s\n' "$size" "${ours_s} s / ${schedule} s" "$theirs" \
        "$((ours_kib / 1024)) MiB / $([ "$theirs_kib" = - ] && echo - || echo "$((theirs_kib / 1024)) MiB")"
done

echo "clevervm whole run per doubling:${growth:- (no doubling measured)}"

two_host="$root/Tests/Corpus/pacemaker/two-host-healthy.xml"
"$binary" simulate --cib "$two_host" --json --timing >"$work/two.json"
python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["timing"]; print("two-host installation: one reschedule %.3f ms (median of %d)" % (t["scheduleSeconds"]*1000, t["rounds"]))' "$work/two.json"
echo "load after: $(uptime)"

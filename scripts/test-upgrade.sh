#!/usr/bin/env bash
# The rolling-upgrade test with two builds: a lab cluster whose beta runs the agent of an older release (N, built
# from commit $CLEVERVM_UPGRADE_FROM, by default the last one whose agents speak only group wire version 1) and
# whose alpha runs this tree's agent (N+1). The resource moves both ways, a config change is applied from either
# host, then beta is upgraded to N+1 (it reads the document N wrote) and the group switches to the newer wire
# version. Needs root; takes the lab lock itself (or give CLEVERVM_LAB_LOCKED=1 when holding it):
#   bash scripts/test-upgrade.sh
#   bash scripts/test-upgrade.sh --build-only     only build N (cached) and N+1
# N is built once, in a source tree of its own under /var/cache/clevervm/upgrade/COMMIT (a cold debug build: the
# first run takes as long as one, later runs reuse it). CI does not run this; it runs the cheaper
# UpgradeLabTests (one agent of this build limited to wire version 1 with --wire-version).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
from=$(git rev-parse "${CLEVERVM_UPGRADE_FROM:-77836fd839b26422da6c261ea2c9e74a802e0d65}^{commit}")
cache=${CLEVERVM_UPGRADE_CACHE:-/var/cache/clevervm/upgrade}
src=$cache/$from
config=$(mktemp --suffix=.yaml)
C=$repo/.build/debug/clevervm

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() {
    echo "test-upgrade: FAILED: $*" >&2
    for host in alpha beta; do
        echo "--- $host: agent log (last 30 lines)" >&2
        tail -n 30 "/run/clevervm-lab/upgr/hosts/$host/logs/clevervm.log" >&2 2>/dev/null || true
    done
    exit 1
}

say "N: the agent of $(git log -1 --format='%h (%cs) %s' "$from" | cut -c1-100), built in $src"
started=$SECONDS
if [ ! -x "$src/.build/debug/clevervm" ] || [ ! -f "$src/.built" ]; then
    mkdir -p "$cache"
    rm -rf "$src.partial"
    mkdir -p "$src.partial"
    git archive "$from" | tar -x -C "$src.partial"
    # The same dependency versions as this tree, where they still fit N's Package.swift.
    [ -f Package.resolved ] && cp Package.resolved "$src.partial/"
    rm -rf "$src"
    mv "$src.partial" "$src"
    (cd "$src" && swift build --product clevervm) || fail "N did not build in $src"
    touch "$src/.built"
fi
N=$src/.build/debug/clevervm
echo "test-upgrade: N in $((SECONDS - started)) s"
say "N+1: this tree (swift build --product clevervm)"
started=$SECONDS
swift build --product clevervm
echo "test-upgrade: N+1 in $((SECONDS - started)) s"
[ "${1:-}" = --build-only ] && exit 0

if [ -z "${CLEVERVM_LAB_LOCKED:-}" ]; then
    exec 9>/tmp/clevervm-lab.lock
    flock 9
fi
lab() { local verb=$1; shift; "$C" lab "$verb" --name upgr "$@"; }
cleanup() { "$C" lab down --name upgr >/dev/null 2>&1 || true; rm -f "$config"; }
trap cleanup EXIT
cleanup
lab_started=$SECONDS

# The lab's process cluster. N's config parser knows no `watchdog:` key, so beta's own cluster.yaml (read only when
# its agent has no document yet) goes without; the config the group carries keeps it.
cp examples/lab.yaml "$config"
say "a lab of two N+1 agents (examples/lab.yaml)"
lab up --config "$config" --no-console >/dev/null
status() {  # status HOST BINARY: the agent's status report as JSON, from that host with that release's CLI
    lab exec "$1" -- "$2" status --json 2>/dev/null
}
field() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"r": r}))' "$1" 2>/dev/null || true; }
where() { status alpha "$C" | field '",".join(n for x in r["resources"] if x["id"] == "vm" for n in x["roles"])'; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
    local seconds=$1 what=$2; shift 2
    for _ in $(seq 1 $((seconds * 2))); do "$@" && return 0; sleep 0.5; done
    fail "$what (after $seconds s)"
}
settled() {  # both online, quorate, nothing pending, vm running, on alpha's view with wire version $1
    [ "$(status alpha "$C" | field '"%s %s %s %s" % (r["quorate"], sum(n["online"] for n in r["nodes"]), len(r["pendingActions"]), r.get("wireVersion"))')" = "True 2 0 $1" ] \
        && [ -n "$(where)" ]
}
wait_for 60 "the N+1 cluster did not settle on wire version 2" settled 2

say "beta runs N: its agent is replaced by N's ($N agent)"
# N starts as a host new to the cluster would: it cannot read the document N+1 wrote (no downgrades).
lab exec beta -- sh -c "sed -i '/^ *watchdog: none\$/d' /etc/clevervm/cluster.yaml; rm -f /var/lib/clevervm/cluster.json"
lab restart beta clevervm -- "$N" agent >/dev/null
wait_for 60 "the mixed cluster (N+1 on alpha, N on beta) did not settle on wire version 1" settled 1
echo "alpha (N+1) writes wire version $(status alpha "$C" | field 'r.get("wireVersion")'); beta (N) sees config epoch $(status beta "$N" | field 'r["configEpoch"]')"
lab exec alpha -- "$C" status

runs_on() { [ "$(where)" = "$1" ]; }  # asked again at each try (an argument "$(where)" would be read once)
move() {  # move CLI-ON-THE-HOST-IT-LEAVES: `migrate` there, wait until vm runs on the other host, `unmigrate`
    local from to cli=$1
    from=$(where)
    to=$([ "$from" = alpha ] && echo beta || echo alpha)
    say "move vm from $from to $to ($( [ "$cli" = "$N" ] && echo "N's" || echo "N+1's") migrate on $from)"
    lab exec "$from" -- "$cli" migrate >/dev/null || fail "migrate on $from failed"
    wait_for 60 "vm did not move from $from to $to" runs_on "$to"
    lab exec "$from" -- "$cli" unmigrate >/dev/null || fail "unmigrate on $from failed"
    echo "vm runs on $to"
}
cli_of() { [ "$1" = beta ] && echo "$N" || echo "$C"; }
move "$(cli_of "$(where)")"
move "$(cli_of "$(where)")"

say "a config change from alpha (N+1): a second resource; both agents apply it"
epoch=$(status alpha "$C" | field 'r["configEpoch"]')
lab exec alpha -- "$C" config show > "$config"
sed -i 's|^resources:$|resources:\n  - id: extra\n    type: process\n    command: [/bin/sleep, infinity]\n    monitor: 2s|' "$config"
lab exec alpha -- "$C" config apply "$config" >/dev/null || fail "config apply on alpha failed"
has_extra() {
    [ "$(status "$1" "$(cli_of "$1")" | field '[x["id"] for x in r["resources"] if x["roles"]].count("extra")')" = 1 ]
}
wait_for 30 "beta (N) does not see resource extra running" has_extra beta
wait_for 30 "alpha (N+1) does not see resource extra running" has_extra alpha
echo "config epoch $epoch -> $(status beta "$N" | field 'r["configEpoch"]') on beta (N), extra runs"

say "a config change from beta (N): resource extra removed again"
lab exec beta -- "$N" config show > "$config"
python3 - "$config" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
# The resource entry of `extra`, up to the next entry or top-level key.
text = re.sub(r"^  - id: extra\n(?:    .*\n)*", "", text, flags=re.M)
open(path, "w").write(text)
EOF
lab exec beta -- "$N" config apply "$config" >/dev/null || fail "config apply on beta (N) failed"
gone() { ! has_extra alpha && [ "$(status alpha "$C" | field '[x["id"] for x in r["resources"]].count("extra")')" = 0 ]; }
wait_for 30 "alpha (N+1) still has resource extra after beta's (N) config change" gone

say "beta upgraded to N+1: it reads what N persisted; the group speaks wire version 2 again"
lab restart beta clevervm -- "$C" agent >/dev/null
wait_for 60 "after beta's upgrade the cluster did not settle on wire version 2" settled 2
[ "$(status beta "$C" | field 'r.get("wireVersion")')" = 2 ] || fail "beta (N+1) does not write wire version 2"
# N knows no `watchdog:` key, so the config it applied has none, and N+1 runs nothing new on a host without a
# watchdog setting (docs/install.md, "Upgrading from a release without watchdog fencing"): the operator gives every
# node its setting again once the last host runs N+1.
say "the nodes' watchdog settings back (N's config change dropped them): applied from beta (N+1)"
lab exec beta -- "$C" config show > "$config"
grep -q '^    watchdog:' "$config" && fail "the config N applied still has watchdog settings (the test's premise is wrong)"
sed -i 's|^    id: \([0-9]*\)$|    id: \1\n    watchdog: none|' "$config"
lab exec beta -- "$C" config apply "$config" >/dev/null || fail "config apply on beta (N+1) failed"
move "$C"
lab exec alpha -- "$C" status
echo "test-upgrade: the lab part in $((SECONDS - lab_started)) s"
echo "test-upgrade: passed"

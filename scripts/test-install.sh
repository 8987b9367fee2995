#!/usr/bin/env bash
# The installation test: three Debian bookworm machines (qnetd, alpha, beta), each booted with systemd as PID 1 in
# a systemd-nspawn container of its own network namespace on 198.51.100.0/24 (a bridge with no uplink). The
# package is installed with apt, then the commands of docs/install.md are run literally, block by block on the
# host each block names; then a resource fails over when its host is powered off, the survivor's package is
# upgraded and purged. Needs root; run it under the lab lock:
#   flock /tmp/clevervm-lab.lock bash scripts/test-install.sh
# The root file system (scripts/build-test-root.sh) and the package (scripts/build-deb.sh) are cached.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
name=cvinst
bridge=${name}br0
state=/var/tmp/clevervm-install-test
declare -A address=([qnetd]=198.51.100.1 [alpha]=198.51.100.11 [beta]=198.51.100.12)
machines=(qnetd alpha beta)
declare -A leader=()

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "test-install: FAILED: $*" >&2; exit 1; }

teardown() {
    for machine in "${machines[@]}"; do
        local pidfile=$state/$machine.nspawn.pid
        if [ -f "$pidfile" ]; then
            local pid; pid=$(cat "$pidfile")
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        mountpoint -q "$state/$machine/merged" 2>/dev/null && umount -l "$state/$machine/merged"
        ip netns delete "$name-$machine" 2>/dev/null || true
        ip link delete "$name-$machine" 2>/dev/null || true
    done
    ip link delete "$bridge" 2>/dev/null || true
    rm -rf "$state"
}

on_exit() {
    status=$?
    if [ "$status" != 0 ] && [ -d "$state" ]; then
        for machine in "${machines[@]}"; do
            [ -n "${leader[$machine]:-}" ] || continue
            echo "--- $machine: journal (last 40 lines)" >&2
            run "$machine" journalctl --no-pager -n 40 2>/dev/null >&2 || true
        done
    fi
    teardown
    exit "$status"
}

# Runs a shell command inside a machine (all its namespaces), as root in /root.
run() {
    local machine=$1; shift
    nsenter --target "${leader[$machine]}" --mount --uts --ipc --net --pid -- \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TOKEN="${TOKEN:-}" ALPHA_KEY="${ALPHA_KEY:-}" \
        DEBIAN_FRONTEND=noninteractive bash -c "cd /root && $*"
}

boot() {
    local machine=$1 root=$2
    local dir=$state/$machine
    mkdir -p "$dir/upper" "$dir/work" "$dir/merged"
    mount -t overlay overlay -o "lowerdir=$root,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"
    echo "$machine" > "$dir/merged/etc/hostname"
    {
        echo "127.0.0.1 localhost"
        for other in "${machines[@]}"; do echo "${address[$other]} $other"; done
    } > "$dir/merged/etc/hosts"
    cp "$deb" "$upgrade_deb" "$dir/merged/root/"
    ip netns add "$name-$machine"
    ip link add "$name-$machine" type veth peer name eth0 netns "$name-$machine"
    ip link set "$name-$machine" master "$bridge" up
    ip netns exec "$name-$machine" ip link set lo up
    ip netns exec "$name-$machine" ip addr add "${address[$machine]}/24" dev eth0
    ip netns exec "$name-$machine" ip link set eth0 up
    # --keep-unit: this machine's PID 1 is not systemd, so nspawn cannot ask it for a scope unit.
    systemd-nspawn --quiet -D "$dir/merged" --register=no --keep-unit -b --machine="$machine" --console=pipe \
        --network-namespace-path="/run/netns/$name-$machine" </dev/null >"$state/$machine.console.log" 2>&1 &
    echo $! > "$state/$machine.nspawn.pid"
}

wait_booted() {
    local machine=$1 pid
    pid=$(cat "$state/$machine.nspawn.pid")
    for _ in $(seq 1 100); do
        # The container's PID 1 is the descendant of nspawn in another PID namespace (not its direct child).
        leader[$machine]=""
        for candidate in $(pgrep -P "$pid"; for c in $(pgrep -P "$pid"); do pgrep -P "$c"; done); do
            if [ "$(readlink "/proc/$candidate/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]; then leader[$machine]=$candidate; break; fi
        done
        [ -n "${leader[$machine]}" ] && break
        sleep 0.1
    done
    [ -n "${leader[$machine]}" ] || fail "$machine: systemd-nspawn started no container ($(tail -5 "$state/$machine.console.log"))"
    for _ in $(seq 1 120); do
        s=$(run "$machine" systemctl is-system-running 2>/dev/null || true)
        case "$s" in running|degraded) echo "$machine: systemd $s (PID 1 is host pid ${leader[$machine]})"; return 0 ;; esac
        sleep 0.5
    done
    fail "$machine: systemd did not finish booting (state: $s)"
}

power_off() {
    local machine=$1
    ip netns exec "$name-$machine" ip link set eth0 down
    kill -KILL "${leader[$machine]}"
    rm -f "$state/$machine.nspawn.pid"
    unset "leader[$machine]"
}

# Where resource $2 runs, as machine $1's agent sees it.
where() {
    run "$1" clevervm status --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(",".join(n for x in r["resources"] if x["id"] == sys.argv[1] for n, role in x["roles"].items()))' "$2" 2>/dev/null || true
}

wait_where() {
    local from=$1 resource=$2 want=$3 seconds=$4
    for _ in $(seq 1 $((seconds * 2))); do
        [ "$(where "$from" "$resource")" = "$want" ] && return 0
        sleep 0.5
    done
    return 1
}

trap on_exit EXIT
[ "$(id -u)" = 0 ] || fail "needs root"
teardown

say "the package (scripts/build-deb.sh) and the bookworm root file system (scripts/build-test-root.sh)"
mkdir -p "$state/debs"
version=$(cat packaging/VERSION)
bash scripts/build-deb.sh "$state/debs" >&2
deb=$state/debs/clevervm_${version}_amd64.deb
upgrade_version=$version+upgrade1
CLEVERVM_VERSION=$upgrade_version bash scripts/build-deb.sh "$state/debs" >&2
upgrade_deb=$state/debs/clevervm_${upgrade_version}_amd64.deb
root=$(bash scripts/build-test-root.sh)
grep -q "clevervm_${version}_amd64.deb" docs/install.md || fail "docs/install.md does not install clevervm_${version}_amd64.deb"

say "three machines: systemd in systemd-nspawn, each in its network namespace on $bridge (no uplink)"
ip link add "$bridge" type bridge
ip link set "$bridge" up
for machine in "${machines[@]}"; do boot "$machine" "$root"; done
for machine in "${machines[@]}"; do wait_booted "$machine"; done

say "the commands of docs/install.md, literally"
python3 - docs/install.md > "$state/steps" <<'EOF'
# Every ```sh HOST... block, in document order: "HOSTS<TAB>base64(script)" per line.
import base64, re, sys
text = open(sys.argv[1]).read()
for hosts, body in re.findall(r"^```sh ([a-z ]+)\n(.*?)^```", text, re.S | re.M):
    print(hosts.strip() + "\t" + base64.b64encode(body.encode()).decode())
EOF
steps=$(wc -l < "$state/steps")
[ "$steps" -gt 0 ] || fail "docs/install.md has no \`\`\`sh HOST blocks"
declare -A count=()
while IFS=$'\t' read -r hosts script; do
    body=$(echo "$script" | base64 -d)
    for host in $hosts; do
        [ -n "${address[$host]:-}" ] || fail "docs/install.md names an unknown host '$host'"
        count[$host]=$(( ${count[$host]:-0} + $(grep -cv '^\s*\(#.*\)\?$' <<<"$body") ))
        echo "$body" | sed "s/^/$host# /"
        output=$(run "$host" "set -e; $body" 2>&1) || { echo "$output" | sed "s/^/  /"; fail "on $host: a command of docs/install.md failed"; }
        echo "$output" | sed "s/^/  /"
        # What the reader copies from one host's output to the next command.
        t=$(grep -o 'clevervm-join:[A-Za-z0-9_-]*' <<<"$output" | tail -1 || true); [ -n "$t" ] && TOKEN=$t
        k=$(grep '^ssh-ed25519 ' <<<"$output" | tail -1 || true); [ -n "$k" ] && ALPHA_KEY=$k
    done
done < "$state/steps"
for host in "${machines[@]}"; do
    echo "$host: ${count[$host]:-0} commands"
    [ "${count[$host]:-0}" -le 10 ] || fail "docs/install.md has ${count[$host]} commands for $host (at most 10)"
done

say "after the guide: both agents active, the cluster quorate with both hosts, the resource running"
for host in alpha beta; do
    [ "$(run "$host" systemctl is-active clevervm || true)" = active ] || fail "$host: clevervm.service is not active"
done
run alpha systemctl status --no-pager clevervm | head -5
for _ in $(seq 1 60); do
    online=$(run alpha clevervm status --json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin); print(int(r["quorate"]), sum(n["online"] for n in r["nodes"]))' 2>/dev/null || true)
    [ "$online" = "1 2" ] && break
    sleep 1
done
[ "$online" = "1 2" ] || fail "the cluster is not quorate with both hosts online ($online)"
for _ in $(seq 1 60); do active=$(where alpha web); [ -n "$active" ] && break; sleep 1; done
[ -n "$active" ] || fail "resource web does not run anywhere"
run alpha clevervm status
survivor=$([ "$active" = alpha ] && echo beta || echo alpha)

say "power off $active, where web runs: it starts on $survivor"
power_off "$active"
wait_where "$survivor" web "$survivor" 60 || { run "$survivor" clevervm status || true; fail "web did not move to $survivor"; }
run "$survivor" clevervm status
run "$survivor" "pgrep -x sleep >/dev/null" || fail "no stand-in process runs on $survivor"

say "upgrade on $survivor (apt install ./clevervm_${upgrade_version}_amd64.deb): the agent runs the new version, web keeps running"
run "$survivor" "apt-get install -y ./clevervm_${upgrade_version}_amd64.deb" | tail -3
[ "$(run "$survivor" "dpkg-query -W -f='\${Version}' clevervm")" = "$upgrade_version" ] || fail "the upgrade did not install"
[ "$(run "$survivor" systemctl is-active clevervm || true)" = active ] || fail "$survivor: clevervm.service is not active after the upgrade"
wait_where "$survivor" web "$survivor" 30 || fail "web is not running on $survivor after the upgrade"

say "purge on $survivor"
run "$survivor" "apt-get purge -y clevervm" | tail -3
run "$survivor" "! dpkg-query -W -f='\${Status}' clevervm 2>/dev/null | grep -q installed" || fail "clevervm still installed after purge"
run "$survivor" "[ ! -e /etc/clevervm ] && [ ! -e /usr/bin/clevervm ] && ! systemctl is-enabled clevervm 2>/dev/null" \
    || fail "purge left /etc/clevervm, the binary or an enabled unit"
echo "test-install: passed"

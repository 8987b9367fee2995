#!/usr/bin/env bash
# The installation test: three Debian bookworm machines (qnetd, alpha, beta), each booted with systemd as PID 1 in
# a systemd-nspawn container of its own network namespace on 198.51.100.0/24 (a bridge with no uplink). The
# package is installed with apt, then the commands of docs/install.md are run literally, block by block on the
# host each block names; then a resource fails over when its host is powered off, the survivor's package is
# upgraded and purged. Needs root; run it under the lab lock:
#   bash scripts/test-install.sh [--debug]
# It takes the lab lock itself once the packages are built (or give CLEVERVM_LAB_LOCKED=1 when holding it).
# --debug packages the debug build (scripts/build-deb.sh --debug), as CI does. The root file system
# (scripts/build-test-root.sh) and the packages (scripts/build-deb.sh) are cached.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
name=cvinst
bridge=${name}br0
state=/var/tmp/clevervm-install-test
debs=/var/tmp/clevervm-install-debs
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
    rm -rf "$debs"
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

deb_mode=()
case "${1:-}" in
    --debug) deb_mode=(--debug) ;;
    "") ;;
    *) fail "unknown option $1 (--debug: package the debug build, as CI does)" ;;
esac
# Every path of a machine but the ones that change by themselves or hold the test's own files (sorted).
snapshot() {
    run "$1" "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp \
        -o -path /var/log -o -path /var/cache -o -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/lib/systemd \
        -o -path /var/lib/corosync -o -path /root \\) -prune -o -print | sort"
}

trap on_exit EXIT
[ "$(id -u)" = 0 ] || fail "needs root"

say "the package (scripts/build-deb.sh ${deb_mode[*]}), the same repackaged as the upgrade, and the bookworm root file system (scripts/build-test-root.sh)"
rm -rf "$debs"
mkdir -p "$debs"
started=$SECONDS
bash scripts/build-deb.sh "${deb_mode[@]}" "$debs" >&2
deb=$(ls "$debs"/clevervm_*_amd64.deb)
version=$(basename "$deb" | sed 's/^clevervm_\(.*\)_amd64\.deb$/\1/')
# The upgrade: the same binaries repackaged as VERSION+b1 (Debian's binNMU form, higher than VERSION).
upgrade_version=$version+b1
upgrade_deb=$debs/clevervm_${upgrade_version}_amd64.deb
dpkg-deb -R "$deb" "$debs/repack"
sed -i "s/^Version: .*/Version: $upgrade_version/" "$debs/repack/DEBIAN/control"
dpkg-deb -Znone --root-owner-group -b "$debs/repack" "$upgrade_deb" >/dev/null
rm -rf "$debs/repack"
echo "test-install: the packages in $((SECONDS - started)) s"
started=$SECONDS
root=$(bash scripts/build-test-root.sh)
echo "test-install: the root file system in $((SECONDS - started)) s"
grep -q "clevervm_${version}_amd64.deb" docs/install.md || fail "docs/install.md does not install clevervm_${version}_amd64.deb"

# The machine-wide lab lock for the machines (not for building the packages), unless the caller holds it already
# (CLEVERVM_LAB_LOCKED=1): a second flock on a new descriptor would wait for ourselves.
if [ -z "${CLEVERVM_LAB_LOCKED:-}" ]; then
    exec 9>/tmp/clevervm-lab.lock
    flock 9
fi
teardown
machines_started=$SECONDS

say "three machines: systemd in systemd-nspawn, each in its network namespace on $bridge (no uplink)"
ip link add "$bridge" type bridge
ip link set "$bridge" up
for machine in "${machines[@]}"; do boot "$machine" "$root"; done
for machine in "${machines[@]}"; do wait_booted "$machine"; done
echo "test-install: three machines booted in $((SECONDS - machines_started)) s"
# What a fresh machine holds, to find what the package leaves behind after its purge.
for host in alpha beta; do snapshot "$host" > "$state/$host.files-before"; done

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
declare -A console_password=()
guide_started=$SECONDS
while IFS=$'\t' read -r hosts script; do
    body=$(echo "$script" | base64 -d)
    for host in $hosts; do
        [ -n "${address[$host]:-}" ] || fail "docs/install.md names an unknown host '$host'"
        count[$host]=$(( ${count[$host]:-0} + $(grep -cv '^\s*\(#.*\)\?$' <<<"$body") ))
        echo "$body" | sed "s/^/$host# /"
        output=$(run "$host" "set -e; $body" 2>&1) || { echo "$output" | sed "s/^/  /"; fail "on $host: a command of docs/install.md failed"; }
        echo "$output" | sed "s/^/  /"
        if grep -q 'apt-get install -y ./clevervm_' <<<"$body"; then
            [ -z "$(run "$host" dpkg --audit)" ] || fail "$host: dpkg --audit after installing the package: $(run "$host" dpkg --audit)"
            [ "$(run "$host" clevervm --version)" = "${version%%+*}" ] || fail "$host: clevervm --version is not ${version%%+*}"
        fi
        if grep -q '^clevervm init' <<<"$body"; then
            run "$host" systemctl status --no-pager clevervm >/dev/null || { run "$host" systemctl status --no-pager clevervm || true; fail "$host: clevervm.service is not active after init"; }
            echo "  ($host: systemctl status clevervm: active after init)"
        fi
        # What the reader copies from one host's output to the next command.
        t=$(grep -o 'clevervm-join:[A-Za-z0-9_-]*' <<<"$output" | tail -1 || true); [ -n "$t" ] && TOKEN=$t
        k=$(grep '^ssh-ed25519 ' <<<"$output" | tail -1 || true); [ -n "$k" ] && ALPHA_KEY=$k
        p=$(sed -n 's/^password: \([A-Za-z0-9]*\) (shown once.*/\1/p' <<<"$output" | tail -1 || true); [ -n "$p" ] && console_password[$host]=$p
    done
done < "$state/steps"
for host in "${machines[@]}"; do
    echo "$host: ${count[$host]:-0} commands"
    [ "${count[$host]:-0}" -le 10 ] || fail "docs/install.md has ${count[$host]} commands for $host (at most 10)"
done

echo "test-install: the guide in $((SECONDS - guide_started)) s"

say "after the guide: both agents active, the cluster quorate with both hosts, the resource running"
for host in alpha beta; do
    [ "$(run "$host" systemctl is-active clevervm || true)" = active ] || fail "$host: clevervm.service is not active"
done
run alpha systemctl status --no-pager clevervm | head -5

say "the web console on alpha: HTTPS with the host certificate init made, the account the guide created logs in"
[ -n "${console_password[alpha]:-}" ] || fail "docs/install.md made no console account on alpha (no generated password printed)"
[ "$(run alpha systemctl is-active clevervm-web || true)" = active ] || { run alpha systemctl status --no-pager clevervm-web || true; fail "alpha: clevervm-web.service is not active"; }
served=""
for _ in $(seq 1 30); do
    served=$(ip netns exec "$name-alpha" openssl s_client -connect 198.51.100.11:7443 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null || true)
    [ -n "$served" ] && break
    sleep 1
done
expected=$(run alpha openssl x509 -in /etc/clevervm/tls/host.crt -noout -fingerprint -sha256)
[ -n "$served" ] && [ "$served" = "$expected" ] || fail "the console on alpha:7443 serves '${served:-nothing}', not the host certificate ($expected)"
cookies=$state/console.cookies
login=$(ip netns exec "$name-alpha" curl -sk -c "$cookies" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "{\"user\":\"admin\",\"password\":\"${console_password[alpha]}\"}" https://198.51.100.11:7443/api/v1/login)
[ "$login" = 200 ] || fail "POST /api/v1/login as admin on alpha answered $login"
ip netns exec "$name-alpha" curl -sk -b "$cookies" https://198.51.100.11:7443/api/v1/status | grep -q '"quorate"' \
    || fail "GET /api/v1/status after the login shows no cluster status"
[ "$(ip netns exec "$name-alpha" curl -sk -o /dev/null -w '%{http_code}' https://198.51.100.11:7443/api/v1/status)" = 401 ] \
    || fail "GET /api/v1/status without a login is not refused"
echo "the console on alpha: host certificate ${served#*=}, admin logged in, /api/v1/status answered; refused without a login"
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
[ -z "$(run "$survivor" dpkg --audit)" ] || fail "$survivor: dpkg --audit after the upgrade: $(run "$survivor" dpkg --audit)"
[ "$(run "$survivor" systemctl is-active clevervm || true)" = active ] || fail "$survivor: clevervm.service is not active after the upgrade"
wait_where "$survivor" web "$survivor" 30 || fail "web is not running on $survivor after the upgrade"

say "purge on $survivor"
run "$survivor" "apt-get purge -y clevervm" | tail -3
run "$survivor" "! dpkg-query -W -f='\${Status}' clevervm 2>/dev/null | grep -q installed" || fail "clevervm still installed after purge"
[ -z "$(run "$survivor" dpkg --audit)" ] || fail "$survivor: dpkg --audit after the purge: $(run "$survivor" dpkg --audit)"
run "$survivor" "[ ! -e /etc/clevervm ] && [ ! -e /usr/bin/clevervm ] && ! systemctl is-enabled clevervm 2>/dev/null" \
    || fail "purge left /etc/clevervm, the binary or an enabled unit"
# What may stay is what docs/install.md says stays: Corosync's own files that init/join/qdevice setup wrote
# (they belong to the corosync packages, which stay installed), and the units init enabled.
snapshot "$survivor" > "$state/$survivor.files-after"
comm -13 "$state/$survivor.files-before" "$state/$survivor.files-after" > "$state/leftovers"
grep -Ev '^/etc/corosync/(authkey|qnetd-cacert\.crt|qdevice-net-node\.p12|qdevice(/.*)?)$|^/etc/systemd/system/multi-user\.target\.wants/corosync(-qdevice)?\.service$' \
    "$state/leftovers" > "$state/unexpected" || true
echo "left after the purge (documented): $(tr '\n' ' ' < "$state/leftovers")"
[ ! -s "$state/unexpected" ] || fail "the purge left files docs/install.md does not name: $(tr '\n' ' ' < "$state/unexpected")"
echo "test-install: the machines in $((SECONDS - machines_started)) s (packages and root file system before that)"
echo "test-install: passed"

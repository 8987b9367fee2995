#!/usr/bin/env bash
# Benchmark of the web console with 50 VMs (process stand-ins) on a two-host lab: page load (GET / with a
# session, median of 30) beside the agent's own status answer (`clevervm status --json`), and event latency
# (an action through the API -> the SSE stream's status showing it) beside the CLI polling for the same change.
# The lab figures are printed beside the --local ones, measured first in the same run (before the lab lock is taken).
# Needs root and a build (`swift build --build-tests` for the --local part); holds the machine-wide lab lock.
#   bash scripts/bench-web.sh           lab mode: the --local figures, then the lab's
#   bash scripts/bench-web.sh --local   the same figures without a lab: the console live on loopback over the
#                                       in-memory cluster (CleverWebTests' WebBenchmark; needs `swift build --build-tests`)
set -euo pipefail
cd "$(dirname "$0")/.."
local_figures() {
    CLEVERVM_WEB_BENCH=1 swift test --skip-build --filter WebBenchmark 2>&1 | grep -E "^(page load|event latency)|✘|error:"
    return "${PIPESTATUS[0]}"
}
if [ "${1:-}" = "--local" ]; then
    local_figures
    exit $?
fi
echo "==> --local (the console on loopback over the in-memory cluster, no lab), this run:"
local_figures | sed 's/^/    /'
echo "==> lab (two hosts, process stand-ins, a Python HTTPS client in the gateway namespace), this run:"
C=${CLEVERVM:-.build/debug/clevervm}
count=${VMS:-50}
config=$(mktemp --suffix=.yaml)
# The machine-wide lab lock, unless the caller already holds it (CLEVERVM_LAB_LOCKED=1, e.g. a whole suite run
# under flock): a second flock on a new descriptor would wait for ourselves.
if [ -z "${CLEVERVM_LAB_LOCKED:-}" ]; then
    exec 9>/tmp/clevervm-lab.lock
    flock 9
fi
cleanup() { "$C" lab down >/dev/null 2>&1 || true; rm -f "$config"; }
trap cleanup EXIT
cleanup
{
    sed -n '1,/^resources:/p' examples/lab.yaml
    for i in $(seq -w 1 "$count"); do
        cat <<YAML
  - id: vm$i
    type: process
    command: ["/bin/sleep", "infinity"]
    monitor: 10s
    timeout: 10s
YAML
    done
} > "$config"
"$C" lab up --config "$config" --timeout 300 >/dev/null
login=/run/clevervm-lab/clevervm/console-login.json
"$C" lab exec gw -- python3 - "$login" "$count" "$(realpath "$C")" <<'PY'
import json, ssl, statistics, subprocess, sys, time, urllib.request, http.client
login = json.load(open(sys.argv[1])); count = int(sys.argv[2]); clevervm = sys.argv[3]
host = "198.51.100.11"
context = ssl._create_unverified_context()
def connection(): return http.client.HTTPSConnection(host, 7443, context=context, timeout=60)
c = connection()
c.request("POST", "/api/v1/login", json.dumps({"user": login["user"], "password": login["password"]}), {"Content-Type": "application/json"})
r = c.getresponse(); body = json.loads(r.read()); cookie = r.getheader("Set-Cookie").split(";")[0]; csrf = body["csrfToken"]
def get(path):
    c.request("GET", path, headers={"Cookie": cookie}); r = c.getresponse(); data = r.read(); assert r.status == 200, (path, r.status); return data
get("/")
times = []
for _ in range(30):
    t = time.monotonic(); page = get("/"); times.append(time.monotonic() - t)
assert page.count(b'data-resource="vm') == count, "the overview does not show every VM"
reference = []
for _ in range(10):
    t = time.monotonic(); subprocess.run([clevervm, "lab", "exec", "alpha", "--", clevervm, "status", "--json"], check=True, capture_output=True); reference.append(time.monotonic() - t)
print(f"page load (GET / with {count} VMs, {len(page)} bytes): median {statistics.median(times)*1000:.1f} ms, max {max(times)*1000:.1f} ms"
      f"  | reference: clevervm status --json through lab exec: median {statistics.median(reference)*1000:.1f} ms")

def stream_until(predicate, action):
    s = connection(); s.request("GET", "/api/v1/stream", headers={"Cookie": cookie}); r = s.getresponse()
    event = None; first = True
    while True:
        line = r.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "): event = line[7:]
        elif line.startswith("data: ") and event == "status":
            data = json.loads(line[6:])
            if first: first = False; started = time.monotonic(); action()
            elif data.get("status") and predicate(data["status"]):
                elapsed = time.monotonic() - started; s.close(); return elapsed

def roles(status, vm): return next(x for x in status["resources"] if x["id"] == vm)["roles"]
def post(path):
    a = connection(); a.request("POST", path, "{}", {"Cookie": cookie, "X-CSRF-Token": csrf, "Content-Type": "application/json"}); a.getresponse().read()
latencies = []; references = []
for i in range(1, 6):
    vm = f"vm{i:02d}"
    latencies.append(stream_until(lambda s: roles(s, vm) == {}, lambda: post(f"/api/v1/forcestop/{vm}")))
    post(f"/api/v1/forcestart/{vm}")
    # Reference: the same kind of change seen by polling the CLI as fast as it answers.
    vm2 = f"vm{i+10:02d}"
    t = time.monotonic(); post(f"/api/v1/forcestop/{vm2}")
    while True:
        out = subprocess.run([clevervm, "lab", "exec", "alpha", "--", clevervm, "status", "--json"], capture_output=True).stdout
        if roles(json.loads(out), vm2) == {}: break
    references.append(time.monotonic() - t)
    post(f"/api/v1/forcestart/{vm2}")
print(f"event latency (forcestop via API -> SSE status shows it stopped, {count} VMs): median {statistics.median(latencies)*1000:.0f} ms, max {max(latencies)*1000:.0f} ms"
      f"  | reference: CLI polling sees the same change: median {statistics.median(references)*1000:.0f} ms")
PY

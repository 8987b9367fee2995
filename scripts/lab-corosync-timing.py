#!/usr/bin/env python3
"""Measures Corosync reaction times in a two-host lab (real corosync, qdevice, qnetd; token 1000 ms).

    sudo Scripts/lab-corosync-timing.py [--runs 10] [--build .build/debug]

For each run: partition alpha|bravo (both reach the gateway) -> time until the losing side reports "not quorate"
and the winner its verdict; heal. Power off bravo -> time until alpha's CPG view drops bravo and until alpha's
quorum verdict; power on. Prints each run and the median / min / max. Uses lab name "cvlt"; tears it down at the end.
"""
import argparse, json, os, statistics, subprocess, sys, threading, time

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=10)
parser.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "debug"))
args = parser.parse_args()
LAB = os.path.join(args.build, "clevervm-lab")
PROBE = os.path.abspath(os.path.join(args.build, "corosync-probe"))
NAME = "cvlt"


def lab(*words):
    subprocess.run([LAB] + list(words[:1]) + ["--name", NAME] + list(words[1:]), check=True, stdout=subprocess.DEVNULL)


class Probe:
    def __init__(self, host):
        self.lines, self.host = [], host
        self.process = subprocess.Popen([LAB, "exec", "--name", NAME, host, "--", PROBE, "--group", "timing", "--no-cmap"],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.process.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def wait(self, after, predicate, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in list(self.lines):
                if line["time"] >= after and predicate(line):
                    return line["time"] - after
            time.sleep(0.02)
        raise RuntimeError(f"probe on {self.host}: timed out")

    def stop(self):
        self.process.terminate()
        self.process.wait()


def verdict(nodes):
    return lambda l: l["event"] == "quorum" and l.get("nodes") == nodes and not l.get("awaitingVerdict")


def summary(name, values):
    ms = [int(v * 1000) for v in values]
    print(f"{name}: median {int(statistics.median(ms))} ms, min {min(ms)}, max {max(ms)} (n={len(ms)})")


subprocess.run([LAB, "down", "--name", NAME], stdout=subprocess.DEVNULL)
try:
    subprocess.run([LAB, "up", "--name", NAME], check=True, stdout=subprocess.DEVNULL)
    probes = {h: Probe(h) for h in ("alpha", "bravo")}
    time.sleep(1)
    loser_times, winner_times, view_times, survivor_times = [], [], [], []
    for run in range(args.runs):
        t0 = time.time()
        lab("partition", "alpha", "--from", "bravo")
        a = probes["alpha"].wait(t0, lambda l: l["event"] == "quorum" and l.get("nodes") == [1] and not l.get("awaitingVerdict"))
        b = probes["bravo"].wait(t0, lambda l: l["event"] == "quorum" and l.get("nodes") == [2] and not l.get("awaitingVerdict"))
        quorate = {h: [l for l in p.lines if l["event"] == "quorum"][-1]["quorate"] for h, p in probes.items()}
        loser = a if not quorate["alpha"] else b
        winner = b if not quorate["alpha"] else a
        assert sum(quorate.values()) == 1, quorate
        loser_times.append(loser); winner_times.append(winner)
        t1 = time.time()
        lab("heal")
        for h, p in probes.items():
            p.wait(t1, verdict([1, 2]))
        time.sleep(1)

        t2 = time.time()
        lab("power", "off", "bravo")
        view = probes["alpha"].wait(t2, lambda l: l["event"] == "view" and any(c["member"]["nodeID"] == 2 for c in l.get("left") or []))
        survivor = probes["alpha"].wait(t2, verdict([1]))
        view_times.append(view); survivor_times.append(survivor)
        probes["bravo"].stop()
        lab("power", "on", "bravo")
        t3 = time.time()
        probes["alpha"].wait(t3, verdict([1, 2]))
        subprocess.run([LAB, "exec", "--name", NAME, "alpha", "--", "true"], check=True)
        time.sleep(1)
        probes["bravo"] = Probe("bravo")
        time.sleep(1)
        print(f"run {run + 1}: partition loser {int(loser * 1000)} ms, winner {int(winner * 1000)} ms; "
              f"power off view {int(view * 1000)} ms, survivor verdict {int(survivor * 1000)} ms", flush=True)
    summary("partition -> losing side not quorate", loser_times)
    summary("partition -> winning side's verdict", winner_times)
    summary("power off -> survivor's CPG view change", view_times)
    summary("power off -> survivor's quorum verdict", survivor_times)
finally:
    for p in list(locals().get("probes", {}).values()):
        p.stop()
    subprocess.run([LAB, "down", "--name", NAME], stdout=subprocess.DEVNULL)

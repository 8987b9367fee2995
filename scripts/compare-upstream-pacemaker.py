#!/usr/bin/env python3
"""Runs Pacemaker's own scheduler regression corpus (cts/scheduler/xml/*.xml of a local copy of
ClusterLabs/pacemaker, tag Pacemaker-2.1.5) through `clevervm simulate --cib` and crm_simulate.

  compare-upstream-pacemaker.py PACEMAKER_CHECKOUT [--binary PATH] [--jobs J] [CASE ...]

Nothing of that corpus is committed here: point it at a checkout (git clone, then
git checkout Pacemaker-2.1.5). Without CASE names every case runs.

Per case one line: `NAME: agree`, `NAME: DIFFER` (with the diff), `NAME: outside the subset` with
each element the import reported, or `NAME: ERROR`. Pacemaker's side is the one of
scripts/compare-pacemaker.sh (its transition applied to the CIB's current state until the placement
settles); both sides are normalized by scripts/placement.py. Import notes that do not change a
placement (monitor roles, operation attributes, op_defaults, informational properties) do not put a
case outside; the list is PLACEMENT_NEUTRAL below. Ends with `upstream: A agree, D differ, O outside
the subset, E errors of N cases`; exit status 1 if any case inside the subset differs.
"""
import argparse
import concurrent.futures
import difflib
import importlib.util
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("differential", os.path.join(HERE, "differential-pacemaker.py"))
differential = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(differential)

# Import notes about things that never change where a resource runs.
PLACEMENT_NEUTRAL = [
    r"operation defaults are not imported",
    r"role-specific monitor",
    r"a second recurring monitor is not supported",
    r"operation attribute \S+ is not supported",
    r"operation meta or instance attributes are not supported",
    r"operation \S+ is not supported; ignored",
    r"meta attribute (is-managed|description|notify|interleave|ordered|allow-unhealthy-nodes|"
    r"requires|multiple-active|restart-type|container-attribute-target)\b.*ignored",
    r"cluster property (stonith-timeout|cluster-delay|batch-limit|pe-\S+-series-max|election-timeout|"
    r"cluster-recheck-interval|stonith-action|startup-fencing|dc-deadtime|crmd-\S+|shutdown-escalation|"
    r"default-action-timeout|transition-delay|expected-quorum-votes|no_quorum_policy|load-threshold|"
    r"node-action-limit|migration-limit|join-\S+) is not supported",
    r"resource default (is-managed|description|notify)\b",
    r"history of a resource that is not configured",
    r"LSB scripts take no parameters",
    r"ping parameter \S+ is not supported",
    r"IPaddr2 parameter \S+ is not supported",
    r"ACLs are not imported",
    r"alerts are not imported",
    r"fencing topology is not imported",
    r"instance attributes on a clone are not supported",
    r"cluster property (stop-orphan-resources|stop-orphan-actions|transition-idle-timeout|start-failure-is-fatal|"
    r"remove-after-stop|enable-startup-probes|shutdown-lock\S*|node-health-\S+|concurrent-fencing|"
    r"fence-reaction|priority-fencing-delay|stonith-max-attempts|stonith-watchdog-timeout) is not supported",
    r"meta attribute (collocated|ordered|resource_stickiness|target_role)\b.*ignored",
    r"CleverVM fences by quorum and self-fencing, not with STONITH devices",
]


def neutral(note):
    return any(re.search(pattern, note) for pattern in PLACEMENT_NEUTRAL)


def check(name, xml, binary):
    work = tempfile.mkdtemp(prefix=f"upstream-{name}-")
    try:
        try:
            ours, notes = differential.clevervm_placement(binary, xml, work)
        except differential.Failure as error:
            message = str(error)
            return name, "outside", f"  import failed: {message.splitlines()[-1] if message else message}"
        outside = [note for note in notes if not neutral(note)]
        if outside:
            return name, "outside", "\n".join(f"  {note}" for note in outside)
        try:
            theirs = differential.pacemaker_placement(xml, work)
        except differential.Failure as error:
            return name, "error", f"  Pacemaker side: {error}"
        if theirs == ours:
            return name, "agree", ""
        return name, "differ", "\n".join(
            difflib.unified_diff(theirs, ours, f"pacemaker/{name}", f"clevervm/{name}", lineterm=""))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout")
    parser.add_argument("cases", nargs="*")
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(HERE), ".build", "debug", "clevervm"))
    parser.add_argument("--jobs", type=int, default=2)
    options = parser.parse_args()
    folder = os.path.join(options.checkout, "cts", "scheduler", "xml")
    if not os.path.isdir(folder):
        print(f"no cts/scheduler/xml in {options.checkout} (a checkout of ClusterLabs/pacemaker at Pacemaker-2.1.5)",
              file=sys.stderr)
        return 2
    for tool in ("crm_simulate", "crm_mon"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (Debian: pacemaker-cli-utils)", file=sys.stderr)
            return 2
    names = options.cases or sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".xml"))
    missing = [n for n in names if not os.path.exists(os.path.join(folder, n + ".xml"))]
    if missing:
        print(f"no such case in {folder}: {', '.join(missing)}", file=sys.stderr)
        return 2
    counts = {"agree": 0, "differ": 0, "outside": 0, "error": 0}
    labels = {"agree": "agree", "differ": "DIFFER", "outside": "outside the subset", "error": "ERROR"}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        jobs = pool.map(lambda n: check(n, os.path.join(folder, n + ".xml"), options.binary), names)
        for name, verdict, text in jobs:
            counts[verdict] += 1
            print(f"{name}: {labels[verdict]}" + (f"\n{text}" if text else ""), flush=True)
    print(f"upstream: {counts['agree']} agree, {counts['differ']} differ, {counts['outside']} outside the subset, "
          f"{counts['error']} errors of {len(names)} cases")
    return 0 if counts["differ"] == 0 and counts["error"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

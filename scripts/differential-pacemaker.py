#!/usr/bin/env python3
"""Differential test against Pacemaker: random CIBs (scripts/gen-random-cib.py), each placed by
crm_simulate and by `clevervm simulate --cib`, compared.

  differential-pacemaker.py [--seeds N] [--start S] [--binary PATH] [--jobs J] [--keep DIR] [--quiet]
                            [--cache DIR] [--pacemaker-only]

Seeds S .. S+N-1 (default 0 .. 499, what scripts/test.sh runs; try --seeds 5000 for more). Pacemaker's
side is the one of scripts/compare-pacemaker.sh: crm_simulate runs its transition on the CIB's current
state, on its own output again, until the placement stops changing (at most 5 rounds); crm_mon reads
the result. Both sides are normalized by scripts/placement.py. A CIB whose import reports an element
outside the subset counts as a failure too: the generator promises to stay inside it.

Prints `seed N: agree` or `seed N: DIFFER` (with the diff) per seed, then the summary
`differential: A agree, D differ, O outside the subset, E errors, S skipped of N seeds`. A seed is
skipped when crm_simulate itself reports an invalid transition (no reference to compare with).
Exit status 1 unless every seed agrees or is skipped.
--keep DIR writes each differing CIB there as seed-N.xml. --cache DIR keeps Pacemaker's placement per
CIB (named by the SHA-256 of the CIB's text, so a changed generator never reads a stale one) and reuses
it on the next run: iterating on the scheduler then costs only CleverVM's side. --pacemaker-only fills
the cache without a CleverVM binary.
"""
import argparse
import hashlib
import concurrent.futures
import difflib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = load("gen_random_cib", "gen-random-cib.py")
placement = load("placement", "placement.py")


class Failure(Exception):
    pass


def run(args, env=None):
    result = subprocess.run(args, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise Failure(f"{' '.join(args)} failed ({result.returncode}): {(result.stderr or result.stdout).strip()[:2000]}")
    return result.stdout


def cached_pacemaker_placement(cib, work, cache):
    """Pacemaker's placement of the CIB, from the cache when it holds this exact CIB."""
    if not cache:
        return pacemaker_placement(cib, work)
    with open(cib, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()
    path = os.path.join(cache, key + ".placement")
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
        if text.startswith("invalid transition"):
            raise Failure("crm_simulate: An invalid transition was produced (cached)")
        return text.splitlines()
    try:
        lines = pacemaker_placement(cib, work)
    except Failure as error:
        if "An invalid transition was produced" in str(error):
            with open(path, "w") as f:
                f.write("invalid transition\n")
        raise
    with open(path + ".tmp", "w") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(path + ".tmp", path)
    return lines


def pacemaker_placement(cib, work):
    current, nxt, mon = os.path.join(work, "round.xml"), os.path.join(work, "next.xml"), os.path.join(work, "mon.xml")
    shutil.copy(cib, current)
    previous = None
    for _ in range(5):
        run(["crm_simulate", "-S", "-x", current, "-O", nxt])
        with open(mon, "w") as f:
            f.write(run(["crm_mon", "-1", "--output-as=xml"], env=dict(os.environ, CIB_file=nxt)))
        lines = placement.from_crm_mon(mon)
        if lines == previous:
            break
        previous = lines
        os.replace(nxt, current)
    return lines


def clevervm_placement(binary, cib, work):
    output = run([binary, "simulate", "--cib", cib, "--json"])
    path = os.path.join(work, "clevervm.json")
    with open(path, "w") as f:
        f.write(output)
    report = json.loads(output)
    return placement.from_clevervm(path), report.get("notImported") or []


def check(seed, binary, keep, cache=None, pacemaker_only=False):
    work = tempfile.mkdtemp(prefix=f"differential-{seed}-")
    try:
        cib = os.path.join(work, f"seed-{seed}.xml")
        generator.write(seed, cib)
        try:
            theirs = cached_pacemaker_placement(cib, work, cache)
            if pacemaker_only:
                return seed, "agree", ""
            ours, outside = clevervm_placement(binary, cib, work)
        except Failure as error:
            if "An invalid transition was produced" in str(error):
                # Pacemaker itself cannot schedule this CIB (an ordering loop it builds internally): no reference.
                return seed, "skipped", "  crm_simulate produced an invalid transition; no reference to compare with"
            return seed, "error", str(error)
        if outside:
            verdict, text = "outside", "\n".join(f"  not imported: {line}" for line in outside)
        elif theirs == ours:
            return seed, "agree", ""
        else:
            verdict = "differ"
            text = "\n".join(difflib.unified_diff(theirs, ours, f"pacemaker/seed-{seed}", f"clevervm/seed-{seed}", lineterm=""))
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(cib, os.path.join(keep, f"seed-{seed}.xml"))
        return seed, verdict, text
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "clevervm"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep")
    parser.add_argument("--cache", help="keep and reuse Pacemaker's placement per CIB in this folder")
    parser.add_argument("--pacemaker-only", action="store_true", help="only fill --cache (no CleverVM side)")
    parser.add_argument("--quiet", action="store_true", help="print only differing seeds and the summary")
    parser.add_argument("--min-agree", type=int,
                        help="pass when at least this many seeds agree (a floor against regressions while some still differ)")
    options = parser.parse_args()
    for tool in ("crm_simulate", "crm_mon"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (Debian: pacemaker-cli-utils)", file=sys.stderr)
            return 2
    if options.cache:
        os.makedirs(options.cache, exist_ok=True)
    if options.pacemaker_only and not options.cache:
        print("--pacemaker-only needs --cache DIR", file=sys.stderr)
        return 2
    if not options.pacemaker_only and not os.access(options.binary, os.X_OK):
        print(f"no CleverVM binary at {options.binary} (build it with swift build, or pass --binary)", file=sys.stderr)
        return 2
    counts = {"agree": 0, "differ": 0, "outside": 0, "error": 0, "skipped": 0}
    seeds = range(options.start, options.start + options.seeds)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        for seed, verdict, text in pool.map(
                lambda s: check(s, options.binary, options.keep, options.cache, options.pacemaker_only), seeds):
            counts[verdict] += 1
            if verdict == "agree":
                if not options.quiet:
                    print(f"seed {seed}: agree", flush=True)
                continue
            label = {"differ": "DIFFER", "outside": "OUTSIDE THE SUBSET", "error": "ERROR", "skipped": "skipped"}[verdict]
            print(f"seed {seed}: {label}\n{text}", flush=True)
    print(f"differential: {counts['agree']} agree, {counts['differ']} differ, {counts['outside']} outside the subset, "
          f"{counts['error']} errors, {counts['skipped']} skipped (Pacemaker cannot schedule them) of {len(seeds)} seeds")
    if options.min_agree is not None:
        passed = counts["agree"] >= options.min_agree and counts["error"] == 0
        print(f"differential floor: {counts['agree']} agree, at least {options.min_agree} required: {'passed' if passed else 'FAILED'}")
        return 0 if passed else 1
    return 0 if counts["agree"] + counts["skipped"] == len(seeds) else 1


if __name__ == "__main__":
    sys.exit(main())

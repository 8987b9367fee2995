#!/usr/bin/env python3
"""Writes a random CIB inside CleverVM's supported subset, the same for the same seed.

  gen-random-cib.py SEED [OUT.xml]      (stdout without OUT)

Covers what the subset promises: primitives (ocf, lsb, stonith), groups, clones with clone-max and
clone-node-max 1, promotable clones with promoted-max, location scores and rules (and/or, nested,
score-attribute, #uname, defined/not_defined, string and number comparisons; no dates), colocation
chains with finite and infinite scores and roles, mandatory/optional/symmetrical orders, stickiness
on rsc_defaults, groups, clones and primitives, fail counts with migration-threshold and
failure-timeout, target-role, standby, cli-ban/cli-prefer, offline nodes and quorum policies. The
current state (status section) is random too: what runs where, promoted or not, with failures.

Built on the helpers of scripts/gen-pacemaker-corpus.py (histories with Pacemaker's op digests).
"""
import importlib.util
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("corpus", os.path.join(HERE, "gen-pacemaker-corpus.py"))
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)
corpus.AGENTS["stonith"] = ("stonith", None, "fence_dummy")

NOW = corpus.NOW
SCORES = ["INFINITY", "-INFINITY", "0", "5", "10", "50", "100", "200", "-10", "-100", "1000"]


class Generator:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.seed = seed
        self.next_id = 0

    def chance(self, p):
        return self.r.random() < p

    def pick(self, items):
        return self.r.choice(list(items))

    def uid(self, prefix):
        self.next_id += 1
        return f"{prefix}{self.next_id}"

    def score(self, finite_only=False):
        choices = [s for s in SCORES if not finite_only or "INFINITY" not in s]
        return self.pick(choices)

    def stickiness_meta(self, meta):
        if self.chance(0.25):
            meta["resource-stickiness"] = self.pick(["0", "10", "50", "100", "200", "INFINITY"])

    def failure_meta(self, meta):
        if self.chance(0.3):
            meta["migration-threshold"] = self.pick(["1", "2", "3", "0"])
        if self.chance(0.2):
            meta["failure-timeout"] = self.pick(["60s", "10min", "1h"])

    # --- the configuration ----------------------------------------------------------------------

    def generate(self):
        r = self.r
        nodes = [f"node{i + 1}" for i in range(r.randint(2, 5))]
        offline = {n for n in nodes if self.chance(0.12)}
        if len(offline) == len(nodes):
            offline.discard(nodes[0])
        online = [n for n in nodes if n not in offline]
        node_attrs = {}
        transient = {n: {} for n in online}
        for n in nodes:
            attrs = {}
            if self.chance(0.5):
                attrs["site"] = self.pick("ab")
            if self.chance(0.5):
                attrs["rack"] = str(r.randint(1, 9))
            if self.chance(0.3):
                attrs["weight"] = self.pick(["10", "40", "70", "-5", "INFINITY"])
            if self.chance(0.12):
                attrs["standby"] = "on"
            if attrs:
                node_attrs[n] = attrs
        for n in online:
            if self.chance(0.5):
                transient[n]["pingd"] = self.pick(["0", "1000", "2000"])

        props = {}
        quorum = not self.chance(0.15)
        if self.chance(0.4) or not quorum:
            props["no-quorum-policy"] = self.pick(["stop", "freeze", "ignore"])
        if self.chance(0.1):
            props["symmetric-cluster"] = "false"
        defaults = {}
        if self.chance(0.6):
            defaults["resource-stickiness"] = self.pick(["0", "1", "50", "100", "INFINITY"])
        if self.chance(0.2):
            defaults["migration-threshold"] = self.pick(["1", "3"])

        # Units: (kind, id, members) where kind is primitive, group, clone, promotable, stonith.
        units = []
        resources_xml = ""
        primitives = {}  # primitive id -> (agent, unit id, clone id or None)
        for _ in range(r.randint(1, 7)):
            kind = self.pick(["primitive"] * 4 + ["group"] * 2 + ["clone"] * 2 + ["promotable"] * 2 + ["stonith"])
            if kind in ("primitive", "stonith"):
                rid = self.uid("fence" if kind == "stonith" else "r")
                agent = "stonith" if kind == "stonith" else self.pick(["dummy"] * 4 + ["lsb"])
                meta = {}
                self.stickiness_meta(meta)
                self.failure_meta(meta)
                if self.chance(0.12):
                    meta["target-role"] = self.pick(["Stopped", "Started"])
                resources_xml += corpus.primitive(rid, agent, meta=meta or None,
                                                  monitor="60s" if agent == "stonith" else "10s")
                primitives[rid] = (agent, rid, None)
                units.append(("primitive", rid, [rid]))
            elif kind == "group":
                gid = self.uid("g")
                members = [self.uid("m") for _ in range(r.randint(2, 3))]
                parts = []
                for m in members:
                    meta = {}
                    if self.chance(0.15):
                        self.stickiness_meta(meta)
                    if self.chance(0.08):
                        meta["target-role"] = "Stopped"
                    parts.append(corpus.primitive(m, meta=meta or None, indent=8))
                    primitives[m] = ("dummy", gid, None)
                gmeta = {}
                self.stickiness_meta(gmeta)
                self.failure_meta(gmeta)
                if self.chance(0.1):
                    gmeta["target-role"] = "Stopped"
                resources_xml += corpus.group(gid, parts, gmeta or None)
                units.append(("group", gid, members))
            else:
                cid = self.uid("c" if kind == "clone" else "ms")
                pid = self.uid("p")
                meta = {}
                if self.chance(0.5):
                    meta["clone-max"] = str(r.randint(1, len(nodes)))
                if self.chance(0.3):
                    meta["clone-node-max"] = "1"
                if kind == "promotable":
                    meta["promotable"] = "true"
                    if self.chance(0.6):
                        meta["promoted-max"] = self.pick(["1", "1", "2"])
                    if self.chance(0.1):
                        meta["target-role"] = self.pick(["Unpromoted", "Stopped"])
                elif self.chance(0.08):
                    meta["target-role"] = "Stopped"
                self.stickiness_meta(meta)
                self.failure_meta(meta)
                inner = corpus.primitive(pid, "drbd" if kind == "promotable" else "dummy",
                                         monitor=None if kind == "promotable" else "10s")
                resources_xml += corpus.clone(cid, inner, meta)
                primitives[pid] = ("drbd" if kind == "promotable" else "dummy", cid, cid)
                units.append((kind, cid, [pid]))
                if kind == "promotable":
                    for n in online:
                        if self.chance(0.8):
                            transient[n][f"master-{pid}"] = self.pick(["5", "10", "100", "1000", "-INFINITY", "0"])

        constraints = self.constraints(units, nodes)

        # --- the current state ------------------------------------------------------------------
        status = {n: [] for n in online}
        for kind, uid, members in units:
            if kind in ("clone", "promotable"):
                pid = members[0]
                agent = primitives[pid][0]
                promoted_left = 1
                for n in online:
                    if self.chance(0.5):
                        role = "Started"
                        if kind == "promotable" and promoted_left and self.chance(0.4):
                            role, promoted_left = "Promoted", promoted_left - 1
                        status[n].append(self.history(pid, agent, role, transient[n], n))
                    elif self.chance(0.3):
                        status[n].append(corpus.stopped(pid, agent))
                continue
            where = self.pick(online) if self.chance(0.6) else None
            for index, m in enumerate(members):
                agent = primitives[m][0]
                if where and (index == 0 or self.chance(0.85)):
                    status[where].append(self.history(m, agent, "Started", transient[where], where))
                elif where:
                    where = None
                for n in online:
                    if n != where and self.chance(0.2):
                        status[n].append(corpus.stopped(m, agent))
        return dict(resources=resources_xml, constraints=constraints, nodes=tuple(nodes), node_attrs=node_attrs,
                    props=props, defaults=defaults or None, status=status, quorum=quorum, offline=tuple(offline),
                    transient={n: a for n, a in transient.items() if a})

    def history(self, rid, agent, role, transient, node):
        """A resource running on node, sometimes after failures counted in its fail count."""
        if self.chance(0.2):
            failures = self.r.randint(1, 3)
            age = self.pick([30, 300, 3000])
            h = (corpus.History(rid, agent).op("start", 0, 10)
                 .op("monitor", 7, 13, interval=10000, target_rc=0, at=NOW - age)
                 .op("stop", 0, 14).op("start", 0, 15))
            if role == "Promoted":
                h.op("promote", 0, 16)
            elif agent != "drbd":
                h.op("monitor", 0, 17, interval=10000)
            transient[f"fail-count-{rid}#monitor_10000"] = str(failures)
            transient[f"last-failure-{rid}#monitor_10000"] = str(NOW - age)
            return h
        monitor = None if agent == "drbd" else (60000 if agent == "stonith" else 10000)
        return corpus.running(rid, agent, role=role, monitor=monitor)

    # --- constraints ----------------------------------------------------------------------------

    def expression(self, eid):
        attribute = self.pick(["site", "rack", "weight", "pingd", "#uname", "missing"])
        op = self.pick(["eq", "ne", "lt", "gt", "lte", "gte", "defined", "not_defined"])
        if op in ("defined", "not_defined"):
            return f'<expression id="{eid}" attribute="{attribute}" operation="{op}"/>'
        if attribute == "#uname":
            value, op = self.pick([f"node{i}" for i in range(1, 6)]), self.pick(["eq", "ne"])
            typ = ' type="string"'
        elif attribute == "site":
            value, typ = self.pick("ab"), self.pick(['', ' type="string"'])
            op = self.pick(["eq", "ne"])
        else:
            value = str(self.pick([0, 1, 3, 5, 10, 40, 1000]))
            typ = self.pick([' type="number"', ' type="integer"', ""]) if op not in ("eq", "ne") else \
                self.pick([' type="number"', ' type="integer"'])
        return f'<expression id="{eid}" attribute="{attribute}" operation="{op}" value="{value}"{typ}/>'

    def rule(self, rid, top=True):
        parts = []
        for _ in range(self.r.randint(1, 3)):
            if top and self.chance(0.15):
                parts.append(self.rule(self.uid(f"{rid}-sub"), top=False))
            else:
                parts.append(self.expression(self.uid(f"{rid}-e")))
        op = self.pick(["and", "or"])
        if top:
            if self.chance(0.25):
                head = f'<rule id="{rid}" score-attribute="weight" boolean-op="{op}">'
            else:
                head = f'<rule id="{rid}" score="{self.score()}" boolean-op="{op}">'
        else:
            head = f'<rule id="{rid}" boolean-op="{op}">'
        return head + "".join(parts) + "</rule>"

    def constraints(self, units, nodes):
        out = ""
        ids = [u[1] for u in units]
        promotables = [u[1] for u in units if u[0] == "promotable"]
        for _ in range(self.r.randint(0, 6)):
            rsc = self.pick(ids)
            lid = self.uid("loc")
            role = ""
            if rsc in promotables and self.chance(0.3):
                role = f' role="{self.pick(["Promoted", "Unpromoted"])}"'
            if self.chance(0.6):
                out += f'      <rsc_location id="{lid}" rsc="{rsc}" node="{self.pick(nodes)}" score="{self.score()}"{role}/>\n'
            else:
                out += f'      <rsc_location id="{lid}" rsc="{rsc}"{role}>{self.rule(lid + "-rule")}</rsc_location>\n'
        for _ in range(self.r.randint(0, 2)):
            rsc = self.pick(ids)
            node = self.pick(nodes)
            if self.chance(0.5):
                if f'id="cli-ban-{rsc}-on-{node}"' in out:
                    continue
                out += f'      <rsc_location id="cli-ban-{rsc}-on-{node}" rsc="{rsc}" node="{node}" score="-INFINITY"/>\n'
            elif f'id="cli-prefer-{rsc}"' not in out:
                out += f'      <rsc_location id="cli-prefer-{rsc}" rsc="{rsc}" node="{node}" score="INFINITY"/>\n'
        # Colocations: acyclic (dependent later in the list than its primary), sometimes chains.
        pairs = set()
        for _ in range(self.r.randint(0, 4)):
            if len(ids) < 2:
                break
            a, b = sorted(self.r.sample(range(len(ids)), 2))
            dependent, primary = ids[b], ids[a]
            if (dependent, primary) in pairs:
                continue
            pairs.add((dependent, primary))
            extra = ""
            if dependent in promotables and self.chance(0.4):
                extra += f' rsc-role="{self.pick(["Promoted", "Unpromoted", "Started"])}"'
            if primary in promotables and self.chance(0.5):
                extra += f' with-rsc-role="{self.pick(["Promoted", "Unpromoted", "Started"])}"'
            score = self.pick(["INFINITY", "INFINITY", "-INFINITY", "100", "500", "-50", "10"])
            out += f'      <rsc_colocation id="{self.uid("col")}" rsc="{dependent}" with-rsc="{primary}" score="{score}"{extra}/>\n'
        # Orders follow one random ranking of the units, so they never form a cycle.
        ranking = self.r.sample(ids, len(ids))
        for _ in range(self.r.randint(0, 3)):
            if len(ids) < 2:
                break
            first, then = sorted(self.r.sample(ids, 2), key=ranking.index)
            extra = ""
            if first in promotables and self.chance(0.5):
                extra += f' first-action="{self.pick(["promote", "start", "demote"])}"'
            if then in promotables and self.chance(0.5):
                extra += f' then-action="{self.pick(["promote", "start"])}"'
            kind = self.pick(["", "", ' kind="Mandatory"', ' kind="Optional"', ' score="0"', ' score="INFINITY"'])
            sym = self.pick(["", "", ' symmetrical="false"', ' symmetrical="true"'])
            out += f'      <rsc_order id="{self.uid("ord")}" first="{first}" then="{then}"{extra}{kind}{sym}/>\n'
        return out


def write(seed, path):
    spec = Generator(seed).generate()
    name = os.path.splitext(os.path.basename(path))[0]
    corpus.ROOT = os.path.dirname(os.path.abspath(path))
    corpus.cib(name, f"random CIB, seed {seed} (scripts/gen-random-cib.py)", **spec)


def main():
    if len(sys.argv) not in (2, 3) or not sys.argv[1].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    seed = int(sys.argv[1])
    if len(sys.argv) == 3:
        write(seed, sys.argv[2])
    else:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"seed-{seed}.xml")
            write(seed, path)
            sys.stdout.write(open(path).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())

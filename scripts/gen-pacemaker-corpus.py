#!/usr/bin/env python3
"""Writes the Pacemaker agreement corpus: small CIBs under Tests/Corpus/pacemaker/NAME.xml.

Each case states in an XML comment what it tests. Every CIB disables STONITH (crm_simulate refuses
to start resources without fencing otherwise) and carries an execution-date, so crm_simulate and
CleverVM agree on "now" (failure timeouts, mark lifetimes).

Run: scripts/gen-pacemaker-corpus.py   (then scripts/compare-pacemaker.sh --regenerate-expected)
"""
import hashlib
import os
import sys
import xml.etree.ElementTree as ET

NOW = 1790000000  # 2026-09-21 14:13:20Z, the corpus' "now" (cib execution-date)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Corpus", "pacemaker")

AGENTS = {
    "vm": ("ocf", "heartbeat", "VirtualDomain"),
    "ip": ("ocf", "heartbeat", "IPaddr2"),
    "drbd": ("ocf", "linbit", "drbd"),
    "ping": ("ocf", "pacemaker", "ping"),
    "dummy": ("ocf", "pacemaker", "Dummy"),
    "lsb": ("lsb", None, "cron"),
}


def nvpairs(prefix, pairs, indent):
    pad = " " * indent
    return "".join(
        f'{pad}<nvpair id="{prefix}-{name}" name="{name}" value="{value}"/>\n' for name, value in pairs.items())


def primitive(rid, agent="dummy", params=None, meta=None, monitor="10s", indent=6):
    cls, provider, rtype = AGENTS[agent]
    pad = " " * indent
    provider_attr = f' provider="{provider}"' if provider else ""
    out = f'{pad}<primitive id="{rid}" class="{cls}"{provider_attr} type="{rtype}">\n'
    if params:
        out += f'{pad}  <instance_attributes id="{rid}-params">\n' + nvpairs(f"{rid}-params", params, indent + 4)
        out += f"{pad}  </instance_attributes>\n"
    if meta:
        out += f'{pad}  <meta_attributes id="{rid}-meta">\n' + nvpairs(f"{rid}-meta", meta, indent + 4)
        out += f"{pad}  </meta_attributes>\n"
    if monitor:
        out += f'{pad}  <operations>\n{pad}    <op id="{rid}-monitor" name="monitor" interval="{monitor}"/>\n'
        out += f"{pad}  </operations>\n"
    out += f"{pad}</primitive>\n"
    return out


def clone(cid, inner, meta=None, element="clone", indent=6):
    pad = " " * indent
    out = f'{pad}<{element} id="{cid}">\n'
    if meta:
        out += f'{pad}  <meta_attributes id="{cid}-meta">\n' + nvpairs(f"{cid}-meta", meta, indent + 4)
        out += f"{pad}  </meta_attributes>\n"
    out += "".join("  " + line + "\n" for line in inner.rstrip("\n").split("\n"))
    out += f"{pad}</{element}>\n"
    return out


def group(gid, members, meta=None, indent=6):
    pad = " " * indent
    out = f'{pad}<group id="{gid}">\n'
    if meta:
        out += f'{pad}  <meta_attributes id="{gid}-meta">\n' + nvpairs(f"{gid}-meta", meta, indent + 4)
        out += f"{pad}  </meta_attributes>\n"
    out += "".join("  " + line + "\n" for member in members for line in member.rstrip("\n").split("\n"))
    out += f"{pad}</group>\n"
    return out


PARAMS = {}  # resource id -> instance attributes, so histories carry the right op-digest


def op_digest(rid, interval):
    """Pacemaker's op-digest: MD5 of ' <parameters a="1" .../>\\n' with sorted attributes; recurring
    operations also hash their timeout (the default 20 s). Without it Pacemaker sees a changed
    definition and restarts the resource."""
    params = dict(PARAMS.get(rid, {}))
    if interval:
        params["CRM_meta_timeout"] = "20000"
    attrs = "".join(f' {name}="{params[name]}"' for name in sorted(params))
    return hashlib.md5(f" <parameters{attrs}/>\n".encode()).hexdigest()


class History:
    """Operations of one resource on one node, as the controller records them."""

    def __init__(self, rid, agent):
        self.rid, self.agent, self.ops = rid, agent, []

    def op(self, operation, rc, call, interval=0, target_rc=None, at=NOW - 600):
        self.ops.append((operation, rc, call, interval, rc if target_rc is None else target_rc, at))
        return self

    def xml(self, node, indent=10):
        cls, provider, rtype = AGENTS[self.agent]
        pad = " " * indent
        provider_attr = f' provider="{provider}"' if provider else ""
        out = f'{pad}<lrm_resource id="{self.rid}" class="{cls}"{provider_attr} type="{rtype}">\n'
        # The controller keeps only the last non-recurring operation (RSC_last_0), the last failure
        # (RSC_last_failure_0) and the last run of each recurring operation (RSC_monitor_N).
        kept = []
        one_shot = [o for o in self.ops if o[3] == 0]
        if one_shot:
            kept.append((f"{self.rid}_last_0", max(one_shot, key=lambda o: o[2])))
        failures = [o for o in self.ops if o[1] != o[4]]
        if failures:
            kept.append((f"{self.rid}_last_failure_0", max(failures, key=lambda o: o[2])))
        for interval in sorted({o[3] for o in self.ops if o[3]}):
            recurring = [o for o in self.ops if o[3] == interval]
            kept.append((f"{self.rid}_{recurring[0][0]}_{interval}", max(recurring, key=lambda o: o[2])))
        for index, (op_id, (operation, rc, call, interval, target, at)) in enumerate(kept):
            key = f"{index + 1}:1:{target}:00000000-0000-0000-0000-000000000000"
            out += (
                f'{pad}  <lrm_rsc_op id="{op_id}" operation_key="{self.rid}_{operation}_{interval}" '
                f'operation="{operation}" crm-debug-origin="corpus" crm_feature_set="3.16.1" '
                f'transition-key="{key}" transition-magic="0:{rc};{key}" exit-reason="" call-id="{call}" '
                f'rc-code="{rc}" op-status="0" interval="{interval}" last-rc-change="{at}" exec-time="0" '
                f'queue-time="0" op-digest="{op_digest(self.rid, interval)}" on_node="{node}"/>\n')
        out += f"{pad}</lrm_resource>\n"
        return out


def running(rid, agent="dummy", role="Started", monitor=10000):
    """History of a resource started (and promoted) without trouble."""
    h = History(rid, agent).op("start", 0, 10)
    if role == "Promoted":
        h.op("promote", 0, 11)
        if monitor:
            h.op("monitor", 8, 12, interval=monitor - 1000)
    elif monitor:
        h.op("monitor", 0, 12, interval=monitor)
    return h


def stopped(rid, agent="dummy"):
    """A probe that found the resource not running."""
    return History(rid, agent).op("monitor", 7, 5)


def cib(name, comment, resources, constraints="", nodes=("node1", "node2"), node_attrs=None, props=None,
        defaults=None, status=None, quorum=True, offline=(), transient=None):
    PARAMS.clear()
    for prim in ET.fromstring(f"<resources>{resources}</resources>").iter("primitive"):
        attrs = prim.find("instance_attributes")
        PARAMS[prim.get("id")] = {p.get("name"): p.get("value") for p in attrs} if attrs is not None else {}
    node_attrs = node_attrs or {}
    props = dict({"stonith-enabled": "false"}, **(props or {}))
    status = status or {}
    transient = transient or {}
    assert "--" not in comment, f"{name}: XML comments must not contain a double hyphen"
    out = f'<?xml version="1.0"?>\n<!-- {name}: {comment.strip()} -->\n'
    out += (f'<cib validate-with="pacemaker-3.9" crm_feature_set="3.16.1" epoch="1" num_updates="0" '
            f'admin_epoch="0" have-quorum="{1 if quorum else 0}" execution-date="{NOW}">\n')
    out += "  <configuration>\n    <crm_config>\n      <cluster_property_set id=\"cib-bootstrap-options\">\n"
    out += nvpairs("opt", props, 8) + "      </cluster_property_set>\n    </crm_config>\n"
    out += "    <nodes>\n"
    for index, node in enumerate(nodes):
        attrs = node_attrs.get(node)
        if attrs:
            out += f'      <node id="{index + 1}" uname="{node}">\n'
            out += f'        <instance_attributes id="nodes-{index + 1}">\n' + nvpairs(f"nodes-{index + 1}", attrs, 10)
            out += "        </instance_attributes>\n      </node>\n"
        else:
            out += f'      <node id="{index + 1}" uname="{node}"/>\n'
    out += "    </nodes>\n    <resources>\n" + resources + "    </resources>\n"
    out += "    <constraints>\n" + constraints + "    </constraints>\n"
    if defaults:
        out += '    <rsc_defaults>\n      <meta_attributes id="rsc-options">\n' + nvpairs("rsc-options", defaults, 8)
        out += "      </meta_attributes>\n    </rsc_defaults>\n"
    out += "  </configuration>\n  <status>\n"
    for index, node in enumerate(nodes):
        if node in offline:
            out += f'    <node_state id="{index + 1}" uname="{node}" in_ccm="false" crmd="offline" join="down" expected="down"/>\n'
            continue
        out += f'    <node_state id="{index + 1}" uname="{node}" in_ccm="true" crmd="online" join="member" expected="member">\n'
        attrs = transient.get(node)
        if attrs:
            out += f'      <transient_attributes id="{index + 1}">\n        <instance_attributes id="status-{index + 1}">\n'
            out += nvpairs(f"status-{index + 1}", attrs, 10)
            out += "        </instance_attributes>\n      </transient_attributes>\n"
        histories = status.get(node, [])
        out += f'      <lrm id="{index + 1}">\n        <lrm_resources>\n'
        out += "".join(h.xml(node) for h in histories)
        out += "        </lrm_resources>\n      </lrm>\n    </node_state>\n"
    out += "  </status>\n</cib>\n"
    with open(os.path.join(ROOT, name + ".xml"), "w") as f:
        f.write(out)


def location(lid, rsc, node, score, role=None):
    role_attr = f' role="{role}"' if role else ""
    return f'      <rsc_location id="{lid}" rsc="{rsc}" node="{node}" score="{score}"{role_attr}/>\n'


def colocation(cid, rsc, with_rsc, score, rsc_role=None, with_role=None):
    extra = (f' rsc-role="{rsc_role}"' if rsc_role else "") + (f' with-rsc-role="{with_role}"' if with_role else "")
    return f'      <rsc_colocation id="{cid}" rsc="{rsc}" with-rsc="{with_rsc}" score="{score}"{extra}/>\n'


def order(oid, first, then, first_action=None, then_action=None, kind=None, score=None, symmetrical=None):
    extra = ""
    for attr, value in (("first-action", first_action), ("then-action", then_action), ("kind", kind),
                        ("score", score), ("symmetrical", symmetrical)):
        if value is not None:
            extra += f' {attr}="{value}"'
    return f'      <rsc_order id="{oid}" first="{first}" then="{then}"{extra}/>\n'


PING_RULE = """      <rsc_location id="vm-on-connected-node" rsc="{rsc}">
        <rule id="vm-on-connected-node-rule" score="-INFINITY" boolean-op="or">
          <expression id="vm-on-connected-node-undefined" attribute="pingd" operation="not_defined"/>
          <expression id="vm-on-connected-node-zero" attribute="pingd" operation="lte" value="0" type="number"/>
        </rule>
      </rsc_location>
"""


def main():
    os.makedirs(ROOT, exist_ok=True)
    vm = primitive("vm", "vm", params={"config": "/etc/libvirt/qemu/vm.xml"})

    # --- stickiness and location scores --------------------------------------------------------
    cib("stickiness-keeps-place", "vm runs on node1; node2 is preferred by 50 but stickiness 100 keeps vm where it is.",
        vm, location("vm-prefers-node2", "vm", "node2", 50), defaults={"resource-stickiness": "100"},
        status={"node1": [running("vm", "vm")], "node2": [stopped("vm", "vm")]})
    cib("location-preference-moves", "vm runs on node1; node2 is preferred by 50 and stickiness is only 20: vm moves.",
        vm, location("vm-prefers-node2", "vm", "node2", 50), defaults={"resource-stickiness": "20"},
        status={"node1": [running("vm", "vm")], "node2": [stopped("vm", "vm")]})
    cib("location-minus-infinity", "vm runs on node1 with stickiness INFINITY, but node1 is forbidden (-INFINITY): vm moves.",
        vm, location("vm-never-node1", "vm", "node1", "-INFINITY"),
        defaults={"resource-stickiness": "INFINITY"}, status={"node1": [running("vm", "vm")]})
    cib("location-scores-three-nodes", "Nothing runs; location scores 10/30/20 on three nodes: the highest (node2) wins.",
        vm, location("l1", "vm", "node1", 10) + location("l2", "vm", "node2", 30) + location("l3", "vm", "node3", 20),
        nodes=("node1", "node2", "node3"))

    # --- rules -------------------------------------------------------------------------------
    ping_clone = clone("ping-clone", primitive("ping", "ping", params={"host_list": "192.0.2.1 192.0.2.2",
                                                                        "multiplier": "1000", "dampen": "5s"}))
    cib("ping-rule-not-defined", "The classic ping rule (-INFINITY where pingd is not_defined or lte 0): "
        "node1 has no pingd attribute, so vm goes to node2 (pingd=2000).",
        ping_clone + vm, PING_RULE.format(rsc="vm") + location("vm-prefers-node1", "vm", "node1", 100),
        transient={"node2": {"pingd": "2000"}})
    cib("ping-rule-zero", "vm runs on node1, whose pingd dropped to 0 (gateways unreachable); the ping rule moves vm "
        "to node2 despite stickiness 100.",
        ping_clone + vm, PING_RULE.format(rsc="vm"), defaults={"resource-stickiness": "100"},
        transient={"node1": {"pingd": "0"}, "node2": {"pingd": "2000"}},
        status={"node1": [running("vm", "vm"), running("ping", "ping")], "node2": [running("ping", "ping")]})
    cib("rule-and", "A rule with boolean-op and on node attributes (string eq and integer gt): only node3 "
        "(site=a, rack=5) gets +100; node1 (site=a, rack=1) and node2 (site=b, rack=7) do not.",
        vm, """      <rsc_location id="vm-site-a-high-rack" rsc="vm">
        <rule id="vm-site-a-high-rack-rule" score="100" boolean-op="and">
          <expression id="e-site" attribute="site" operation="eq" value="a" type="string"/>
          <expression id="e-rack" attribute="rack" operation="gt" value="2" type="integer"/>
        </rule>
      </rsc_location>
""" + location("vm-prefers-node2", "vm", "node2", 50), nodes=("node1", "node2", "node3"),
        node_attrs={"node1": {"site": "a", "rack": "1"}, "node2": {"site": "b", "rack": "7"},
                    "node3": {"site": "a", "rack": "5"}})
    cib("rule-or-nested", "Nested rules: -INFINITY where (kind ne ssd) or (defined maintenance and "
        "maintenance eq yes). node1 is hdd, node2 is ssd in maintenance, node3 is ssd: vm on node3.",
        vm, """      <rsc_location id="vm-healthy-ssd" rsc="vm">
        <rule id="vm-healthy-ssd-rule" score="-INFINITY" boolean-op="or">
          <expression id="e-kind" attribute="kind" operation="ne" value="ssd"/>
          <rule id="vm-in-maintenance" boolean-op="and">
            <expression id="e-maint-defined" attribute="maintenance" operation="defined"/>
            <expression id="e-maint-yes" attribute="maintenance" operation="eq" value="yes"/>
          </rule>
        </rule>
      </rsc_location>
""" + location("vm-prefers-node1", "vm", "node1", 200) + location("vm-prefers-node2", "vm", "node2", 100),
        nodes=("node1", "node2", "node3"),
        node_attrs={"node1": {"kind": "hdd"}, "node2": {"kind": "ssd", "maintenance": "yes"},
                    "node3": {"kind": "ssd", "maintenance": "no"}})
    cib("rule-score-attribute", "A rule with score-attribute: each node's 'weight' attribute is its score "
        "(node1 10, node2 70, node3 40); a second rule on #uname gives node3 -20: vm goes to node2.",
        vm, """      <rsc_location id="vm-by-weight" rsc="vm">
        <rule id="vm-by-weight-rule" score-attribute="weight">
          <expression id="e-weight" attribute="weight" operation="defined"/>
        </rule>
      </rsc_location>
      <rsc_location id="vm-not-node3-by-name" rsc="vm">
        <rule id="vm-not-node3-rule" score="-20">
          <expression id="e-uname" attribute="#uname" operation="eq" value="node3" type="string"/>
        </rule>
      </rsc_location>
""", nodes=("node1", "node2", "node3"),
        node_attrs={"node1": {"weight": "10"}, "node2": {"weight": "70"}, "node3": {"weight": "40"}})

    # --- opt-in cluster --------------------------------------------------------------------------
    cib("symmetric-cluster-false", "Opt-in cluster (symmetric-cluster=false): vm may run only on node3 (score 0 "
        "allows), web has no location and stays stopped, db is allowed on node1 and node2 and prefers node2.",
        vm + primitive("web") + primitive("db"),
        location("vm-allowed-node3", "vm", "node3", 0) + location("db-node1", "db", "node1", 10)
        + location("db-node2", "db", "node2", 20),
        nodes=("node1", "node2", "node3"), props={"symmetric-cluster": "false"})

    # --- colocation ------------------------------------------------------------------------------
    ipr = primitive("vip", "ip", params={"ip": "198.51.100.50", "cidr_netmask": "24"})
    cib("colocation-mandatory", "vip must run with vm (INFINITY); vm prefers node2 by 100, vip prefers node1 by 500. "
        "A mandatory colocation adds the dependent's preferences to the primary's: both run on node1.",
        vm + ipr, location("vm-prefers-node2", "vm", "node2", 100) + location("vip-prefers-node1", "vip", "node1", 500)
        + colocation("vip-with-vm", "vip", "vm", "INFINITY"))
    cib("colocation-advisory", "web likes db's node by 50 (finite colocation) and node1 by 10; db runs on node2: "
        "web follows db to node2. cache likes db by only 5 and node1 by 10: it stays on node1.",
        primitive("db") + primitive("web") + primitive("cache"),
        location("db-node2", "db", "node2", 100) + location("web-node1", "web", "node1", 10)
        + location("cache-node1", "cache", "node1", 10)
        + colocation("web-with-db", "web", "db", 50) + colocation("cache-with-db", "cache", "db", 5))
    cib("anti-colocation", "a and b both prefer node1; b must never run with a (-INFINITY): a on node1, b on node2. "
        "c must not run with a either and is forbidden on node2: c stays stopped.",
        primitive("a") + primitive("b") + primitive("c"),
        location("a-node1", "a", "node1", 100) + location("b-node1", "b", "node1", 50)
        + location("c-not-node2", "c", "node2", "-INFINITY")
        + colocation("b-not-with-a", "b", "a", "-INFINITY") + colocation("c-not-with-a", "c", "a", "-INFINITY"))

    # --- promotable clones -----------------------------------------------------------------------
    drbd = primitive("drbd", "drbd", params={"drbd_resource": "r0"}, monitor=None)
    promotable_meta = {"promotable": "true", "promoted-max": "1", "clone-max": "2"}
    cib("promotable-master-scores", "A promotable clone (clone promotable=true) with promotion scores from "
        "master-drbd attributes: node2 (10) beats node1 (5), so node2 is promoted, node1 unpromoted.",
        clone("drbd-clone", drbd, promotable_meta),
        transient={"node1": {"master-drbd": "5"}, "node2": {"master-drbd": "10"}},
        status={"node1": [running("drbd", "drbd", monitor=None)], "node2": [running("drbd", "drbd", monitor=None)]})
    cib("promotable-legacy-master", "The legacy master element (master-max=1, master-node-max=1, target-role Master): "
        "drbd is promoted on node1 (master score 100 vs 10), but a location on role Master gives node2 +200: "
        "the promotion moves to node2.",
        clone("ms-drbd", drbd, {"master-max": "1", "master-node-max": "1", "clone-max": "2", "target-role": "Master"},
              element="master"),
        location("drbd-master-on-node2", "ms-drbd", "node2", 200, role="Master"),
        transient={"node1": {"master-drbd": "100"}, "node2": {"master-drbd": "10"}},
        status={"node1": [running("drbd", "drbd", role="Promoted", monitor=None)],
                "node2": [running("drbd", "drbd", monitor=None)]})
    cib("colocation-with-promoted", "vm must run where the promotable clone is Promoted (with-rsc-role Promoted): "
        "master scores favour node2 (10 vs 5), but vm prefers node1 by 50 and, through the colocation, that "
        "preference counts for the promotion too: drbd is promoted on node1 and vm runs there.",
        clone("drbd-clone", drbd, promotable_meta) + vm,
        location("vm-prefers-node1", "vm", "node1", 50)
        + colocation("vm-with-drbd-promoted", "vm", "drbd-clone", "INFINITY", with_role="Promoted"),
        transient={"node1": {"master-drbd": "5"}, "node2": {"master-drbd": "10"}},
        status={"node1": [running("drbd", "drbd", monitor=None)], "node2": [running("drbd", "drbd", monitor=None)]})

    # --- groups ----------------------------------------------------------------------------------
    members = [primitive("fs", indent=8), primitive("db", indent=8), primitive("web", indent=8)]
    cib("group-placement", "A group fs, db, web with a location on the group for node2: every member runs on node2 "
        "in order; a location on a member (web prefers node1 by 10) does not split the group.",
        group("app", members), location("app-node2", "app", "node2", 100) + location("web-node1", "web", "node1", 10))
    cib("group-follows-first-member", "A location only on the group's first member (fs prefers node2 by 100): "
        "the group places as one unit and every member follows fs to node2.",
        group("app", members), location("fs-node2", "fs", "node2", 100))
    cib("group-stickiness", "The group app runs on node1; node2 is preferred by 100; the group's stickiness of 40 "
        "counts once per active member (3 x 40 = 120 > 100): the group stays on node1.",
        group("app", members, {"resource-stickiness": "40"}), location("app-node2", "app", "node2", 100),
        status={"node1": [running("fs"), running("db"), running("web")]})

    # --- order -----------------------------------------------------------------------------------
    cib("order-constraints", "Order constraints of every spelling (mandatory, Optional kind, score 0, "
        "first-action/then-action, symmetrical=false) change no placement: a on node1, b on node2, c on node1.",
        primitive("a") + primitive("b") + primitive("c") + clone("drbd-clone", drbd, promotable_meta),
        location("a-node1", "a", "node1", 10) + location("b-node2", "b", "node2", 10) + location("c-node1", "c", "node1", 10)
        + order("a-then-b", "a", "b") + order("b-then-c", "b", "c", kind="Optional")
        + order("a-then-c", "a", "c", score=0) + order("drbd-then-a", "drbd-clone", "a", first_action="promote",
                                                        then_action="start", symmetrical="false")
        + order("c-stop-then-b-stop", "c", "b", first_action="stop", kind="Mandatory"),
        transient={"node1": {"master-drbd": "10"}, "node2": {"master-drbd": "5"}})

    # --- failures --------------------------------------------------------------------------------
    failed_history = (History("vm", "vm").op("start", 0, 10).op("monitor", 0, 12, interval=10000)
                      .op("monitor", 7, 13, interval=10000, target_rc=0, at=NOW - 300)
                      .op("stop", 0, 14).op("start", 0, 15).op("monitor", 0, 16, interval=10000))
    cib("migration-threshold-exceeded", "vm failed 3 times on node1 (fail-count-vm#monitor_10000=3) and "
        "migration-threshold is 3: vm is forced away to node2 despite stickiness.",
        primitive("vm", "vm", meta={"migration-threshold": "3"}), defaults={"resource-stickiness": "100"},
        transient={"node1": {"fail-count-vm#monitor_10000": "3", "last-failure-vm#monitor_10000": str(NOW - 300)}},
        status={"node1": [failed_history]})
    cib("migration-threshold-not-reached", "vm failed twice on node1 (fail counts of two operations sum to 2) and "
        "migration-threshold is 3: vm stays on node1.",
        primitive("vm", "vm", meta={"migration-threshold": "3"}), defaults={"resource-stickiness": "100"},
        transient={"node1": {"fail-count-vm#monitor_10000": "1", "fail-count-vm#start_0": "1",
                             "last-failure-vm#monitor_10000": str(NOW - 300)}},
        status={"node1": [failed_history]})
    cib("failure-timeout-expired", "vm failed 3 times on node1 (threshold 3) but an hour ago, and failure-timeout "
        "is 10 minutes: the failures expired, vm stays on node1.",
        primitive("vm", "vm", meta={"migration-threshold": "3", "failure-timeout": "10min"}),
        defaults={"resource-stickiness": "100"},
        transient={"node1": {"fail-count-vm#monitor_10000": "3", "last-failure-vm#monitor_10000": str(NOW - 3600)}},
        status={"node1": [failed_history]})

    # --- target role, standby, offline ------------------------------------------------------------
    cib("target-role-stopped", "vm runs on node1 with target-role Stopped: it is stopped. web (target-role "
        "Started) keeps running on node2.",
        primitive("vm", "vm", meta={"target-role": "Stopped"}) + primitive("web", meta={"target-role": "Started"}),
        status={"node1": [running("vm", "vm")], "node2": [running("web")]})
    cib("node-standby", "node1 is in standby (node attribute standby=on): vm leaves it for node2 despite "
        "stickiness INFINITY.",
        vm, defaults={"resource-stickiness": "INFINITY"}, node_attrs={"node1": {"standby": "on"}},
        status={"node1": [running("vm", "vm")]})
    cib("node-offline", "node1 is offline (left the membership; no fencing configured): vm, which prefers node1, "
        "runs on node2.",
        vm, location("vm-prefers-node1", "vm", "node1", 100), offline=("node1",))

    # --- operator marks ---------------------------------------------------------------------------
    cib("cli-ban", "A ban (crm_resource ban of vm on node1) left cli-ban-vm-on-node1: vm leaves node1.",
        vm, location("cli-ban-vm-on-node1", "vm", "node1", "-INFINITY"), defaults={"resource-stickiness": "100"},
        status={"node1": [running("vm", "vm")]})
    cib("cli-prefer", "A move (crm_resource move of vm to node2) left cli-prefer-vm: vm moves to node2 despite stickiness.",
        vm, location("cli-prefer-vm", "vm", "node2", "INFINITY"), defaults={"resource-stickiness": "100"},
        status={"node1": [running("vm", "vm")]})
    cib("cli-ban-expired", "A ban with a lifetime (crm_resource ban with lifetime) ended before now "
        "(date_expression lt end), so vm stays on node1.",
        vm, """      <rsc_location id="cli-ban-vm-on-node1" rsc="vm">
        <rule id="cli-ban-vm-on-node1-rule" score="-INFINITY" boolean-op="and">
          <expression id="cli-ban-vm-on-node1-expr" attribute="#uname" operation="eq" value="node1" type="string"/>
          <date_expression id="cli-ban-vm-on-node1-lifetime" operation="lt" end="2026-09-21 13:00:00 +00:00"/>
        </rule>
      </rsc_location>
""", defaults={"resource-stickiness": "100"}, status={"node1": [running("vm", "vm")]})

    # --- quorum ---------------------------------------------------------------------------------
    cib("no-quorum-stop", "The partition has no quorum (have-quorum=0) and no-quorum-policy is stop: vm, running "
        "on node1, is stopped; nothing starts.",
        vm + primitive("web"), props={"no-quorum-policy": "stop"}, quorum=False, offline=("node2",),
        status={"node1": [running("vm", "vm")]})
    cib("no-quorum-freeze", "No quorum with no-quorum-policy freeze: vm keeps running on node1, web (stopped) "
        "does not start.",
        vm + primitive("web"), props={"no-quorum-policy": "freeze"}, quorum=False, offline=("node2",),
        status={"node1": [running("vm", "vm"), stopped("web")]})

    # --- the two-host installation ----------------------------------------------------------------
    two_host_resources = (
        clone("drbd-clone", drbd, {"promotable": "true", "promoted-max": "1", "clone-max": "2"})
        + primitive("vm", "vm", params={"config": "/etc/libvirt/qemu/mba7.xml"}, meta={"allow-migrate": "false"})
        + primitive("vip", "ip", params={"ip": "198.51.100.50", "cidr_netmask": "24", "nic": "br0"})
        + ping_clone)
    two_host_constraints = (
        colocation("vm-with-drbd-promoted", "vm", "drbd-clone", "INFINITY", with_role="Promoted")
        + order("drbd-promote-then-vm", "drbd-clone", "vm", first_action="promote", then_action="start")
        + colocation("vip-with-vm", "vip", "vm", "INFINITY")
        + order("vm-then-vip", "vm", "vip")
        + PING_RULE.format(rsc="vm"))
    both_running = {
        "node1": [running("drbd", "drbd", role="Promoted", monitor=None), running("vm", "vm"), running("vip", "ip"),
                  running("ping", "ping")],
        "node2": [running("drbd", "drbd", monitor=None), stopped("vm", "vm"), stopped("vip", "ip"), running("ping", "ping")],
    }
    cib("two-host-fresh", "The two-host installation just formed: nothing runs, both nodes reach the gateways, "
        "node1 has the higher promotion score: drbd promoted on node1, vm and vip there, ping everywhere.",
        two_host_resources, two_host_constraints, defaults={"resource-stickiness": "100"},
        transient={"node1": {"pingd": "2000", "master-drbd": "10000"}, "node2": {"pingd": "2000", "master-drbd": "1000"}})
    cib("two-host-healthy", "The two-host installation, both nodes fine, everything on node1 (drbd Promoted there): "
        "nothing moves.",
        two_host_resources, two_host_constraints, defaults={"resource-stickiness": "100"},
        transient={"node1": {"pingd": "2000", "master-drbd": "10000"}, "node2": {"pingd": "2000", "master-drbd": "10000"}},
        status=both_running)
    cib("two-host-ping-lost", "The two-host installation; node1 (active) lost both gateways (pingd=0): vm and vip "
        "must leave node1, and drbd's promotion follows vm to node2.",
        two_host_resources, two_host_constraints, defaults={"resource-stickiness": "100"},
        transient={"node1": {"pingd": "0", "master-drbd": "10000"}, "node2": {"pingd": "2000", "master-drbd": "10000"}},
        status=both_running)
    cib("two-host-active-offline", "The two-host installation; node1 (active) went offline; the no-quorum policy "
        "is ignore as in a two-node corosync setup: drbd promoted, vm and vip on node2.",
        two_host_resources, two_host_constraints, defaults={"resource-stickiness": "100"},
        props={"no-quorum-policy": "ignore"}, quorum=False, offline=("node1",),
        transient={"node2": {"pingd": "2000", "master-drbd": "10000"}},
        status={"node2": [running("drbd", "drbd", monitor=None), stopped("vm", "vm"), stopped("vip", "ip"),
                          running("ping", "ping")]})
    cib("two-host-passive-ping-lost", "The two-host installation, everything on node1; node2 (passive) lost its "
        "gateways (pingd=0): nothing moves.",
        two_host_resources, two_host_constraints, defaults={"resource-stickiness": "100"},
        transient={"node1": {"pingd": "2000", "master-drbd": "10000"}, "node2": {"pingd": "0", "master-drbd": "10000"}},
        status=both_running)
    vm_failed_node1 = dict(both_running)
    vm_failed_node1["node1"] = [running("drbd", "drbd", role="Promoted", monitor=None),
                                (History("vm", "vm").op("start", 0, 10).op("monitor", 7, 13, interval=10000, target_rc=0)
                                 .op("stop", 0, 14).op("start", 0, 15).op("monitor", 0, 16, interval=10000)),
                                running("vip", "ip"), running("ping", "ping")]
    cib("two-host-vm-failed", "The two-host installation, everything on node1; the VM failed there 3 times and its "
        "migration-threshold is 3: vm moves to node2, and with it drbd's promotion and vip.",
        two_host_resources.replace('<nvpair id="vm-meta-allow-migrate" name="allow-migrate" value="false"/>',
                                   '<nvpair id="vm-meta-allow-migrate" name="allow-migrate" value="false"/>\n'
                                   '          <nvpair id="vm-meta-migration-threshold" name="migration-threshold" value="3"/>'),
        two_host_constraints, defaults={"resource-stickiness": "100"},
        transient={"node1": {"pingd": "2000", "master-drbd": "10000", "fail-count-vm#monitor_10000": "3",
                             "last-failure-vm#monitor_10000": str(NOW - 120)},
                   "node2": {"pingd": "2000", "master-drbd": "10000"}},
        status=vm_failed_node1)
    cib("lsb-and-target-roles", "An LSB resource (lsb:cron) runs on node1; a promotable clone with target-role "
        "Unpromoted (Slave spelling) is never promoted even with master scores.",
        primitive("cron", "lsb", monitor="30s")
        + clone("drbd-clone", drbd, {"promotable": "true", "target-role": "Slave"}),
        location("cron-node1", "cron", "node1", 10),
        transient={"node1": {"master-drbd": "10"}, "node2": {"master-drbd": "5"}})

    # --- found by the differential test (scripts/differential-pacemaker.py) ----------------------
    stopped_last = [primitive("fs", indent=8), primitive("db", indent=8),
                    primitive("web", meta={"target-role": "Stopped"}, indent=8)]
    cib("colocation-with-group-last-member", "vip must run with the group app (INFINITY), whose last member web "
        "is stopped (target-role Stopped): Pacemaker looks at the last member for an INFINITY colocation with a "
        "group, so vip stays stopped; note, with app by 100 only, looks at the first member and follows fs to node2.",
        group("app", stopped_last) + primitive("vip") + primitive("note"),
        location("app-node2", "app", "node2", 100) + colocation("vip-with-app", "vip", "app", "INFINITY")
        + colocation("note-with-app", "note", "app", "100"))
    cib("order-after-partial-group", "A mandatory order app then vm, where the group app's last member web is "
        "stopped (target-role Stopped): a group's start is runnable only when every member starts, so vm stays "
        "stopped; fs and db run.",
        group("app", stopped_last) + primitive("vm"), order("app-then-vm", "app", "vm"))
    cib("order-asymmetric-keeps-running", "The same group app, now running on node1 (web to be stopped), and vm "
        "running on node2, after app by a mandatory order with symmetrical=false: such an order only keeps vm from "
        "starting, so vm stays on node2; db, after app symmetrically, is not running and stays stopped.",
        group("app", stopped_last[:1] + stopped_last[2:]) + primitive("vm") + primitive("db"),
        order("app-then-vm", "app", "vm", kind="Mandatory", symmetrical="false") + order("app-then-db", "app", "db"),
        status={"node1": [running("fs"), running("web")], "node2": [running("vm")]})
    cib("opt-in-cli-prefer", "An opt-in cluster (symmetric-cluster=false) where vm has no location constraint but a "
        "move left cli-prefer-vm on node2: that constraint allows node2 as any other, so vm runs there.",
        primitive("vm"), location("cli-prefer-vm", "vm", "node2", "INFINITY"), props={"symmetric-cluster": "false"})
    one_promoted = {"promotable": "true", "promoted-max": "1"}
    cib("colocation-unpromoted-role-placement", "The promotable clone's Unpromoted role must not run with x "
        "(-INFINITY, rsc-role Unpromoted): in Pacemaker 2.1.5 a negative colocation of the Unpromoted role keeps every "
        "instance off x's node (node1), so one instance runs, promoted, on node2; its Promoted-role twin "
        "(Promoted with x, -INFINITY) only moves the promotion.",
        primitive("x") + clone("drbd-clone", drbd, one_promoted) + clone("drbd2-clone", primitive("drbd2", "drbd", monitor=None, indent=8),
                                                          one_promoted),
        location("x-node1", "x", "node1", 100) + colocation("drbd-unpromoted-not-with-x", "drbd-clone", "x", "-INFINITY",
                                                            rsc_role="Unpromoted")
        + colocation("drbd2-promoted-not-with-x", "drbd2-clone", "x", "-INFINITY", rsc_role="Promoted"),
        transient={"node1": {"master-drbd": "10", "master-drbd2": "10"}, "node2": {"master-drbd": "5", "master-drbd2": "5"}})
    cib("clone-ignores-finite-colocation", "A clone with one instance per node (clone-max unset) and a finite "
        "colocation with x (100), which x's -100 on node1 sends to node2: Pacemaker passes a finite positive "
        "colocation to a clone's instances only when fewer instances than nodes run, so it weighs nothing here and "
        "the promotion follows the promotion scores (node1).",
        primitive("x") + clone("drbd-clone", drbd, one_promoted),
        location("x-node1", "x", "node1", -100) + colocation("drbd-with-x", "drbd-clone", "x", "100"),
        transient={"node1": {"master-drbd": "10"}, "node2": {"master-drbd": "5"}})
    cib("order-duplicate-optional-first", "The group app of order-after-partial-group (web target-role Stopped), "
        "with an Optional order app then vm listed before the Mandatory one: Pacemaker keeps one ordering per pair "
        "of actions (the first), so the Mandatory order is a duplicate and vm starts.",
        group("app", stopped_last) + primitive("vm"),
        order("app-then-vm-optional", "app", "vm", kind="Optional") + order("app-then-vm", "app", "vm"))
    cib("clone-anti-colocation-per-instance", "Clone avoid (stickiness 1) runs on all three nodes, node1 is in "
        "standby; clone other runs on node3 only (banned from node2). avoid prefers to stay away from other (-50): "
        "Pacemaker applies that to each instance as it is assigned, and rolls it back for the instance on node3, "
        "which it would leave no node: avoid keeps node2 and node3.",
        clone("other", primitive("other-rsc")) + clone("avoid", primitive("avoid-rsc"), {"resource-stickiness": "1"}),
        location("other-not-node2", "other", "node2", "-INFINITY") + colocation("avoid-with-other", "avoid", "other", "-50"),
        nodes=("node1", "node2", "node3"), node_attrs={"node1": {"standby": "on"}},
        status={"node1": [running("avoid-rsc")], "node2": [running("avoid-rsc"), stopped("other-rsc")],
                "node3": [running("avoid-rsc"), running("other-rsc")]})
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes the benchmark CIB of scripts/bench-scheduler.sh to stdout.

  gen-bench-cib.py NODES PRIMITIVES

Every node online, nothing running yet. Each primitive prefers one node (a location score); primitives
come in chains of four (each INFINITY-colocated with, and ordered after, the one before); every tenth
carries the ping rule (-INFINITY where pingd is not defined or is 0), and every node has pingd set.
"""
import sys

NOW = 1790000000


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    nodes, count = int(sys.argv[1]), int(sys.argv[2])
    out = [f'<cib validate-with="pacemaker-3.9" crm_feature_set="3.16.1" epoch="1" num_updates="0" admin_epoch="0" '
           f'have-quorum="1" execution-date="{NOW}">', "  <configuration>", "    <crm_config>",
           '      <cluster_property_set id="opts">',
           '        <nvpair id="opts-stonith" name="stonith-enabled" value="false"/>',
           "      </cluster_property_set>", "    </crm_config>", "    <nodes>"]
    names = [f"node{i + 1}" for i in range(nodes)]
    for i, name in enumerate(names):
        out.append(f'      <node id="{i + 1}" uname="{name}"/>')
    out += ["    </nodes>", "    <resources>"]
    for r in range(count):
        out.append(f'      <primitive id="r{r}" class="ocf" provider="pacemaker" type="Dummy">'
                   f'<operations><op id="r{r}-mon" name="monitor" interval="10s"/></operations></primitive>')
    out += ["    </resources>", "    <constraints>"]
    for r in range(count):
        out.append(f'      <rsc_location id="l{r}" rsc="r{r}" node="{names[(r * 7) % nodes]}" score="{(r % 5) * 10 + 10}"/>')
        if r % 4:
            out.append(f'      <rsc_colocation id="c{r}" rsc="r{r}" with-rsc="r{r - 1}" score="INFINITY"/>')
            out.append(f'      <rsc_order id="o{r}" first="r{r - 1}" then="r{r}"/>')
        if r % 10 == 0:
            out.append(f'      <rsc_location id="ping{r}" rsc="r{r}"><rule id="ping{r}-rule" score="-INFINITY" boolean-op="or">'
                       f'<expression id="ping{r}-undef" attribute="pingd" operation="not_defined"/>'
                       f'<expression id="ping{r}-zero" attribute="pingd" operation="lte" value="0" type="number"/>'
                       '</rule></rsc_location>')
    out += ["    </constraints>", "  </configuration>", "  <status>"]
    for i, name in enumerate(names):
        out.append(f'    <node_state id="{i + 1}" uname="{name}" in_ccm="true" crmd="online" join="member" expected="member">'
                   f'<transient_attributes id="t{i + 1}"><instance_attributes id="ta{i + 1}">'
                   f'<nvpair id="ta{i + 1}-pingd" name="pingd" value="{1000 if i else 0}"/>'
                   '</instance_attributes></transient_attributes></node_state>')
    out += ["  </status>", "</cib>"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Normalizes a placement to sorted lines `resource node role` for scripts/compare-pacemaker.sh.

  placement.py crm-mon FILE     crm_mon --output-as=xml output (Pacemaker's view)
  placement.py clevervm FILE    `clevervm simulate --cib FILE --json` output (CleverVM's view)

Only active resources count. Clone instances are named by the clone's id, their `:N` suffixes
stripped, so clones compare as multisets. Roles: Started, Promoted, Unpromoted (Master/Slave mapped).
"""
import json
import re
import sys
import xml.etree.ElementTree as ET

ROLES = {"master": "Promoted", "promoted": "Promoted", "slave": "Unpromoted", "unpromoted": "Unpromoted",
         "started": "Started"}


def role(text):
    return ROLES.get((text or "").lower(), text)


def strip_instance(name):
    return re.sub(r":\d+$", "", name)


def from_crm_mon(path):
    tree = ET.parse(path)
    resources = tree.getroot().find("resources")
    lines = []

    def walk(element, clone_id):
        for child in element:
            if child.tag == "resource":
                if child.get("active") != "true" or child.get("role", "").lower() == "stopped":
                    continue
                name = clone_id or strip_instance(child.get("id"))
                for node in child.findall("node"):
                    lines.append(f"{name} {node.get('name')} {role(child.get('role'))}")
            elif child.tag == "clone":
                walk(child, child.get("id"))
            elif child.tag == "group":
                walk(child, clone_id)
            elif child.tag == "bundle":
                walk(child, child.get("id"))
            else:
                walk(child, clone_id)

    if resources is not None:
        walk(resources, None)
    return sorted(lines)


def from_clevervm(path):
    with open(path) as f:
        data = json.load(f)
    entries = data.get("placement", []) if isinstance(data, dict) else data
    lines = []
    for entry in entries:
        entry_role = role(entry.get("role", "Started"))
        if entry_role in ("Stopped", None):
            continue
        lines.append(f"{strip_instance(entry['resource'])} {entry['node']} {entry_role}")
    return sorted(lines)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("crm-mon", "clevervm"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        lines = from_crm_mon(sys.argv[2]) if sys.argv[1] == "crm-mon" else from_clevervm(sys.argv[2])
    except (OSError, ValueError, KeyError, ET.ParseError) as error:
        print(f"placement.py: {sys.argv[2]}: cannot read the placement: {error}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# The main job: install, build, and show the two-host installation of the design brief.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
clevervm=.build/debug/clevervm

echo "==> the config of the two-host installation (examples/mba7.yaml)"
"$clevervm" config check examples/mba7.yaml
echo
echo "==> what the cluster does at start-up, and when the active host loses its gateway"
"$clevervm" simulate --config examples/mba7.yaml --event 'attr alpha pingd=0'
echo
echo "==> why the VM runs where it runs"
"$clevervm" explain mba7 --config examples/mba7.yaml --event 'attr alpha pingd=0' 2>/dev/null \
    || "$clevervm" explain mba7 --config examples/mba7.yaml

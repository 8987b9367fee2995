#!/usr/bin/env bash
# Compares CleverVM's placement with Pacemaker's (crm_simulate) on every corpus CIB.
#
#   scripts/compare-pacemaker.sh [CLEVERVM_BINARY]     compare (default binary: .build/debug/clevervm)
#   scripts/compare-pacemaker.sh --regenerate-expected write Tests/Corpus/pacemaker/NAME.expected
#   scripts/compare-pacemaker.sh --pacemaker-only      print Pacemaker's placement per file, compare to .expected
#
# Pacemaker's side: crm_simulate runs the transition it computes, on its own output, until the
# placement stops changing (at most 5 rounds), then crm_mon --output-as=xml reads the result.
# Without crm_simulate installed, the committed NAME.expected files stand in for it.
# Both sides are normalized by scripts/placement.py to sorted `resource node role` lines.
# Files listed in KNOWN-DIFFERENCES.md (a line starting with "- `NAME`") may disagree.
# The last line is `N passed, M failed`; the exit status is 1 if any disagreement is unexpected.
set -u -o pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
corpus="$root/Tests/Corpus/pacemaker"
known_file="$corpus/KNOWN-DIFFERENCES.md"
mode=compare
binary="$root/.build/debug/clevervm"
case "${1:-}" in
    --regenerate-expected) mode=regenerate ;;
    --pacemaker-only) mode=pacemaker ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    "") ;;
    *) binary="$1" ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

have_pacemaker=yes
command -v crm_simulate >/dev/null && command -v crm_mon >/dev/null || have_pacemaker=no
if [ "$mode" != compare ] && [ "$have_pacemaker" = no ]; then
    echo "crm_simulate and crm_mon are needed (Debian: pacemaker-cli-utils)" >&2
    exit 2
fi

# Pacemaker's converged placement of $1, normalized, on stdout.
pacemaker_placement() {
    local input="$1" current="$work/round.xml" next="$work/next.xml" previous="" placement round
    cp "$input" "$current"
    for round in 1 2 3 4 5; do
        if ! crm_simulate -S -x "$current" -O "$next" >"$work/simulate.log" 2>&1; then
            echo "crm_simulate failed on $input:" >&2
            cat "$work/simulate.log" >&2
            return 1
        fi
        if ! CIB_file="$next" crm_mon -1 --output-as=xml >"$work/mon.xml" 2>"$work/mon.log"; then
            echo "crm_mon failed on the simulated CIB of $input:" >&2
            cat "$work/mon.log" >&2
            return 1
        fi
        placement="$(python3 "$here/placement.py" crm-mon "$work/mon.xml")" || return 1
        [ "$placement" = "$previous" ] && break
        previous="$placement"
        mv "$next" "$current"
    done
    printf '%s\n' "$placement" | sed '/^$/d'
}

clevervm_placement() {
    local input="$1"
    if ! "$binary" simulate --cib "$input" --json >"$work/clevervm.json" 2>"$work/clevervm.log"; then
        echo "clevervm simulate failed on $input:" >&2
        cat "$work/clevervm.log" >&2
        return 1
    fi
    python3 "$here/placement.py" clevervm "$work/clevervm.json"
}

is_known() {
    [ -f "$known_file" ] && grep -q "^- \`$1\`" "$known_file"
}

if [ "$mode" = compare ] && [ ! -x "$binary" ]; then
    echo "no CleverVM binary at $binary (build it with swift build, or pass its path)" >&2
    exit 2
fi

passed=0
failed=0
known=0
for file in "$corpus"/*.xml; do
    name="$(basename "$file" .xml)"
    expected_file="$corpus/$name.expected"
    case "$mode" in
    regenerate)
        if pacemaker_placement "$file" >"$work/expected"; then
            mv "$work/expected" "$expected_file"
            echo "wrote $name.expected ($(wc -l <"$expected_file") lines)"
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
        continue ;;
    pacemaker)
        if ! pacemaker_placement "$file" >"$work/pacemaker"; then failed=$((failed + 1)); continue; fi
        if [ -f "$expected_file" ] && diff -u "$expected_file" "$work/pacemaker" >"$work/diff"; then
            echo "$name: matches $name.expected"
            passed=$((passed + 1))
        else
            echo "$name: differs from $name.expected"
            cat "$work/diff" 2>/dev/null
            failed=$((failed + 1))
        fi
        continue ;;
    esac

    if [ "$have_pacemaker" = yes ]; then
        pacemaker_placement "$file" >"$work/pacemaker" || { echo "$name: ERROR (Pacemaker side)"; failed=$((failed + 1)); continue; }
    elif [ -f "$expected_file" ]; then
        cp "$expected_file" "$work/pacemaker"
    else
        echo "$name: ERROR (no crm_simulate and no $name.expected)"; failed=$((failed + 1)); continue
    fi
    clevervm_placement "$file" >"$work/clevervm" || { echo "$name: ERROR (CleverVM side)"; failed=$((failed + 1)); continue; }
    if diff -u --label "pacemaker/$name" --label "clevervm/$name" "$work/pacemaker" "$work/clevervm" >"$work/diff"; then
        echo "$name: AGREE"
        passed=$((passed + 1))
    elif is_known "$name"; then
        echo "$name: DISAGREE (known difference, see KNOWN-DIFFERENCES.md)"
        cat "$work/diff"
        known=$((known + 1))
    else
        echo "$name: DISAGREE"
        cat "$work/diff"
        failed=$((failed + 1))
    fi
done
[ "$known" -gt 0 ] && echo "$known known differences"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

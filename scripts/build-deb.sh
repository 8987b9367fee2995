#!/usr/bin/env bash
# Builds the Debian package: clevervm_VERSION_amd64.deb in the current directory (or OUTDIR); its last line
# of output is "build-deb: PATH".
#   bash scripts/build-deb.sh [--debug] [OUTDIR]
# VERSION is what the built binary says (`clevervm --version`, Sources/CleverCLI/Release.swift), so the package
# and the command never disagree. The binaries are built with the Swift runtime linked statically
# (--static-swift-stdlib), so the host needs nothing outside Debian; man pages and shell completions come from the
# argument parser itself.
#   (default)    the release build (swift build -c release, in .build-release): the package to ship.
#   --debug      the debug build in .build, the one `swift build`/`swift test` made, linked again with the static
#                runtime (only the link runs again): for the installation test in CI, where a cold release build
#                costs too much. Stripped like the release build; slower code, same files.
# A package built from the same sources is reused from /var/cache/clevervm/deb (CLEVERVM_DEB_CACHE), so the
# test suite builds the package once per change, not once per run.
# Needs: debhelper, lintian, fakeroot (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
mode=release
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) mode=debug; shift ;;
        -*) echo "build-deb: unknown option $1 (--debug)" >&2; exit 2 ;;
        *) break ;;
    esac
done
out=${1:-$PWD}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${CLEVERVM_DEB_CACHE:-/var/cache/clevervm/deb}

# The cache key: every file the package is made of, by content (a dirty tree counts as it is), and the build mode.
key=$( { echo "$mode"; git ls-files -z --cached --others --exclude-standard -- Package.swift Sources packaging scripts docs examples README.md \
    | xargs -0 sha256sum; swift --version 2>/dev/null; } | sha256sum | cut -c1-16)
cached=$(ls "$cache/$key"/clevervm_*_amd64.deb 2>/dev/null | head -1 || true)
if [ -n "$cached" ] && [ -s "$cached" ]; then
    cp "$cached" "$out/"
    echo "build-deb: $out/$(basename "$cached") (cached build $key)"
    exit 0
fi

if [ "$mode" = release ]; then
    build=(swift build -c release --static-swift-stdlib --scratch-path "$repo/.build-release")
else
    # The debug objects were compiled for the shared runtime, so their autolink entries name only the Foundation
    # libraries themselves; linked statically, Foundation's own static dependencies must be named (the static
    # modules' autolink entries, which a release build compiled with --static-swift-stdlib gets by itself).
    build=(swift build --static-swift-stdlib)
    for library in _CFXMLInterface xml2 CoreFoundation _FoundationICU _FoundationCShims _FoundationCollections stdc++ m; do
        build+=(-Xlinker "-l$library")
    done
fi
echo "==> ${build[*]}"
started=$SECONDS
"${build[@]}" --product clevervm
"${build[@]}" --product clevervm-volume
"${build[@]}" --product clevervm-web
bin=$("${build[@]}" --show-bin-path)
scratch=$(dirname "$(dirname "$bin")")
# Only the links run again when nothing changed since the last `swift build`: a module compiled here (its sources
# changed) gets the static runtime's autolink entries, and a later plain `swift build` fails to link it (cannot
# find -lCoreFoundation) until that module is compiled again (touch its sources). CI runs this last.
echo "build-deb: the binaries in $((SECONDS - started)) s"
binaries=(clevervm clevervm-volume clevervm-web)
for binary in "${binaries[@]}"; do
    if ldd "$bin/$binary" | grep -Ei 'swift|foundation|dispatch|not found'; then
        echo "build-deb: $binary links the Swift runtime dynamically (above); it must be static" >&2
        exit 1
    fi
done
version=$("$bin/clevervm" --version)
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build-deb: \`clevervm --version\` printed '$version', not X.Y.Z" >&2; exit 1; }
deb=clevervm_${version}_amd64.deb

work=$(mktemp -d /tmp/clevervm-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
mkdir -p "$stage/usr/bin" "$stage/usr/share/man/man1" "$stage/usr/share/clevervm/scripts" \
    "$stage/usr/share/clevervm/examples" "$stage/usr/share/doc/clevervm" \
    "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d"
for binary in "${binaries[@]}"; do install -m 0755 "$bin/$binary" "$stage/usr/bin/$binary"; done

echo "==> man pages and shell completions from the argument parser"
# generate-manual (swift-argument-parser's tool behind its generate-manual plugin) reads --experimental-dump-help;
# built from the checked-out swift-argument-parser (the plugin itself would rebuild everything unstatic).
tool=(--package-path "$scratch/checkouts/swift-argument-parser" --scratch-path "$scratch/generate-manual")
swift build "${tool[@]}" --product generate-manual >"$work/manual-tool.log" 2>&1 || { cat "$work/manual-tool.log" >&2; exit 1; }
manual=$(swift build "${tool[@]}" --show-bin-path)/generate-manual
date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
mkdir -p "$work/man"
for binary in "${binaries[@]}"; do
    "$manual" "$bin/$binary" --multi-page --date "$date" --authors "The CleverVM developers" --output-directory "$work/man"
done
install -m 0644 "$work"/man/*.1 "$stage/usr/share/man/man1/"
# Completion files are sourced, not run: no #! line.
"$bin/clevervm" --generate-completion-script bash | sed '1{/^#!/d}' > "$stage/usr/share/bash-completion/completions/clevervm"
"$bin/clevervm" --generate-completion-script zsh > "$stage/usr/share/zsh/vendor-completions/_clevervm"
"$bin/clevervm" --generate-completion-script fish > "$stage/usr/share/fish/vendor_completions.d/clevervm.fish"

# The lab (`clevervm lab up`) builds its test guest with these; it finds them here when run from the package.
install -m 0755 scripts/build-test-guest.sh "$stage/usr/share/clevervm/scripts/"
mkdir -p "$stage/usr/share/clevervm/scripts/test-guest"
install -m 0755 scripts/test-guest/init "$stage/usr/share/clevervm/scripts/test-guest/"
install -m 0644 scripts/test-guest/diskwriter.c "$stage/usr/share/clevervm/scripts/test-guest/"
# The join service and the web console beside the agent's unit (debian/clevervm.service); debhelper enables them.
install -D -m 0644 packaging/clevervm-join.service "$stage/lib/systemd/system/clevervm-join.service"
install -D -m 0644 packaging/clevervm-web.service "$stage/lib/systemd/system/clevervm-web.service"
# The console's pages, script and style: SwiftPM's resource bundle of the build, where the console looks for them
# when no bundle sits beside its binary (WebResources).
resources=$bin/CleverVM_CleverWeb.resources
[ -d "$resources/Templates" ] && [ -d "$resources/Static" ] || { echo "build-deb: $resources has no Templates and Static" >&2; exit 1; }
mkdir -p "$stage/usr/share/clevervm/web"
cp -r "$resources/Templates" "$resources/Static" "$stage/usr/share/clevervm/web/"
chmod -R u=rwX,go=rX "$stage/usr/share/clevervm/web"
install -m 0644 examples/*.yaml "$stage/usr/share/clevervm/examples/"
install -m 0644 README.md docs/*.md "$stage/usr/share/doc/clevervm/"

echo "==> dpkg-buildpackage (debhelper: systemd unit, LSB script, conffiles, maintainer scripts)"
src=$work/clevervm-$version
mkdir -p "$src"
cp -a packaging/debian "$src/debian"
cp packaging/clevervm.service "$src/debian/clevervm.service"
cp packaging/clevervm.init "$src/debian/clevervm.init"
mv "$stage" "$src/stage"
{
    echo "clevervm ($version) unstable; urgency=medium"
    echo
    echo "  * Built ($mode) from $(git rev-parse --short HEAD 2>/dev/null || echo 'a source tree')$(git diff --quiet 2>/dev/null || echo ' with local changes')."
    echo
    echo " -- CleverVM maintainers <maintainers@clevervm.invalid>  $(date -R -d "$(git log -1 --format=%cI 2>/dev/null || date -R)")"
} > "$src/debian/changelog"
(cd "$src" && dpkg-buildpackage -b -us -uc -rfakeroot >"$work/dpkg-buildpackage.log" 2>&1) || {
    cat "$work/dpkg-buildpackage.log" >&2
    echo "build-deb: dpkg-buildpackage failed" >&2
    exit 1
}

echo "==> lintian"
lintian --fail-on error --tag-display-limit 0 "$work/$deb"

cp "$work/$deb" "$out/$deb"
mkdir -p "$cache/$key"
cp "$work/$deb" "$cache/$key/$deb"
echo "build-deb: $out/$deb"

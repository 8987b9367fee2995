#!/usr/bin/env bash
# Builds the Debian package: clevervm_VERSION_amd64.deb in the current directory (or OUTDIR).
#   bash scripts/build-deb.sh [OUTDIR]
# The binaries are built with the Swift runtime linked statically (swift build -c release --static-swift-stdlib,
# in .build-release), so the host needs nothing outside Debian; man pages and shell completions come from the
# argument parser itself. A package built from the same sources is reused from /var/cache/clevervm/deb
# (CLEVERVM_DEB_CACHE), so the test suite builds the release binaries once per change, not once per run.
# Needs: debhelper, lintian, fakeroot (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=${1:-$PWD}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=${CLEVERVM_VERSION:-$(cat packaging/VERSION)}
deb=clevervm_${version}_amd64.deb
cache=${CLEVERVM_DEB_CACHE:-/var/cache/clevervm/deb}

# The cache key: every file the package is made of, by content (a dirty tree counts as it is), and the version.
key=$( { echo "$version"; git ls-files -z --cached --others --exclude-standard -- Package.swift Sources packaging scripts docs examples README.md \
    | xargs -0 sha256sum; swift --version 2>/dev/null; } | sha256sum | cut -c1-16)
if [ -s "$cache/$key/$deb" ]; then
    cp "$cache/$key/$deb" "$out/$deb"
    echo "build-deb: $out/$deb (cached build $key)"
    exit 0
fi

echo "==> swift build -c release --static-swift-stdlib (.build-release)"
scratch=$repo/.build-release
swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product clevervm
swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product clevervm-volume
bin=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)
binaries=(clevervm clevervm-volume)
for binary in "${binaries[@]}"; do
    if ldd "$bin/$binary" | grep -Ei 'swift|foundation|dispatch|not found'; then
        echo "build-deb: $binary links the Swift runtime dynamically (above); it must be static" >&2
        exit 1
    fi
done

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
# The join service beside the agent's unit (debian/clevervm.service); debhelper enables both.
install -D -m 0644 packaging/clevervm-join.service "$stage/lib/systemd/system/clevervm-join.service"
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
    echo "  * Built from $(git rev-parse --short HEAD 2>/dev/null || echo 'a source tree')$(git diff --quiet 2>/dev/null || echo ' with local changes')."
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

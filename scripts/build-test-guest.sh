#!/bin/sh
# Builds the test guest into OUTDIR: vmlinuz (Debian's cloud kernel) and initrd (cpio.gz with busybox-static,
# the virtio modules and a static disk writer). Idempotent: downloads are cached in OUTDIR/cache and nothing is
# rebuilt when the outputs are newer than their inputs. Debian packages only (apt-get download); no binaries in git.
set -eu
OUTDIR=${1:?usage: build-test-guest.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUTDIR/cache"
OUTDIR=$(cd "$OUTDIR" && pwd)
CACHE=$OUTDIR/cache

# One build at a time per OUTDIR (test suites run in parallel and each asks for the guest).
exec 9>"$OUTDIR/.build.lock"
flock 9
# Rebuilt when its sources' contents differ from the last build's (not their times: several checkouts may share
# OUTDIR, and each must get the guest its own sources describe).
STAMP=$(cat "$HERE/test-guest/init" "$HERE/test-guest/diskwriter.c" "$HERE/test-guest/dirtier.c" "$0" | sha256sum | cut -d' ' -f1)
if [ -s "$OUTDIR/vmlinuz" ] && [ -s "$OUTDIR/initrd" ] && [ "$(cat "$OUTDIR/stamp" 2>/dev/null)" = "$STAMP" ]; then
    exit 0
fi

# The kernel package the cloud meta-package points at today (e.g. linux-image-6.1.0-56-cloud-amd64).
KPKG=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$KPKG" ] || { echo "build-test-guest: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
cd "$CACHE"
ls "$KPKG"_*.deb >/dev/null 2>&1 || apt-get download "$KPKG" >&2
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download busybox-static >&2
rm -rf "$CACHE/kernel" "$CACHE/busybox" "$CACHE/root"
dpkg -x "$(ls "$KPKG"_*.deb | head -n 1)" "$CACHE/kernel"
dpkg -x "$(ls busybox-static_*.deb | head -n 1)" "$CACHE/busybox"

ROOT=$CACHE/root
mkdir -p "$ROOT/bin" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/tmp"
cp "$CACHE/busybox/bin/busybox" "$ROOT/bin/busybox"
gcc -static -O2 -Wall -o "$ROOT/bin/diskwriter" "$HERE/test-guest/diskwriter.c"
gcc -static -O2 -Wall -o "$ROOT/bin/dirtier" "$HERE/test-guest/dirtier.c"
cp "$HERE/test-guest/init" "$ROOT/init"
chmod 755 "$ROOT/init"
KVER=$(ls "$CACHE/kernel/lib/modules" | head -n 1)
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk failover net_failover virtio_net efivarfs; do
    f=$(find "$CACHE/kernel/lib/modules/$KVER" -name "$m.ko*" | head -n 1)
    [ -n "$f" ] || continue # built in
    mkdir -p "$ROOT/lib/modules/$KVER"
    cp "$f" "$ROOT/lib/modules/$KVER/"
done
# insmod in busybox cannot read compressed modules: store them plain.
for f in "$ROOT"/lib/modules/*/*.ko.xz; do [ -e "$f" ] && xz -d "$f"; done
for f in "$ROOT"/lib/modules/*/*.ko.zst; do [ -e "$f" ] && zstd -q -d --rm "$f"; done
# busybox's own cpio (from the package just unpacked): no cpio package needed.
BB=$CACHE/busybox/bin/busybox
(cd "$ROOT" && find . | "$BB" cpio -o -H newc > "$CACHE/initrd.cpio")
gzip -9 -c "$CACHE/initrd.cpio" > "$OUTDIR/initrd.tmp"
rm -f "$CACHE/initrd.cpio"
cp "$(ls "$CACHE"/kernel/boot/vmlinuz-* | head -n 1)" "$OUTDIR/vmlinuz.tmp"
mv "$OUTDIR/vmlinuz.tmp" "$OUTDIR/vmlinuz"
mv "$OUTDIR/initrd.tmp" "$OUTDIR/initrd"
echo "$STAMP" > "$OUTDIR/stamp"
echo "build-test-guest: $OUTDIR/vmlinuz ($KPKG) and $OUTDIR/initrd" >&2

#!/usr/bin/env bash
# The heavier test guest: Debian bookworm with systemd on an ext4 root, booted through SeaBIOS from its disk.
#   bash scripts/build-debian-guest.sh [OUTDIR]    (default /var/cache/clevervm/debian-guest; prints OUTDIR)
# OUTDIR gets:
#   vmlinuz, initrd   Debian's cloud kernel and a busybox initramfs with that kernel's modules for virtio-blk and
#                     ext4 (resolved by modprobe --show-depends; no chroot, no Debian initramfs-tools)
#   root.ext4         the root file system, made by `mkfs.ext4 -d` (nothing is mounted): the installation test's
#                     debootstrap root (scripts/build-test-root.sh, cached, built once for both) copied as hard
#                     links, plus qemu-guest-agent (apt-get download, dpkg -x), the kernel's modules, and
#                     scripts/debian-guest: a TCP echo service on port 7777, a writer that keeps the file system
#                     busy, "CLEVERVM MULTI-USER" on ttyS0 when multi-user.target is reached, an fsfreeze hook that
#                     says FSFREEZE freeze/thaw on ttyS0, and 198.51.100.231/24 by systemd-networkd
#   disk.img          the VM's disk: partition 1 FAT with syslinux, kernel and initramfs (scripts/build-boot-disk.sh),
#                     partition 2 the root (root=/dev/vda2)
# Rebuilt only when its inputs change. Needs debootstrap (once), kmod, e2fsprogs, fdisk, mtools.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${CLEVERVM_CACHE:-/var/cache/clevervm}/debian-guest}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for tool in depmod modprobe mkfs.ext4 apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "build-debian-guest: $tool is missing (apt-get install kmod e2fsprogs)" >&2; exit 1; }
done
exec 9>"$out/.build.lock"
flock 9

root=$(bash "$here/build-test-root.sh")
stamp=$( (cat "$0" "$here/build-boot-disk.sh" "$here"/debian-guest/*; echo "$root") | sha256sum | cut -d' ' -f1)
if [ -s "$out/disk.img" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$out"
    exit 0
fi
cache=$out/cache
mkdir -p "$cache"
cd "$cache"
# The kernel the cloud meta-package points at today, and the guest agent with what the root lacks of its Depends.
kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "build-debian-guest: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
# kmod: systemd's kmod-static-nodes and modprobe@ units run it (the installation test's root has only libkmod).
debs=("$kpkg" qemu-guest-agent busybox-static)
for dep in kmod $(apt-cache depends qemu-guest-agent | awk '/^  (Pre)?Depends: [a-z]/ { print $2 }'); do
    [ -e "$root/var/lib/dpkg/info/$dep.list" ] || [ -e "$root/var/lib/dpkg/info/$dep:amd64.list" ] || debs+=("$dep")
done
for deb in "${debs[@]}"; do
    ls "${deb}"_*.deb >/dev/null 2>&1 || apt-get download "$deb" >&2
done

work=$out/work
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$(ls "$kpkg"_*.deb | head -n 1)" "$work/kernel"
kver=$(ls "$work/kernel/lib/modules" | head -n 1)
# Plain modules (busybox's insmod reads no compressed ones), and their dependency index.
find "$work/kernel/lib/modules" -name '*.ko.xz' -exec xz -d {} +
find "$work/kernel/lib/modules" -name '*.ko.zst' -exec zstd -q -d --rm {} +
depmod -b "$work/kernel" "$kver"

# The initramfs: busybox, the modules for the disk and the root, in load order.
initramfs=$work/initramfs
mkdir -p "$initramfs/bin" "$initramfs/proc" "$initramfs/sys" "$initramfs/dev" "$initramfs/lib/modules"
dpkg-deb -x "$(ls busybox-static_*.deb | head -n 1)" "$work/busybox"
cp "$work/busybox/bin/busybox" "$initramfs/bin/busybox"
cp "$here/debian-guest/init" "$initramfs/init"
for module in virtio_pci virtio_blk ext4; do modprobe -d "$work/kernel" -S "$kver" --show-depends "$module"; done |
    awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' | while read -r module; do
        cp "$module" "$initramfs/lib/modules/"
        basename "$module" >>"$initramfs/modules.order"
    done
(cd "$initramfs" && find . | "$work/busybox/bin/busybox" cpio -o -H newc) | gzip -9 >"$work/initrd"
cp "$(ls "$work"/kernel/boot/vmlinuz-* | head -n 1)" "$work/vmlinuz"

# The root: hard links to the cached debootstrap root (the copy's changes only ever replace files: every file
# written below is removed first, and the packages' files are unpacked by GNU tar, which unlinks first).
stage=$work/root
cp -al "$root" "$stage"
rm -f "$stage/.complete"
# What a guest does not need of the installation test's root.
rm -rf "$stage"/usr/share/doc "$stage"/usr/share/man "$stage"/usr/share/locale "$stage"/usr/share/info \
    "$stage"/usr/bin/qemu-system-* "$stage"/usr/share/qemu
for deb in "${debs[@]}"; do
    case "$deb" in "$kpkg" | busybox-static) continue ;; esac
    rm -rf "$work/deb"
    dpkg-deb -x "$(ls "${deb}"_*.deb | head -n 1)" "$work/deb"
    # tar: the package's /lib goes through the root's lib -> usr/lib link; GNU tar unlinks a file before writing it.
    tar -C "$work/deb" -cf - . | tar -C "$stage" -xf - --keep-directory-symlink
done
mkdir -p "$stage/lib/modules"
cp -a "$work/kernel/lib/modules/$kver" "$stage/lib/modules/"
put() { # put SOURCE DEST [MODE]: a new file in the copy (never written through a hard link)
    mkdir -p "$(dirname "$stage/$2")"
    rm -f "$stage/$2"
    cp "$1" "$stage/$2"
    chmod "${3:-644}" "$stage/$2"
}
text() { # text DEST CONTENT
    mkdir -p "$(dirname "$stage/$1")"
    rm -f "$stage/$1"
    printf '%s\n' "$2" >"$stage/$1"
}
link() { # link TARGET NAME: a symbolic link (systemd's enable and mask)
    mkdir -p "$(dirname "$stage/$2")"
    rm -f "$stage/$2"
    ln -s "$1" "$stage/$2"
}
text etc/fstab "/dev/vda2 / ext4 errors=remount-ro 0 1"
text etc/hostname "debian-guest"
rm -f "$stage/etc/machine-id"
touch "$stage/etc/machine-id"
for unit in clevervm-echo.service clevervm-writer.service clevervm-ready.service; do
    put "$here/debian-guest/$unit" "etc/systemd/system/$unit"
    link "/etc/systemd/system/$unit" "etc/systemd/system/multi-user.target.wants/$unit"
done
put "$here/debian-guest/clevervm-writer" usr/local/sbin/clevervm-writer 755
put "$here/debian-guest/10-lab.network" etc/systemd/network/10-lab.network
link /lib/systemd/system/systemd-networkd.service etc/systemd/system/multi-user.target.wants/systemd-networkd.service
link /lib/systemd/system/systemd-networkd.socket etc/systemd/system/sockets.target.wants/systemd-networkd.socket
# The guest agent runs when its virtio-serial port appears (Debian's udev rule); its fsfreeze hook reports.
text etc/qemu/qemu-ga.conf "$(printf '[general]\nfsfreeze-hook=/etc/qemu/fsfreeze-hook')"
put "$here/debian-guest/fsfreeze-console" etc/qemu/fsfreeze-hook.d/clevervm-console 755
# The installation test's services have no business in the guest. (logind stays: qemu-ga's guest-shutdown runs
# `shutdown -P +0`, which systemd 252 schedules through logind.)
for unit in corosync corosync-qdevice corosync-qnetd ssh nftables apt-daily apt-daily-upgrade e2scrub_all e2scrub_reap; do
    link /dev/null "etc/systemd/system/$unit.service"
done
for timer in apt-daily apt-daily-upgrade e2scrub_all fstrim; do link /dev/null "etc/systemd/system/$timer.timer"; done

# ext4 from the directory: its size is what the root holds plus room for the writer and the journal.
used=$(du -sm "$stage" | cut -f1)
size=$((used + used / 4 + 256))
rm -f "$work/root.ext4"
truncate -s "${size}M" "$work/root.ext4"
mkfs.ext4 -q -F -L debian-root -d "$stage" "$work/root.ext4"
mv "$work/vmlinuz" "$out/vmlinuz"
mv "$work/initrd" "$out/initrd"
mv "$work/root.ext4" "$out/root.ext4"
# The disk image: bootloader partition and root (build-boot-disk copies root.ext4 in as partition 2).
rm -f "$out/disk.img.stamp"
CLEVERVM_CACHE=${CLEVERVM_CACHE:-/var/cache/clevervm} sh "$here/build-boot-disk.sh" "$out" bios "$out/disk.img" \
    "root=/dev/vda2 rootwait" "$out/root.ext4"
echo "$kpkg, $used MiB of root in ${size} MiB of ext4" >"$out/contents"
echo "$stamp" >"$out/stamp"
echo "build-debian-guest: $out/disk.img ($(cat "$out/contents"))" >&2
echo "$out"

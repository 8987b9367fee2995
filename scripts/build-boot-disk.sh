#!/bin/sh
# Builds a bootable disk image for the test guest, without mounting anything:
#   build-boot-disk.sh GUESTDIR bios|uefi OUT.img [KERNEL-ARGS [ROOT.ext4]]
# GUESTDIR holds vmlinuz and initrd (scripts/build-test-guest.sh). The image has a partition table made by sfdisk
# on the file and one FAT partition made by mtools holding the kernel, the initramfs and a bootloader:
#   bios: MBR (dos label, partition active) with syslinux's mbr.bin; syslinux installed into the partition image.
#   uefi: GPT with an EFI system partition; systemd-boot as EFI/BOOT/BOOTX64.EFI and a loader entry.
# With ROOT.ext4 (a file system image, scripts/build-debian-guest.sh), it becomes partition 2 (/dev vda2).
# Bootloaders come from Debian packages (apt-get download, dpkg -x), cached in $CLEVERVM_CACHE (/var/cache/clevervm).
# Needs sfdisk (fdisk) and mtools. Idempotent: the image is rebuilt only when its inputs changed.
set -eu
GUEST=${1:?usage: build-boot-disk.sh GUESTDIR bios|uefi OUT.img [KERNEL-ARGS]}
FIRMWARE=${2:?usage: build-boot-disk.sh GUESTDIR bios|uefi OUT.img [KERNEL-ARGS]}
OUT=${3:?usage: build-boot-disk.sh GUESTDIR bios|uefi OUT.img [KERNEL-ARGS]}
ARGS=${4:-}
ROOTFS=${5:-}
CACHE=${CLEVERVM_CACHE:-/var/cache/clevervm}/boot-disk
case "$FIRMWARE" in bios | uefi) ;; *) echo "build-boot-disk: firmware must be bios or uefi, not $FIRMWARE" >&2; exit 2 ;; esac
for tool in sfdisk mformat mcopy mmd; do
    command -v "$tool" >/dev/null || { echo "build-boot-disk: $tool is missing (apt-get install fdisk mtools)" >&2; exit 1; }
done
[ -s "$GUEST/vmlinuz" ] && [ -s "$GUEST/initrd" ] || { echo "build-boot-disk: $GUEST has no vmlinuz and initrd" >&2; exit 1; }

mkdir -p "$(dirname "$OUT")"
exec 9>"$OUT.lock"
flock 9
# A root image is known by its size and time (reading a GiB for a hash costs more than the copy).
STAMP=$( (cat "$0" "$GUEST/vmlinuz" "$GUEST/initrd"; echo "$FIRMWARE $ARGS"; [ -z "$ROOTFS" ] || stat -c '%n %s %Y' "$ROOTFS") |
    sha256sum | cut -d' ' -f1)
if [ -s "$OUT" ] && [ "$(cat "$OUT.stamp" 2>/dev/null)" = "$STAMP" ]; then exit 0; fi

mkdir -p "$CACHE"
# One package, unpacked once into CACHE/NAME.
unpack() {
    [ -d "$CACHE/$1" ] && return 0
    (cd "$CACHE" && { ls "$1"_*.deb >/dev/null 2>&1 || apt-get download "$1" >&2; })
    rm -rf "$CACHE/$1.tmp"
    dpkg -x "$(ls "$CACHE/$1"_*.deb | head -n 1)" "$CACHE/$1.tmp"
    mv "$CACHE/$1.tmp" "$CACHE/$1"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cvm-boot-disk.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can fail and panic.
CMDLINE="console=tty0 console=ttyS0 panic=-1 no_timer_check${ARGS:+ $ARGS}"
DISK_MIB=64
PART_START=2048                                # sectors: the partition begins at 1 MiB
PART_SECTORS=$(( (DISK_MIB - 2) * 2048 ))      # and leaves 1 MiB at the end for GPT's backup header
PART=$WORK/part.img
ROOT_START=$(( (DISK_MIB - 1) * 2048 ))       # a root partition follows the boot partition
ROOT_SECTORS=0
if [ -n "$ROOTFS" ]; then
    ROOT_SECTORS=$(( ($(stat -c %s "$ROOTFS") + 511) / 512 ))
    DISK_MIB=$(( DISK_MIB + (ROOT_SECTORS + 2047) / 2048 ))
fi
ROOT_PART=""

# The FAT file system as a file of its own, then copied into the disk at the partition's offset.
truncate -s $((PART_SECTORS * 512)) "$PART"
mformat -i "$PART" -T "$PART_SECTORS" -h 64 -s 32 -v CVMBOOT ::
mcopy -i "$PART" "$GUEST/vmlinuz" ::/vmlinuz
mcopy -i "$PART" "$GUEST/initrd" ::/initrd

truncate -s 0 "$WORK/disk.img"
truncate -s $((DISK_MIB << 20)) "$WORK/disk.img"
if [ "$FIRMWARE" = bios ]; then
    unpack syslinux
    unpack syslinux-common
    printf 'SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT guest\nLABEL guest\n  LINUX /vmlinuz\n  INITRD /initrd\n  APPEND %s\n' \
        "$CMDLINE" > "$WORK/syslinux.cfg"
    mcopy -i "$PART" "$WORK/syslinux.cfg" ::/syslinux.cfg
    # syslinux's installer writes ldlinux.sys/ldlinux.c32 into the image through mtools: no mount.
    "$CACHE/syslinux/usr/bin/syslinux" --install "$PART"
    [ -z "$ROOTFS" ] || ROOT_PART=$(printf 'start=%s, size=%s, type=83\n' "$ROOT_START" "$ROOT_SECTORS")
    printf 'label: dos\nstart=%s, size=%s, type=c, bootable\n%s\n' "$PART_START" "$PART_SECTORS" "$ROOT_PART" | sfdisk -q "$WORK/disk.img"
    dd if="$CACHE/syslinux-common/usr/lib/syslinux/mbr/mbr.bin" of="$WORK/disk.img" bs=440 count=1 conv=notrunc status=none
else
    unpack systemd-boot-efi
    mmd -i "$PART" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
    mcopy -i "$PART" "$CACHE/systemd-boot-efi/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
    printf 'default guest.conf\ntimeout 0\n' > "$WORK/loader.conf"
    printf 'title CleverVM test guest\nlinux /vmlinuz\ninitrd /initrd\noptions %s\n' "$CMDLINE" > "$WORK/guest.conf"
    mcopy -i "$PART" "$WORK/loader.conf" ::/loader/loader.conf
    mcopy -i "$PART" "$WORK/guest.conf" ::/loader/entries/guest.conf
    [ -z "$ROOTFS" ] || ROOT_PART=$(printf 'start=%s, size=%s, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\n' \
        "$ROOT_START" "$ROOT_SECTORS")
    printf 'label: gpt\nstart=%s, size=%s, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system"\n%s\n' \
        "$PART_START" "$PART_SECTORS" "$ROOT_PART" | sfdisk -q "$WORK/disk.img"
fi
dd if="$PART" of="$WORK/disk.img" bs=1M seek=1 conv=notrunc,sparse status=none
[ -z "$ROOTFS" ] || dd if="$ROOTFS" of="$WORK/disk.img" bs=1M seek=$((ROOT_START / 2048)) conv=notrunc,sparse status=none
mkdir -p "$(dirname "$OUT")"
mv "$WORK/disk.img" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$STAMP" > "$OUT.stamp"
echo "build-boot-disk: $OUT ($FIRMWARE, $DISK_MIB MiB)" >&2

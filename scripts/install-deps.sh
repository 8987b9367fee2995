#!/usr/bin/env bash
# Installs what CleverVM needs on Debian 12 (as root), then builds it (not with --no-build). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    # cluster engine and the Pacemaker oracle for scheduler agreement tests
    corosync corosync-qnetd corosync-qdevice libcpg-dev libvotequorum-dev libcmap-dev libquorum-dev libcfg-dev
    pacemaker-cli-utils
    # lab networking, resources, VMs and NBD clients
    iproute2 nftables iputils-ping arping resource-agents
    qemu-system-x86 qemu-utils nbdkit libnbd-bin fio busybox-static
    # real VMs: OVMF (UEFI), and the tools that build the test boot disks without mounting (sfdisk, mtools)
    ovmf fdisk mtools
    python3 bc
    # the web console: Bootstrap 5 served locally, openssl for its first self-signed certificate, chromium for
    # its browser tests
    libjs-bootstrap5 openssl chromium
    # the VM's screen in the browser (noVNC), served locally like Bootstrap
    novnc
    # the Debian package (scripts/build-deb.sh) and the installation test on nspawn machines (scripts/test-install.sh)
    debhelper lintian fakeroot debootstrap systemd-container socat
    # the Debian test guest (scripts/build-debian-guest.sh): depmod/modprobe resolve its initramfs's modules
    kmod
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# The test guest is built from packages downloaded at test time (apt-get download): package lists needed.
if ((${#missing[@]})) || ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    need_update=yes
fi
if ((${#missing[@]})); then
    echo "==> installing ${#missing[@]} Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    need_update=no
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ "${need_update:-no}" = yes ]; then DEBIAN_FRONTEND=noninteractive apt-get update -q; fi
# Debian starts corosync after installing it; the lab runs its own, inside namespaces.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet corosync 2>/dev/null; then
    systemctl stop corosync || true
fi
# The console's browser tests drive Debian's chromium with Playwright (PyPI; its own browsers are not used).
python3 -c 'import playwright' 2>/dev/null || python3 -m pip install -q playwright

[ "${1:-}" = --no-build ] && exit 0
echo "==> building clevervm (swift build)"
# A module last compiled by `scripts/build-deb.sh --debug` (the static runtime, run last by scripts/test.sh) carries
# that runtime's autolink entries, and a plain build then cannot link it (cannot find -lCoreFoundation): its
# objects go, so this build compiles it again.
# (A fresh clone has no objects: grep finds no file, which is no error here.)
{ grep -l -a -e '-lCoreFoundation' .build/debug/*.build/*.o 2>/dev/null || true; } | xargs -r rm -f
swift build

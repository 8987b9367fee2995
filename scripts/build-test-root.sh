#!/usr/bin/env bash
# A Debian bookworm root file system for the installation test's machines (systemd as PID 1 in systemd-nspawn),
# cached in /var/cache/clevervm/nspawn (CLEVERVM_ROOT_CACHE) by the list of packages below: built once, reused.
# The machines have no uplink, so everything the package depends on is in the root already; `apt install
# ./clevervm_*.deb` then takes its dependencies from it (Debian's packages, installed by debootstrap).
#   bash scripts/build-test-root.sh     prints the root's path
set -euo pipefail
cache=${CLEVERVM_ROOT_CACHE:-/var/cache/clevervm/nspawn}
mirror=${CLEVERVM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=(
    # PID 1 and what a Debian server has
    systemd systemd-sysv dbus udev procps iproute2 iputils-ping less ca-certificates
    # clevervm's Depends (packaging/debian/control), so apt needs no network in the machine
    corosync corosync-qdevice qemu-system-x86 qemu-utils nftables openssl libnss3-tools socat openssh-client
    # the qnetd host
    corosync-qnetd openssh-server
)
key=$(printf '%s\n' bookworm "$mirror" "${packages[@]}" | sha256sum | cut -c1-12)
root=$cache/bookworm-$key
if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "build-test-root: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -f "$root/.complete" ]; then
    rm -rf "$root.partial"
    echo "build-test-root: debootstrap bookworm into $root (a few minutes, once)" >&2
    include=$(IFS=,; echo "${packages[*]}")
    debootstrap --variant=minbase --include="$include" bookworm "$root.partial" "$mirror" >"$cache/debootstrap-$key.log" 2>&1 || {
        tail -30 "$cache/debootstrap-$key.log" >&2
        echo "build-test-root: debootstrap failed (log: $cache/debootstrap-$key.log)" >&2
        exit 1
    }
    # No network to fetch from; the root's own packages are what apt works with.
    rm -f "$root.partial"/var/lib/apt/lists/*_Packages "$root.partial"/var/cache/apt/archives/*.deb
    echo "root:clevervm" | chroot "$root.partial" chpasswd
    # Root over ssh with a key only (Debian's default); the guide adds the first host's key on the qnetd host.
    echo "PermitRootLogin prohibit-password" > "$root.partial/etc/ssh/sshd_config.d/clevervm-test.conf"
    rm -f "$root.partial"/etc/ssh/ssh_host_*
    chroot "$root.partial" ssh-keygen -A >/dev/null
    touch "$root.partial/.complete"
    mv "$root.partial" "$root"
fi
echo "$root"

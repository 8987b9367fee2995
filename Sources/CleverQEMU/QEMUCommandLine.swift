import Foundation
import CleverModel

/// Where QEMU runs the guest: TCG (emulation, always works) or KVM (only when a probe showed it runs guests).
public enum Accelerator: String, Hashable, Sendable, Codable { case tcg, kvm }

/// How the guest boots, read from `VMSpec.boot`: a directory with `vmlinuz` + `initrd` (+ optional `cmdline`), a
/// raw disk image (a local file), or the firmware from the VM's own disks (`boot` names a volume or `cdrom`).
public enum BootSource: Hashable, Sendable {
    case kernel(kernel: String, initrd: String?, commandLine: String)
    case disk(String)
    case firmware
}

/// OVMF for `firmware: uefi`: the read-only code and the VM's variables, which live on a volume of their own
/// (`nvram`) so they follow the VM; `varsSize` is the template's size (a pflash device has exactly that size).
public struct UEFIFlash: Hashable, Sendable {
    public var code: String
    public var varsSocket: String
    public var varsExport: String
    public var varsSize: Int

    public init(code: String, varsSocket: String, varsExport: String, varsSize: Int) {
        self.code = code
        self.varsSocket = varsSocket
        self.varsExport = varsExport
        self.varsSize = varsSize
    }
}

/// One virtio-net NIC on a tap device. The MAC must be the same on every host (live migration keeps it).
public struct NIC: Hashable, Sendable {
    public var tap: String
    public var mac: String

    public init(tap: String, mac: String) {
        self.tap = tap
        self.mac = mac
    }

    /// The tap of a VM's NIC on a host: `cv-ID`, or within Linux's 15 bytes `cv-PREFIX-HASH` for long ids, so
    /// two VMs never share a tap name.
    public static func tapName(for vm: String) -> String {
        let plain = "cv-\(vm)"
        if plain.utf8.count <= 15 { return plain }
        var hash: UInt32 = 2166136261
        for byte in vm.utf8 { hash = (hash ^ UInt32(byte)) &* 16777619 }
        return "cv-\(String(vm.prefix(7)))-\(String(format: "%04x", hash & 0xffff))"
    }

    /// The tap of a VM's NIC number `index` (0: `tapName(for:)`): `cv-HASH-INDEX`, distinct per VM and NIC.
    public static func tapName(for vm: String, index: Int) -> String {
        guard index > 0 else { return Self.tapName(for: vm) }
        var hash: UInt32 = 2166136261
        for byte in vm.utf8 { hash = (hash ^ UInt32(byte)) &* 16777619 }
        return "cv-\(String(vm.prefix(5)))-\(String(format: "%04x", hash & 0xffff))\(index)"
    }

    /// The MAC of NIC number `index` (0: `mac(for:)`), the same on every host.
    public static func mac(for vm: String, index: Int) -> String {
        index == 0 ? Self.mac(for: vm) : Self.mac(for: "\(vm)#\(index)")
    }

    /// A locally administered MAC derived from the VM id (FNV-1a), the same on every host.
    public static func mac(for vm: String) -> String {
        var hash: UInt64 = 1469598103934665603
        for byte in vm.utf8 { hash = (hash ^ UInt64(byte)) &* 1099511628211 }
        return String(format: "52:54:00:%02x:%02x:%02x", (hash >> 16) & 0xff, (hash >> 8) & 0xff, hash & 0xff)
    }
}

/// Where an incoming QEMU takes its state from.
public enum IncomingSource: Hashable, Sendable {
    /// Live migration: listen on `tcp:ADDRESS:PORT`.
    case tcp(address: String, port: Int)
    /// Resume from a hibernate image (a QEMU migration stream in a file).
    case stateFile(String)
    /// Resume from the output of a shell command (the stream read back from a state volume).
    case command(String)

    var argument: String {
        switch self {
        case .tcp(let address, let port): address.contains(":") ? "tcp:[\(address)]:\(port)" : "tcp:\(address):\(port)"
        case .stateFile(let path): "exec:cat \(shellQuoted(path))"
        case .command(let command): "exec:\(command)"
        }
    }
}

/// Pure: the QEMU command line for one VM. No I/O.
public struct QEMUCommandLine: Hashable, Sendable {
    public var vm: String
    public var spec: VMSpec
    public var boot: BootSource
    public var accelerator: Accelerator
    /// Unix socket of each volume's NBD export (export name = the volume id), in `spec.volumes` order.
    public var volumeSockets: [String]
    public var qmpSocket: String
    public var consoleLog: String
    public var incoming: IncomingSource?
    /// Live migration over TLS (`MigrationTLS`): the directory with `keys.psk`. With a `tcp` incoming source the
    /// QEMU starts with `-incoming defer` and the agent starts listening only once the credentials are set.
    public var migrationTLSDirectory: String?
    public var nics: [NIC] = []
    /// OVMF's code and the VM's variables volume (`firmware: uefi`).
    public var uefi: UEFIFlash?
    /// The serial console as a unix socket (one client at a time: `clevervm console`), logged to `consoleLog`;
    /// nil: the console only goes to the log.
    public var consoleSocket: String?
    /// The qemu-guest-agent channel's unix socket (`guest-agent: true`).
    public var guestAgentSocket: String?
    /// The VNC display's unix socket (`display: vnc`).
    public var vncSocket: String?
    /// Seconds QEMU's NBD client keeps requests while it reconnects (the volume moving to Primary elsewhere).
    public var reconnectDelay: Int = 5
    public var executable: String = "qemu-system-x86_64"

    /// Under KVM, a CPU model that every x86-64 host of the last 15 years runs (SSE4.2, POPCNT), so a live move
    /// between unlike hosts works; `-cpu host` only when the config asks for it. Under TCG, QEMU's own default
    /// (qemu64) migrates.
    public static let defaultKVMCPUModel = "Nehalem"

    public init(vm: String, spec: VMSpec, boot: BootSource, accelerator: Accelerator, volumeSockets: [String],
                qmpSocket: String, consoleLog: String, incoming: IncomingSource? = nil) {
        self.vm = vm
        self.spec = spec
        self.boot = boot
        self.accelerator = accelerator
        self.volumeSockets = volumeSockets
        self.qmpSocket = qmpSocket
        self.consoleLog = consoleLog
        self.incoming = incoming
    }

    /// The CPU model on the command line; nil: QEMU's default.
    public var cpuModel: String? {
        self.spec.cpuModel ?? (self.accelerator == .kvm ? Self.defaultKVMCPUModel : nil)
    }

    public var arguments: [String] {
        var machine = "\(self.spec.machine ?? "q35"),accel=\(self.accelerator.rawValue)"
        if self.uefi != nil { machine += ",pflash0=fw-code,pflash1=fw-vars" }
        var arguments = [
            self.executable,
            "-name", "clevervm-\(self.vm),process=clevervm-\(self.vm)",
            "-machine", machine,
            "-m", "\(self.spec.memoryMiB)",
            "-smp", "\(self.spec.cpus)",
            "-nodefaults", "-no-user-config",
            "-qmp", "unix:\(self.qmpSocket),server=on,wait=off",
        ]
        if let model = self.cpuModel { arguments += ["-cpu", model] }
        arguments += self.consoleArguments + self.displayArguments + self.firmwareArguments + self.bootArguments
            + self.diskArguments + self.nicArguments + self.guestAgentArguments
        // Entropy for the guest's early boot (key generation, TLS) without waiting on its own pool.
        arguments += ["-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0,id=rng0dev"]
        if let incoming = self.incoming {
            if case .tcp = incoming, let directory = self.migrationTLSDirectory {
                arguments += ["-object", MigrationTLS.serverObject(directory: escapeOption(directory)), "-incoming", "defer"]
            } else {
                arguments += ["-incoming", incoming.argument]
            }
        }
        return arguments
    }

    var consoleArguments: [String] {
        // Appended, not truncated: the console of a resumed VM continues the same log.
        let log = escapeOption(self.consoleLog)
        let chardev = if let socket = self.consoleSocket {
            "socket,id=console,path=\(escapeOption(socket)),server=on,wait=off,logfile=\(log),logappend=on"
        } else {
            "file,id=console,path=\(log),append=on"
        }
        return ["-chardev", chardev, "-serial", "chardev:console"]
    }

    /// A VM booted by firmware, or with a display, has a graphics card (an installed OS expects one, and
    /// `screendump` reads it); the kernel-directory test guest has none.
    var hasGraphics: Bool { self.spec.display != nil || self.boot == .firmware }

    var displayArguments: [String] {
        var arguments: [String] = []
        if let socket = self.vncSocket, self.spec.display == .vnc {
            arguments += ["-vnc", "unix:\(socket)"]
        } else {
            arguments += ["-display", "none"]
        }
        if self.hasGraphics { arguments += ["-device", "VGA,id=video0"] }
        return arguments
    }

    var firmwareArguments: [String] {
        guard let uefi = self.uefi else { return [] }
        return [
            "-blockdev", "driver=file,node-name=fw-code-file,filename=\(escapeOption(uefi.code)),read-only=on",
            "-blockdev", "driver=raw,node-name=fw-code,file=fw-code-file,read-only=on",
            "-blockdev", "driver=nbd,node-name=fw-vars-nbd,server.type=unix,server.path=\(escapeOption(uefi.varsSocket)),"
                + "export=\(escapeOption(uefi.varsExport)),reconnect-delay=\(self.reconnectDelay)",
            // The volume is larger than a pflash device may be: expose exactly the template's size.
            "-blockdev", "driver=raw,node-name=fw-vars,file=fw-vars-nbd,size=\(uefi.varsSize)",
        ]
    }

    var bootArguments: [String] {
        switch self.boot {
        case .kernel(let kernel, let initrd, let commandLine):
            var arguments = ["-kernel", kernel]
            if let initrd { arguments += ["-initrd", initrd] }
            return arguments + ["-append", commandLine]
        case .disk(let path):
            return [
                "-blockdev", "driver=file,node-name=bootfile,filename=\(escapeOption(path))",
                "-blockdev", "driver=raw,node-name=bootdisk,file=bootfile",
                "-device", "virtio-blk-pci,drive=bootdisk,bootindex=0",
            ]
        case .firmware:
            return []
        }
    }

    /// Firmware boot order: the `boot` device first, then the other volumes in their order, then the CD-ROM.
    var bootIndexes: [String: Int] {
        guard self.boot == .firmware else { return [:] }
        var devices = self.spec.volumes.map { "disk:\($0)" }
        if self.spec.cdrom != nil { devices.append("cdrom") }
        let first = self.spec.boot == VMSpec.cdromBoot ? "cdrom" : "disk:\(self.spec.boot)"
        if let index = devices.firstIndex(of: first) { devices.insert(devices.remove(at: index), at: 0) }
        return Dictionary(uniqueKeysWithValues: devices.enumerated().map { ($1, $0 + 1) })
    }

    var diskArguments: [String] {
        var arguments: [String] = []
        let bootIndexes = self.bootIndexes
        let scsi = self.spec.diskBus == .virtioSCSI
        if scsi, !self.spec.volumes.isEmpty { arguments += ["-device", "virtio-scsi-pci,id=scsi0"] }
        for (index, (volume, socket)) in zip(self.spec.volumes, self.volumeSockets).enumerated() {
            // Same device order, node names and ids on every host: a live migration needs identical devices.
            // discard=unmap passes the guest's TRIM to the volume, which then neither stores nor replicates it.
            arguments += [
                "-blockdev",
                "driver=nbd,node-name=vol\(index),server.type=unix,server.path=\(escapeOption(socket)),"
                    + "export=\(escapeOption(volume)),reconnect-delay=\(self.reconnectDelay),discard=unmap",
            ]
            var device = scsi
                ? "scsi-hd,bus=scsi0.0,channel=0,scsi-id=0,lun=\(index),drive=vol\(index),id=disk\(index)"
                : "virtio-blk-pci,drive=vol\(index),id=disk\(index)"
            device += ",serial=\(escapeOption(String(volume.prefix(20))))"
            if let bootIndex = bootIndexes["disk:\(volume)"] { device += ",bootindex=\(bootIndex)" }
            arguments += ["-device", device]
        }
        if let iso = self.spec.cdrom {
            var device = "ide-cd,drive=cdrom,id=cdrom0,bus=ide.1"
            if let bootIndex = bootIndexes["cdrom"] { device += ",bootindex=\(bootIndex)" }
            arguments += [
                "-blockdev", "driver=file,node-name=cdrom-file,filename=\(escapeOption(iso)),read-only=on",
                "-blockdev", "driver=raw,node-name=cdrom,file=cdrom-file,read-only=on",
                "-device", device,
            ]
        }
        return arguments
    }

    var nicArguments: [String] {
        self.nics.enumerated().flatMap { index, nic in
            [
                "-netdev", "tap,id=net\(index),ifname=\(escapeOption(nic.tap)),script=no,downscript=no",
                "-device", "virtio-net-pci,netdev=net\(index),mac=\(nic.mac),id=nic\(index)",
            ]
        }
    }

    var guestAgentArguments: [String] {
        guard let socket = self.guestAgentSocket else { return [] }
        return [
            "-chardev", "socket,id=qga0,path=\(escapeOption(socket)),server=on,wait=off",
            "-device", "virtio-serial-pci,id=vserial0",
            "-device", "virtserialport,bus=vserial0.0,chardev=qga0,name=org.qemu.guest_agent.0",
        ]
    }
}

/// QEMU's option syntax doubles a comma inside a value.
func escapeOption(_ value: String) -> String { value.replacingOccurrences(of: ",", with: ",,") }

func shellQuoted(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'" }

import Foundation
import CleverModel

/// Where QEMU runs the guest: TCG (emulation, always works) or KVM (only when a probe showed it runs guests).
public enum Accelerator: String, Hashable, Sendable, Codable { case tcg, kvm }

/// How the guest boots, read from `VMSpec.boot`: a directory with `vmlinuz` + `initrd` (+ optional `cmdline`), or a
/// raw disk image.
public enum BootSource: Hashable, Sendable {
    case kernel(kernel: String, initrd: String?, commandLine: String)
    case disk(String)
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
    public var nics: [NIC] = []
    /// Seconds QEMU's NBD client keeps requests while it reconnects (the volume moving to Primary elsewhere).
    public var reconnectDelay: Int = 5
    public var executable: String = "qemu-system-x86_64"

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

    public var arguments: [String] {
        var arguments = [
            self.executable,
            "-name", "clevervm-\(self.vm),process=clevervm-\(self.vm)",
            "-machine", "q35,accel=\(self.accelerator.rawValue)",
            "-m", "\(self.spec.memoryMiB)",
            "-smp", "\(self.spec.cpus)",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-qmp", "unix:\(self.qmpSocket),server=on,wait=off",
            // Appended, not truncated: the console of a resumed VM continues the same log.
            "-chardev", "file,id=console,path=\(escapeOption(self.consoleLog)),append=on",
            "-serial", "chardev:console",
        ]
        if self.accelerator == .kvm { arguments += ["-cpu", "host"] }
        switch self.boot {
        case .kernel(let kernel, let initrd, let commandLine):
            arguments += ["-kernel", kernel]
            if let initrd { arguments += ["-initrd", initrd] }
            arguments += ["-append", commandLine]
        case .disk(let path):
            arguments += [
                "-blockdev", "driver=file,node-name=bootfile,filename=\(escapeOption(path))",
                "-blockdev", "driver=raw,node-name=bootdisk,file=bootfile",
                "-device", "virtio-blk-pci,drive=bootdisk,bootindex=0",
            ]
        }
        for (index, (volume, socket)) in zip(self.spec.volumes, self.volumeSockets).enumerated() {
            // Same device order, node names and ids on every host: a live migration needs identical devices.
            arguments += [
                "-blockdev",
                "driver=nbd,node-name=vol\(index),server.type=unix,server.path=\(escapeOption(socket)),"
                    + "export=\(escapeOption(volume)),reconnect-delay=\(self.reconnectDelay)",
                "-device", "virtio-blk-pci,drive=vol\(index),id=disk\(index),serial=\(escapeOption(String(volume.prefix(20))))",
            ]
        }
        for (index, nic) in self.nics.enumerated() {
            arguments += [
                "-netdev", "tap,id=net\(index),ifname=\(escapeOption(nic.tap)),script=no,downscript=no",
                "-device", "virtio-net-pci,netdev=net\(index),mac=\(nic.mac),id=nic\(index)",
            ]
        }
        if let incoming = self.incoming { arguments += ["-incoming", incoming.argument] }
        return arguments
    }
}

/// QEMU's option syntax doubles a comma inside a value.
func escapeOption(_ value: String) -> String { value.replacingOccurrences(of: ",", with: ",,") }

func shellQuoted(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'" }

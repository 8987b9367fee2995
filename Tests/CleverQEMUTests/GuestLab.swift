import CleverCluster
import CleverExecutor
import CleverModel
import CleverSystem
import Foundation

@testable import CleverQEMU

#if canImport(Glibc)
import Glibc
#endif

/// A test bench for real QEMU (TCG): the test guest (scripts/build-test-guest.sh, cached in /tmp/cvq-guest), a disk
/// served by nbdkit on a unix socket, and two "hosts" (run directories) on this machine. `tearDown` kills every
/// process it started, by pid, and removes its directory.
final class GuestLab: @unchecked Sendable {
    // Safety: used by one test at a time, from its own task.
    static let guestDirectory = "/tmp/cvq-guest"
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Builds (or finds cached) the test guest.
    @discardableResult
    static func buildGuest() throws -> String {
        let build = Subprocess.run(["\(Self.repositoryRoot)/scripts/build-test-guest.sh", Self.guestDirectory], timeout: .seconds(300))
        guard build.succeeded else { throw LabError("build-test-guest.sh failed: \(build.output)") }
        return Self.guestDirectory
    }

    let directory: String
    let volume = "disk0"
    var nbdkit: pid_t = 0
    var stateNBDKit: pid_t = 0
    let stateDirectory: String

    /// With `network`, the guest gets 198.51.100.231/24 and an echo service on port 7777; its NIC's tap (`cvq-t<host>`)
    /// joins bridge `cvq-br0` inside namespace `cvq-a`, where the test's client has 198.51.100.232/24.
    let network: Bool
    /// Booted by firmware from volume `os0` (a disk image with a partition table and a bootloader,
    /// scripts/build-boot-disk.sh), the writer on the second disk (`disk0`, /dev/vdb); UEFI keeps its variables
    /// on volume `nvram0`.
    let firmware: VMSpec.Firmware?
    var firmwareNBDKits: [pid_t] = []

    /// The boot disk image for `firmware`, built (or found cached) beside the test guest.
    static func buildBootDisk(_ firmware: VMSpec.Firmware, kernelArguments: String) throws -> String {
        let tag = String(kernelArguments.map { $0.isLetter || $0.isNumber ? $0 : "_" })
        let image = "\(Self.guestDirectory)/boot-\(firmware.rawValue)-\(tag).img"
        let build = Subprocess.run(["\(Self.repositoryRoot)/scripts/build-boot-disk.sh", Self.guestDirectory, firmware.rawValue, image, kernelArguments],
                                   timeout: .seconds(300))
        guard build.succeeded else { throw LabError("build-boot-disk.sh failed: \(build.output)") }
        return image
    }

    /// An installed OS's disk (the Debian guest's, scripts/build-debian-guest.sh) copied into volume `os0` in place
    /// of the busybox guest's boot disk.
    let osDisk: String?
    let guestAgent: Bool

    init(memoryMiB: Int = 256, writerIntervalMs: Int = 20, withStateVolume: Bool = false, network: Bool = false,
         firmware: VMSpec.Firmware? = nil, shell: Bool = false, dirtyMiBPerSecond: Int? = nil, quiet: Bool = true,
         osDisk: String? = nil, guestAgent: Bool = false) throws {
        self.network = network
        self.firmware = firmware
        self.osDisk = osDisk
        self.guestAgent = guestAgent
        try Self.buildGuest()
        self.directory = "/tmp/cvq-\(UUID().uuidString.prefix(8))"
        self.stateDirectory = "\(self.directory)/state"
        self.memoryMiB = memoryMiB
        for sub in ["boot", "a", "b", "state"] {
            try FileManager.default.createDirectory(atPath: "\(self.directory)/\(sub)", withIntermediateDirectories: true)
        }
        try FileManager.default.createSymbolicLink(atPath: "\(self.directory)/boot/vmlinuz", withDestinationPath: "\(Self.guestDirectory)/vmlinuz")
        try FileManager.default.createSymbolicLink(atPath: "\(self.directory)/boot/initrd", withDestinationPath: "\(Self.guestDirectory)/initrd")
        if network {
            // A run that crashed leaves its namespace behind; an empty one (no process in it) is ours to remove.
            let pids = Subprocess.run(["ip", "netns", "pids", Self.namespace])
            if pids.succeeded, pids.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                _ = Subprocess.run(["ip", "netns", "delete", Self.namespace])
            }
            for command in [
                ["ip", "netns", "add", Self.namespace],
                ["ip", "-n", Self.namespace, "link", "add", "cvq-br0", "type", "bridge"],
                ["ip", "-n", Self.namespace, "addr", "add", "198.51.100.232/24", "dev", "cvq-br0"],
                ["ip", "-n", Self.namespace, "link", "set", "cvq-br0", "up"],
                ["ip", "-n", Self.namespace, "link", "set", "lo", "up"],
            ] {
                let result = Subprocess.run(command)
                guard result.succeeded else { throw LabError("\(command.joined(separator: " ")): \(result.output)") }
            }
        }
        let dirty = dirtyMiBPerSecond.map { " guest.dirty=\($0)" } ?? ""
        try "\(quiet ? "quiet " : "")writer.interval=\(writerIntervalMs)\(network ? " guest.ip=198.51.100.231/24" : "")\(dirty)".write(toFile: "\(self.directory)/boot/cmdline", atomically: true, encoding: .utf8)
        self.nbdkit = try self.serve("disk0", size: "64M")
        if withStateVolume { self.stateNBDKit = try self.serve("state0", size: "\(memoryMiB + 256)M") }
        if let firmware {
            let arguments = "\(quiet ? "quiet " : "")writer.interval=\(writerIntervalMs) writer.disk=/dev/vdb\(shell ? " guest.shell=1" : "")"
            let image = try osDisk ?? Self.buildBootDisk(firmware, kernelArguments: arguments)
            let copy = Subprocess.run(["cp", "--sparse=always", image, "\(self.directory)/os0.img"], timeout: .seconds(300))
            guard copy.succeeded else { throw LabError("cp \(image): \(copy.output)") }
            let size = (try FileManager.default.attributesOfItem(atPath: image)[.size] as? Int) ?? 64 << 20
            self.firmwareNBDKits.append(try self.serve("os0", size: "\(size)"))
            if firmware == .uefi { self.firmwareNBDKits.append(try self.serve("nvram0", size: "1M")) }
        }
    }

    /// A sparse file served by nbdkit on `<directory>/<name>.sock`.
    func serve(_ name: String, size: String) throws -> pid_t {
        let image = "\(self.directory)/\(name).img"
        let socket = "\(self.directory)/\(name).sock"
        guard Subprocess.run(["truncate", "-s", size, image]).succeeded else { throw LabError("truncate \(image) failed") }
        let pid = try Subprocess.spawnDaemon(["nbdkit", "-f", "-U", socket, "file", image], log: "\(self.directory)/\(name).nbdkit.log")
        let deadline = ContinuousClock.now + .seconds(5)
        while !FileManager.default.fileExists(atPath: socket), ContinuousClock.now < deadline { usleep(10_000) }
        guard FileManager.default.fileExists(atPath: socket) else { throw LabError("nbdkit did not listen on \(socket): \(Subprocess.tail("\(self.directory)/\(name).nbdkit.log"))") }
        return pid
    }

    let memoryMiB: Int
    var socket: String { "\(self.directory)/disk0.sock" }

    var resource: ResourceConfig {
        var spec = VMSpec(cpus: 1, memoryMiB: self.memoryMiB, volumes: [self.volume],
                          stateVolume: self.stateNBDKit > 0 ? "state0" : nil,
                          boot: "\(self.directory)/boot", stopMode: .hibernate, migration: .live)
        if let firmware = self.firmware {
            spec.volumes = ["os0", self.volume]
            spec.boot = "os0"
            spec.firmware = firmware
            if firmware == .uefi { spec.nvramVolume = "nvram0" }
        }
        if self.guestAgent { spec.guestAgent = true }
        return ResourceConfig(id: "vm1", kind: .vm(spec), operationTimeout: Seconds(60))
    }

    func resource(stopMode: VMSpec.StopMode) -> ResourceConfig {
        var resource = self.resource
        if case .vm(var spec) = resource.kind {
            spec.stopMode = stopMode
            resource.kind = .vm(spec)
        }
        return resource
    }

    func context(_ host: String, resource: ResourceConfig? = nil, migrationTarget: String? = nil, timeout: Double = 60) -> ActionContext {
        ActionContext(resource: resource ?? self.resource, node: host, timeout: Seconds(timeout), migrationTarget: migrationTarget,
                      runDirectory: "\(self.directory)/\(host)")
    }

    static let namespace = "cvq-a"

    var settings: VMAgent.Settings { self.settings(on: "a") }

    func settings(on host: String) -> VMAgent.Settings {
        let directory = self.directory
        var settings = VMAgent.Settings(volumeSocket: { "\(directory)/\($0).sock" }, stateDirectory: self.stateDirectory,
                                        migrationAddress: "127.0.0.1")
        // The cluster key both hosts derive the live migration's TLS key from (Corosync's authkey on a real host).
        let key = "\(directory)/cluster.key"
        if !FileManager.default.fileExists(atPath: key) {
            _ = FileManager.default.createFile(atPath: key, contents: Data((0..<32).map { _ in UInt8.random(in: 0...255) }),
                                               attributes: [.posixPermissions: 0o600])
        }
        settings.migrationKeyFile = key
        if self.network {
            settings.network = VMAgent.NetworkAttachment(bridge: "cvq-br0", namespace: Self.namespace, tapName: { _ in "cvq-t\(host)" })
        }
        return settings
    }

    /// An agent for `host` whose migrate_to reaches `peer`'s agent directly.
    func agent(on host: String = "a", prepareTarget peer: String? = nil) -> VMAgent {
        guard let peer else { return VMAgent(settings: self.settings(on: host)) }
        let target = VMAgent(settings: self.settings(on: peer))
        let lab = self
        return VMAgent(settings: self.settings(on: host)) { context in
            await target.perform(.migrateFrom, lab.context(peer, resource: context.resource))
        }
    }

    func paths(_ host: String) -> VMAgent.Paths {
        VMAgent.Paths(vm: "vm1", runDirectory: "\(self.directory)/\(host)", stateDirectory: self.stateDirectory)
    }

    func console(_ host: String) -> [String] {
        let text = (try? String(decoding: Data(contentsOf: URL(fileURLWithPath: self.paths(host).consoleLog)), as: UTF8.self)) ?? ""
        return text.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    func acks(_ host: String) -> [Int] {
        self.console(host).compactMap { $0.hasPrefix("ACK ") ? Int($0.dropFirst(4)) : nil }
    }

    func resumes(_ host: String) -> [Int] {
        self.console(host).compactMap { line in
            guard let range = line.range(of: "RESUME ") else { return nil }
            return Int(line[range.upperBound...])
        }
    }

    /// Waits until `host`'s console has an ACK above `above`; returns the highest ACK seen.
    @discardableResult
    func waitForAck(_ host: String, above: Int = 0, timeout: Duration = .seconds(30)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let last = self.acks(host).max(), last > above { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LabError("no ACK above \(above) on \(host) in \(timeout); console: \(self.console(host).suffix(10))")
    }

    func tearDown() {
        for host in ["a", "b"] {
            if let pid = VMAgent(settings: self.settings).runningQEMU(self.paths(host)) {
                kill(pid, SIGKILL)
                _ = Subprocess.isAlive(pid)
            }
        }
        for pid in [self.nbdkit, self.stateNBDKit] + self.firmwareNBDKits where pid > 0 {
            // nbdkit catches SIGTERM but does not always exit on it here.
            kill(pid, SIGKILL)
            usleep(20_000)
            _ = Subprocess.isAlive(pid)
        }
        if self.network { _ = Subprocess.run(["ip", "netns", "delete", Self.namespace]) }
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

struct LabError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

#if canImport(Glibc)
import Glibc
#endif
import CleverModel
import CleverSystem
import CleverVolume
import Foundation

@testable import CleverQEMU

/// The test guest (scripts/build-test-guest.sh: Debian's cloud kernel, busybox-static, scripts/test-guest/init and
/// diskwriter.c) under QEMU with TCG, its disk a volume's NBD socket, launched with the command line the VM agent
/// uses (`QEMUCommandLine`). The writer appends numbered records (`GuestRecord`) with O_DIRECT + fdatasync and
/// prints `ACK n` on the serial console after each; the console goes to a file.
final class TestGuest: @unchecked Sendable {
    // Safety: used by one test at a time, from its own thread.

    /// Shared with CleverQEMUTests' GuestLab: the script rebuilds it only when the guest's sources change.
    static let directory = "/tmp/cvq-guest"
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Builds the guest (or finds it built) and returns its directory.
    @discardableResult
    static func build() throws -> String {
        let build = Subprocess.run(["\(Self.repositoryRoot)/scripts/build-test-guest.sh", Self.directory], timeout: .seconds(300))
        guard build.succeeded else { throw VolumeError("build-test-guest.sh failed: \(build.output)") }
        return Self.directory
    }

    let pid: pid_t
    let consoleLog: String
    /// Stamped into every record this boot writes (`writer.run=`).
    let run: UInt32
    private var reaped = false

    /// Boots the guest with `command` as the prefix that places it (e.g. `ip netns exec NS`), its disk the
    /// export `export` on `socket`. Files go to `directory/guest-RUN.*`.
    /// With `sync` false the writer does not fdatasync: `ACK n` then only means the O_DIRECT write completed.
    init(run: UInt32, socket: String, export: String, directory: String, prefix: [String] = [], memoryMiB: Int = 128,
        writerIntervalMs: Int = 0, sync: Bool = true) throws
    {
        self.run = run
        // A boot directory as the agent reads it: kernel, initrd and extra command line.
        let boot = "\(directory)/boot-\(run)"
        try FileManager.default.createDirectory(atPath: boot, withIntermediateDirectories: true)
        for file in ["vmlinuz", "initrd"] {
            try FileManager.default.createSymbolicLink(atPath: "\(boot)/\(file)", withDestinationPath: "\(Self.directory)/\(file)")
        }
        try "quiet loglevel=1 writer.interval=\(writerIntervalMs) writer.run=\(run) writer.sync=\(sync ? 1 : 0)"
            .write(toFile: "\(boot)/cmdline", atomically: true, encoding: .utf8)
        guard case .success(let source) = resolveBoot(boot) else { throw VolumeError("boot directory \(boot) unusable") }
        self.consoleLog = "\(directory)/guest-\(run).console"
        var qemu = QEMUCommandLine(
            vm: "guest\(run)", spec: VMSpec(cpus: 1, memoryMiB: memoryMiB, volumes: [export], boot: boot), boot: source,
            accelerator: .tcg, volumeSockets: [socket], qmpSocket: "\(directory)/guest-\(run).qmp", consoleLog: self.consoleLog)
        // The agent's default: QEMU holds requests this long while the export is away. A dead volume process here
        // never comes back as Primary on this socket within a round, so this only delays the guest's EIO.
        qemu.reconnectDelay = 5
        self.pid = try Subprocess.spawnDaemon(prefix + qemu.arguments, log: "\(directory)/guest-\(run).qemu.log")
    }

    var isRunning: Bool { !self.reaped && Subprocess.isAlive(self.pid) }

    /// SIGKILL and reap. Safe to call twice.
    func kill() {
        guard !self.reaped else { return }
        Glibc.kill(self.pid, SIGKILL)
        var status: Int32 = 0
        waitpid(self.pid, &status, 0)
        self.reaped = true
    }

    /// The console's complete lines (a line still being written when QEMU died is not one).
    var console: [String] {
        guard let data = FileManager.default.contents(atPath: self.consoleLog) else { return [] }
        // Split bytes, not Characters: the serial console ends lines with "\r\n", one Character in Swift.
        var lines = Array(data).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        lines.removeLast()  // after the last "\n": empty, or a partial line
        return lines.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
    }

    /// Sequence numbers the writer printed as `ACK n`, in console order.
    var acks: [UInt64] { Self.numbers(after: "ACK ", in: self.console) }
    /// Where the writer found the disk's last record when it started (`RESUME n`).
    var resume: UInt64? { Self.numbers(after: "RESUME ", in: self.console).first }

    static func numbers(after word: String, in lines: [String]) -> [UInt64] {
        lines.compactMap { line in
            guard line.hasPrefix(word) else { return nil }
            let digits = line.dropFirst(word.count)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
            return UInt64(digits)
        }
    }

    /// Waits until the writer acknowledged a record; returns the highest ACK. Throws with the console's tail on
    /// timeout or if QEMU ended.
    @discardableResult
    func waitForAck(timeout: TimeInterval = 60) throws -> UInt64 {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let last = self.acks.last { return last }
            guard self.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw VolumeError("guest run \(self.run): no ACK (QEMU \(self.isRunning ? "running" : "gone")); console: "
            + "\(self.console.suffix(10)); qemu log: \(Subprocess.tail(self.consoleLog.replacingOccurrences(of: ".console", with: ".qemu.log"), lines: 5))")
    }
}

/// The guest writer's record (scripts/test-guest/diskwriter.c): record n (1-based) in block n-1, little-endian:
/// u32 magic "CLVR", u32 run, u64 n, u64 checksum = fnv1a-64(bytes 24..<4096) ^ n ^ (run << 32), then byte i =
/// (n * 31 + i + run * 131) mod 256.
enum GuestRecord {
    static let size = 4096
    static let magic: UInt32 = 0x434c_5652

    static func make(sequence: UInt64, run: UInt32) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: Self.size)
        block.withUnsafeMutableBufferPointer { buffer in
            let base = UInt64(truncatingIfNeeded: sequence &* 31) &+ UInt64(run) &* 131
            for index in 24..<Self.size { buffer[index] = UInt8(truncatingIfNeeded: base &+ UInt64(index)) }
            var hash: UInt64 = 1_469_598_103_934_665_603
            for index in 24..<Self.size { hash = (hash ^ UInt64(buffer[index])) &* 1_099_511_628_211 }
            Self.store(Self.magic, at: 0, in: buffer)
            Self.store(run, at: 4, in: buffer)
            Self.store(sequence, at: 8, in: buffer)
            Self.store(hash ^ sequence ^ (UInt64(run) << 32), at: 16, in: buffer)
        }
        return block
    }

    /// The header of a block: nil when the magic is wrong.
    static func header(_ block: ArraySlice<UInt8>) -> (run: UInt32, sequence: UInt64)? {
        let start = block.startIndex
        guard block.count >= 24, Self.load(UInt32.self, block, start) == Self.magic else { return nil }
        return (Self.load(UInt32.self, block, start + 4), Self.load(UInt64.self, block, start + 8))
    }

    /// What is wrong with `block` as record `sequence` of `run`; nil when it is exactly that record.
    static func problem(_ block: ArraySlice<UInt8>, sequence: UInt64, run: UInt32, full: Bool) -> String? {
        guard let header = Self.header(block) else { return "no record (bad magic)" }
        guard header.sequence == sequence, header.run == run else {
            return "record \(header.sequence) of run \(header.run) instead"
        }
        if full, !Self.make(sequence: sequence, run: run).elementsEqual(block) { return "header right, contents differ" }
        return nil
    }

    private static func store<T: FixedWidthInteger>(_ value: T, at offset: Int, in buffer: UnsafeMutableBufferPointer<UInt8>) {
        withUnsafeBytes(of: value.littleEndian) { bytes in
            for (index, byte) in bytes.enumerated() { buffer[offset + index] = byte }
        }
    }

    private static func load<T: FixedWidthInteger>(_: T.Type, _ block: ArraySlice<UInt8>, _ offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(block[offset + index]) << (8 * index) }
        return value
    }
}

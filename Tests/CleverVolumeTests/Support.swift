#if canImport(Glibc)
import Glibc
#endif
import CleverBytes
import CleverNBD
import CleverReplication
import CleverVolume
import Foundation
import Testing

/// The built `clevervm-volume`, next to the test bundle.
let volumeBinary: String = {
    let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var candidates = [bundleDirectory.appendingPathComponent("clevervm-volume").path]
    candidates.append(FileManager.default.currentDirectoryPath + "/.build/debug/clevervm-volume")
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
}()

func which(_ tool: String) -> Bool {
    ["/usr/bin/", "/usr/sbin/", "/bin/", "/usr/local/bin/"].contains {
        FileManager.default.isExecutableFile(atPath: $0 + tool)
    }
}

/// Runs a command, returning (status, stdout+stderr).
@discardableResult
func run(_ arguments: [String], timeout: TimeInterval = 60) -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Unique loopback ports per test, so suites can run side by side.
enum Ports {
    nonisolated(unsafe) static var next: Int = 20000 + Int(getpid() % 2000) * 8
    static let lock = NSLock()
    static func pair() -> (Int, Int) {
        lock.lock()
        defer { lock.unlock() }
        let base = next
        next += 2
        return (base, base + 1)
    }
}

/// Two (or one) volume processes on loopback, in a temporary directory that is removed afterwards. With a
/// `network`, each node's process runs in its lab host's namespace and replicates over the lab bridge.
final class VolumeLab: @unchecked Sendable {
    let directory: String
    let size: UInt64
    var processes: [String: Process] = [:]
    var ports: [String: Int] = [:]
    let nodes: [String]
    let network: LabNetwork?

    init(_ name: String, size: UInt64 = 32 << 20, nodes: [String] = ["alpha", "beta"], network: LabNetwork? = nil,
        directoryPrefix: String = "cvv-test") throws
    {
        var template = Array("/tmp/\(directoryPrefix)-\(name)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw VolumeError("mkdtemp failed") }
        self.directory = String(cString: made)
        self.size = size
        self.nodes = nodes
        self.network = network
        if network != nil {
            // Every host has its own network stack: the same port everywhere.
            self.ports = Dictionary(uniqueKeysWithValues: nodes.map { ($0, 7789) })
        } else if nodes.count == 2 {
            let (a, b) = Ports.pair()
            self.ports = [nodes[0]: a, nodes[1]: b]
        }
        try self.writeSecret("shared-secret-for-tests-0123456789", name: "secret")
    }

    /// The node's replication address: its lab host's, or loopback.
    func address(_ node: String) -> String { self.network?.host(node).address ?? "127.0.0.1" }

    func path(_ file: String) -> String { "\(self.directory)/\(file)" }
    func nbdURI(_ node: String) -> String { "nbd+unix:///vol0?socket=\(self.path("\(node).nbd"))" }

    func writeSecret(_ secret: String, name: String) throws {
        try secret.write(toFile: self.path(name), atomically: true, encoding: .utf8)
        chmod(self.path(name), 0o600)
    }

    func configure(
        _ node: String, policies: Replication.SplitBrainPolicies = .init(), rateMiB: Double = 200,
        minRateMiB: Double? = nil, secret: String = "secret", protocolMode: Replication.ProtocolMode = .C
    ) throws {
        let peerName = self.nodes.first { $0 != node }
        var peer: VolumeConfig.Peer?
        var listen: String?
        if let peerName, let mine = self.ports[node], let theirs = self.ports[peerName] {
            peer = VolumeConfig.Peer(name: peerName, address: "\(self.address(peerName)):\(theirs)")
            listen = "\(self.address(node)):\(mine)"
        }
        let config = VolumeConfig(
            name: "vol0", node: node, size: self.size, backing: self.path("\(node).img"),
            metaDir: self.path("\(node).meta"), nbdSocket: self.path("\(node).nbd"),
            controlSocket: self.path("\(node).ctl"), protocolMode: protocolMode, listen: listen, peer: peer,
            policies: policies, secretFile: peer == nil ? nil : self.path(secret), resyncRateMiB: rateMiB,
            activityLogExtents: 64, cMaxRateMiB: rateMiB, cMinRateMiB: minRateMiB)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted]
        try encoder.encode(config).write(to: URL(fileURLWithPath: self.path("\(node).json")))
    }

    func start(_ node: String) throws {
        let process = Process()
        let arguments = ["serve", "--config", self.path("\(node).json")]
        if let network = self.network {
            // `env` and `ip netns exec` exec in place: the process is the volume process.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = network.inside(node, [volumeBinary] + arguments)
        } else {
            process.executableURL = URL(fileURLWithPath: volumeBinary)
            process.arguments = arguments
        }
        let logPath = self.path("\(node).log")
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        self.processes[node] = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? self.control(node, .init(command: .status))) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw VolumeError("\(node) did not start; log:\n\(self.log(node))")
    }

    func kill(_ node: String, signal: Int32 = SIGKILL) {
        guard let process = self.processes[node] else { return }
        Glibc.kill(process.processIdentifier, signal)
        process.waitUntilExit()
        self.processes[node] = nil
    }

    func log(_ node: String) -> String {
        (try? String(contentsOfFile: self.path("\(node).log"), encoding: .utf8)) ?? "(no log)"
    }

    @discardableResult
    func control(_ node: String, _ request: VolumeControlRequest) throws -> VolumeControlReply {
        try ControlServer.send(request, to: self.path("\(node).ctl"))
    }

    func status(_ node: String) throws -> VolumeStatus {
        guard let status = try self.control(node, .init(command: .status)).status else {
            throw VolumeError("\(node) sent no status")
        }
        return status
    }

    /// Polls until `predicate` holds for the node's status.
    @discardableResult
    func wait(_ node: String, timeout: TimeInterval = 20, _ what: String, _ predicate: (VolumeStatus) -> Bool)
        throws -> VolumeStatus
    {
        let deadline = Date().addingTimeInterval(timeout)
        var last: VolumeStatus?
        while Date() < deadline {
            if let status = try? self.status(node) {
                last = status
                if predicate(status) { return status }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw VolumeError("\(node): timed out waiting for \(what); last status: \(last?.line ?? "none")\n"
            + "log \(node):\n\(self.log(node))")
    }

    /// Both nodes up, connected, alpha Primary, both UpToDate.
    func startPair(
        policies: Replication.SplitBrainPolicies = .init(), rateMiB: Double = 200, minRateMiB: Double? = nil
    ) throws {
        for node in self.nodes { try self.configure(node, policies: policies, rateMiB: rateMiB, minRateMiB: minRateMiB) }
        for node in self.nodes { try self.start(node) }
        try self.wait(self.nodes[0], "connected") { $0.connection == "Connected" }
        try self.control(self.nodes[0], .init(command: .promote, force: true))
        for node in self.nodes {
            try self.wait(node, "UpToDate/UpToDate after the initial sync") {
                $0.connection == "Connected" && $0.disk == "UpToDate" && $0.peerDisk == "UpToDate"
            }
        }
    }

    func teardown() {
        for node in Array(self.processes.keys) { self.kill(node, signal: SIGKILL) }
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    func filesEqual(_ a: String, _ b: String) -> Bool {
        FileManager.default.contentsEqual(atPath: self.path(a), andPath: self.path(b))
    }

    /// Overwrites 4 KiB blocks of a node's backing file directly (to plant differences).
    func plant(_ node: String, blocks: [UInt64], byte: UInt8) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: self.path("\(node).img")))
        defer { try? handle.close() }
        for block in blocks {
            try handle.seek(toOffset: block * 4096)
            handle.write(Data(repeating: byte, count: 4096))
        }
        try handle.synchronize()
    }
}

/// A minimal synchronous NBD client (fixed newstyle, OPT_GO, simple replies) for the tests and the record
/// writer.
final class NBDClient: @unchecked Sendable {
    let fd: Int32
    var size: UInt64 = 0
    var flags = NBD.TransmissionFlags()
    private var cookie: UInt64 = 1

    init(socket path: String, export: String = "vol0") throws {
        self.fd = try Sockets.connectUnix(path: path)
        do {
            try self.negotiate(export: export)
        } catch {
            close(self.fd)
            throw error
        }
    }

    deinit { close(self.fd) }

    private func negotiate(export: String) throws {
        guard let greeting = Sockets.readFully(self.fd, count: 18) else { throw VolumeError("no NBD greeting") }
        var reader = ByteReader(greeting)
        guard reader.readUInt64() == NBD.initMagic, reader.readUInt64() == NBD.optionMagic else {
            throw VolumeError("bad NBD greeting")
        }
        var writer = ByteWriter()
        writer.write(UInt32(3))
        writer.write(NBD.optionMagic)
        writer.write(UInt32(7))
        writer.write(UInt32(4 + export.utf8.count + 2))
        writer.write(UInt32(export.utf8.count))
        writer.write(bytes: export.utf8)
        writer.write(UInt16(0))
        Sockets.writeFully(self.fd, writer.bytes)
        while true {
            guard let header = Sockets.readFully(self.fd, count: 20) else { throw VolumeError("handshake closed") }
            var reply = ByteReader(header)
            _ = reply.readUInt64()
            _ = reply.readUInt32()
            let type = reply.readUInt32()!
            let length = Int(reply.readUInt32()!)
            guard let data = Sockets.readFully(self.fd, count: length) else { throw VolumeError("handshake closed") }
            if type == 1 { return }
            if type == 3 {
                var info = ByteReader(data)
                if info.readUInt16() == 0 {
                    self.size = info.readUInt64()!
                    self.flags = NBD.TransmissionFlags(rawValue: info.readUInt16()!)
                }
                continue
            }
            throw VolumeError("NBD_OPT_GO refused with reply type 0x\(String(type, radix: 16))")
        }
    }

    private func roundTrip(_ command: NBD.Command, flags: NBD.CommandFlags = [], offset: UInt64, length: UInt32,
        payload: [UInt8] = []) throws -> [UInt8]
    {
        let cookie = self.cookie
        self.cookie += 1
        let header = NBD.Request(command: command, flags: flags, cookie: cookie, offset: offset, length: length)
        guard Sockets.writeFully(self.fd, header.encodedHeader + payload) else { throw VolumeError("NBD send failed") }
        guard let replyBytes = Sockets.readFully(self.fd, count: 16), let reply = NBD.decodeSimpleReply(replyBytes)
        else { throw VolumeError("NBD connection closed") }
        guard reply.cookie == cookie else { throw VolumeError("reply for cookie \(reply.cookie), expected \(cookie)") }
        guard reply.error == 0 else { throw VolumeError("NBD \(command) failed with error \(reply.error)") }
        if command == .read {
            guard let data = Sockets.readFully(self.fd, count: Int(length)) else { throw VolumeError("short read") }
            return data
        }
        return []
    }

    func write(offset: UInt64, _ data: [UInt8], fua: Bool = false) throws {
        _ = try self.roundTrip(.write, flags: fua ? .fua : [], offset: offset, length: UInt32(data.count), payload: data)
    }

    func read(offset: UInt64, length: UInt32) throws -> [UInt8] {
        try self.roundTrip(.read, offset: offset, length: length)
    }

    func flush() throws { _ = try self.roundTrip(.flush, offset: 0, length: 0) }

    func disconnect() {
        let header = NBD.Request(command: .disconnect, cookie: 0, offset: 0, length: 0)
        Sockets.writeFully(self.fd, header.encodedHeader)
    }
}

/// Numbered records, one per 4 KiB block: "CVRECORD", u64 sequence, u64 run id, crc32c of the first 24
/// bytes, then a fill pattern. A guest program can write the same format with O_DIRECT; the checker only reads
/// blocks back.
enum Record {
    static func make(sequence: UInt64, run: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: 4096)
        writer.write(bytes: "CVRECORD".utf8)
        writer.write(sequence)
        writer.write(run)
        writer.write(CRC32C.checksum(writer.bytes))
        while writer.bytes.count < 4096 { writer.write(UInt8(truncatingIfNeeded: sequence &+ UInt64(writer.bytes.count))) }
        return writer.bytes
    }

    static func check(_ block: [UInt8], sequence: UInt64, run: UInt64) -> Bool {
        block == Self.make(sequence: sequence, run: run)
    }
}

import CleverLab
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A corosync-probe running inside a lab host; collects its JSON lines.
final class ProbeProcess: @unchecked Sendable {
    // Safety: `lines` is guarded by `lock`; the rest is set in init.
    struct Line: Decodable {
        struct Member: Decodable, Equatable { var nodeID: UInt32; var pid: UInt32 }
        struct Change: Decodable { var member: Member; var reason: String }
        var event: String
        var node: UInt32?
        var pid: UInt32?
        var text: String?
        var members: [Member]?
        var joined: [Change]?
        var left: [Change]?
        var quorate: Bool?
        var awaitingVerdict: Bool?
        var nodes: [UInt32]?
        var expectedVotes: UInt32?
        var message: String?
        var code: String?
        var time: Double
    }

    let host: String
    private let process = Process()
    private let lock = NSLock()
    private var lines: [Line] = []
    private var raw: [String] = []
    private let input = Pipe()

    /// The probe binary next to the test bundle (SwiftPM builds it for this test target).
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["CLEVERVM_PROBE"] { return path }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("corosync-probe").path
    }

    init(lab: Lab, host: String, arguments: [String]) throws {
        self.host = host
        let argv = try lab.commandLine(host: host, [Self.binary] + arguments)
        self.process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        self.process.arguments = argv
        let output = Pipe()
        self.process.standardOutput = output
        self.process.standardError = output
        self.process.standardInput = self.input
        try self.process.run()
        let handle = output.fileHandleForReading
        Thread {
            var buffer = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: 0x0A) {
                    let lineData = buffer[buffer.startIndex..<newline]
                    buffer = Data(buffer[buffer.index(after: newline)...])
                    self.append(lineData)
                }
            }
        }.start()
    }

    private func append(_ data: Data) {
        let text = String(decoding: data, as: UTF8.self)
        let line = try? JSONDecoder().decode(Line.self, from: data)
        self.lock.lock()
        self.raw.append(text)
        if let line { self.lines.append(line) }
        self.lock.unlock()
    }

    var snapshot: [Line] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.lines
    }

    var transcript: String {
        self.lock.lock()
        defer { self.lock.unlock() }
        return "--- probe on \(self.host) ---\n" + self.raw.joined(separator: "\n")
    }

    /// Sends a line as a CPG message.
    func send(_ text: String) { self.input.fileHandleForWriting.write(Data((text + "\n").utf8)) }

    /// Waits until a line satisfies `predicate` (looking at lines after `after` only); returns it.
    @discardableResult
    func wait(for what: String, timeout: Duration = .seconds(15), after: Double = 0, _ predicate: (Line) -> Bool) throws -> Line {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if let line = self.snapshot.first(where: { $0.time >= after && predicate($0) }) { return line }
            usleep(20_000)
        }
        throw ProbeTimeout(description: "probe on \(self.host): no \(what) within \(timeout)\n\(self.transcript)")
    }

    /// The latest quorum verdict reported (VoteQuorum.Status.isQuorate: false while a verdict is pending).
    var quorate: Bool? {
        self.snapshot.last(where: { $0.event == "quorum" }).map { $0.quorate == true && $0.awaitingVerdict != true }
    }

    func stop() {
        if self.process.isRunning {
            self.process.terminate()
            self.process.waitUntilExit()
        }
    }

    deinit { self.stop() }
}

struct ProbeTimeout: Error, CustomStringConvertible { var description: String }

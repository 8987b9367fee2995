import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Watches a lab from outside the cluster, every 50 ms, for the one thing that must never happen: one VM
/// running on two hosts at once. Two kinds of evidence, neither taken from CleverVM itself:
/// - processes: every `qemu-system` whose command line names the VM, mapped to its lab host by network
///   namespace. At most one may run without `-incoming`; a second one is allowed only while it waits for (or
///   has just received) a live migration or a resume, i.e. with `-incoming`.
/// - the guest's console: its writer prints `ACK n` after each durable record. Two hosts' consoles growing
///   with new acknowledgements at overlapping times would mean two guests writing.
final class SingleRunWatch: @unchecked Sendable {
    struct Violation: CustomStringConvertible {
        var at: Double
        var what: String
        var description: String { String(format: "t=%.2f s: %@", self.at, self.what) }
    }

    /// One host's span of console activity: the first and last time new ACK lines appeared, with no gap of
    /// more than `gap` seconds in between.
    struct Span: Equatable {
        var host: String
        var first: Double
        var last: Double
    }

    let vm: String
    let hosts: [String]
    let namespaces: [String: String]
    let consoleLogs: [String: String]
    let started = Date()
    private let lock = NSLock()
    private var running = true
    private var thread: Thread?
    private(set) var violations: [Violation] = []
    private(set) var samples = 0
    /// Longest continuous time two QEMUs of the VM existed (one of them `-incoming`), seconds.
    private(set) var longestPair = 0.0
    private var pairSince: Double?
    private var ackCounts: [String: Int] = [:]
    private var activity: [(time: Double, host: String)] = []

    init(lab: AgentLab, vm: String, hosts: [String]) {
        self.vm = vm
        self.hosts = hosts
        self.namespaces = Dictionary(uniqueKeysWithValues: hosts.map { ($0, "\(lab.name)-\($0)") })
        self.consoleLogs = Dictionary(uniqueKeysWithValues: hosts.map {
            ($0, "\(lab.hostsDirectory)/\($0)/run/clevervm/\(vm).console.log")
        })
    }

    func start() {
        let thread = Thread { [self] in
            while self.isRunning {
                self.sample()
                usleep(50_000)
            }
        }
        self.thread = thread
        thread.start()
    }

    /// Stops sampling; returns the console activity spans seen.
    @discardableResult
    func stop() -> [Span] {
        self.lock.lock()
        self.running = false
        self.lock.unlock()
        usleep(120_000)
        return self.spans()
    }

    private var isRunning: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.running
    }

    var now: Double { Date().timeIntervalSince(self.started) }

    // MARK: Sampling

    func sample() {
        let inodes = Dictionary(uniqueKeysWithValues: self.namespaces.compactMap { host, namespace -> (String, String)? in
            var info = stat()
            guard stat("/run/netns/\(namespace)", &info) == 0 else { return nil }
            return ("net:[\(info.st_ino)]", host)
        })
        var qemus: [(host: String, incoming: Bool)] = []
        for pid in Self.pids() {
            guard let arguments = Self.commandLine(pid), arguments.first?.contains("qemu-system") == true,
                arguments.contains("clevervm-\(self.vm),process=clevervm-\(self.vm)"),
                let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net"),
                let host = inodes[link]
            else { continue }
            qemus.append((host, arguments.contains("-incoming")))
        }
        let time = self.now
        var newActivity: [String] = []
        for host in self.hosts {
            let count = Self.ackCount(self.consoleLogs[host]!)
            // A power-on empties the host's /run: a shorter log is a new one.
            if count > (self.ackCounts[host] ?? 0) { newActivity.append(host) }
            self.ackCounts[host] = count
        }
        self.lock.lock()
        defer { self.lock.unlock() }
        self.samples += 1
        self.activity += newActivity.map { (time, $0) }
        let plain = qemus.filter { !$0.incoming }
        if plain.count > 1 {
            self.violations.append(Violation(at: time, what: "QEMU for \(self.vm) runs on \(plain.map(\.host).sorted()) without -incoming"))
        }
        if Set(qemus.map(\.host)).count > 1 {
            let since = self.pairSince ?? time
            self.pairSince = since
            self.longestPair = max(self.longestPair, time - since)
        } else {
            self.pairSince = nil
        }
    }

    static func pids() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
    }

    static func commandLine(_ pid: Int32) -> [String]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    static func ackCount(_ path: String) -> Int {
        guard let data = FileManager.default.contents(atPath: path) else { return 0 }
        var count = 0
        var index = data.startIndex
        while let found = data[index...].firstRange(of: Data("ACK ".utf8)) {
            count += 1
            index = found.upperBound
        }
        return count
    }

    // MARK: Verdicts

    /// Console activity grouped into spans per host (a gap of more than `gap` seconds ends a span).
    func spans(gap: Double = 1.0) -> [Span] {
        self.lock.lock()
        let activity = self.activity
        self.lock.unlock()
        var open: [String: Span] = [:]
        var closed: [Span] = []
        for (time, host) in activity {
            if var span = open[host], time - span.last <= gap {
                span.last = time
                open[host] = span
            } else {
                if let span = open[host] { closed.append(span) }
                open[host] = Span(host: host, first: time, last: time)
            }
        }
        return (closed + open.values).sorted { $0.first < $1.first }
    }

    /// Pairs of spans on different hosts that overlap by more than one sampling step (two guests writing).
    static func overlaps(_ spans: [Span], tolerance: Double = 0.15) -> [(Span, Span)] {
        var found: [(Span, Span)] = []
        for (index, a) in spans.enumerated() {
            for b in spans[(index + 1)...] where a.host != b.host {
                if min(a.last, b.last) - max(a.first, b.first) > tolerance { found.append((a, b)) }
            }
        }
        return found
    }

    var allViolations: [Violation] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.violations
    }
}

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
///   with new acknowledgements at overlapping times would mean two guests writing. A boot of the writer prints
///   `RESUME n`, the last record it found on its disk: below an `ACK` printed before it, acknowledged records were
///   lost (`AcknowledgementLedger`).
/// - the volumes' roles, from each host's volume control socket (`PrimaryWatch`): Primary on two hosts at once only
///   while a live migration (an `-incoming` QEMU) is under way.
public final class SingleRunWatch: @unchecked Sendable {
    public struct Violation: CustomStringConvertible, Sendable {
        public var at: Double
        public var what: String
        public var description: String { String(format: "t=%.2f s: %@", self.at, self.what) }
    }

    /// One host's span of console activity: the first and last time new ACK lines appeared, with no gap of
    /// more than `gap` seconds in between.
    public struct Span: Equatable, Sendable {
        public var host: String
        public var first: Double
        public var last: Double
        public init(host: String, first: Double, last: Double) {
            self.host = host
            self.first = first
            self.last = last
        }
    }

    let vm: String
    let hosts: [String]
    let namespaces: [String: String]
    let consoleLogs: [String: String]
    let started = Date()
    private let lock = NSLock()
    private var running = true
    private var thread: Thread?
    private var violations: [Violation] = []
    private var sampleCount = 0
    /// Longest continuous time two QEMUs of the VM existed (one of them `-incoming`), seconds.
    private var longestPairSeconds = 0.0
    private var pairSince: Double?
    /// When two QEMUs of the VM last existed (a live migration or resume under way).
    private var lastPair: Double?
    private var ackCounts: [String: Int] = [:]
    private var activity: [(time: Double, host: String)] = []
    private var acknowledgements = AcknowledgementLedger()
    private let primaries: PrimaryWatch?

    /// `volumes`: the replicated volumes whose roles to watch (their control sockets in each host's /run).
    public init(lab: CampaignLab, vm: String, hosts: [String], volumes: [String] = []) {
        self.vm = vm
        self.hosts = hosts
        self.namespaces = Dictionary(uniqueKeysWithValues: hosts.map { ($0, "\(lab.name)-\($0)") })
        self.consoleLogs = Dictionary(uniqueKeysWithValues: hosts.map {
            ($0, "\(lab.hostsDirectory)/\($0)/run/clevervm/\(vm).console.log")
        })
        self.primaries = volumes.isEmpty ? nil : PrimaryWatch(lab: lab, hosts: hosts, volumes: volumes)
    }

    public var samples: Int { self.locked { self.sampleCount } }
    public var longestPair: Double { self.locked { self.longestPairSeconds } }
    /// The highest record number any host's guest acknowledged.
    public var highestAcknowledged: UInt64 { self.locked { self.acknowledgements.highest } }

    private func locked<T>(_ body: () -> T) -> T {
        self.lock.lock()
        defer { self.lock.unlock() }
        return body()
    }

    public func start() {
        self.primaries?.start { [weak self] time, volume, hosts in
            guard let self else { return }
            self.locked {
                // Two primaries are allowed only with a live migration under way (two QEMUs), or just after one.
                if let pair = self.lastPair, time - pair < 2 { return }
                if self.pairSince != nil { return }
                self.violations.append(Violation(at: time, what: "volume \(volume) is Primary on \(hosts.sorted()) outside a live migration"))
            }
        }
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
    public func stop() -> [Span] {
        self.lock.lock()
        self.running = false
        self.lock.unlock()
        self.primaries?.stop()
        usleep(120_000)
        return self.spans()
    }

    private var isRunning: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.running
    }

    public var now: Double { Date().timeIntervalSince(self.started) }

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
        var consoleText: [String: (data: Data, inode: UInt64)] = [:]
        for host in self.hosts {
            var info = stat()
            let inode = stat(self.consoleLogs[host]!, &info) == 0 ? UInt64(info.st_ino) : 0
            let data = FileManager.default.contents(atPath: self.consoleLogs[host]!) ?? Data()
            consoleText[host] = (data, inode)
            let count = Self.ackCount(data)
            // A power-on empties the host's /run: a shorter log is a new one.
            if count > (self.ackCounts[host] ?? 0) { newActivity.append(host) }
            self.ackCounts[host] = count
        }
        self.lock.lock()
        defer { self.lock.unlock() }
        self.sampleCount += 1
        self.activity += newActivity.map { (time, $0) }
        for host in self.hosts {
            let console = consoleText[host]!
            for loss in self.acknowledgements.read(host: host, log: console.data, identity: console.inode) {
                self.violations.append(Violation(at: time, what: loss))
            }
        }
        let plain = qemus.filter { !$0.incoming }
        if plain.count > 1 {
            self.violations.append(Violation(at: time, what: "QEMU for \(self.vm) runs on \(plain.map(\.host).sorted()) without -incoming"))
        }
        if Set(qemus.map(\.host)).count > 1 {
            let since = self.pairSince ?? time
            self.pairSince = since
            self.lastPair = time
            self.longestPairSeconds = max(self.longestPairSeconds, time - since)
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

    public static func ackCount(_ path: String) -> Int {
        Self.ackCount(FileManager.default.contents(atPath: path) ?? Data())
    }

    static func ackCount(_ data: Data) -> Int {
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
    public func spans(gap: Double = 1.0) -> [Span] {
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
    public static func overlaps(_ spans: [Span], tolerance: Double = 0.15) -> [(Span, Span)] {
        var found: [(Span, Span)] = []
        for (index, a) in spans.enumerated() {
            for b in spans[(index + 1)...] where a.host != b.host {
                if min(a.last, b.last) - max(a.first, b.first) > tolerance { found.append((a, b)) }
            }
        }
        return found
    }

    public var allViolations: [Violation] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.violations
    }
}

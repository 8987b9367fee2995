import CleverControl
import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A lab of two hosts and a gateway running the real thing (Corosync, qnetd, qdevice, one CleverVM
/// agent per host), driven through the `clevervm` binary as an operator would: the lab tests' harness and the
/// fault campaign's (`clevervm lab campaign`).
public final class CampaignLab {
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["CLEVERVM_BINARY"] { return path }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("clevervm").path
    }

    public static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static var requirementsMet: Bool {
        getuid() == 0 && ["/usr/sbin/corosync", "/usr/bin/corosync-qnetd", "/usr/sbin/corosync-qdevice", "/usr/sbin/nft"]
            .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var error: String
    }

    public let name: String
    public var hostsDirectory: String { "/run/clevervm-lab/\(self.name)/hosts" }

    /// `console`: the hosts' web consoles too (needs clevervm-web beside the binary).
    public init(name: String = "cva", config: String = "examples/lab.yaml", console: Bool = true) throws {
        self.name = name
        _ = Self.run(["lab", "down", "--name", name])
        let path = config.hasPrefix("/") || FileManager.default.fileExists(atPath: config) ? config : Self.root.appendingPathComponent(config).path
        let up = Self.run(["lab", "up", "--name", name, "--config", path] + (console ? [] : ["--no-console"]), timeout: 120)
        guard up.status == 0 else {
            self.dumpLogs()
            _ = Self.run(["lab", "down", "--name", name])
            throw LabFailure("lab up failed:\n\(up.output)\n\(up.error)")
        }
    }

    public func down() {
        // CLEVERVM_LAB_LOGS=DIR keeps every host's logs (agent, corosync, volumes, QEMU, console) for a post-mortem.
        if let keep = ProcessInfo.processInfo.environment["CLEVERVM_LAB_LOGS"] {
            // The gateway's logs (qnetd's) too: a quorum that does not come back is decided there.
            for host in ["alpha", "beta", "gw"] {
                let directory = host == "gw" ? "/run/clevervm-lab/\(self.name)/gateway" : "\(self.hostsDirectory)/\(host)"
                _ = Subprocess.run(["sh", "-c", "mkdir -p \"$2\" && cp -r \"$1\"/logs/. \"$1\"/run/clevervm/*.log \"$2\"/ 2>/dev/null; true",
                                    "sh", directory, "\(keep)/\(self.name)/\(host)"])
            }
        }
        _ = Self.run(["lab", "down", "--name", self.name])
    }

    /// Runs the lab body; on failure prints every host's agent log; always tears down.
    public static func with(_ body: (CampaignLab) throws -> Void) throws {
        let lab = try CampaignLab()
        defer { lab.down() }
        do {
            try body(lab)
        } catch {
            lab.dumpLogs()
            throw error
        }
    }

    public struct LabFailure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Runs the clevervm binary (spawned and reaped by hand: Foundation's Process can miss a child's exit).
    /// stdout and stderr arrive together; `error` is the same text, for readability at call sites.
    @discardableResult
    public static func run(_ arguments: [String], timeout: Double = 60) -> Result {
        let result = Subprocess.run([Self.binary] + arguments, timeout: .milliseconds(Int64(timeout * 1000)))
        return Result(status: result.status, output: result.output, error: result.output)
    }

    /// `clevervm ARGS` inside a host.
    @discardableResult
    public func clevervm(_ host: String, _ arguments: [String], timeout: Double = 30) -> Result {
        Self.run(["lab", "exec", "--name", self.name, host, "--", "clevervm"] + arguments, timeout: timeout)
    }

    public func lab(_ arguments: [String]) throws {
        let result = Self.run(["lab"] + arguments + ["--name", self.name])
        guard result.status == 0 else { throw LabFailure("lab \(arguments): \(result.error)") }
    }

    public func status(_ host: String) -> StatusReport? {
        let result = self.clevervm(host, ["status", "--json"])
        return try? JSONDecoder().decode(StatusReport.self, from: Data(result.output.utf8))
    }

    /// Where the status says the resource runs (online nodes only).
    public func placement(_ resource: String, from host: String) -> [String] {
        self.status(host)?.resources.first { $0.id == resource }?.roles.keys.sorted() ?? []
    }

    public func settled(_ host: String) -> Bool {
        guard let report = self.status(host) else { return false }
        return report.quorate && report.pendingActions.isEmpty && report.resources.allSatisfy { $0.target.isEmpty }
    }

    /// Polls until `condition` holds or `seconds` pass; returns whether it held.
    @discardableResult
    public func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(200_000)
        }
        return condition()
    }

    /// The stand-in's "HOST EPOCH" lines of one host.
    public func standInTimes(_ host: String) -> [Double] {
        let text = (try? String(contentsOfFile: "\(self.hostsDirectory)/\(host)/var-lib-clevervm/standin.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }

    public func events(_ host: String) -> [String] {
        let result = self.clevervm(host, ["events", "--last", "500", "--json"])
        let events = (try? JSONDecoder().decode([EventRecord].self, from: Data(result.output.utf8))) ?? []
        return events.map(\.text)
    }

    public func dumpLogs() { print(self.logTails()) }

    /// The last 60 lines of every host's agent log.
    public func logTails() -> String {
        self.hosts.map { host in
            let path = "\(self.hostsDirectory)/\(host)/logs/clevervm.log"
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no log at \(path))"
            return "---- \(host) agent log (last 60 lines) ----\n" + text.split(separator: "\n").suffix(60).joined(separator: "\n")
        }.joined(separator: "\n")
    }
}

extension CampaignLab {
    /// A command on this machine (ip, tc), its output and status.
    public static func runCommand(_ arguments: [String], timeout: Double = 30) -> Result {
        let result = Subprocess.run(arguments, timeout: .milliseconds(Int64(timeout * 1000)))
        return Result(status: result.status, output: result.output, error: result.output)
    }
}

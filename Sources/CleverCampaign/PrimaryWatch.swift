import CleverVolume
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Samples every host's role of each replicated volume from outside the cluster, through the volume processes'
/// control sockets in the hosts' /run (a query that does not answer within 300 ms — a stopped or dead volume
/// process — counts as no answer, never as a role), and reports each moment a volume is Primary on two hosts that
/// are not connected to each other. Primary on both while Connected is dual-primary the two volume processes agreed
/// to, which they do only when asked with `allowTwoPrimaries` — for a live move the cluster started.
final class PrimaryWatch: @unchecked Sendable {
    typealias Report = @Sendable (_ time: Double, _ volume: String, _ hosts: [String]) -> Void

    private let sockets: [(volume: String, host: String, path: String)]
    private let started = Date()
    private let lock = NSLock()
    private var running = true

    init(lab: CampaignLab, hosts: [String], volumes: [String]) {
        self.sockets = volumes.flatMap { volume in
            hosts.map { (volume, $0, "\(lab.hostsDirectory)/\($0)/run/clevervm/\(volume).ctl") }
        }
    }

    func start(report: @escaping Report) {
        let thread = Thread { [self] in
            while self.isRunning {
                let time = Date().timeIntervalSince(self.started)
                var primaries: [String: [(host: String, connected: Bool)]] = [:]
                for socket in self.sockets {
                    guard let status = Self.status(socket.path), status.role.lowercased() == "primary" else { continue }
                    primaries[socket.volume, default: []].append((socket.host, status.connection.lowercased() == "connected"))
                }
                for (volume, hosts) in primaries where hosts.count > 1 && !hosts.allSatisfy(\.connected) {
                    report(time, volume, hosts.map(\.host))
                }
                usleep(200_000)
            }
        }
        thread.start()
    }

    func stop() {
        self.lock.lock()
        self.running = false
        self.lock.unlock()
    }

    private var isRunning: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.running
    }

    /// What a volume process reports, or nil when it does not answer in time (the watch samples every 50 ms; a
    /// stuck volume must not stall it).
    static func status(_ path: String) -> VolumeStatus? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return (try? ControlServer.send(VolumeControlRequest(command: .status), to: path, timeout: 0.3))?.status
    }
}

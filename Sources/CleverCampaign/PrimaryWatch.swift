import CleverVolume
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Samples every host's role of each replicated volume from outside the cluster, through the volume processes'
/// control sockets in the hosts' /run (a query that does not answer within 300 ms — a stopped or dead volume
/// process — counts as no answer, never as a role), and reports each moment a volume is Primary on two hosts.
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
                var primaries: [String: [String]] = [:]
                for socket in self.sockets where Self.role(socket.path)?.lowercased() == "primary" {
                    primaries[socket.volume, default: []].append(socket.host)
                }
                for (volume, hosts) in primaries where hosts.count > 1 { report(time, volume, hosts) }
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

    /// The role a volume process reports, or nil when it does not answer in time.
    static func role(_ path: String) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0, var request = try? JSONEncoder().encode(VolumeControlRequest(command: .status)) else { return nil }
        request.append(10)
        guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else { return nil }
        var reply = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !reply.contains(10) {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return nil }
            reply += buffer[0..<count]
        }
        return (try? JSONDecoder().decode(VolumeControlReply.self, from: Data(reply.prefix { $0 != 10 })))?.status?.role
    }
}

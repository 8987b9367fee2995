import CleverVolume
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A volume control socket (`NAME.ctl`, the volume process's line protocol) that reports a split brain until
/// `resolve` without dry run: enough to drive the console's guided recovery. The split brain itself, and its
/// detection and recovery, are tested on real volume processes in CleverVolumeTests.
final class TestVolume: @unchecked Sendable {
    // Safety: `splitBrain` and `requests` are guarded by `lock`.
    private let lock = NSLock()
    private var splitBrain: String? = "both sides were primary"
    private(set) var requests: [VolumeControlRequest] = []
    let name: String

    init(name: String, directory: String) throws {
        self.name = name
        let path = "\(directory)/\(name).ctl"
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { throw CocoaError(.fileWriteUnknown) }
        Thread {
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                var line: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while !line.contains(10) {
                    let count = read(client, &buffer, buffer.count)
                    if count <= 0 { break }
                    line += buffer[..<count]
                }
                let request = try? JSONDecoder().decode(VolumeControlRequest.self, from: Data(line.prefix { $0 != 10 }))
                let reply = request.map(self.answer) ?? Reply(ok: false, message: "malformed", status: nil)
                let bytes = Array((try? JSONEncoder().encode(reply)) ?? Data()) + [10]
                _ = bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                close(client)
            }
        }.start()
    }

    var resolved: Bool { self.lock.withLock { self.splitBrain == nil } }

    /// VolumeControlReply's wire shape.
    struct Reply: Encodable {
        var ok: Bool
        var message: String
        var status: VolumeStatus?
    }

    func answer(_ request: VolumeControlRequest) -> Reply {
        self.lock.withLock {
            self.requests.append(request)
            let summary = "alpha changed 12 blocks (48 KiB); beta changed 3 blocks (12 KiB); discarding \(request.discard ?? "") rolls back its changes and resyncs from the other side"
            switch request.command {
            case .resolve where request.dryRun == true:
                return Reply(ok: true, message: "dry run: " + summary, status: self.status())
            case .resolve:
                self.splitBrain = nil
                return Reply(ok: true, message: summary + "; connecting", status: self.status())
            case .verify:
                return Reply(ok: true, message: "verify started", status: self.status())
            default:
                return Reply(ok: true, message: "status", status: self.status())
            }
        }
    }

    private func status() -> VolumeStatus {
        let split = self.splitBrain
        let json = """
            {"volume":"\(self.name)","node":"alpha","peer":"beta","connection":"\(split == nil ? "Connected" : "StandAlone")",
             "role":"Primary","peerRole":"\(split == nil ? "Secondary" : "Unknown")","disk":"UpToDate","peerDisk":"\(split == nil ? "UpToDate" : "DUnknown")",
             "protocolMode":"C","generations":"","crashedPrimary":false,"peerOutdated":false,"outOfSyncBlocks":\(split == nil ? 0 : 12),
             "bytesDirtied":49152,"resyncBytesMoved":0,"activityLogTransactions":4,"nbdClients":1,
             \(split.map { "\"splitBrain\":\"\($0)\"," } ?? "")"peerChangedBlocks":3}
            """
        return try! JSONDecoder().decode(VolumeStatus.self, from: Data(json.utf8))
    }
}

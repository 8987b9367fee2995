#if canImport(Glibc)
import Glibc
#endif
import CleverReplication
import Foundation

/// The control interface on a root-only unix socket (mode 0600): one JSON request line, one JSON reply line.
/// The JSON is a written format (explicit keys, command names as listed; golden tests in `VolumeControlWireTests`):
/// renaming a Swift case or property must not change it. `version` 1; a request without one is version 1.
public enum VolumeControlWire {
    public static let version = 1

    /// The message's version (a missing one counts as 1); any other than ours is refused by name.
    static func checkedVersion<Key: CodingKey>(in container: KeyedDecodingContainer<Key>, forKey key: Key, what: String,
                                               speaker: String) throws -> Int {
        let version = try container.decodeIfPresent(Int.self, forKey: key) ?? 1
        guard version == Self.version else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "\(what) version \(version); this \(speaker) speaks \(Self.version)")
        }
        return version
    }
}

public struct VolumeControlRequest: Codable, Hashable, Sendable {
    /// The raw values are the wire names: never change one.
    public enum Command: String, Codable, Hashable, Sendable, CaseIterable {
        case status = "status", promote = "promote", demote = "demote", connect = "connect"
        case disconnect = "disconnect", verify = "verify", resolve = "resolve", outdate = "outdate"
        /// The cluster recorded the peer's disk as Outdated: writes held by fencing go on alone.
        case markPeerOutdated = "markPeerOutdated"
        /// Keeps the connection open and writes one JSON line per state change (and sync progress each second).
        case events = "events"
    }

    public var version: Int
    public var command: Command
    public var peerOutdated: Bool?
    public var allowTwoPrimaries: Bool?
    public var force: Bool?
    public var discardMyData: Bool?
    public var discard: String?
    public var dryRun: Bool?

    public init(
        command: Command, peerOutdated: Bool? = nil, allowTwoPrimaries: Bool? = nil, force: Bool? = nil,
        discardMyData: Bool? = nil, discard: String? = nil, dryRun: Bool? = nil
    ) {
        self.version = VolumeControlWire.version
        self.command = command
        self.peerOutdated = peerOutdated
        self.allowTwoPrimaries = allowTwoPrimaries
        self.force = force
        self.discardMyData = discardMyData
        self.discard = discard
        self.dryRun = dryRun
    }

    enum CodingKeys: String, CodingKey {
        case version, command, peerOutdated, allowTwoPrimaries, force, discardMyData, discard, dryRun
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.version = try VolumeControlWire.checkedVersion(in: container, forKey: .version, what: "control request", speaker: "volume")
        self.command = try container.decode(Command.self, forKey: .command)
        self.peerOutdated = try container.decodeIfPresent(Bool.self, forKey: .peerOutdated)
        self.allowTwoPrimaries = try container.decodeIfPresent(Bool.self, forKey: .allowTwoPrimaries)
        self.force = try container.decodeIfPresent(Bool.self, forKey: .force)
        self.discardMyData = try container.decodeIfPresent(Bool.self, forKey: .discardMyData)
        self.discard = try container.decodeIfPresent(String.self, forKey: .discard)
        self.dryRun = try container.decodeIfPresent(Bool.self, forKey: .dryRun)
    }
}

public struct VolumeControlReply: Codable, Hashable, Sendable {
    public var version: Int = VolumeControlWire.version
    public var ok: Bool
    public var message: String
    public var status: VolumeStatus?

    public init(ok: Bool, message: String, status: VolumeStatus? = nil) {
        self.ok = ok
        self.message = message
        self.status = status
    }

    enum CodingKeys: String, CodingKey { case version, ok, message, status }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.version = try VolumeControlWire.checkedVersion(in: container, forKey: .version, what: "control reply", speaker: "client")
        self.ok = try container.decode(Bool.self, forKey: .ok)
        self.message = try container.decode(String.self, forKey: .message)
        self.status = try container.decodeIfPresent(VolumeStatus.self, forKey: .status)
    }
}

public final class ControlServer: @unchecked Sendable {
    let volume: Volume
    let path: String

    public init(volume: Volume, path: String) {
        self.volume = volume
        self.path = path
    }

    public func start() throws {
        let listener = try Sockets.listenUnix(path: self.path, mode: 0o600)
        Thread.detachNewThread { [self] in
            while true {
                let fd = Sockets.acceptCloseOnExec(listener)
                if fd < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                Thread.detachNewThread { [self] in self.serve(fd) }
            }
        }
    }

    func serve(_ fd: Int32) {
        defer { close(fd) }
        var line: [UInt8] = []
        while !line.contains(10) {
            guard line.count < 65536, let bytes = Sockets.readSome(fd, max: 4096) else { return }
            line += bytes
        }
        let request = Array(line.prefix { $0 != 10 })
        if let parsed = try? JSONDecoder().decode(VolumeControlRequest.self, from: Data(request)), parsed.command == .events {
            self.streamEvents(fd)
            return
        }
        let reply = self.handle(request)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var out = (try? encoder.encode(reply)).map { [UInt8]($0) } ?? Array("{\"ok\":false}".utf8)
        out.append(10)
        Sockets.writeFully(fd, out)
    }

    /// One event line: what changed, and the full status after it.
    public struct Event: Codable, Hashable, Sendable {
        public var event: String
        public var status: VolumeStatus
    }

    /// Polls the volume's status and writes an event whenever its state (not its counters) changes, and a
    /// progress event each second while a resync runs. Ends when the client goes away.
    func streamEvents(_ fd: Int32) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var lastState = ""
        var lastProgress = Date.distantPast
        while true {
            let status = self.volume.status()
            let state = [status.connection, status.role, status.peerRole, status.disk, status.peerDisk,
                status.splitBrain ?? "", status.lastLinkError ?? "", status.verify?.finished == true ? "verified" : "",
                status.writesHeld == true ? "writes-held" : ""]
                .joined(separator: "|")
            var kind: String?
            if state != lastState {
                kind = lastState.isEmpty ? "initial" : "state"
                lastState = state
            } else if status.sync != nil && Date().timeIntervalSince(lastProgress) >= 1 {
                kind = "sync-progress"
            }
            if let kind {
                if kind == "sync-progress" { lastProgress = Date() }
                guard var line = try? encoder.encode(Event(event: kind, status: status)) else { return }
                line.append(10)
                guard Sockets.writeFully(fd, [UInt8](line)) else { return }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Client side of `events`: calls `onEvent` for each line until the server closes or `onEvent` says stop.
    public static func streamEvents(from path: String, onEvent: (Event) -> Bool) throws {
        let fd = try Sockets.connectUnix(path: path)
        defer { close(fd) }
        var bytes = [UInt8](try JSONEncoder().encode(VolumeControlRequest(command: .events)))
        bytes.append(10)
        guard Sockets.writeFully(fd, bytes) else { throw SystemError("write events request", path) }
        var pending: [UInt8] = []
        while let more = Sockets.readSome(fd, max: 65536) {
            pending += more
            while let newline = pending.firstIndex(of: 10) {
                let line = Array(pending[..<newline])
                pending.removeFirst(newline + 1)
                guard let event = try? JSONDecoder().decode(Event.self, from: Data(line)) else { continue }
                if !onEvent(event) { return }
            }
        }
    }

    func handle(_ bytes: [UInt8]) -> VolumeControlReply {
        let request: VolumeControlRequest
        do {
            request = try JSONDecoder().decode(VolumeControlRequest.self, from: Data(bytes))
        } catch {
            return VolumeControlReply(ok: false, message: "control request is not valid JSON for a command: \(error)")
        }
        let result: Result<String, VolumeError>
        switch request.command {
        case .status: result = .success("ok")
        case .events: result = .failure(VolumeError("events is a stream: use streamEvents"))
        case .promote:
            result = self.volume.promote(Replication.PromotionRequest(
                peerFencedOrOutdated: request.peerOutdated ?? false,
                allowTwoPrimaries: request.allowTwoPrimaries ?? false, force: request.force ?? false))
        case .demote: result = self.volume.demote(force: request.force ?? false)
        case .connect: result = .success(self.volume.connect(discard: request.discardMyData == true ? .local : .none))
        case .disconnect: result = .success(self.volume.disconnect())
        case .verify: result = self.volume.startVerify()
        case .outdate: result = self.volume.outdate()
        case .markPeerOutdated: result = self.volume.markPeerOutdated()
        case .resolve:
            guard let host = request.discard else {
                return VolumeControlReply(ok: false, message: "resolve needs 'discard': the host whose changes to drop")
            }
            result = self.volume.resolve(discard: host, dryRun: request.dryRun ?? false)
        }
        switch result {
        case .success(let message): return VolumeControlReply(ok: true, message: message, status: self.volume.status())
        case .failure(let error): return VolumeControlReply(ok: false, message: error.message, status: self.volume.status())
        }
    }

    /// Client side of a resolve: polls the volume until both sides are Connected and UpToDate with nothing out of
    /// sync (true), or `timeout` passes (false). `progress` gets a line whenever the state or the percentage moves.
    public static func waitForSync(
        at path: String, timeout: Duration, progress: (String) -> Void
    ) throws -> (finished: Bool, status: VolumeStatus?) {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var lastLine = ""
        var status: VolumeStatus?
        while clock.now < deadline {
            status = try Self.send(VolumeControlRequest(command: .status), to: path).status
            if let status {
                if status.line != lastLine {
                    lastLine = status.line
                    progress(status.line)
                }
                if status.connection == "Connected" && status.disk == "UpToDate" && status.peerDisk == "UpToDate"
                    && status.outOfSyncBlocks == 0
                {
                    return (true, status)
                }
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return (false, status)
    }

    /// Client side: sends one request to a control socket and returns the reply.
    /// With `timeout` (seconds), a volume process that accepts but does not answer (one that is stopping) is given
    /// up on instead of being waited for.
    /// `timeout`: seconds to wait for the answer (and for the request to be taken); nil waits as long as it takes.
    public static func send(_ request: VolumeControlRequest, to path: String, timeout: Double? = nil) throws -> VolumeControlReply {
        let fd = try Sockets.connectUnix(path: path)
        defer { close(fd) }
        if let timeout {
            Sockets.setReceiveTimeout(fd, seconds: timeout)
            Sockets.setSendTimeout(fd, seconds: timeout)
        }
        var bytes = [UInt8](try JSONEncoder().encode(request))
        bytes.append(10)
        guard Sockets.writeFully(fd, bytes) else { throw SystemError("write control request", path) }
        var line: [UInt8] = []
        while !line.contains(10) {
            guard let more = Sockets.readSome(fd, max: 65536) else { break }
            line += more
        }
        if line.isEmpty, let timeout { throw VolumeError("control socket \(path): no answer within \(String(format: "%g", timeout)) s") }
        do {
            return try JSONDecoder().decode(VolumeControlReply.self, from: Data(line.prefix { $0 != 10 }))
        } catch {
            throw VolumeError("control socket \(path) sent an unreadable reply: \(error)")
        }
    }
}

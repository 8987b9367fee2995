import CleverControl
import CleverModel
import CleverVolume
import Foundation
import Logging

/// What the console knows of the cluster at one moment: the agent's status (or why there is none), the event
/// history's tail, and this host's volumes. Every page, the SSE stream and /metrics read the same frame, so no
/// two views of one console disagree.
public struct Frame: Sendable {
    public var version: Int
    public var status: StatusReport?
    /// Why there is no fresh status: the agent is down or not answering. `status` is then the last one seen.
    public var agentError: String?
    public var events: [EventRecord]
    public var volumes: [VolumeStatus]
    /// The cluster config (fetched again when its epoch changes): a VM's disks, the qdevice.
    public var config: ClusterConfig?
    /// Wall-clock seconds of the last successful fetch.
    public var fetchedAt: Double?

    public static let empty = Frame(version: 0, status: nil, agentError: "not asked yet", events: [], volumes: [], config: nil, fetchedAt: nil)
}

extension EventRecord {
    /// The SSE id of an event: its time in microseconds, so a reconnecting browser (Last-Event-ID) gets exactly
    /// the history it missed.
    public var streamID: Int64 { Int64((self.at.seconds * 1_000_000).rounded()) }
}

/// Polls the local agent (one poller per console, however many browsers watch) and wakes every subscriber
/// when something changed.
public actor StatusFeed {
    public let link: AgentLink
    public let interval: Duration
    public let historyLimit: Int
    private let logger: Logger
    public private(set) var frame = Frame.empty
    private var subscribers: [Int: AsyncStream<FeedMessage>.Continuation] = [:]
    private var unchangedPolls = 0
    static let keepAliveEvery = 15
    private var nextSubscriber = 0
    /// Moves seen since this console started, per VM, for the migrations counter.
    public private(set) var moveCounts = MoveCounter()

    public init(link: AgentLink, interval: Duration = .seconds(1), historyLimit: Int = 500, logger: Logger) {
        self.link = link
        self.interval = interval
        self.historyLimit = historyLimit
        self.logger = logger
    }

    /// Polls until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            await self.refresh()
            try? await Task.sleep(for: self.interval)
        }
        for continuation in self.subscribers.values { continuation.finish() }
    }

    /// One poll: fetches, and publishes a new version if anything but the clock changed.
    @discardableResult
    public func refresh() async -> Frame {
        var next = self.frame
        do {
            let status = try await self.link.status()
            let events = try await self.link.events(limit: self.historyLimit)
            var volumes: [VolumeStatus] = []
            for resource in status.resources where resource.type == "volume" {
                if let reply = try? await self.link.volume(resource.id, .init(command: .status)), let volume = reply.status {
                    volumes.append(volume)
                }
            }
            if next.config?.epoch != status.configEpoch { next.config = try? await self.link.snapshot().config }
            next.status = status
            next.events = events
            next.volumes = volumes
            next.agentError = nil
            next.fetchedAt = Date().timeIntervalSince1970
            self.moveCounts.observe(status.resources)
        } catch {
            if next.agentError == nil { self.logger.warning("the local agent does not answer", metadata: ["error": "\(error)"]) }
            next.agentError = String(describing: error)
        }
        if Self.differs(next, self.frame) {
            next.version = self.frame.version + 1
            self.frame = next
            self.unchangedPolls = 0
            for continuation in self.subscribers.values { continuation.yield(.frame(next)) }
        } else {
            next.version = self.frame.version
            self.frame = next
            self.unchangedPolls += 1
            if self.unchangedPolls % Self.keepAliveEvery == 0 {
                for continuation in self.subscribers.values { continuation.yield(.keepAlive) }
            }
        }
        return self.frame
    }

    /// A stream of new frames until the subscriber goes away.
    public func subscribe() -> (id: Int, frames: AsyncStream<FeedMessage>) {
        let id = self.nextSubscriber
        self.nextSubscriber += 1
        let (stream, continuation) = AsyncStream<FeedMessage>.makeStream(bufferingPolicy: .bufferingNewest(8))
        self.subscribers[id] = continuation
        return (id, stream)
    }

    public func unsubscribe(_ id: Int) {
        self.subscribers.removeValue(forKey: id)?.finish()
    }

    public var subscriberCount: Int { self.subscribers.count }

    /// Ends every stream (shutdown; tests).
    public func finishSubscribers() {
        for continuation in self.subscribers.values { continuation.finish() }
        self.subscribers.removeAll()
    }

    static func differs(_ a: Frame, _ b: Frame) -> Bool {
        var left = a.status, right = b.status
        left?.now = Timestamp(seconds: 0)
        right?.now = Timestamp(seconds: 0)
        return left != right || a.agentError != b.agentError || a.events != b.events || a.volumes != b.volumes
    }
}

/// What a subscriber receives: a new frame, or a nudge to keep an idle connection open.
public enum FeedMessage: Sendable {
    case frame(Frame)
    case keepAlive
}

/// Counts VM moves as the console sees `lastMove` change: a Prometheus counter (it restarts with the console).
public struct MoveCounter: Sendable, Hashable {
    public private(set) var counts: [String: Int] = [:]
    private var lastSeen: [String: Timestamp] = [:]

    public init() {}

    public mutating func observe(_ resources: [StatusReport.Resource]) {
        for resource in resources {
            guard let move = resource.lastMove else { continue }
            if let seen = self.lastSeen[resource.id], seen == move.at { continue }
            // The first sighting counts too when it is the only record: a move before the console started is
            // still a move the cluster made.
            self.lastSeen[resource.id] = move.at
            self.counts[resource.id, default: 0] += 1
        }
    }
}

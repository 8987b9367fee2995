import CCorosync
import Foundation

/// Corosync's vote quorum (votequorum): whether this node's partition is quorate, which nodes count, and the
/// expected votes. `updates` yields the whole picture after every notification, starting with the current one.
public final class VoteQuorum: Sendable {
    public let updates: AsyncStream<Status>

    private let handle: votequorum_handle_t
    private let core: Core
    private let thread: DispatchThread

    /// Connects to the local corosync and starts tracking quorum changes.
    public init() throws(CorosyncError) {
        let (stream, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .unbounded)
        let core = Core(continuation: continuation)

        var callbacks = votequorum_callbacks_t()
        callbacks.votequorum_quorum_notify_fn = { handle, _, quorate, count, nodes in
            guard let core = Core.from(handle) else { return }
            let nodes = UnsafeBufferPointer(start: nodes, count: Int(count)).map {
                Node(id: $0.nodeid, state: NodeState(rawValue: $0.state))
            }
            core.update { status in
                status.quorate = quorate != 0
                status.awaitingVerdict = false
                status.nodes = nodes
            }
        }
        callbacks.votequorum_nodelist_notify_fn = { handle, _, ringID, count, nodes in
            guard let core = Core.from(handle) else { return }
            let members = UnsafeBufferPointer(start: nodes, count: Int(count)).map { $0 }
            // A new ring: the verdict for it comes with the next quorum notification (with a qdevice, after qnetd
            // decided). Until then the old `quorate` is stale.
            core.update { status in
                status.awaitingVerdict = true
                status.ring = ProcessGroup.RingID(nodeID: ringID.nodeid, sequence: ringID.seq)
                status.members = members
            }
        }
        callbacks.votequorum_expectedvotes_notify_fn = { handle, _, expected in
            guard let core = Core.from(handle) else { return }
            core.update { status in status.expectedVotes = expected }
        }

        var handle = votequorum_handle_t()
        let status = retryingTryAgain { votequorum_initialize(&handle, &callbacks) }
        guard status == CS_OK else { throw CorosyncError.connect("votequorum_initialize", status) }
        votequorum_context_set(handle, Unmanaged.passUnretained(core).toOpaque())

        var info = votequorum_info()
        if votequorum_getinfo(handle, 0, &info) == CS_OK {
            core.update(yielding: false) { status in status.expectedVotes = info.node_expected_votes }
        }
        let trackStatus = votequorum_trackstart(handle, 0, UInt32(CS_TRACK_CURRENT | CS_TRACK_CHANGES))
        guard trackStatus == CS_OK else {
            votequorum_finalize(handle)
            throw CorosyncError.call("votequorum_trackstart", trackStatus)
        }
        var fd: Int32 = -1
        let fdStatus = votequorum_fd_get(handle, &fd)
        guard fdStatus == CS_OK else {
            votequorum_finalize(handle)
            throw CorosyncError.call("votequorum_fd_get", fdStatus)
        }

        let connected = handle
        self.updates = stream
        self.handle = handle
        self.core = core
        self.thread = DispatchThread(
            name: "votequorum", fd: fd,
            dispatch: { votequorum_dispatch(connected, CS_DISPATCH_ALL) },
            finish: { failure in
                withExtendedLifetime(core) {
                    votequorum_trackstop(connected)
                    votequorum_finalize(connected)
                    core.finish(failure)
                }
            })
    }

    deinit { self.thread.stop() }

    /// Stops tracking and disconnects; `updates` finishes. Idempotent.
    public func close() { self.thread.stop() }

    /// Why `updates` ended: nil after `close()`, the error when the connection to corosync was lost.
    public var closeReason: CorosyncError? { self.core.closeReason }

    /// votequorum's view of one node (0: this node).
    public func info(node: UInt32 = 0) throws(CorosyncError) -> Info {
        var raw = votequorum_info()
        let status = votequorum_getinfo(self.handle, node, &raw)
        guard status == CS_OK else { throw CorosyncError.call("votequorum_getinfo", status) }
        return Info(raw)
    }

    /// Thread-safe running status, updated by callbacks on the dispatch thread.
    private final class Core: @unchecked Sendable {
        // Safety: `status` and `reason` are guarded by `lock`.
        let continuation: AsyncStream<Status>.Continuation
        private let lock = NSLock()
        private var status = Status()
        private var reason: CorosyncError?

        init(continuation: AsyncStream<Status>.Continuation) { self.continuation = continuation }

        func update(yielding: Bool = true, _ change: (inout Status) -> Void) {
            self.lock.lock()
            change(&self.status)
            let snapshot = self.status
            self.lock.unlock()
            if yielding { self.continuation.yield(snapshot) }
        }

        func finish(_ reason: CorosyncError?) {
            self.lock.lock()
            self.reason = reason
            self.lock.unlock()
            self.continuation.finish()
        }

        var closeReason: CorosyncError? {
            self.lock.lock()
            defer { self.lock.unlock() }
            return self.reason
        }

        static func from(_ handle: votequorum_handle_t) -> Core? {
            var context: UnsafeMutableRawPointer?
            guard votequorum_context_get(handle, &context) == CS_OK, let context else { return nil }
            return Unmanaged<Core>.fromOpaque(context).takeUnretainedValue()
        }
    }
}

extension VoteQuorum {
    public enum NodeState: Hashable, Sendable, Codable {
        case member, dead, leaving
        case unknown(UInt32)

        /// Encoded as its name ("member", "dead", "leaving", "state-N").
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(self.name)
        }

        public init(from decoder: any Decoder) throws {
            let name = try decoder.singleValueContainer().decode(String.self)
            switch name {
            case "member": self = .member
            case "dead": self = .dead
            case "leaving": self = .leaving
            default:
                guard name.hasPrefix("state-"), let value = UInt32(name.dropFirst(6)) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a votequorum node state: \(name)"))
                }
                self = .unknown(value)
            }
        }

        init(rawValue: UInt32) {
            switch rawValue {
            case UInt32(VOTEQUORUM_NODESTATE_MEMBER): self = .member
            case UInt32(VOTEQUORUM_NODESTATE_DEAD): self = .dead
            case UInt32(VOTEQUORUM_NODESTATE_LEAVING): self = .leaving
            default: self = .unknown(rawValue)
            }
        }

        public var name: String {
            switch self {
            case .member: "member"
            case .dead: "dead"
            case .leaving: "leaving"
            case .unknown(let value): "state-\(value)"
            }
        }
    }

    public struct Node: Hashable, Sendable, Codable {
        public var id: UInt32
        public var state: NodeState
        public init(id: UInt32, state: NodeState) {
            self.id = id
            self.state = state
        }
    }

    /// The quorum picture after the latest notification (quorum, node list or expected votes).
    public struct Status: Hashable, Sendable, Codable {
        /// votequorum's verdict from the latest quorum notification.
        public var quorate: Bool = false
        /// The ring changed (`members`, `ring`) and no quorum notification for it has arrived yet. With a qdevice
        /// this lasts until qnetd decided (measured: 0.3 to 1.5 s after the ring change, token 1000 ms, qdevice
        /// timeout 3000 ms); meanwhile `quorate` still describes the old ring. A host cut off from everyone keeps
        /// its old `quorate == true` in this window, so safety code must use `isQuorate`.
        public var awaitingVerdict: Bool = false
        /// Quorate for the current ring: the verdict is in and says quorate. The safe reading.
        public var isQuorate: Bool { self.quorate && !self.awaitingVerdict }
        /// Every configured node with its state (from the quorum notification).
        public var nodes: [Node] = []
        /// Node ids in the current ring (from the node-list notification).
        public var members: [UInt32] = []
        public var ring: ProcessGroup.RingID?
        public var expectedVotes: UInt32?
        public init() {}
    }

    /// `votequorum_getinfo` for one node.
    public struct Info: Hashable, Sendable, Codable {
        public var nodeID: UInt32
        public var nodeState: NodeState
        public var nodeVotes: UInt32
        public var expectedVotes: UInt32
        public var highestExpected: UInt32
        public var totalVotes: UInt32
        /// Votes needed for quorum.
        public var quorum: UInt32
        public var quorate: Bool
        public var twoNode: Bool
        public var waitForAll: Bool
        public var qdeviceRegistered: Bool
        public var qdeviceAlive: Bool
        public var qdeviceCastsVote: Bool
        public var qdeviceVotes: UInt32
        public var qdeviceName: String

        init(_ raw: votequorum_info) {
            let flags = raw.flags
            self.nodeID = raw.node_id
            self.nodeState = NodeState(rawValue: raw.node_state)
            self.nodeVotes = raw.node_votes
            self.expectedVotes = raw.node_expected_votes
            self.highestExpected = raw.highest_expected
            self.totalVotes = raw.total_votes
            self.quorum = raw.quorum
            self.quorate = flags & UInt32(VOTEQUORUM_INFO_QUORATE) != 0
            self.twoNode = flags & UInt32(VOTEQUORUM_INFO_TWONODE) != 0
            self.waitForAll = flags & UInt32(VOTEQUORUM_INFO_WAIT_FOR_ALL) != 0
            self.qdeviceRegistered = flags & UInt32(VOTEQUORUM_INFO_QDEVICE_REGISTERED) != 0
            self.qdeviceAlive = flags & UInt32(VOTEQUORUM_INFO_QDEVICE_ALIVE) != 0
            self.qdeviceCastsVote = flags & UInt32(VOTEQUORUM_INFO_QDEVICE_CAST_VOTE) != 0
            self.qdeviceVotes = raw.qdevice_votes
            self.qdeviceName = withUnsafeBytes(of: raw.qdevice_name) { buffer in
                String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
    }
}

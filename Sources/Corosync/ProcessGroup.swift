import CCorosync
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A joined Corosync process group (CPG): messages sent with `send` are delivered to every member in the
/// same (agreed, total) order, interleaved with membership views (virtual synchrony).
///
/// `events` yields deliveries, group views and totem ring changes in the order the library dispatched them;
/// it finishes after `.closed` when the group is closed or the connection to corosync ends.
public final class ProcessGroup: Sendable {
    public let name: String
    /// This process as a member: corosync's node id and our pid.
    public let local: Member
    public let events: AsyncStream<Event>

    private let handle: cpg_handle_t
    private let core: Core
    private let thread: DispatchThread

    /// Connects to the local corosync and joins `name` (at most 128 bytes).
    public init(joining name: String) throws(CorosyncError) {
        var groupName = try Self.cpgName(name)
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        let core = Core(continuation: continuation)

        var model = cpg_model_v1_data_t()
        model.model = CPG_MODEL_V1
        model.cpg_deliver_fn = { handle, _, nodeID, pid, message, length in
            guard let core = Core.from(handle) else { return }
            let payload: [UInt8] =
                if let message, length > 0 {
                    Array(UnsafeRawBufferPointer(start: message, count: length))
                } else { [] }
            core.continuation.yield(.message(Message(sender: Member(nodeID: nodeID, pid: pid), payload: payload)))
        }
        model.cpg_confchg_fn = { handle, group, members, memberCount, left, leftCount, joined, joinedCount in
            guard let core = Core.from(handle) else { return }
            let view = View(
                group: group.map { ProcessGroup.string(from: $0) } ?? "",
                members: UnsafeBufferPointer(start: members, count: memberCount).map { Member(nodeID: $0.nodeid, pid: $0.pid) },
                joined: UnsafeBufferPointer(start: joined, count: joinedCount).map(Change.init),
                left: UnsafeBufferPointer(start: left, count: leftCount).map(Change.init))
            core.continuation.yield(.view(view))
        }
        model.cpg_totem_confchg_fn = { handle, ringID, count, members in
            guard let core = Core.from(handle) else { return }
            let nodes = UnsafeBufferPointer(start: members, count: Int(count)).map { $0 }
            core.continuation.yield(.ring(Ring(id: RingID(nodeID: ringID.nodeid, sequence: ringID.seq), nodes: nodes)))
        }
        model.flags = UInt32(CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF)

        var handle = cpg_handle_t()
        let context = Unmanaged.passUnretained(core).toOpaque()
        let status = withUnsafeMutablePointer(to: &model) { model in
            model.withMemoryRebound(to: cpg_model_data_t.self, capacity: 1) { model in
                retryingTryAgain { cpg_model_initialize(&handle, CPG_MODEL_V1, model, context) }
            }
        }
        guard status == CS_OK else { throw CorosyncError.connect("cpg_initialize", status) }

        var nodeID: UInt32 = 0
        let localStatus = cpg_local_get(handle, &nodeID)
        guard localStatus == CS_OK else {
            cpg_finalize(handle)
            throw CorosyncError.call("cpg_local_get", localStatus)
        }
        var fd: Int32 = -1
        let fdStatus = cpg_fd_get(handle, &fd)
        guard fdStatus == CS_OK else {
            cpg_finalize(handle)
            throw CorosyncError.call("cpg_fd_get", fdStatus)
        }
        let joinStatus = retryingTryAgain { cpg_join(handle, &groupName) }
        guard joinStatus == CS_OK else {
            cpg_finalize(handle)
            var error = CorosyncError.call("cpg_join", joinStatus)
            error.message = "could not join process group \(name): \(error.message)"
            throw error
        }

        let connected = handle
        self.name = name
        self.local = Member(nodeID: nodeID, pid: UInt32(getpid()))
        self.events = stream
        self.handle = handle
        self.core = core
        self.thread = DispatchThread(
            name: "cpg-\(name)", fd: fd,
            dispatch: { cpg_dispatch(connected, CS_DISPATCH_ALL) },
            finish: { failure in
                // Keep `core` alive until the last callback ran, then finalize (which also leaves the group).
                withExtendedLifetime(core) {
                    cpg_finalize(connected)
                    core.continuation.yield(.closed(failure))
                    core.continuation.finish()
                }
            })
    }

    deinit { self.thread.stop() }

    /// Multicasts `payload` to the group with agreed (total) order; it is also delivered to ourselves.
    /// Waits (without blocking a thread) while corosync applies flow control, up to `patience`.
    public func send(_ payload: [UInt8], patience: Duration = .seconds(5)) async throws(CorosyncError) {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: patience)
        while true {
            let status = self.sendOnce(payload)
            if status == CS_OK { return }
            guard status == CS_ERR_TRY_AGAIN, clock.now < deadline else {
                var error = CorosyncError.call("cpg_mcast_joined", status)
                error.message = "could not send \(payload.count) bytes to process group \(self.name): \(error.message)"
                throw error
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func sendOnce(_ payload: [UInt8]) -> cs_error_t {
        var payload = payload
        return payload.withUnsafeMutableBytes { bytes in
            var vector = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
            return cpg_mcast_joined(self.handle, CPG_TYPE_AGREED, &vector, 1)
        }
    }

    /// Leaves the group and disconnects; `events` ends with `.closed(nil)`. Idempotent.
    public func close() { self.thread.stop() }

    // MARK: Names

    static func cpgName(_ name: String) throws(CorosyncError) -> cpg_name {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= Int(CPG_MAX_NAME_LENGTH) else {
            throw CorosyncError(
                code: .invalidArgument, operation: "cpg_join", status: 0,
                message: "process group name \"\(name)\" must be 1 to \(CPG_MAX_NAME_LENGTH) bytes")
        }
        var result = cpg_name()
        result.length = UInt32(bytes.count)
        withUnsafeMutableBytes(of: &result.value) { buffer in
            buffer.copyBytes(from: bytes)
        }
        return result
    }

    static func string(from name: UnsafePointer<cpg_name>) -> String {
        let length = min(Int(name.pointee.length), Int(CPG_MAX_NAME_LENGTH))
        return withUnsafeBytes(of: name.pointee.value) { buffer in
            String(decoding: buffer.prefix(length), as: UTF8.self)
        }
    }

    /// What the C callbacks reach through the handle's context.
    private final class Core: Sendable {
        let continuation: AsyncStream<Event>.Continuation
        init(continuation: AsyncStream<Event>.Continuation) { self.continuation = continuation }

        static func from(_ handle: cpg_handle_t) -> Core? {
            var context: UnsafeMutableRawPointer?
            guard cpg_context_get(handle, &context) == CS_OK, let context else { return nil }
            return Unmanaged<Core>.fromOpaque(context).takeUnretainedValue()
        }
    }
}

extension ProcessGroup {
    /// One process in the group: corosync's node id and the process id on that node.
    public struct Member: Hashable, Sendable, Codable, CustomStringConvertible {
        public var nodeID: UInt32
        public var pid: UInt32
        public init(nodeID: UInt32, pid: UInt32) {
            self.nodeID = nodeID
            self.pid = pid
        }
        public var description: String { "\(self.nodeID)/\(self.pid)" }
    }

    /// Why a member joined or left (CPG_REASON_*).
    public enum Reason: String, Hashable, Sendable, Codable {
        /// It called join / leave.
        case join, leave
        /// Its node left the ring (crashed, powered off, cut off) / came back.
        case nodeDown, nodeUp
        /// Its process ended without leaving.
        case processDown
        case undefined
    }

    public struct Change: Hashable, Sendable, Codable {
        public var member: Member
        public var reason: Reason
        public init(member: Member, reason: Reason) {
            self.member = member
            self.reason = reason
        }
        init(_ address: cpg_address) {
            self.member = Member(nodeID: address.nodeid, pid: address.pid)
            self.reason =
                switch address.reason {
                case UInt32(CPG_REASON_JOIN.rawValue): .join
                case UInt32(CPG_REASON_LEAVE.rawValue): .leave
                case UInt32(CPG_REASON_NODEDOWN.rawValue): .nodeDown
                case UInt32(CPG_REASON_NODEUP.rawValue): .nodeUp
                case UInt32(CPG_REASON_PROCDOWN.rawValue): .processDown
                default: .undefined
                }
        }
    }

    /// A group membership view: who is in the group now and who joined or left since the last view.
    public struct View: Hashable, Sendable, Codable {
        public var group: String
        public var members: [Member]
        public var joined: [Change]
        public var left: [Change]
        public init(group: String, members: [Member], joined: [Change], left: [Change]) {
            self.group = group
            self.members = members
            self.joined = joined
            self.left = left
        }
    }

    public struct Message: Hashable, Sendable {
        public var sender: Member
        /// Opaque bytes; the layer above defines the format.
        public var payload: [UInt8]
        public init(sender: Member, payload: [UInt8]) {
            self.sender = sender
            self.payload = payload
        }
    }

    public struct RingID: Hashable, Sendable, Codable {
        public var nodeID: UInt32
        public var sequence: UInt64
        public init(nodeID: UInt32, sequence: UInt64) {
            self.nodeID = nodeID
            self.sequence = sequence
        }
    }

    /// A totem ring change: the nodes (not processes) in corosync's membership.
    public struct Ring: Hashable, Sendable, Codable {
        public var id: RingID
        public var nodes: [UInt32]
        public init(id: RingID, nodes: [UInt32]) {
            self.id = id
            self.nodes = nodes
        }
    }

    public enum Event: Hashable, Sendable {
        case message(Message)
        case view(View)
        case ring(Ring)
        /// The last event: nil after `close()`, the reason when the connection to corosync ended.
        case closed(CorosyncError?)
    }
}

import CleverAgentCore
import CleverReplication
import CleverVolume
import Foundation

/// Follows each running volume's event stream and reports its promotion score the moment it changes, and what
/// replication fencing needs to know (`VolumeObservation`) to the agent's core.
///
/// Why: the monitor reports the score too, but only every monitor interval (10 s by default). A host that
/// rejoined resyncs within a second, and if the peer dies right after, the scheduler must already know the
/// local data is UpToDate or the promotion (and the VM's failover) waits for the next monitor.
final class VolumeScoreWatchers: @unchecked Sendable {
    typealias Score = @Sendable (VolumeStatus) -> String

    private let lock = NSLock()
    private var watchers: [String: (id: UUID, task: Task<Void, Never>)] = [:]
    private let report: VolumeAgent.Report
    /// Called with the resource id when a followed volume's stream ends by itself: its process died.
    private let lost: @Sendable (String) async -> Void
    /// Called with the resource id and the volume's state whenever it changes (nil: no longer followed).
    private let observed: @Sendable (String, VolumeObservation?) async -> Void

    init(report: @escaping VolumeAgent.Report, lost: @escaping @Sendable (String) async -> Void = { _ in },
         observed: @escaping @Sendable (String, VolumeObservation?) async -> Void = { _, _ in }) {
        self.report = report
        self.lost = lost
        self.observed = observed
    }

    /// What replication fencing needs from a volume's status.
    static func observation(_ status: VolumeStatus) -> VolumeObservation {
        // The volume process of the same package reports these words; one it does not know counts as the most
        // cautious state (no role, no link, no disk), never as a link that is up.
        VolumeObservation(
            role: Replication.Role(rawValue: status.role) ?? .unknown,
            connection: Replication.ConnectionState(rawValue: status.connection) ?? .standAlone,
            disk: Replication.DiskState(rawValue: status.disk) ?? .unknown,
            peerDisk: Replication.DiskState(rawValue: status.peerDisk) ?? .unknown,
            writesHeld: status.writesHeld ?? false, inSync: status.sync == nil && status.outOfSyncBlocks == 0,
            resourceOnly: status.fencing == Replication.FencingPolicy.resourceOnly.rawValue, peerOutdated: status.peerOutdated)
    }

    /// Starts following the volume behind `socket` unless already following it. Ends by itself when the
    /// volume process goes away (its stream closes).
    func watch(socket: String, resource: String, attribute: String, score: @escaping Score) {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard self.watchers[socket] == nil else { return }
        let (states, continuation) = AsyncStream.makeStream(of: (score: String, observation: VolumeObservation).self)
        let consumerGone = Flag()
        continuation.onTermination = { _ in consumerGone.set() }
        let thread = Thread {
            var last: (score: String, observation: VolumeObservation)?
            try? ControlServer.streamEvents(from: socket) { event in
                let state = (score: score(event.status), observation: Self.observation(event.status))
                if last?.score != state.score || last?.observation != state.observation {
                    last = state
                    continuation.yield(state)
                }
                return !consumerGone.isSet
            }
            continuation.finish()
        }
        thread.start()
        let report = self.report
        let lost = self.lost
        let observed = self.observed
        let id = UUID()
        let task = Task { [weak self] in
            var lastScore: String?
            for await state in states {
                if Task.isCancelled { break }
                if state.score != lastScore {
                    lastScore = state.score
                    await report(attribute, state.score)
                }
                await observed(resource, state.observation)
            }
            await observed(resource, nil)
            // Not stopped by `stop(socket:)`: the volume process went away on its own.
            if !Task.isCancelled, self?.forget(socket, id: id) != nil { await lost(resource) }
        }
        self.watchers[socket] = (id, task)
    }

    /// Stops reporting for `socket` and waits until a report in progress has been made, so the caller's own
    /// report (the score's removal when the volume stops) is the last word.
    func stop(socket: String) async {
        let task = self.forget(socket, id: nil)
        task?.cancel()
        await task?.value
    }

    /// Removes the watcher of `socket` (only if it is the one with `id`, when given).
    @discardableResult
    private func forget(_ socket: String, id: UUID?) -> Task<Void, Never>? {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard let watcher = self.watchers[socket], id == nil || watcher.id == id else { return nil }
        self.watchers.removeValue(forKey: socket)
        return watcher.task
    }
}

/// A one-way switch shared between the event thread and the stream's termination handler.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    func set() {
        self.lock.lock()
        self.value = true
        self.lock.unlock()
    }

    var isSet: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.value
    }
}

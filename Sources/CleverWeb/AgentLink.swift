import CleverCluster
import CleverControl
import CleverModel
import CleverVolume
import Dispatch
import Foundation

/// The console's only way to the cluster: the local agent's control socket and the volume processes' control
/// sockets. The socket calls block, so they run on a queue of their own, off Swift's cooperative pool.
public struct AgentLink: Sendable {
    public var socketPath: String
    /// Where the volume processes keep their control sockets (`NAME.ctl`).
    public var runDirectory: String
    public var timeout: Double

    public init(socketPath: String = ControlSocket.defaultPath, runDirectory: String = "/run/clevervm", timeout: Double = 15) {
        self.socketPath = socketPath
        self.runDirectory = runDirectory
        self.timeout = timeout
    }

    private static let queue = DispatchQueue(label: "clevervm-web.agent", attributes: .concurrent)

    /// One request to the agent; the agent's own failure answer becomes a `WebError`.
    public func call(_ request: CleverControl.ControlRequest) async throws -> ControlResponse {
        let path = self.socketPath, timeout = self.timeout
        let result: Result<ControlResponse, any Error> = await withCheckedContinuation { continuation in
            Self.queue.async {
                do { continuation.resume(returning: .success(try ControlSocket.call(request, path: path, timeout: timeout))) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        switch result {
        case .success(.failure(let message)): throw WebError(.unprocessableContent, message)
        case .success(let response): return response
        case .failure(let failure): throw WebError(.serviceUnavailable, String(describing: failure))
        }
    }

    public func status() async throws -> StatusReport {
        guard case .status(let report) = try await self.call(.status) else { throw Self.unexpected }
        return report
    }

    public func events(limit: Int) async throws -> [EventRecord] {
        guard case .events(let events) = try await self.call(.events(limit: limit)) else { throw Self.unexpected }
        return events
    }

    public struct Snapshot: Sendable {
        public var config: ClusterConfig
        public var state: ClusterState
        public var now: Timestamp
    }

    public func snapshot() async throws -> Snapshot {
        guard case .snapshot(let config, let state, let now) = try await self.call(.snapshot) else { throw Self.unexpected }
        return Snapshot(config: config, state: state, now: now)
    }

    public func intent(_ intent: OperatorIntent) async throws -> String {
        guard case .done(let message) = try await self.call(.intent(intent)) else { throw Self.unexpected }
        return message
    }

    /// Seconds a volume process has to answer: one that is stopping may accept and never answer, and the page, the
    /// poller and /metrics must not wait for it.
    static let volumeTimeout = 5.0

    /// One request to a volume process on this host.
    public func volume(_ name: String, _ request: VolumeControlRequest) async throws -> VolumeControlReply {
        let socket = "\(self.runDirectory)/\(name).ctl"
        let result: Result<VolumeControlReply, WebError> = await withCheckedContinuation { continuation in
            Self.queue.async {
                do { continuation.resume(returning: .success(try ControlServer.send(request, to: socket, timeout: Self.volumeTimeout))) } catch {
                    continuation.resume(returning: .failure(
                        WebError(.serviceUnavailable, "volume \(name) is not running on this host (no answer on \(socket)): \(error)")))
                }
            }
        }
        return try result.get()
    }

    static let unexpected = WebError(.badGateway, "unexpected answer from the agent")
}

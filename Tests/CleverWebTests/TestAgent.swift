import CleverCluster
import CleverControl
import CleverModel
import CleverTesting
import Foundation

/// A real control socket in a temporary directory, answered by the replicated state machine running in memory
/// (CleverTesting's InMemoryCluster): status, events, snapshot and intents behave as the agent's do.
final class TestAgent: @unchecked Sendable {
    // Safety: every use of `cluster` and `intents` holds `lock`.
    private let lock = NSLock()
    private let cluster: InMemoryCluster
    private var intents: [OperatorIntent] = []
    private var events: [EventRecord] = []
    let directory: String
    let socketPath: String
    let localNode = "alpha"
    /// disk0's control socket, in a split brain until resolved.
    private(set) var volume: TestVolume?

    init(config: ClusterConfig = Fixtures.twoHost()) throws {
        self.directory = "/tmp/cvw-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        self.socketPath = self.directory + "/agent.sock"
        self.cluster = InMemoryCluster(config: config, now: Fixtures.epoch)
        self.cluster.start()
        self.cluster.settle()
        self.events = [
            EventRecord(at: Fixtures.epoch, node: "alpha", text: "started mba7 on alpha"),
            EventRecord(at: Fixtures.epoch + Seconds(1), node: "beta", text: "gw-ping started on beta"),
        ]
        self.volume = try TestVolume(name: "disk0", directory: self.directory)
        try ControlSocket.serve(path: self.socketPath) { [self] request in self.answer(request) }
    }

    var recordedIntents: [OperatorIntent] { self.lock.withLock { self.intents } }

    func running(_ resource: String) -> [String] { self.lock.withLock { self.cluster.running(resource) } }

    func answer(_ request: ControlRequest) -> ControlResponse {
        self.lock.withLock {
            let ledger = self.cluster.hosts[self.localNode]!.ledger
            switch request {
            case .status:
                return .status(StatusReport(ledger: ledger, pendingActions: [], now: self.cluster.now))
            case .events(let limit):
                return .events(Array(self.events.suffix(limit)))
            case .snapshot:
                return .snapshot(config: ledger.config, state: ledger.clusterState, now: self.cluster.now)
            case .intent(let intent):
                self.intents.append(intent)
                self.cluster.request(from: self.localNode, intent)
                self.cluster.settle()
                self.events.append(EventRecord(at: self.cluster.now + Seconds(Double(self.events.count)), node: self.localNode, text: "operator: \(intent)"))
                return .done("recorded: \(intent)")
            case .showConfig:
                return .config(ledger.config)
            case .applyConfig, .direct, .resolveVolume:
                return .failure("not supported by the test agent")
            }
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: self.directory) }
}

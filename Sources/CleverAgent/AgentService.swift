import CleverAgentCore
import Logging
import ServiceLifecycle
import Synchronization

/// The agent as a `Service`: `clevervm agent` runs it in a `ServiceGroup` that turns SIGTERM and SIGINT into a
/// graceful shutdown (the agent leaves the group; what runs on the host keeps running, as on a crash, and the next
/// agent's probe re-adopts it).
public struct AgentService: Service {
    public let options: Agent.Options
    public let logger: Logger

    public init(options: Agent.Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() async throws { try await Agent.run(options: self.options, logger: self.logger) }

    /// Runs the agent until SIGTERM or SIGINT (or a stop its restart policy does not restart).
    public static func runUntilSignalled(options: Agent.Options, logger: Logger) async throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: AgentService(options: options, logger: logger))],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

extension Agent {
    /// The agent instance running now, for the graceful-shutdown handler (which is called from a signal task).
    final class CurrentInstance: Sendable {
        private struct State {
            var agent: Agent?
            var stopping = false
        }

        private let state = Mutex(State())

        var isStopping: Bool { self.state.withLock { $0.stopping } }

        /// Records the instance about to start; false when a shutdown came first.
        func begin(_ agent: Agent) -> Bool {
            self.state.withLock { state in
                guard !state.stopping else { return false }
                state.agent = agent
                return true
            }
        }

        func stop() -> Agent? {
            self.state.withLock { state in
                state.stopping = true
                return state.agent
            }
        }
    }

    static func level(_ level: AgentLogLevel) -> Logger.Level {
        switch level {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
    }
}

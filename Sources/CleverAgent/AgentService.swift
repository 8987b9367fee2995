import Logging
import ServiceLifecycle

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

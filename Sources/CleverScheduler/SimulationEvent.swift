import CleverModel

/// Something that happens to a cluster, as `clevervm simulate --event` and scenario files say it.
public enum SimulationEvent: Hashable, Sendable, Codable, CustomStringConvertible {
    case nodeDown(String)
    case nodeUp(String)
    case setAttribute(node: String, name: String, value: String?)
    case operationFailed(resource: String, node: String, action: ResourceAction)
    case migrate(node: String, to: String?, lifetime: Seconds?)
    case unmigrate(node: String?)
    case cleanup(resource: String?, node: String?)
    case standby(String)
    case unstandby(String)
    case forceStop(String)
    case forceStart(String)
    case quorum(Bool)
    case wait(Seconds)

    public var description: String {
        switch self {
        case .nodeDown(let node): "node-down \(node)"
        case .nodeUp(let node): "node-up \(node)"
        case .setAttribute(let node, let name, let value): "attr \(node) \(name)=\(value ?? "")"
        case .operationFailed(let resource, let node, let action): "fail \(resource) \(node) \(action.rawValue)"
        case .migrate(let node, let to, let lifetime):
            "migrate \(node)" + (to.map { " --to \($0)" } ?? "") + (lifetime.map { " --lifetime \($0)" } ?? "")
        case .unmigrate(let node): "unmigrate" + (node.map { " \($0)" } ?? "")
        case .cleanup(let resource, let node): "cleanup" + (resource.map { " \($0)" } ?? "") + (node.map { " --node \($0)" } ?? "")
        case .standby(let node): "standby \(node)"
        case .unstandby(let node): "unstandby \(node)"
        case .forceStop(let resource): "forcestop \(resource)"
        case .forceStart(let resource): "forcestart \(resource)"
        case .quorum(let has): has ? "quorum gained" : "quorum lost"
        case .wait(let duration): "wait \(duration)"
        }
    }

    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        public var input: String
        public var message: String
        public var description: String { "invalid event '\(self.input)': \(self.message)" }
    }

    static let usage = """
        events: node-down NODE | node-up NODE | attr NODE NAME=VALUE (empty VALUE removes) | \
        fail RESOURCE NODE [start|stop|monitor|promote|demote] | migrate NODE [--to NODE] [--lifetime DURATION] | \
        unmigrate [NODE] | cleanup [RESOURCE] [--node NODE] | standby NODE | unstandby NODE | forcestop RESOURCE | \
        forcestart RESOURCE | quorum lost|gained | wait DURATION
        """

    /// Parses one event line, checking names against the config.
    public init(parsing line: String, config: ClusterConfig) throws(ParseError) {
        let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
        func fail(_ message: String) -> ParseError { ParseError(input: line, message: message) }
        guard let verb = words.first else { throw fail("empty event; " + Self.usage) }
        var arguments = Array(words.dropFirst())

        func option(_ name: String) throws(ParseError) -> String? {
            guard let index = arguments.firstIndex(of: name) else { return nil }
            guard index + 1 < arguments.count else { throw fail("\(name) needs a value") }
            let value = arguments[index + 1]
            arguments.removeSubrange(index...(index + 1))
            return value
        }
        func node(_ name: String) throws(ParseError) -> String {
            guard config.node(named: name) != nil else {
                throw fail("no node named '\(name)' in the config (nodes: \(config.nodes.map(\.name).joined(separator: ", ")))")
            }
            return name
        }
        func resource(_ name: String) throws(ParseError) -> String {
            guard config.resource(named: name) != nil || config.group(named: name) != nil else {
                throw fail("no resource named '\(name)' in the config")
            }
            return name
        }
        func exactly(_ count: Int, _ shape: String) throws(ParseError) {
            guard arguments.count == count else { throw fail("expected: \(verb) \(shape)") }
        }

        switch verb {
        case "node-down", "node-up", "standby", "unstandby":
            try exactly(1, "NODE")
            let name = try node(arguments[0])
            self = switch verb {
            case "node-down": .nodeDown(name)
            case "node-up": .nodeUp(name)
            case "standby": .standby(name)
            default: .unstandby(name)
            }
        case "attr":
            try exactly(2, "NODE NAME=VALUE")
            let name = try node(arguments[0])
            let pair = arguments[1].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, !pair[0].isEmpty else { throw fail("expected NAME=VALUE, got '\(arguments[1])'") }
            self = .setAttribute(node: name, name: String(pair[0]), value: pair[1].isEmpty ? nil : String(pair[1]))
        case "fail":
            guard arguments.count == 2 || arguments.count == 3 else { throw fail("expected: fail RESOURCE NODE [ACTION]") }
            let action = arguments.count == 3 ? ResourceAction(rawValue: arguments[2]) : .monitor
            guard let action else { throw fail("unknown action '\(arguments[2])'") }
            self = .operationFailed(resource: try resource(arguments[0]), node: try node(arguments[1]), action: action)
        case "migrate":
            let to = try option("--to").map { (name: String) throws(ParseError) -> String in try node(name) }
            let lifetimeText = try option("--lifetime")
            var lifetime: Seconds?
            if let lifetimeText {
                guard let parsed = Seconds(parsing: lifetimeText) else { throw fail("bad duration '\(lifetimeText)'") }
                lifetime = parsed
            }
            try exactly(1, "NODE [--to NODE] [--lifetime DURATION]")
            self = .migrate(node: try node(arguments[0]), to: to, lifetime: lifetime)
        case "unmigrate":
            guard arguments.count <= 1 else { throw fail("expected: unmigrate [NODE]") }
            self = .unmigrate(node: try arguments.first.map { (name: String) throws(ParseError) -> String in try node(name) })
        case "cleanup":
            let nodeName = try option("--node").map { (name: String) throws(ParseError) -> String in try node(name) }
            guard arguments.count <= 1 else { throw fail("expected: cleanup [RESOURCE] [--node NODE]") }
            self = .cleanup(resource: try arguments.first.map { (name: String) throws(ParseError) -> String in try resource(name) }, node: nodeName)
        case "forcestop", "forcestart":
            try exactly(1, "RESOURCE")
            let name = try resource(arguments[0])
            self = verb == "forcestop" ? .forceStop(name) : .forceStart(name)
        case "quorum":
            try exactly(1, "lost|gained")
            switch arguments[0] {
            case "lost": self = .quorum(false)
            case "gained": self = .quorum(true)
            default: throw fail("expected 'lost' or 'gained'")
            }
        case "wait":
            try exactly(1, "DURATION")
            guard let duration = Seconds(parsing: arguments[0]) else { throw fail("bad duration '\(arguments[0])'") }
            self = .wait(duration)
        default:
            throw fail("unknown event '\(verb)'; " + Self.usage)
        }
    }
}

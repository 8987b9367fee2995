import CleverModel
import Yams

/// The decoded config plus what the checks after decoding need: where each entry came from, and
/// every declared name (also of entries that failed to decode, so one typo does not turn every
/// reference to that entry into a second error).
struct DecodedConfig {
    var config: ClusterConfig
    var nodePaths: [String] = []
    var resourcePaths: [String] = []
    var groupPaths: [String] = []
    var constraints: [DecodedConstraint] = []
    var declaredNodes: Set<String> = []
    var declaredResources: Set<String> = []
    var declaredGroups: Set<String> = []
}

/// A constraint as written; an id left out is generated once every explicit id is known.
struct DecodedConstraint {
    var constraint: Constraint
    var path: String
    var hasExplicitID: Bool
}

extension ConfigDecoder {
    static let topLevelKeys = ["cluster", "nodes", "quorum", "resources", "groups", "constraints"]

    /// Decodes every entry as far as it goes (an entry with a bad value is kept with a default in its
    /// place, so the checks across entries still see it); the caller uses the result only when no
    /// diagnostic was reported.
    mutating func decodeDocument(_ root: Node) -> DecodedConfig? {
        guard let top = self.fields(root, path: "", known: Self.topLevelKeys) else { return nil }
        var decoded = DecodedConfig(config: ClusterConfig(name: ""))

        if let clusterNode = self.node(top, "cluster", required: true),
            let cluster = self.fields(clusterNode, path: "cluster", known: ["name", "epoch", "properties"])
        {
            decoded.config.name =
                self.value(cluster, "name", required: true, expected: "a cluster name", ValueSyntax.clusterName) ?? ""
            decoded.config.epoch =
                self.value(cluster, "epoch", expected: "an integer") { ValueSyntax.integer($0, atLeast: 1) } ?? 1
            if let propertiesNode = self.node(cluster, "properties", required: false) {
                decoded.config.properties = self.decodeProperties(propertiesNode, path: "cluster.properties")
            }
        }

        if let nodes = self.list(top, "nodes", required: true) {
            if nodes.isEmpty {
                self.report("the cluster needs at least one node", path: "nodes")
            }
            for (node, path) in nodes {
                if let name = self.declaredName(node, key: "name") { decoded.declaredNodes.insert(name) }
                if let config = self.decodeNode(node, path: path) {
                    decoded.config.nodes.append(config)
                    decoded.nodePaths.append(path)
                }
            }
        }

        if let quorumNode = self.node(top, "quorum", required: false) {
            decoded.config.quorum = self.decodeQuorum(quorumNode, path: "quorum")
        }

        for (node, path) in self.list(top, "resources") ?? [] {
            if let id = self.declaredName(node, key: "id") { decoded.declaredResources.insert(id) }
            if let resource = self.decodeResource(node, path: path) {
                decoded.config.resources.append(resource)
                decoded.resourcePaths.append(path)
            }
        }

        for (node, path) in self.list(top, "groups") ?? [] {
            if let id = self.declaredName(node, key: "id") { decoded.declaredGroups.insert(id) }
            if let group = self.decodeGroup(node, path: path) {
                decoded.config.groups.append(group)
                decoded.groupPaths.append(path)
            }
        }

        for (node, path) in self.list(top, "constraints") ?? [] {
            if let constraint = self.decodeConstraint(node, path: path) {
                decoded.constraints.append(constraint)
            }
        }
        return decoded
    }

    /// The name an entry declares, read without reporting anything (decoding reports its problems).
    func declaredName(_ node: Node, key: String) -> String? {
        guard case .mapping(let mapping) = node, case .scalar(let scalar)? = mapping[key] else { return nil }
        return scalar.string
    }

    // MARK: Cluster

    mutating func decodeProperties(_ node: Node, path: String) -> ClusterProperties {
        var properties = ClusterProperties()
        guard
            let fields = self.fields(
                node, path: path,
                known: [
                    "stickiness", "no-quorum-policy", "migration-threshold", "failure-timeout", "symmetric",
                    "self-fence-timeout",
                    "watchdog-timeout", "token", "consensus",
                ])
        else { return properties }
        if let score = self.value(fields, "stickiness", expected: "a score", ValueSyntax.score) {
            properties.defaultStickiness = score
        }
        if let policy = self.value(fields, "no-quorum-policy", expected: "a policy", { ValueSyntax.choice($0, of: NoQuorumPolicy.self) }) {
            properties.noQuorumPolicy = policy
        }
        if let threshold = self.value(fields, "migration-threshold", expected: "an integer", { ValueSyntax.integer($0, atLeast: 0) }) {
            properties.migrationThreshold = threshold
        }
        if let timeout = self.value(fields, "failure-timeout", expected: "a duration", ValueSyntax.durationOrNever) {
            properties.failureTimeout = timeout
        }
        if let symmetric = self.value(fields, "symmetric", expected: "true or false", ValueSyntax.boolean) {
            properties.symmetric = symmetric
        }
        if let timeout = self.value(fields, "self-fence-timeout", expected: "a duration", ValueSyntax.positiveDuration) {
            properties.selfFenceTimeout = timeout
        }
        properties.watchdogTimeout = self.value(fields, "watchdog-timeout", expected: "a duration", ValueSyntax.watchdogTimeout)
        properties.token = self.value(fields, "token", expected: "a duration", ValueSyntax.positiveDuration)
        properties.consensus = self.value(fields, "consensus", expected: "a duration", ValueSyntax.positiveDuration)
        return properties
    }

    // MARK: Nodes

    mutating func decodeNode(_ node: Node, path: String) -> NodeConfig? {
        guard let fields = self.fields(node, path: path, known: ["name", "id", "addresses", "attributes", "fence-agent", "fence-params", "watchdog", "watchdog-timeout"]) else {
            return nil
        }
        let name = self.value(fields, "name", required: true, expected: "a host name") { text in
            ValueSyntax.isHostName(text)
                ? .success(text)
                : .failure(ValueProblem("'\(text)' is not a valid node name", hint: "use the host name: letters, digits, '-'"))
        }
        let id = self.value(fields, "id", required: true, expected: "a positive integer") { text in
            ValueSyntax.integer(text, atLeast: 1).flatMap { id in
                // Corosync node ids are 32-bit.
                id <= Int(Int32.max) ? .success(id) : .failure(ValueProblem("node id \(id) is above \(Int32.max)"))
            }
        }
        let addresses = self.scalarList(fields, "addresses", required: true, expected: "an IP address", ValueSyntax.ipAddress)
        if let count = self.list(fields, "addresses")?.count, !(1...2).contains(count) {
            self.report(
                "a node has one or two addresses, found \(count)", path: KeyPath.child(path, "addresses"),
                hint: "one address per Corosync link")
        }
        let attributes = self.stringMap(fields, "attributes") ?? [:]
        let fenceAgent = self.value(fields, "fence-agent", expected: "a fence agent (name or path)") { text in
            text.isEmpty || text.contains(" ") ? .failure(ValueProblem("'\(text)' is not a program name", hint: "e.g. fence_ipmilan")) : .success(text)
        }
        let fenceParameters = self.stringMap(fields, "fence-params") ?? [:]
        let watchdog = self.value(fields, "watchdog", expected: "a watchdog device or none", ValueSyntax.watchdog)
        let watchdogTimeout = self.value(fields, "watchdog-timeout", expected: "a duration", ValueSyntax.watchdogTimeout)
        guard let name, let id else { return nil }
        return NodeConfig(name: name, id: id, addresses: addresses ?? [], attributes: attributes, fenceAgent: fenceAgent,
                          fenceParameters: fenceParameters, watchdog: watchdog, watchdogTimeout: watchdogTimeout)
    }

    // MARK: Quorum

    mutating func decodeQuorum(_ node: Node, path: String) -> QuorumConfig? {
        guard let fields = self.fields(node, path: path, known: ["qdevice", "algorithm", "ping", "timeout", "sync-timeout"]) else { return nil }
        var quorum = QuorumConfig(qdeviceHost: nil)
        quorum.qdeviceHost = self.value(fields, "qdevice", expected: "a host", ValueSyntax.host)
        if let algorithm = self.value(fields, "algorithm", expected: "an algorithm", { text in
            ["ffsplit", "lms"].contains(text)
                ? .success(text)
                : .failure(ValueProblem("'\(text)' is not a qdevice algorithm", hint: "ffsplit or lms"))
        }) {
            quorum.algorithm = algorithm
        }
        quorum.pingTargets = self.scalarList(fields, "ping", expected: "a host", ValueSyntax.host) ?? []
        quorum.timeout = self.value(fields, "timeout", expected: "a duration", ValueSyntax.qdeviceTimeout)
        quorum.syncTimeout = self.value(fields, "sync-timeout", expected: "a duration", ValueSyntax.qdeviceTimeout)
        if !quorum.pingTargets.isEmpty, quorum.qdeviceHost == nil, !fields.has("qdevice") {
            self.report(
                "ping heuristics need a qdevice", path: KeyPath.child(path, "ping"),
                hint: "add 'qdevice: HOST' (the host running corosync-qnetd)")
        }
        return quorum
    }
}

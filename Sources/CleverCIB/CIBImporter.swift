import CleverModel

/// One import: walks the CIB tree, fills the model and collects what it cannot express.
struct CIBImporter {
    let file: String
    let root: XMLNode
    var unsupported: [UnsupportedElement] = []
    var config: ClusterConfig
    /// Pacemaker resource id (primitive, group or clone) -> the model's resource id. A primitive
    /// inside a clone maps to the clone, as does `prim:N`.
    var resourceIDs: [String: String] = [:]
    /// Ids of resources left out (unsupported kinds), so constraints on them are reported, not errors.
    var skippedResources: Set<String> = []
    /// Resource ids with their `cli-ban`/`cli-prefer` constraints turned into marks.
    var marks: [PlacementMark] = []
    var now: Timestamp?
    /// Whether rsc_defaults or crm_config set a stickiness, which clone instances then inherit.
    var defaultStickinessConfigured = false
    /// Ids of the promotable resources imported so far (the model's lookups by id are linear).
    var promotableIDs: Set<String> = []
    /// Node id as the CIB spells it -> uname, for rules on `#id`.
    var unameOfNodeID: [String: String] = [:]

    init(file: String, root: XMLNode) {
        self.file = file
        self.root = root
        let baseName = file.split(separator: "/").last.map(String.init) ?? file
        let name = baseName.hasSuffix(".xml") ? String(baseName.dropLast(4)) : baseName
        // Pacemaker's defaults, which differ from CleverVM's: no stickiness, no migration threshold
        // (INFINITY) and failures that never expire.
        let properties = ClusterProperties(
            defaultStickiness: 0, noQuorumPolicy: .stop, migrationThreshold: Score.infinityValue,
            failureTimeout: nil, symmetric: true)
        self.config = ClusterConfig(name: name, properties: properties)
    }

    mutating func run() throws(CIBError) -> CIBImportResult {
        if let date = self.root["execution-date"] {
            guard let seconds = Double(date), seconds.isFinite else {
                throw self.error(at: "cib", self.root, "execution-date \"\(date)\" is not a number of seconds since the epoch")
            }
            self.now = Timestamp(seconds: seconds)
        } else if let written = self.root["cib-last-written"] {
            self.now = PacemakerValues.ctimeDate(written)
        }
        if let epoch = self.root["epoch"], let value = Int(epoch) { self.config.epoch = value }

        guard let configuration = self.root.child(named: "configuration") else {
            throw self.error(at: "cib", self.root, "no <configuration> section")
        }
        for section in configuration.children {
            let path = "configuration/\(section.name)"
            switch section.name {
            case "crm_config": try self.importClusterProperties(section, path: path)
            case "rsc_defaults": try self.importResourceDefaults(section, path: path)
            case "nodes": try self.importNodes(section, path: path)
            case "resources", "constraints": break  // below, in order
            case "op_defaults":
                self.report(path, "operation defaults are not imported; CleverVM sets operation timeouts per resource")
            case "fencing-topology":
                self.report(path, "fencing topology is not imported; CleverVM fences by quorum and self-fencing")
            case "tags": self.report(path, "tags are not supported")
            case "acls": self.report(path, "ACLs are not imported; access to the CleverVM socket is root-only")
            case "alerts": self.report(path, "alerts are not imported")
            default: self.report(path, "unknown configuration section")
            }
        }
        if let resources = configuration.child(named: "resources") {
            try self.importResources(resources, path: "configuration/resources")
        }
        if let constraints = configuration.child(named: "constraints") {
            try self.importConstraints(constraints, path: "configuration/constraints")
        }

        var state = ClusterState()
        state.hasQuorum = self.root["have-quorum"].flatMap(PacemakerValues.boolean) ?? false
        if let status = self.root.child(named: "status") {
            try self.importStatus(status, into: &state)
        } else {
            for node in self.config.nodes {
                state.nodes[node.name] = NodeState(
                    status: .offline, standby: Self.standby(node.attributes), attributes: node.attributes)
            }
        }
        state.marks = self.marks
        return CIBImportResult(config: self.config, state: state, unsupported: self.unsupported, now: self.now)
    }

    // MARK: - Reporting

    mutating func report(_ path: String, _ reason: String) {
        self.unsupported.append(UnsupportedElement(elementPath: path, reason: reason))
    }

    func error(at path: String, _ node: XMLNode, _ message: String) -> CIBError {
        CIBError(file: self.file, element: path, line: node.line, message: message)
    }

    func required(_ attribute: String, of node: XMLNode, path: String) throws(CIBError) -> String {
        guard let value = node[attribute], !value.isEmpty else {
            throw self.error(at: path, node, "missing required attribute \"\(attribute)\"")
        }
        return value
    }

    static func standby(_ attributes: [String: String]) -> Bool {
        attributes["standby"].flatMap(PacemakerValues.boolean) ?? false
    }

    // MARK: - nvpair sets

    /// The name/value pairs of every `*_attributes` / `cluster_property_set` child, in order. Sets
    /// with rules (conditional attributes) are reported and skipped.
    mutating func nvpairs(of node: XMLNode, sets: Set<String>, path: String) -> [(name: String, value: String, path: String)] {
        var pairs: [(name: String, value: String, path: String)] = []
        for set in node.children where sets.contains(set.name) {
            let setPath = "\(path)/\(set.pathStep)"
            if set["id-ref"] != nil {
                self.report(setPath, "references to attribute sets (id-ref) are not supported")
                continue
            }
            if set.child(named: "rule") != nil {
                self.report(setPath, "attribute sets with rules (conditional values) are not supported; set skipped")
                continue
            }
            for pair in set.children {
                let pairPath = "\(setPath)/\(pair.pathStep)"
                guard pair.name == "nvpair", let name = pair["name"] else {
                    self.report(pairPath, "unexpected element in an attribute set")
                    continue
                }
                guard let value = pair["value"] else {
                    self.report(pairPath, "nvpair without a value (it unsets \(name) in Pacemaker); ignored")
                    continue
                }
                pairs.append((name, value, pairPath))
            }
        }
        return pairs
    }

    // MARK: - crm_config, rsc_defaults, nodes

    /// Informational properties Pacemaker maintains itself; they carry no policy.
    static let informationalProperties: Set<String> = [
        "dc-version", "cluster-infrastructure", "cluster-name", "have-watchdog", "last-lrm-refresh",
    ]

    mutating func importClusterProperties(_ section: XMLNode, path: String) throws(CIBError) {
        for child in section.children where child.name != "cluster_property_set" {
            self.report("\(path)/\(child.pathStep)", "unexpected element in crm_config")
        }
        for pair in self.nvpairs(of: section, sets: ["cluster_property_set"], path: path) {
            switch pair.name {
            case "no-quorum-policy":
                switch pair.value.lowercased() {
                case "stop": self.config.properties.noQuorumPolicy = .stop
                case "freeze": self.config.properties.noQuorumPolicy = .freeze
                case "ignore": self.config.properties.noQuorumPolicy = .ignore
                default:
                    self.report(pair.path, "no-quorum-policy \"\(pair.value)\" is not supported (stop, freeze, ignore); using stop")
                }
            case "symmetric-cluster":
                guard let value = PacemakerValues.boolean(pair.value) else {
                    throw CIBError(file: self.file, element: pair.path, message: "symmetric-cluster \"\(pair.value)\" is not a boolean")
                }
                self.config.properties.symmetric = value
            case "stonith-enabled":
                // CleverVM's scheduler never waits for fencing; with fencing disabled Pacemaker agrees.
                if PacemakerValues.boolean(pair.value) != false {
                    self.report(pair.path, "ignored: CleverVM fences by quorum and self-fencing, not with STONITH devices")
                }
            case "default-resource-stickiness":
                try self.setDefaultStickiness(pair.value, path: pair.path)
            case "cluster-name":
                self.config.name = pair.value
            case let name where Self.informationalProperties.contains(name):
                break
            default:
                self.report(pair.path, "cluster property \(pair.name) is not supported")
            }
        }
    }

    mutating func setDefaultStickiness(_ text: String, path: String) throws(CIBError) {
        guard let score = Score(parsing: text) else {
            throw CIBError(file: self.file, element: path, message: "resource-stickiness \"\(text)\" is not a score")
        }
        self.config.properties.defaultStickiness = score
        self.defaultStickinessConfigured = true
    }

    mutating func importResourceDefaults(_ section: XMLNode, path: String) throws(CIBError) {
        for pair in self.nvpairs(of: section, sets: ["meta_attributes"], path: path) {
            switch pair.name {
            case "resource-stickiness":
                try self.setDefaultStickiness(pair.value, path: pair.path)
            case "migration-threshold":
                self.config.properties.migrationThreshold = try self.migrationThreshold(pair.value, path: pair.path)
            case "failure-timeout":
                self.config.properties.failureTimeout = try self.failureTimeout(pair.value, path: pair.path)
            default:
                self.report(pair.path, "resource default \(pair.name) is not supported")
            }
        }
        for child in section.children where child.name != "meta_attributes" {
            self.report("\(path)/\(child.pathStep)", "unexpected element in rsc_defaults")
        }
    }

    /// 0 and INFINITY both mean "no threshold" in Pacemaker.
    func migrationThreshold(_ text: String, path: String) throws(CIBError) -> Int {
        guard let value = PacemakerValues.integer(text), value >= 0 else {
            throw CIBError(file: self.file, element: path, message: "migration-threshold \"\(text)\" is not a non-negative integer")
        }
        return value == 0 ? Score.infinityValue : value
    }

    /// 0 means "failures never expire" in Pacemaker.
    func failureTimeout(_ text: String, path: String) throws(CIBError) -> Seconds? {
        guard let value = PacemakerValues.duration(text) else {
            throw CIBError(file: self.file, element: path, message: "failure-timeout \"\(text)\" is not a duration")
        }
        return value.value == 0 ? nil : value
    }

    mutating func importNodes(_ section: XMLNode, path: String) throws(CIBError) {
        var nextID = 1
        for node in section.children {
            let nodePath = "\(path)/\(node.pathStep)"
            guard node.name == "node" else {
                self.report(nodePath, "unexpected element in nodes")
                continue
            }
            let uname = try self.required("uname", of: node, path: nodePath)
            if let type = node["type"], type != "member", type != "normal" {
                self.report(nodePath, "node type \(type) is not supported; node skipped")
                continue
            }
            var id = node["id"].flatMap { Int($0) } ?? 0
            if id <= 0 || self.config.nodes.contains(where: { $0.id == id }) {
                while self.config.nodes.contains(where: { $0.id == nextID }) { nextID += 1 }
                id = nextID
            }
            if let cibID = node["id"] { self.unameOfNodeID[cibID] = uname }
            var attributes: [String: String] = [:]
            for pair in self.nvpairs(of: node, sets: ["instance_attributes"], path: nodePath) {
                attributes[pair.name] = pair.value
            }
            for child in node.children where child.name != "instance_attributes" {
                let reason = child.name == "utilization" ? "utilization is not supported" : "unexpected element in a node"
                self.report("\(nodePath)/\(child.pathStep)", reason)
            }
            self.config.nodes.append(NodeConfig(name: uname, id: id, addresses: [], attributes: attributes))
        }
    }
}

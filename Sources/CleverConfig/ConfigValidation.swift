import CleverModel

/// Checks that span entries, run after decoding: unique names, references, group rules, and order
/// cycles. Each problem is reported at the entry or reference that causes it.
extension ConfigDecoder {
    mutating func validate(_ decoded: inout DecodedConfig) {
        self.checkNodes(decoded)
        self.checkUniqueIDs(decoded)
        decoded.generateMissingConstraintIDs()
        self.checkVolumePorts(decoded)
        self.checkVMs(decoded)
        self.checkGroups(decoded)
        self.checkConstraints(decoded)
        self.checkOrderCycles(decoded)
        self.checkFencing(decoded)
    }

    // MARK: Names

    private mutating func checkNodes(_ decoded: DecodedConfig) {
        var names: [String: String] = [:]
        var ids: [Int: String] = [:]
        var addresses: [String: String] = [:]
        // knet needs the same links on every node: as many addresses, of the same family per link.
        if let reference = zip(decoded.config.nodes, decoded.nodePaths).first(where: { !$0.0.addresses.isEmpty }) {
            let families = reference.0.addresses.map(IPAddress.isIPv4)
            for (node, path) in zip(decoded.config.nodes, decoded.nodePaths) where !node.addresses.isEmpty {
                if node.addresses.count != families.count {
                    self.report(
                        "node '\(node.name)' has \(node.addresses.count) link addresses, node '\(reference.0.name)' has \(families.count)",
                        path: KeyPath.child(path, "addresses"), hint: "every node needs one address per link")
                    continue
                }
                for (index, address) in node.addresses.enumerated() where IPAddress.isIPv4(address) != families[index] {
                    self.report(
                        "link \(index) mixes IPv4 and IPv6 across nodes",
                        path: KeyPath.index(KeyPath.child(path, "addresses"), index),
                        hint: "use the same address family for a link on every node")
                }
            }
        }
        for (node, path) in zip(decoded.config.nodes, decoded.nodePaths) {
            if let first = names[node.name] {
                self.reportDuplicate("node name '\(node.name)'", at: KeyPath.child(path, "name"), first: KeyPath.child(first, "name"))
            } else {
                names[node.name] = path
            }
            if let first = ids[node.id] {
                self.reportDuplicate("node id \(node.id)", at: KeyPath.child(path, "id"), first: KeyPath.child(first, "id"))
            } else {
                ids[node.id] = path
            }
            for (index, address) in node.addresses.enumerated() {
                let addressPath = KeyPath.index(KeyPath.child(path, "addresses"), index)
                if let first = addresses[address] {
                    self.reportDuplicate("address \(address)", at: addressPath, first: first)
                } else {
                    addresses[address] = addressPath
                }
            }
        }
    }

    /// Resources, groups and constraints share one id space, as in Pacemaker's CIB.
    private mutating func checkUniqueIDs(_ decoded: DecodedConfig) {
        var seen: [String: String] = [:]
        var entries: [(id: String, path: String)] = []
        entries += zip(decoded.config.resources, decoded.resourcePaths).map { ($0.id, KeyPath.child($1, "id")) }
        entries += zip(decoded.config.groups, decoded.groupPaths).map { ($0.id, KeyPath.child($1, "id")) }
        for constraint in decoded.constraints where constraint.hasExplicitID {
            entries.append((constraint.constraint.id, KeyPath.child(constraint.innerPath, "id")))
        }
        for entry in entries {
            if let first = seen[entry.id] {
                self.reportDuplicate("id '\(entry.id)'", at: entry.path, first: first)
            } else {
                seen[entry.id] = entry.path
            }
        }
    }

    private mutating func reportDuplicate(_ what: String, at path: String, first: String) {
        let firstPosition = self.position(of: first)
        self.report(
            "\(what) is already used by \(KeyPath.parent(of: first) ?? first)", path: path,
            hint: "first used at line \(firstPosition.line); each must be unique")
    }

    private mutating func checkVolumePorts(_ decoded: DecodedConfig) {
        var ports: [Int: String] = [:]
        for (resource, path) in zip(decoded.config.resources, decoded.resourcePaths) {
            guard case .volume(let spec) = resource.kind else { continue }
            if let first = ports[spec.port] {
                self.report(
                    "port \(spec.port) is already used by volume \(first)", path: KeyPath.child(path, "port"),
                    hint: "each volume replicates on its own port")
            } else {
                ports[spec.port] = resource.id
            }
        }
    }

    // MARK: References

    /// Reports `id` at `path` unless a resource (or, if allowed, a group) declares it.
    @discardableResult
    private mutating func checkReference(
        _ id: String, at path: String, in decoded: DecodedConfig, allowGroups: Bool
    ) -> Bool {
        if decoded.declaredResources.contains(id) || (allowGroups && decoded.declaredGroups.contains(id)) {
            return true
        }
        let known = Array(decoded.declaredResources) + (allowGroups ? Array(decoded.declaredGroups) : [])
        let what = allowGroups ? "resource or group" : "resource"
        let hint = EditDistance.nearest(to: id, among: known.sorted()).map { "did you mean '\($0)'?" }
            ?? "define it under '\(allowGroups ? "resources' or 'groups" : "resources")'"
        self.report("'\(id)' is not a defined \(what)", path: path, hint: hint)
        return false
    }

    private mutating func checkVMs(_ decoded: DecodedConfig) {
        for (resource, path) in zip(decoded.config.resources, decoded.resourcePaths) {
            guard case .vm(let spec) = resource.kind else { continue }
            for (index, volume) in spec.volumes.enumerated() {
                let volumePath = KeyPath.index(KeyPath.child(path, "volumes"), index)
                self.checkKind(volume, at: volumePath, in: decoded, expected: "volume")
            }
            for (index, address) in spec.addresses.enumerated() {
                let addressPath = KeyPath.index(KeyPath.child(path, "addresses"), index)
                self.checkKind(address, at: addressPath, in: decoded, expected: "ip")
            }
            if let nvram = spec.nvramVolume {
                self.checkKind(nvram, at: KeyPath.child(path, "nvram"), in: decoded, expected: "volume")
            }
            if let stateVolume = spec.stateVolume {
                // Hibernating writes the RAM image over the state volume: it must not hold guest data.
                if spec.volumes.contains(stateVolume) {
                    self.report(
                        "state-volume '\(stateVolume)' is also a guest disk; hibernating would overwrite the guest's data",
                        path: KeyPath.child(path, "state-volume"),
                        hint: "give the VM a volume of its own for its saved state (at least its memory size)")
                } else {
                    self.checkKind(stateVolume, at: KeyPath.child(path, "state-volume"), in: decoded, expected: "volume")
                }
            }
        }
    }

    private mutating func checkKind(_ id: String, at path: String, in decoded: DecodedConfig, expected: String) {
        guard self.checkReference(id, at: path, in: decoded, allowGroups: false) else { return }
        if let target = decoded.config.resource(named: id), target.kind.typeName != expected {
            self.report(
                "'\(id)' is a \(target.kind.typeName) resource, not \(expected == "ip" ? "an" : "a") \(expected)",
                path: path)
        }
    }

    private mutating func checkGroups(_ decoded: DecodedConfig) {
        var groupOf: [String: String] = [:]
        for (group, path) in zip(decoded.config.groups, decoded.groupPaths) {
            var seenInGroup: Set<String> = []
            for (index, member) in group.members.enumerated() {
                let memberPath = KeyPath.index(KeyPath.child(path, "members"), index)
                if decoded.declaredGroups.contains(member) && !decoded.declaredResources.contains(member) {
                    self.report("'\(member)' is a group; groups cannot be nested", path: memberPath)
                    continue
                }
                guard self.checkReference(member, at: memberPath, in: decoded, allowGroups: false) else { continue }
                if !seenInGroup.insert(member).inserted {
                    self.report("'\(member)' is listed twice in group '\(group.id)'", path: memberPath)
                    continue
                }
                if let other = groupOf[member] {
                    self.report(
                        "'\(member)' is already a member of group '\(other)'", path: memberPath,
                        hint: "a resource belongs to at most one group")
                    continue
                }
                groupOf[member] = group.id
                if let resource = decoded.config.resource(named: member), resource.isClone {
                    self.report(
                        "'\(member)' is a clone and cannot be a group member", path: memberPath,
                        hint: "only single-instance resources go in a group; use constraints for clones")
                }
            }
        }
    }

    private mutating func checkConstraints(_ decoded: DecodedConfig) {
        for entry in decoded.constraints {
            let path = entry.innerPath
            switch entry.constraint {
            case .location(let location):
                let resourcePath = KeyPath.child(path, "resource")
                if self.checkReference(location.resource, at: resourcePath, in: decoded, allowGroups: true) {
                    self.checkRole(location.role, of: location.resource, at: KeyPath.child(path, "role"), in: decoded)
                }
                if case .node(let node, _) = location.placement, !decoded.declaredNodes.contains(node) {
                    let hint = EditDistance.nearest(to: node, among: decoded.declaredNodes.sorted())
                        .map { "did you mean '\($0)'?" } ?? "define it under 'nodes'"
                    self.report("'\(node)' is not a defined node", path: KeyPath.child(path, "node"), hint: hint)
                }
            case .colocation(let colocation):
                let dependentOK = self.checkReference(
                    colocation.dependent, at: KeyPath.child(path, "resource"), in: decoded, allowGroups: true)
                let primaryOK = self.checkReference(
                    colocation.primary, at: KeyPath.child(path, "with"), in: decoded, allowGroups: true)
                if dependentOK {
                    self.checkRole(colocation.dependentRole, of: colocation.dependent, at: KeyPath.child(path, "role"), in: decoded)
                }
                if primaryOK {
                    self.checkRole(colocation.primaryRole, of: colocation.primary, at: KeyPath.child(path, "with-role"), in: decoded)
                }
                if colocation.dependent == colocation.primary {
                    self.report("a resource cannot be colocated with itself", path: KeyPath.child(path, "with"))
                }
            case .order(let order):
                let firstOK = self.checkReference(order.first, at: KeyPath.child(path, "first"), in: decoded, allowGroups: true)
                let thenOK = self.checkReference(order.then, at: KeyPath.child(path, "then"), in: decoded, allowGroups: true)
                if firstOK {
                    self.checkAction(order.firstAction, of: order.first, at: KeyPath.child(path, "first-action"), in: decoded)
                }
                if thenOK {
                    self.checkAction(order.thenAction, of: order.then, at: KeyPath.child(path, "then-action"), in: decoded)
                }
                if order.first == order.then, order.firstAction == order.thenAction {
                    self.report(
                        "'\(order.first) \(order.firstAction.rawValue)' cannot be ordered before itself",
                        path: KeyPath.child(path, "then"))
                }
            }
        }
    }

    /// Promoted and Unpromoted only exist for promotable clones.
    private mutating func checkRole(_ role: ConstraintRole?, of id: String, at path: String, in decoded: DecodedConfig) {
        guard let role, role != .started, let resource = decoded.config.resource(named: id), !resource.isPromotable
        else { return }
        self.report(
            "role \(role.rawValue) needs a promotable resource, and '\(id)' is not one", path: path,
            hint: "use Started, or make '\(id)' promotable")
    }

    private mutating func checkAction(_ action: ResourceAction, of id: String, at path: String, in decoded: DecodedConfig) {
        guard action == .promote || action == .demote, let resource = decoded.config.resource(named: id),
            !resource.isPromotable
        else { return }
        self.report(
            "'\(id)' is not promotable, so it has no \(action.rawValue) action", path: path, hint: "use start or stop")
    }

    // MARK: Cycles

    private mutating func checkOrderCycles(_ decoded: DecodedConfig) {
        let graph = decoded.orderGraph()
        for cycle in graph.cycles() {
            let origins = cycle.origins.reduce(into: [OrderGraph.Origin]()) { list, origin in
                if !list.contains(origin) { list.append(origin) }
            }
            let blamed = origins.first { $0.kind == .constraint } ?? origins[0]
            self.report(
                "order cycle: \(cycle.description)", path: blamed.path,
                hint: "it comes from \(origins.map(\.description).joined(separator: ", ")); remove or reverse one order")
        }
    }
}

extension DecodedConstraint {
    /// `constraints[3].order`: where the constraint's own keys live.
    var innerPath: String {
        let kind: String
        switch self.constraint {
        case .location: kind = "location"
        case .colocation: kind = "colocation"
        case .order: kind = "order"
        }
        return KeyPath.child(self.path, kind)
    }
}

extension DecodedConfig {
    /// Ids left out are generated from what the constraint relates: `location-mba7-alpha`,
    /// `location-mba7-rule-1`, `colocation-mba7-disk0`, `order-disk0-mba7`; `-2`, `-3`, … on a clash.
    mutating func generateMissingConstraintIDs() {
        var used = Set(self.config.resources.map(\.id))
            .union(self.config.groups.map(\.id))
            .union(self.constraints.filter(\.hasExplicitID).map(\.constraint.id))
        var ruleCounts: [String: Int] = [:]
        for index in self.constraints.indices where !self.constraints[index].hasExplicitID {
            var base: String
            switch self.constraints[index].constraint {
            case .location(let location):
                switch location.placement {
                case .node(let node, _): base = "location-\(location.resource)-\(node)"
                case .rule:
                    ruleCounts[location.resource, default: 0] += 1
                    base = "location-\(location.resource)-rule-\(ruleCounts[location.resource]!)"
                }
                if let role = location.role { base += "-\(role.rawValue)" }
            case .colocation(let colocation): base = "colocation-\(colocation.dependent)-\(colocation.primary)"
            case .order(let order): base = "order-\(order.first)-\(order.then)"
            }
            var id = base
            var suffix = 2
            while used.contains(id) {
                id = "\(base)-\(suffix)"
                suffix += 1
            }
            used.insert(id)
            self.constraints[index].constraint.setID(id)
        }
        self.config.constraints = self.constraints.map(\.constraint)
    }

    func orderGraph() -> OrderGraph {
        var graph = OrderGraph()
        typealias Step = OrderGraph.Step
        let groups = Dictionary(self.config.groups.map { ($0.id, $0.members) }, uniquingKeysWith: { first, _ in first })

        // A group in an order stands for its last member when it comes first (the group has
        // started once its last member has) and for its first member when it comes second; stop
        // and demote run through the members backwards.
        func step(_ id: String, _ action: ResourceAction, asFirst: Bool) -> Step {
            guard let members = groups[id], let head = members.first, let tail = members.last else {
                return Step(resource: id, action: action)
            }
            let forward = action == .start || action == .promote
            return Step(resource: asFirst == forward ? tail : head, action: action)
        }

        for entry in self.constraints {
            guard case .order(let order) = entry.constraint else { continue }
            let origin = OrderGraph.Origin(kind: .constraint, id: order.id, path: entry.innerPath)
            graph.add(
                step(order.first, order.firstAction, asFirst: true), before: step(order.then, order.thenAction, asFirst: false),
                origin: origin, symmetrical: order.symmetrical)
        }
        for (group, path) in zip(self.config.groups, self.groupPaths) {
            let origin = OrderGraph.Origin(kind: .group, id: group.id, path: KeyPath.child(path, "members"))
            // A member listed twice is reported elsewhere; here it would only add a false cycle.
            let members = group.members.reduce(into: [String]()) { list, member in
                if !list.contains(member) { list.append(member) }
            }
            for (earlier, later) in zip(members, members.dropFirst()) {
                graph.add(
                    Step(resource: earlier, action: .start), before: Step(resource: later, action: .start), origin: origin,
                    symmetrical: true)
            }
        }
        for (resource, path) in zip(self.config.resources, self.resourcePaths) {
            guard case .vm(let spec) = resource.kind else { continue }
            let origin = OrderGraph.Origin(kind: .vm, id: resource.id, path: path)
            let vmStart = Step(resource: resource.id, action: .start)
            for volume in spec.volumes {
                let ready: ResourceAction = self.config.resource(named: volume)?.isPromotable == false ? .start : .promote
                graph.add(Step(resource: volume, action: ready), before: vmStart, origin: origin, symmetrical: true)
            }
            for address in spec.addresses {
                graph.add(vmStart, before: Step(resource: address, action: .start), origin: origin, symmetrical: true)
            }
        }
        return graph
    }
}

extension Constraint {
    mutating func setID(_ id: String) {
        switch self {
        case .location(var location):
            location.id = id
            self = .location(location)
        case .colocation(var colocation):
            colocation.id = id
            self = .colocation(colocation)
        case .order(var order):
            order.id = id
            self = .order(order)
        }
    }
}

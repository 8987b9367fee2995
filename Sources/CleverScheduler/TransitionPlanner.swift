import CleverModel

/// Turns target placement into ordered actions: per resource the moves its roles need, then the
/// ordering edges (within a resource, from order constraints and their inverses), then a
/// deterministic topological sort.
struct TransitionPlanner {
    let config: ClusterConfig
    let state: ClusterState
    let constraints: [Constraint]
    let targets: [String: Target]
    let index: ConfigIndex

    private struct Draft {
        var resource: String
        var node: String
        var action: ResourceAction
        var reason: String
        var after: Set<Int> = []
    }

    /// Per resource: the actions that stand for it as the first or the second side of an order.
    private struct Handles {
        var asFirst: [ResourceAction: [Int]] = [:]
        var asThen: [ResourceAction: [Int]] = [:]
        /// (before, after) pairs inside one resource that `add` could not express when created.
        var internalEdges: [(Int, Int)] = []
    }

    func plan() -> [Action] {
        var drafts: [Draft] = []
        var handles: [String: Handles] = [:]
        var liveMigrations: Set<String> = []
        var dualPrimaryAllowed: Set<String> = []
        var resourcesWithDrafts: Set<String> = []

        func add(_ resource: String, _ node: String, _ action: ResourceAction, _ reason: String, after: [Int] = []) -> Int {
            drafts.append(Draft(resource: resource, node: node, action: action, reason: reason, after: Set(after)))
            resourcesWithDrafts.insert(resource)
            return drafts.count - 1
        }

        var colocationsByDependent: [String: [ColocationConstraint]] = [:]
        for case .colocation(let colocation) in self.constraints {
            colocationsByDependent[colocation.dependent, default: []].append(colocation)
        }
        // Live migrations first: they decide which promotable volumes may be dual-primary briefly.
        for resource in self.config.resources where !resource.isClone {
            if self.migration(of: resource) != nil {
                liveMigrations.insert(resource.id)
                for colocation in colocationsByDependent[resource.id] ?? []
                where colocation.primaryRole == .promoted && colocation.score.isInfinite {
                    dualPrimaryAllowed.insert(colocation.primary)
                }
            }
        }

        for resource in self.config.resources {
            var handle = Handles()
            if resource.isClone {
                self.planClone(resource, dualPrimary: dualPrimaryAllowed.contains(resource.id), add: add, handle: &handle)
            } else {
                self.planPrimitive(resource, add: add, handle: &handle)
            }
            for (before, after) in handle.internalEdges { drafts[after].after.insert(before) }
            handles[resource.id] = handle
        }

        // Pacemaker's restart along a mandatory order: when `first` is stopped or demoted on a node (a recovery, a
        // restart) while `then` stays active there with nothing planned, `then` is restarted around it — stopped
        // before, started again after (the order edges place both). A VM whose volume process died has seen I/O
        // errors; it must not simply go on over a recovered disk. Repeats until nothing changes (chains of orders).
        var restarted = true
        while restarted {
            restarted = false
            for case .order(let order) in self.constraints where order.kind == .mandatory && order.symmetrical {
                guard let then = self.index.resources[order.then], !then.isClone, handles[then.id] != nil,
                    !resourcesWithDrafts.contains(then.id)
                else { continue }
                let interrupted = Set(((handles[order.first]?.asThen[.stop] ?? []) + (handles[order.first]?.asThen[.demote] ?? []))
                    .map { drafts[$0].node })
                for (node, role) in self.currentRoles(of: then.id).sorted(by: { $0.key < $1.key })
                where role == .started && interrupted.contains(node) {
                    let stop = add(then.id, node, .stop, "restart: \(order.first) is restarted on \(node)")
                    let start = add(then.id, node, .start, "restart after \(order.first) on \(node)", after: [stop])
                    handles[then.id]!.asFirst[.stop, default: []].append(stop)
                    handles[then.id]!.asThen[.stop, default: []].append(stop)
                    handles[then.id]!.asFirst[.start, default: []].append(start)
                    handles[then.id]!.asThen[.start, default: []].append(start)
                    if then.monitorInterval != nil { _ = add(then.id, node, .monitor, "recurring monitor", after: [start]) }
                    restarted = true
                }
            }
        }

        // Groups stand for their members in order constraints.
        for group in self.config.groups {
            var handle = Handles()
            for member in group.members {
                for (action, ids) in handles[member]?.asFirst ?? [:] { handle.asFirst[action, default: []] += ids }
                for (action, ids) in handles[member]?.asThen ?? [:] { handle.asThen[action, default: []] += ids }
            }
            handles[group.id] = handle
        }

        for case .order(let order) in self.constraints {
            let firsts = handles[order.first]?.asFirst[order.firstAction] ?? []
            let thens = handles[order.then]?.asThen[order.thenAction] ?? []
            for then in thens { drafts[then].after.formUnion(firsts) }
            guard order.symmetrical, let inverseFirst = order.firstAction.inverse,
                let inverseThen = order.thenAction.inverse
            else { continue }
            let inverseBefore = handles[order.then]?.asFirst[inverseThen] ?? []
            let inverseAfter = handles[order.first]?.asThen[inverseFirst] ?? []
            for later in inverseAfter { drafts[later].after.formUnion(inverseBefore) }
        }

        return Self.sorted(drafts.map { ($0.resource, $0.node, $0.action, $0.reason, $0.after) })
    }

    // MARK: - Per resource

    private func isOnline(_ node: String) -> Bool { self.state.nodes[node]?.status == .online }

    /// (source, target) when the resource can move live instead of stop + start.
    private func migration(of resource: ResourceConfig) -> (String, String)? {
        let meta = self.index.meta(of: resource.id, in: self.config)
        guard meta.allowMigrate ?? resource.kind.supportsLiveMigration else { return nil }
        let active = self.currentRoles(of: resource.id)
        guard active.count == 1, let (source, role) = active.first, role == .started, self.isOnline(source),
            let target = self.targets[resource.id]?.nodes.first, target != source, self.isOnline(target)
        else { return nil }
        return (source, target)
    }

    /// Roles on reachable nodes. What ran on an offline node is gone: the node was fenced or
    /// fenced itself before the survivors act.
    private func currentRoles(of resource: String) -> [String: ResourceRole] {
        (self.state.resources[resource] ?? [:]).filter { $0.value.role.isActive && self.isOnline($0.key) }.mapValues(\.role)
    }

    private func planPrimitive(
        _ resource: ResourceConfig, add: (String, String, ResourceAction, String, [Int]) -> Int, handle: inout Handles
    ) {
        let id = resource.id
        let target = self.targets[id]?.nodes.first
        let current = self.currentRoles(of: id)
        if let (source, destination) = self.migration(of: resource) {
            let to = add(id, source, .migrateTo, "live migration from \(source) to \(destination)", [])
            let from = add(id, destination, .migrateFrom, "live migration from \(source) to \(destination)", [to])
            let stop = add(id, source, .stop, "clean up after migrating to \(destination)", [from])
            handle.asThen[.start] = [to]
            handle.asThen[.stop] = [to]
            handle.asFirst[.start] = [from]
            handle.asFirst[.stop] = [stop]
            if resource.monitorInterval != nil {
                _ = add(id, destination, .monitor, "recurring monitor", [from])
            }
            return
        }
        var stops: [Int] = []
        for (node, role) in current.sorted(by: { $0.key < $1.key }) {
            if node == target, role != .failed { continue }
            let reason: String
            if role == .failed { reason = "recover from failure on \(node)" }
            else if let target { reason = "move to \(target)" }
            else { reason = "stop: cannot or must not run" }
            stops.append(add(id, node, .stop, reason, []))
        }
        handle.asFirst[.stop] = stops
        handle.asThen[.stop] = stops
        if let target, current[target] == nil || current[target] == .failed {
            let reason = current[target] == .failed ? "restart on \(target) after the failure"
                : current.isEmpty ? "start on \(target)" : "start on \(target) after stopping elsewhere"
            let start = add(id, target, .start, reason, stops)
            handle.asFirst[.start] = [start]
            handle.asThen[.start] = [start]
            if resource.monitorInterval != nil {
                _ = add(id, target, .monitor, "recurring monitor", [start])
            }
        }
    }

    private func planClone(
        _ resource: ResourceConfig, dualPrimary: Bool,
        add: (String, String, ResourceAction, String, [Int]) -> Int, handle: inout Handles
    ) {
        let id = resource.id
        let current = self.currentRoles(of: id)
        let target = self.targets[id]?.roles ?? [:]
        let nodes = Set(current.keys).union(target.keys).sorted()
        var demotes: [Int] = []
        var promotes: [Int] = []
        for node in nodes {
            let now = current[node]
            let wanted = target[node]
            var chain: [Int] = []
            if now == .failed {
                // The failed instance may have been the promoted one: its stop stands for a demotion too, so what
                // needs the promoted instance stops first and no other instance is promoted before it is down.
                let stop = add(id, node, .stop, "recover from failure on \(node)", [])
                chain.append(stop)
                demotes.append(stop)
                handle.asFirst[.demote, default: []].append(stop)
                handle.asThen[.demote, default: []].append(stop)
            }
            if now == .promoted, wanted != .promoted {
                let demote = add(id, node, .demote, wanted == nil ? "stop on \(node)" : "promoted elsewhere", chain)
                demotes.append(demote)
                chain.append(demote)
                handle.asFirst[.demote, default: []].append(demote)
                handle.asThen[.demote, default: []].append(demote)
            }
            if now != nil, now != .failed, wanted == nil {
                let stop = add(id, node, .stop, "no instance on \(node)", chain)
                chain.append(stop)
                handle.asFirst[.stop, default: []].append(stop)
                handle.asThen[.stop, default: []].append(stop)
            }
            if wanted != nil, now == nil || now == .failed {
                let start = add(id, node, .start, "instance on \(node)", chain)
                chain.append(start)
                handle.asFirst[.start, default: []].append(start)
                handle.asThen[.start, default: []].append(start)
            }
            if wanted == .promoted, now != .promoted {
                let promote = add(id, node, .promote, "promote on \(node)", chain)
                chain.append(promote)
                promotes.append(promote)
                handle.asFirst[.promote, default: []].append(promote)
                handle.asThen[.promote, default: []].append(promote)
            }
            if let wanted, resource.monitorInterval != nil, let last = chain.last, now != wanted.resourceRole {
                _ = add(id, node, .monitor, "recurring monitor", [last])
            }
        }
        // At most the allowed number promoted at any moment: demote before promoting elsewhere, except
        // while a VM that uses the volume migrates live (the cluster-started dual-primary window).
        if !dualPrimary {
            for promote in promotes {
                handle.internalEdges += demotes.map { ($0, promote) }
            }
        }
    }

    // MARK: - Sorting

    static func phase(_ action: ResourceAction) -> Int {
        switch action {
        case .demote: 0
        case .stop: 1
        case .migrateTo: 2
        case .migrateFrom: 3
        case .start: 4
        case .promote: 5
        case .monitor: 6
        }
    }

    /// Kahn's algorithm; among ready actions the earliest phase, then creation order, goes first.
    /// A cycle (possible only with contradictory constraints) is broken at the lowest-ranked action.
    /// Ready actions wait in a heap and every edge is counted once: O((n + edges) log n).
    static func sorted(_ drafts: [(String, String, ResourceAction, String, Set<Int>)]) -> [Action] {
        struct Key: Comparable {
            var phase: Int
            var index: Int
            static func < (a: Key, b: Key) -> Bool { (a.phase, a.index) < (b.phase, b.index) }
        }
        func key(_ index: Int) -> Key { Key(phase: Self.phase(drafts[index].2), index: index) }
        var waiting = [Int](repeating: 0, count: drafts.count)
        var successors = [[Int]](repeating: [], count: drafts.count)
        for (index, draft) in drafts.enumerated() {
            for before in draft.4 where before != index && drafts.indices.contains(before) {
                waiting[index] += 1
                successors[before].append(index)
            }
        }
        var ready = MinHeap<Key>()
        for index in drafts.indices where waiting[index] == 0 { ready.push(key(index)) }
        // For breaking cycles: every action by rank, and a cursor past the placed ones.
        let byRank = drafts.indices.sorted { key($0) < key($1) }
        var cursor = 0
        var placedID = [Int?](repeating: nil, count: drafts.count)
        var result: [Action] = []
        result.reserveCapacity(drafts.count)
        while result.count < drafts.count {
            var next: Int
            if let candidate = ready.pop() {
                next = candidate.index
                if placedID[next] != nil { continue }
            } else {
                while placedID[byRank[cursor]] != nil { cursor += 1 }
                next = byRank[cursor]
            }
            let (resource, node, action, reason, after) = drafts[next]
            let id = result.count
            placedID[next] = id
            result.append(Action(id: id, resource: resource, node: node, action: action, reason: reason,
                                 after: after.compactMap { placedID[$0] }.sorted()))
            for successor in successors[next] where placedID[successor] == nil {
                waiting[successor] -= 1
                if waiting[successor] == 0 { ready.push(key(successor)) }
            }
        }
        return result
    }
}

import CleverModel

/// After placement, what a mandatory order forbids: Pacemaker makes `then`'s start (or promote) unrunnable
/// when `first` will not be started (or promoted) after the transition, and a resource that cannot start
/// does not stay active either — it is stopped, wherever it runs. An unrunnable start or promote also
/// blocks what must run with the resource (INFINITY colocations), as pcmk__block_colocation_dependents
/// does. Repeats along chains through a worklist, so each order is looked at once per change of its first.
extension Allocator {
    mutating func applyMandatoryOrders() {
        var ordersByFirst: [String: [OrderConstraint]] = [:]
        var worklist: [OrderConstraint] = []
        for case .order(let order) in self.constraints where order.kind == .mandatory {
            guard [.start, .promote].contains(order.firstAction), [.start, .promote].contains(order.thenAction) else { continue }
            ordersByFirst[order.first, default: []].append(order)
            worklist.append(order)
        }
        var colocationsByPrimary: [String: [ColocationConstraint]] = [:]
        for colocation in self.colocations where colocation.score.isInfinite {
            colocationsByPrimary[colocation.primary, default: []].append(colocation)
        }
        var index = 0
        while index < worklist.count {
            let order = worklist[index]
            index += 1
            guard !self.reaches(order.first, order.firstAction) else { continue }
            let verb = order.firstAction == .promote ? "be promoted" : "start"
            var changed: [String] = []
            self.block(order.then, order.thenAction, because: "mandatory order \(order.id): \(order.first) cannot \(verb)",
                       colocationsByPrimary: colocationsByPrimary, changed: &changed)
            for id in changed {
                worklist += ordersByFirst[id] ?? []
                if let group = self.index.groupOfMember[id] { worklist += ordersByFirst[group.id] ?? [] }
            }
        }
    }

    /// The resources a name stands for: a group's members, or the resource itself.
    private func resources(named id: String) -> [String] {
        self.index.groups[id]?.members ?? [id]
    }

    /// Whether the resource (any member of a group, any instance of a clone) will be in the action's role.
    private func reaches(_ id: String, _ action: ResourceAction) -> Bool {
        self.resources(named: id).contains { member in
            guard let target = self.targets[member] else { return false }
            return action == .promote ? target.roles.values.contains(.promoted) : !target.roles.isEmpty
        }
    }

    private mutating func block(
        _ id: String, _ action: ResourceAction, because reason: String,
        colocationsByPrimary: [String: [ColocationConstraint]], changed: inout [String]
    ) {
        for member in self.resources(named: id) {
            guard var target = self.targets[member], !target.roles.isEmpty else { continue }
            if action == .promote {
                guard target.roles.values.contains(.promoted) else { continue }
                for (node, role) in target.roles where role == .promoted { target.roles[node] = .unpromoted }
                self.targets[member] = target
                self.blocked[member] = "not promoted: \(reason)"
            } else {
                self.targets[member] = nil
                self.blocked[member] = reason
            }
            changed.append(member)
            // What must run with it cannot reach its role either.
            for colocation in (colocationsByPrimary[member] ?? []) + (self.index.groupOfMember[member].map { colocationsByPrimary[$0.id] ?? [] } ?? []) {
                if action == .promote, colocation.primaryRole != .promoted { continue }
                let dependentAction: ResourceAction = colocation.dependentRole == .promoted ? .promote : .start
                self.block(colocation.dependent, dependentAction, because: "must run with \(member) (\(colocation.id)), which cannot \(action == .promote ? "be promoted" : "start")",
                           colocationsByPrimary: colocationsByPrimary, changed: &changed)
            }
        }
    }
}

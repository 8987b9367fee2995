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
        // Pacemaker (order_actions) keeps one ordering per pair of actions: a later one between the same two
        // actions is dropped as a duplicate, whatever its kind, so an Optional order listed first makes a
        // Mandatory one after it between the same actions count for nothing.
        var seenPairs: Set<[String]> = []
        for case .order(let order) in self.constraints {
            let pair = [order.first, order.firstAction.rawValue, order.then, order.thenAction.rawValue]
            guard seenPairs.insert(pair).inserted, order.kind == .mandatory else { continue }
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
                       keepingWhatRuns: !order.symmetrical, colocationsByPrimary: colocationsByPrimary, changed: &changed)
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

    /// Whether the resource will be in the action's role: a clone when any instance is, a group when every
    /// member is (Pacemaker: a group's start is unrunnable unless each member starts,
    /// pcmk__group_action_flags; a clone's is runnable when any instance's is, summary_action_flags).
    private func reaches(_ id: String, _ action: ResourceAction) -> Bool {
        let members = self.resources(named: id)
        func reached(_ member: String) -> Bool {
            guard let target = self.targets[member] else { return false }
            return action == .promote ? target.roles.values.contains(.promoted) : !target.roles.isEmpty
        }
        return self.index.groups[id] != nil && action == .start ? members.allSatisfy(reached)
            : members.contains(where: reached)
    }

    /// `keepingWhatRuns`: an asymmetrical order (symmetrical=false) only keeps `then` from starting; where it
    /// runs already and is to stay, it stays (Pacemaker's pe_order_asymmetrical, as crm_simulate 2.1.5 shows).
    private mutating func block(
        _ id: String, _ action: ResourceAction, because reason: String, keepingWhatRuns: Bool = false,
        colocationsByPrimary: [String: [ColocationConstraint]], changed: inout [String]
    ) {
        for member in self.resources(named: id) {
            guard var target = self.targets[member], !target.roles.isEmpty else { continue }
            if keepingWhatRuns, action == .start {
                let running = Set(self.state.activeNodes(of: member))
                let staying = target.roles.filter { running.contains($0.key) }
                if !staying.isEmpty {
                    if staying.count != target.roles.count {
                        self.targets[member] = Target(roles: staying)
                        self.blocked[member] = "no new instance: \(reason)"
                    }
                    continue
                }
            }
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

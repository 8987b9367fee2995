import CleverModel

/// The pure scheduler: (config, state, now) -> target placement + transition. Deterministic: the
/// same input always gives the same output. Follows Pacemaker's scoring on the supported subset
/// (docs/architecture.md, "Scheduler").
public struct Scheduler: Sendable {
    public let config: ClusterConfig

    public init(config: ClusterConfig) {
        self.config = config
    }

    public func schedule(state: ClusterState, now: Timestamp) -> Transition {
        var allocator = Allocator(config: self.config, state: state, now: now)
        allocator.allocateAll()
        allocator.applyMandatoryOrders()
        let planner = TransitionPlanner(
            config: self.config, state: state, constraints: allocator.constraints, targets: allocator.targets,
            index: allocator.index)
        var transition = Transition(
            placement: allocator.placements(),
            actions: planner.plan(),
            scores: allocator.sheets,
            promotionScores: allocator.promotionSheets,
            blocked: allocator.blocked
        )
        transition.placement.sort()
        return transition
    }
}

/// Where one resource should be: per node, the role (absent: stopped there).
struct Target: Hashable, Sendable {
    var roles: [String: Placement.Role] = [:]

    var nodes: [String] { self.roles.keys.sorted() }

    func nodes(in role: ConstraintRole?) -> Set<String> {
        Set(self.roles.compactMap { node, placed in
            switch role {
            case nil, .started: node
            case .promoted: placed == .promoted ? node : nil
            case .unpromoted: placed == .unpromoted ? node : nil
            }
        })
    }
}

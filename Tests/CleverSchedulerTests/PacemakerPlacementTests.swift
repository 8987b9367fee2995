import CleverModel
import CleverScheduler
import CleverTesting
import Testing

/// Placement rules of Pacemaker 2.1.5's scheduler that the differential test (scripts/differential-pacemaker.py)
/// found, each on the smallest cluster that shows it. The comments name the Pacemaker function the rule is from.
@Suite struct PacemakerPlacementTests {
    /// Pacemaker's defaults, as an imported CIB has them: no stickiness, no migration threshold.
    static func config(
        nodes: Int, resources: [ResourceConfig], groups: [GroupConfig] = [], constraints: [Constraint] = [],
        stickiness: Score = 0, noQuorumPolicy: NoQuorumPolicy = .stop
    ) -> ClusterConfig {
        ClusterConfig(
            name: "pacemaker",
            properties: ClusterProperties(defaultStickiness: stickiness, noQuorumPolicy: noQuorumPolicy,
                                          migrationThreshold: 1_000_000, failureTimeout: nil),
            nodes: (1...nodes).map { NodeConfig(name: "node\($0)", id: $0, addresses: []) },
            resources: resources, groups: groups, constraints: constraints)
    }

    static func dummy(_ id: String, meta: ResourceMeta = ResourceMeta(), cloning: Cloning? = nil) -> ResourceConfig {
        ResourceConfig(id: id, kind: .ocf(OCFSpec(provider: "pacemaker", type: "Dummy")), meta: meta, cloning: cloning)
    }

    static func state(nodes: Int, running: [String: [String: ResourceRole]] = [:], standby: Set<String> = [],
                      attributes: [String: [String: String]] = [:], hasQuorum: Bool = true) -> ClusterState {
        var nodeStates: [String: NodeState] = [:]
        for index in 1...nodes {
            let name = "node\(index)"
            nodeStates[name] = NodeState(status: .online, standby: standby.contains(name), attributes: attributes[name] ?? [:])
        }
        return ClusterState(nodes: nodeStates, resources: running.mapValues { $0.mapValues { ResourceNodeState(role: $0) } },
                            hasQuorum: hasQuorum)
    }

    static func nodes(of resource: String, in transition: Transition) -> [String] {
        transition.placement.filter { $0.resource == resource || $0.resource.hasPrefix("\(resource):") }.map(\.node).sorted()
    }

    /// order_actions keeps one ordering per pair of actions: an Optional order listed before a Mandatory one between
    /// the same starts makes the Mandatory one a duplicate, so a group that cannot fully start does not block `then`.
    @Test func theFirstOrderBetweenTheSameActionsWins() {
        let group = GroupConfig(id: "g", members: ["m1", "m2"])
        let resources = [Self.dummy("m1"), Self.dummy("m2", meta: ResourceMeta(targetRole: .stopped)), Self.dummy("r")]
        let mandatory = Constraint.order(OrderConstraint(id: "mandatory", first: "g", then: "r"))
        let optional = Constraint.order(OrderConstraint(id: "optional", first: "g", then: "r", kind: .optional))
        let state = Self.state(nodes: 2)

        let optionalFirst = Scheduler(config: Self.config(nodes: 2, resources: resources, groups: [group],
                                                          constraints: [optional, mandatory])).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "r", in: optionalFirst).count == 1)
        let mandatoryOnly = Scheduler(config: Self.config(nodes: 2, resources: resources, groups: [group],
                                                          constraints: [mandatory])).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "r", in: mandatoryOnly).isEmpty)
    }

    /// init_group_colocated_nodes: a dependent group weighs on its primary through its first member at the
    /// colocation's factor, and through the later members at full strength (their stickiness counts whole).
    @Test func aDependentGroupsLaterMembersWeighAtFullStrength() {
        let group = GroupConfig(id: "g", members: ["m1", "m2"])
        let config = Self.config(
            nodes: 2, resources: [Self.dummy("m1"), Self.dummy("m2"), Self.dummy("r")], groups: [group],
            constraints: [.location(LocationConstraint(id: "r-likes-node1", resource: "r", placement: .node("node1", 50))),
                          .colocation(ColocationConstraint(id: "g-with-r", dependent: "g", primary: "r", score: 100))],
            stickiness: 100)
        let state = Self.state(nodes: 2, running: ["r": ["node2": .started], "m2": ["node1": .started]])
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        // node1: 50 + m2's stickiness 100 at full strength = 150 beats r's own stickiness 100 on node2.
        #expect(Self.nodes(of: "r", in: transition) == ["node1"])
    }

    /// pcmk__primitive_assign with no-quorum-policy=freeze: each primitive keeps its role, so a group member
    /// that runs nowhere stays stopped while the member before it keeps running.
    @Test func freezeKeepsAStoppedGroupMemberStopped() {
        let group = GroupConfig(id: "g", members: ["m1", "m2"])
        let config = Self.config(nodes: 2, resources: [Self.dummy("m1"), Self.dummy("m2")], groups: [group],
                                 noQuorumPolicy: .freeze)
        let state = Self.state(nodes: 2, running: ["m1": ["node1": .started]], hasQuorum: false)
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "m1", in: transition) == ["node1"])
        #expect(Self.nodes(of: "m2", in: transition).isEmpty)
    }

    /// A clone merged into its primary's scores brings its node table, which holds no stickiness (Pacemaker keeps
    /// that on each instance), so where its instances run does not draw the primary.
    @Test func aDependentClonesStickinessDoesNotDrawItsPrimary() {
        let group = GroupConfig(id: "g", members: ["m1"])
        let config = Self.config(
            nodes: 3, resources: [Self.dummy("m1"), Self.dummy("c", meta: ResourceMeta(stickiness: 50), cloning: .clone(max: nil))],
            groups: [group], constraints: [.colocation(ColocationConstraint(id: "c-with-g", dependent: "c", primary: "g", score: 10))])
        let state = Self.state(nodes: 3, running: ["c": ["node2": .started, "node3": .started]])
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "m1", in: transition) == ["node1"])
    }

    /// Instances numbered clone-max and above are orphans Pacemaker only stops: where they run is no preference.
    @Test func orphanInstancesGiveNoPreference() {
        let config = Self.config(
            nodes: 5, resources: [Self.dummy("c", cloning: .clone(max: 2))],
            constraints: [.location(LocationConstraint(id: "c-prefers-node4", resource: "c", placement: .node("node4", .infinity)))],
            stickiness: 50)
        let running: [String: ResourceRole] = ["node1": .started, "node2": .started, "node3": .started, "node4": .started]
        let transition = Scheduler(config: config).schedule(state: Self.state(nodes: 5, running: ["c": running]), now: Fixtures.epoch)
        // Instance 0 (node1) and 1 (node2) are the clone; 0 moves to node4, 1 keeps node2.
        #expect(Self.nodes(of: "c", in: transition) == ["node2", "node4"])
    }

    /// append_parent_colocation: a clone's finite colocation applies to each instance as it is assigned, and is
    /// rolled back for an instance it would leave without a node, not for the whole clone.
    @Test func aFiniteColocationIsRolledBackPerInstance() {
        let config = Self.config(
            nodes: 3,
            resources: [Self.dummy("c1", cloning: .clone(max: nil)),
                        Self.dummy("c9", meta: ResourceMeta(stickiness: 1), cloning: .clone(max: nil))],
            constraints: [.location(LocationConstraint(id: "c1-not-node2", resource: "c1", placement: .node("node2", .minusInfinity))),
                          .colocation(ColocationConstraint(id: "c9-avoids-c1", dependent: "c9", primary: "c1", score: -50))])
        let running: [String: [String: ResourceRole]] = [
            "c1": ["node3": .started], "c9": ["node1": .started, "node2": .started, "node3": .started]]
        let state = Self.state(nodes: 3, running: running, standby: ["node1"])
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        // The instance on node2 takes the -50 and stays; for the one on node3 it would leave no node: set aside.
        #expect(Self.nodes(of: "c9", in: transition) == ["node2", "node3"])
        let shown = transition.scores["c9"]?.total(on: "node3")
        #expect(shown?.allowsPlacement == true, "explain shows the score that decided: \(String(describing: shown))")
    }

    /// can_run_instance: no instance runs where the clone's own score is negative, even when the node's promotion
    /// score (added to the instance) would bring it back to zero.
    @Test func aPromotionScoreDoesNotLiftANegativeCloneScore() {
        let config = Self.config(
            nodes: 3, resources: [Self.dummy("ms", cloning: .promotable(max: nil, promotedMax: 1))],
            constraints: [.location(LocationConstraint(id: "ms-not-node2", resource: "ms", placement: .node("node2", -100)))])
        let state = Self.state(nodes: 3, running: ["ms": ["node2": .unpromoted]], standby: ["node1"],
                               attributes: ["node2": ["master-ms": "100"], "node3": ["master-ms": "1000"]])
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "ms", in: transition) == ["node3"])
    }
    /// append_parent_colocation hands what runs with a clone to each instance, merged as for a primitive (not kept
    /// non-negative as in the clone's own table): an anti-colocated dependent pushes a lone instance away.
    @Test func aDependentsPreferencesReachEachInstance() {
        let config = Self.config(
            nodes: 2, resources: [Self.dummy("c", cloning: .clone(max: 1)), Self.dummy("r")],
            constraints: [.location(LocationConstraint(id: "r-on-node1", resource: "r", placement: .node("node1", .infinity))),
                          .colocation(ColocationConstraint(id: "r-avoids-c", dependent: "r", primary: "c", score: -50))])
        let transition = Scheduler(config: config).schedule(state: Self.state(nodes: 2), now: Fixtures.epoch)
        // r's INFINITY on node1 × -50/INFINITY = -50 for the instance there.
        #expect(Self.nodes(of: "c", in: transition) == ["node2"])
        #expect(Self.nodes(of: "r", in: transition) == ["node1"])
    }
    /// cmp_promotable_instance: between equal promotion scores, the instance with the higher current role is
    /// promoted (one that runs before one that starts), not the node first by name.
    @Test func aRunningInstanceWinsAPromotionTie() {
        let config = Self.config(nodes: 2, resources: [Self.dummy("ms", cloning: .promotable(max: nil, promotedMax: 1))])
        let state = Self.state(nodes: 2, running: ["ms": ["node2": .unpromoted]],
                               attributes: ["node1": ["master-ms": "10"], "node2": ["master-ms": "10"]])
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(transition.placement.filter { $0.role == .promoted }.map(\.node) == ["node2"])
    }
    /// An instance's stickiness is in its own node table: it may keep its node where the clone's score alone is
    /// negative (here -50 from an anti-colocation, lifted to 0 by stickiness 50).
    @Test func anInstancesStickinessKeepsItsNodeAllowed() {
        let config = Self.config(
            nodes: 3,
            resources: [Self.dummy("x"), Self.dummy("c", meta: ResourceMeta(stickiness: 50), cloning: .clone(max: nil))],
            constraints: [.location(LocationConstraint(id: "x-on-node2", resource: "x", placement: .node("node2", 100))),
                          .colocation(ColocationConstraint(id: "c-avoids-x", dependent: "c", primary: "x", score: -50))])
        let state = Self.state(nodes: 3, running: ["x": ["node2": .started], "c": ["node2": .started]])
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "c", in: transition) == ["node1", "node2", "node3"])
    }
    /// pcmk__cmp_instance, in a promotion tie: an instance that failed (a failure on record and not stopped since)
    /// ranks after one that did not, whatever the node names.
    @Test func aFailedInstanceLosesAPromotionTie() {
        let config = Self.config(nodes: 2, resources: [Self.dummy("ms", cloning: .promotable(max: nil, promotedMax: 1))])
        var state = Self.state(nodes: 2, running: ["ms": ["node1": .unpromoted, "node2": .unpromoted]],
                               attributes: ["node1": ["master-ms": "5"], "node2": ["master-ms": "5"]])
        state.update("ms", on: "node1") { $0.failCount = 1 }
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(transition.placement.filter { $0.role == .promoted }.map(\.node) == ["node2"])
    }

    /// promotion_score_applies: an instance counts its promotion score where it is active, where no instance is and
    /// the clone was probed, everywhere when it has no history at all, and otherwise only where its own history is.
    /// Instance 0 holds node3's probe (find_anonymous_clone gives a history to the first inactive instance), so
    /// node1's score does not draw it: it goes to node3, instance 1 (no history) to node1, and in the promotion tie
    /// the first instance wins — node3, not node1 first by name.
    @Test func aPromotionScoreCountsWhereTheInstanceWasProbed() {
        let config = Self.config(nodes: 3, resources: [Self.dummy("ms", cloning: .promotable(max: 2, promotedMax: 1))])
        var state = Self.state(nodes: 3, attributes: ["node1": ["master-ms": "1000"], "node3": ["master-ms": "1000"]])
        state.update("ms", on: "node3") {
            $0.lastOperations = [OperationRecord(action: .monitor, exitCode: 7, at: Fixtures.epoch)]
        }
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "ms", in: transition) == ["node1", "node3"])
        #expect(transition.placement.filter { $0.role == .promoted }.map(\.node) == ["node3"])
    }

    /// set_sort_index_to_node_weight: an instance whose promotion priority is negative (no promotion score: -1)
    /// keeps it; what must run with the promoted instance adds to the clone's node table and lifts only the others.
    @Test func aNegativePromotionPriorityTakesNoNodeWeight() {
        let config = Self.config(
            nodes: 2,
            resources: [Self.dummy("ms", cloning: .promotable(max: 1, promotedMax: 1)), Self.dummy("c", cloning: .clone(max: nil))],
            constraints: [.location(LocationConstraint(id: "c-on-node1", resource: "c", placement: .node("node1", .infinity))),
                          .colocation(ColocationConstraint(id: "c-with-promoted-ms", dependent: "c", primary: "ms", score: 10,
                                                           primaryRole: .promoted))])
        let state = Self.state(nodes: 2, running: ["ms": ["node1": .unpromoted]])
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "ms", in: transition) == ["node1"])
        #expect(transition.placement.filter { $0.role == .promoted }.isEmpty)
    }

    /// pcmk__apply_coloc_to_priority: a colocation of the clone's Unpromoted role counts against promotion where the
    /// instance is with its primary, so an Unpromoted anti-colocation draws the promotion to the primary's node.
    @Test func anUnpromotedAntiColocationDrawsThePromotion() {
        let config = Self.config(
            nodes: 2, resources: [Self.dummy("ms", cloning: .promotable(max: nil, promotedMax: 1)), Self.dummy("r")],
            constraints: [.location(LocationConstraint(id: "r-on-node2", resource: "r", placement: .node("node2", .infinity))),
                          .colocation(ColocationConstraint(id: "unpromoted-ms-avoids-r", dependent: "ms", primary: "r", score: -50,
                                                           dependentRole: .unpromoted))])
        let state = Self.state(nodes: 2, attributes: ["node1": ["master-ms": "5"], "node2": ["master-ms": "5"]])
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "ms", in: transition) == ["node1", "node2"])
        #expect(transition.placement.filter { $0.role == .promoted }.map(\.node) == ["node2"])
    }

    /// pcmk__clone_apply_coloc_score: with a clone as primary an INFINITY colocation of the Unpromoted role only
    /// limits where instances go; it does not keep the instances with the clone from being promoted.
    @Test func anUnpromotedColocationWithACloneStillLetsPromote() {
        let config = Self.config(
            nodes: 2, resources: [Self.dummy("c", cloning: .clone(max: nil)), Self.dummy("ms", cloning: .promotable(max: nil, promotedMax: 1))],
            constraints: [.colocation(ColocationConstraint(id: "unpromoted-ms-with-c", dependent: "ms", primary: "c", score: .infinity,
                                                           dependentRole: .unpromoted))])
        let state = Self.state(nodes: 2, attributes: ["node1": ["master-ms": "5"], "node2": ["master-ms": "5"]])
        let transition = Scheduler(config: config).schedule(state: state, now: Fixtures.epoch)
        #expect(Self.nodes(of: "ms", in: transition) == ["node1", "node2"])
        #expect(transition.placement.filter { $0.role == .promoted }.count == 1)
    }
}

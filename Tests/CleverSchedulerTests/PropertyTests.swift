import CleverModel
import CleverScheduler
import CleverTesting
import Testing

/// Random configs and states; the scheduler's safety properties must hold for every one.
@Suite struct PropertyTests {
    static let cases = 400

    @Test func invariantsHoldOnRandomClusters() {
        var random = SeededRandom(seed: 0xC1E7E5)
        for index in 0..<Self.cases {
            let (config, state) = RandomCluster.make(&random)
            let now = Fixtures.epoch
            let scheduler = Scheduler(config: config)
            let transition = scheduler.schedule(state: state, now: now)
            let context = "case \(index): \(config.resources.map(\.id)) \(config.constraints.map(\.id))"

            // Deterministic.
            #expect(transition == scheduler.schedule(state: state, now: now), "\(context)")

            // Nothing placed where its score is -INFINITY (or where the node cannot run anything).
            for placed in transition.placement {
                let id = config.group(containing: placed.baseResource)?.id ?? placed.baseResource
                let score = transition.scores[id]?.total(on: placed.node)
                #expect(score?.allowsPlacement == true, "\(context): \(placed) scored \(String(describing: score))")
                #expect(state.nodes[placed.node]?.status == .online && state.nodes[placed.node]?.standby == false, "\(context)")
            }

            // Never two promoted instances of a volume; a primitive on one node at most.
            for resource in config.resources {
                let placed = transition.placement.filter { $0.baseResource == resource.id }
                if case .promotable(_, let promotedMax) = resource.cloning {
                    #expect(placed.filter { $0.role == .promoted }.count <= promotedMax, "\(context)")
                }
                if !resource.isClone { #expect(placed.count <= 1, "\(context)") }
            }

            // Mandatory colocations hold.
            for case .colocation(let colocation) in config.effectiveConstraints {
                let dependentNodes = Set(transition.placement.filter { $0.baseResource == colocation.dependent }.map(\.node))
                let primaryNodes = Set(transition.placement.filter {
                    $0.baseResource == colocation.primary && (colocation.primaryRole != .promoted || $0.role == .promoted)
                }.map(\.node))
                if colocation.score.isInfinite {
                    #expect(dependentNodes.isSubset(of: primaryNodes), "\(context): \(colocation.id)")
                } else if colocation.score.isMinusInfinite {
                    #expect(dependentNodes.isDisjoint(with: primaryNodes), "\(context): \(colocation.id)")
                }
            }

            // Every action runs after the actions it depends on, and stops of a primitive precede its start.
            for action in transition.actions {
                #expect(action.after.allSatisfy { $0 < action.id }, "\(context)")
            }
            if !state.hasQuorum, config.properties.noQuorumPolicy == .stop {
                #expect(transition.placement.isEmpty, "\(context)")
            }
        }
    }

    @Test func simulationConvergesAndStaysPut() {
        var random = SeededRandom(seed: 42)
        for index in 0..<100 {
            let (config, state) = RandomCluster.make(&random)
            var simulator = Simulator(config: config, state: state, now: Fixtures.epoch)
            _ = simulator.run(nil)
            let second = simulator.run(nil)
            let moves = second.transition.actions.filter { $0.action != .monitor }
            #expect(moves.isEmpty, "case \(index) did not converge: \(moves)")
        }
    }
}

enum RandomCluster {
    static func make(_ random: inout SeededRandom) -> (ClusterConfig, ClusterState) {
        let nodeCount = Int.random(in: 2...4, using: &random)
        let nodes = (0..<nodeCount).map { NodeConfig(name: "n\($0 + 1)", id: $0 + 1, addresses: ["198.51.100.\($0 + 11)"]) }
        let scores: [Score] = [.infinity, .minusInfinity, 0, 50, -50, 200, 1000]
        var resources: [ResourceConfig] = []
        for index in 0..<Int.random(in: 1...5, using: &random) {
            let kind: ResourceKind = switch Int.random(in: 0...3, using: &random) {
            case 0: .volume(VolumeSpec(size: 4096, backing: "/tmp/v\(index)"))
            case 1: .ping(PingSpec(hosts: ["198.51.100.1"]))
            default: .process(ProcessSpec(command: ["/bin/true"]))
            }
            resources.append(ResourceConfig(id: "r\(index)", kind: kind))
        }
        var constraints: [Constraint] = []
        for index in 0..<Int.random(in: 0...6, using: &random) {
            let resource = resources.randomElement(using: &random)!.id
            let other = resources.randomElement(using: &random)!
            switch Int.random(in: 0...2, using: &random) {
            case 0:
                constraints.append(.location(LocationConstraint(
                    id: "l\(index)", resource: resource,
                    placement: .node(nodes.randomElement(using: &random)!.name, scores.randomElement(using: &random)!))))
            case 1:
                guard other.id != resource else { continue }
                constraints.append(.colocation(ColocationConstraint(
                    id: "c\(index)", dependent: resource, primary: other.id, score: scores.randomElement(using: &random)!,
                    primaryRole: other.isPromotable && Bool.random(using: &random) ? .promoted : nil)))
            default:
                constraints.append(.location(LocationConstraint(
                    id: "l\(index)", resource: resource,
                    placement: .rule(Rule(score: .minusInfinity, expression: .compare(
                        attribute: "pingd", op: .lte, value: "0", type: .number))))))
            }
        }
        let properties = ClusterProperties(
            defaultStickiness: [0, 100, .infinity].randomElement(using: &random)!,
            noQuorumPolicy: NoQuorumPolicy.allCases.randomElement(using: &random)!,
            symmetric: Int.random(in: 0...4, using: &random) > 0)
        let config = ClusterConfig(name: "random", properties: properties, nodes: nodes, resources: resources, constraints: constraints)

        var state = ClusterState.fresh(for: config)
        state.hasQuorum = Int.random(in: 0...5, using: &random) > 0
        for node in nodes {
            state.nodes[node.name]?.status = Int.random(in: 0...5, using: &random) == 0 ? .offline : .online
            state.nodes[node.name]?.standby = Int.random(in: 0...8, using: &random) == 0
            state.nodes[node.name]?.attributes["pingd"] = ["0", "1000"].randomElement(using: &random)!
            for resource in resources where Int.random(in: 0...3, using: &random) == 0 {
                let roles: [ResourceRole] = resource.isPromotable ? [.promoted, .unpromoted] : [.started, .failed]
                state.update(resource.id, on: node.name) { entry in
                    entry.role = roles.randomElement(using: &random)!
                    entry.failCount = Int.random(in: 0...4, using: &random)
                    entry.lastFailure = entry.failCount > 0 ? Fixtures.epoch : nil
                }
            }
        }
        return (config, state)
    }
}

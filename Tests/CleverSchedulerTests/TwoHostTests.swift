import CleverModel
import CleverScheduler
import CleverTesting
import Testing

@Suite struct TwoHostTests {
    let now = Fixtures.epoch

    func converged(_ config: ClusterConfig) -> Simulator {
        var simulator = Simulator(config: config, state: Fixtures.healthyState(of: config), now: self.now)
        _ = simulator.run(nil)
        return simulator
    }

    @Test func startUpPlacesEverythingOnOneHostInOrder() {
        var simulator = Simulator(config: Fixtures.twoHost(), state: Fixtures.healthyState(of: Fixtures.twoHost()), now: self.now)
        let round = simulator.run(nil)
        print(round.transition.render())
        let placed = Dictionary(round.transition.placement.map { ("\($0.resource)@\($0.node)", $0.role) }, uniquingKeysWith: { a, _ in a })
        #expect(placed["mba7@alpha"] == .started)
        #expect(placed["vip@alpha"] == .started)
        #expect(round.transition.placement.filter { $0.baseResource == "disk0" && $0.role == .promoted }.map(\.node) == ["alpha"])
        let order = round.transition.actions.map { "\($0.action.rawValue) \($0.resource)@\($0.node)" }
        let promote = order.firstIndex(of: "promote disk0@alpha")!
        let vmStart = order.firstIndex(of: "start mba7@alpha")!
        let ipStart = order.firstIndex(of: "start vip@alpha")!
        #expect(promote < vmStart && vmStart < ipStart)
        // A second run has nothing left to do.
        #expect(simulator.run(nil).transition.actions.allSatisfy { $0.action == .monitor })
    }

    @Test func pingLossMovesTheStackLiveWithDualPrimaryWindow() throws {
        var simulator = self.converged(Fixtures.twoHost())
        let round = simulator.run(.setAttribute(node: "alpha", name: "pingd", value: "0"))
        print(round.transition.render())
        let order = round.transition.actions.map { "\($0.action.rawValue) \($0.resource)@\($0.node)" }
        let index = { (name: String) throws -> Int in try #require(order.firstIndex(of: name), "\(name) missing in \(order)") }
        #expect(try index("promote disk0@beta") < index("migrate_to mba7@alpha"))
        #expect(try index("migrate_to mba7@alpha") < index("migrate_from mba7@beta"))
        #expect(try index("stop mba7@alpha") < index("demote disk0@alpha"))
        #expect(try index("stop vip@alpha") < index("migrate_to mba7@alpha"))
        #expect(try index("migrate_from mba7@beta") < index("start vip@beta"))
        #expect(simulator.state.activeNodes(of: "mba7") == ["beta"])
    }

    @Test func pingLossWithHibernateMigrationStopsBeforeDemote() throws {
        var simulator = self.converged(Fixtures.twoHost(migration: .hibernate))
        let round = simulator.run(.setAttribute(node: "alpha", name: "pingd", value: "0"))
        let order = round.transition.actions.map { "\($0.action.rawValue) \($0.resource)@\($0.node)" }
        let index = { (name: String) throws -> Int in try #require(order.firstIndex(of: name), "\(name) missing in \(order)") }
        #expect(try index("stop vip@alpha") < index("stop mba7@alpha"))
        #expect(try index("stop mba7@alpha") < index("demote disk0@alpha"))
        #expect(try index("demote disk0@alpha") < index("promote disk0@beta"))
        #expect(try index("promote disk0@beta") < index("start mba7@beta"))
        #expect(try index("start mba7@beta") < index("start vip@beta"))
    }

    @Test func stickinessPreventsFailback() {
        var simulator = self.converged(Fixtures.twoHost())
        _ = simulator.run(.setAttribute(node: "alpha", name: "pingd", value: "0"))
        let back = simulator.run(.setAttribute(node: "alpha", name: "pingd", value: "1000"))
        #expect(back.transition.actions.allSatisfy { $0.action == .monitor })
        #expect(simulator.state.activeNodes(of: "mba7") == ["beta"])
    }

    @Test func nodeLossRecoversOnSurvivorOnlyWithQuorum() {
        var simulator = self.converged(Fixtures.twoHost())
        _ = simulator.run(.quorum(false))
        #expect(simulator.state.activeNodes(of: "mba7").isEmpty)
        var withQuorum = self.converged(Fixtures.twoHost())
        let round = withQuorum.run(.nodeDown("alpha"))
        #expect(withQuorum.state.activeNodes(of: "mba7") == ["beta"])
        #expect(!round.transition.actions.contains { $0.action == .migrateTo })
    }

    @Test func migrateMarksHostUnfitAndUnmigrateMovesNothingBack() {
        var simulator = self.converged(Fixtures.twoHost())
        _ = simulator.run(.migrate(node: "alpha", to: nil, lifetime: nil))
        #expect(simulator.state.activeNodes(of: "mba7") == ["beta"])
        #expect(simulator.state.activeNodes(of: "vip") == ["beta"])
        // Replication keeps running on the unfit host: only the promoted role moved.
        #expect(simulator.state.activeNodes(of: "disk0") == ["alpha", "beta"])
        #expect(simulator.state.state(of: "disk0", on: "beta").role == .promoted)
        let back = simulator.run(.unmigrate(node: "alpha"))
        #expect(back.transition.actions.allSatisfy { $0.action == .monitor })
        #expect(simulator.state.activeNodes(of: "mba7") == ["beta"])
    }

    @Test func migrationThresholdMovesAndCleanupAllowsReturn() {
        var simulator = self.converged(Fixtures.twoHost())
        for _ in 0..<2 {
            _ = simulator.run(.operationFailed(resource: "mba7", node: "alpha", action: .monitor))
            #expect(simulator.state.activeNodes(of: "mba7") == ["alpha"])
        }
        _ = simulator.run(.operationFailed(resource: "mba7", node: "alpha", action: .monitor))
        #expect(simulator.state.activeNodes(of: "mba7") == ["beta"])
        _ = simulator.run(.cleanup(resource: "mba7", node: nil))
        // Cleanup allows alpha again; stickiness keeps it on beta until beta becomes unfit.
        _ = simulator.run(.setAttribute(node: "beta", name: "pingd", value: "0"))
        #expect(simulator.state.activeNodes(of: "mba7") == ["alpha"])
    }

    @Test func forcestopKeepsTheVMStopped() {
        var simulator = self.converged(Fixtures.twoHost())
        _ = simulator.run(.forceStop("mba7"))
        #expect(simulator.state.activeNodes(of: "mba7").isEmpty)
        #expect(simulator.state.activeNodes(of: "vip").isEmpty)
        _ = simulator.run(.nodeDown("beta"))
        _ = simulator.run(.nodeUp("beta"))
        #expect(simulator.state.activeNodes(of: "mba7").isEmpty)
        _ = simulator.run(.forceStart("mba7"))
        #expect(simulator.state.activeNodes(of: "mba7") == ["alpha"])
    }
}

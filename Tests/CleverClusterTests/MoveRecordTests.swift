import CleverCluster
import CleverModel
import CleverTesting
import Testing

/// Which results are moves of a VM, as `clevervm status` shows them.
struct MoveRecordTests {
    func result(_ action: ResourceAction, on node: String, target: String? = nil, _ output: String) -> OperationResult {
        OperationResult(request: nil, resource: "mba7", node: node, action: action, exitCode: OCFExit.success,
                        migrationTarget: target, at: Timestamp(seconds: 100), output: output)
    }

    @Test func aLiveMigrationKeepsQEMUsDowntime() throws {
        let move = try #require(MoveRecord(result: self.result(.migrateTo, on: "alpha", target: "beta", #"{"action":"migrate_to","mode":"live","downtimeMs":62}"#)))
        #expect(move.mode == .live && move.from == "alpha" && move.to == "beta" && move.downtimeMilliseconds == 62)
        #expect(move.description == "mba7 moved live from alpha to beta, guest downtime 62 ms")
    }

    @Test func aColdBootElsewhereIsAMoveThatLostTheRAM() throws {
        let boot = self.result(.start, on: "alpha", #"{"action":"start","mode":"cold"}"#)
        #expect(MoveRecord(result: boot, previousHost: nil) == nil, "the first boot is no move")
        #expect(MoveRecord(result: boot, previousHost: "alpha") == nil, "a restart in place is no move")
        let move = try #require(MoveRecord(result: boot, previousHost: "beta"))
        #expect(move.mode == .coldBoot && move.from == "beta" && move.to == "alpha")
        #expect(move.description == "mba7 booted from its disk on alpha after running on beta (RAM state lost)")
    }

    @Test func aResumeNamesWhereItHibernated() throws {
        let move = try #require(MoveRecord(result: self.result(.start, on: "beta", #"{"action":"start","mode":"resume"}"#), previousHost: "alpha"))
        #expect(move.mode == .hibernate && move.description == "mba7 resumed from hibernation on beta (hibernated on alpha)")
    }

    @Test func theLedgerRemembersWhereTheVMLastRan() {
        let config = Fixtures.twoHost()
        var ledger = ClusterLedger(localNode: "alpha", document: ClusterDocument(config: config, origin: 1))
        _ = ledger.onView(memberIDs: config.nodes.map(\.id), now: Timestamp(seconds: 1))
        let vm = config.resources.first { if case .vm = $0.kind { true } else { false } }!.id
        for node in ["beta", "alpha"] {
            let result = OperationResult(request: nil, resource: vm, node: node, action: .start, exitCode: OCFExit.success,
                                         at: Timestamp(seconds: 100), output: #"{"action":"start","mode":"cold"}"#)
            _ = ledger.onDeliver(Envelope(from: node, message: .operationResult(result)), now: Timestamp(seconds: 100))
        }
        #expect(ledger.lastMoves[vm]?.mode == .coldBoot)
        #expect(ledger.lastMoves[vm]?.from == "beta" && ledger.lastMoves[vm]?.to == "alpha")
    }
}

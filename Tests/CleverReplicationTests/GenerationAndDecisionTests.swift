import Testing

@testable import CleverReplication

typealias G = Replication.GenerationIDs
typealias Policies = Replication.SplitBrainPolicies

func report(
    _ name: String, _ generations: G, role: Replication.Role = .secondary, disk: Replication.DiskState = .upToDate,
    crashed: Bool = false, dirty: UInt64 = 0, discard: Bool = false
) -> Replication.NodeReport {
    Replication.NodeReport(
        name: name, role: role, disk: disk, generations: generations, crashedPrimary: crashed, dirtyBlocks: dirty,
        discardMyData: discard)
}

/// Decides from both sides and checks the two results mirror each other.
func decideBoth(
    _ a: Replication.NodeReport, _ b: Replication.NodeReport, policies: Policies = Policies()
) -> Replication.SyncDecision {
    let fromA = Replication.decide(local: a, peer: b, policies: policies)
    let fromB = Replication.decide(local: b, peer: a, policies: policies)
    switch (fromA, fromB) {
    case (.noSync, .noSync), (.unrelatedData, .unrelatedData), (.splitBrain, .splitBrain): break
    case (.bitmapSync(let x), .bitmapSync(let y)), (.fullSync(let x), .fullSync(let y)):
        #expect(x != y, "both sides think they are \(x ? "source" : "target")")
    default: Issue.record("asymmetric decisions: \(fromA) vs \(fromB)")
    }
    return fromA
}

@Suite struct GenerationIDTests {
    @Test func newGenerationMovesCurrentToBitmapOnce() {
        var ids = G(current: 0x100, bitmap: 0, history: [0x80, 0x40])
        ids.startNewGeneration(random: 0x200, asPrimary: true)
        #expect(ids.current == 0x201)
        #expect(ids.bitmap == 0x100)
        // A second new generation while still diverged keeps the old bitmap identifier.
        ids.startNewGeneration(random: 0x300, asPrimary: true)
        #expect(ids.bitmap == 0x100)
        #expect(ids.current == 0x301)
    }

    @Test func randomZeroOrJustCreatedIsNeverUsed() {
        var ids = G(current: 0x100)
        ids.startNewGeneration(random: 0, asPrimary: false)
        #expect(ids.current != 0)
        ids.startNewGeneration(random: 4, asPrimary: false)
        #expect(G.masked(ids.current) != G.justCreated)
    }

    @Test func clearingBitmapShiftsHistory() {
        var ids = G(current: 0x300, bitmap: 0x100, history: [0x80, 0x40])
        ids.clearBitmap()
        #expect(ids == G(current: 0x300, bitmap: 0, history: [0x100, 0x80]))
        ids.clearBitmap()
        #expect(ids.history == [0x100, 0x80])
    }

    @Test func syncTargetAdoptsSourceGeneration() {
        var target = G(current: 0x100, bitmap: 0, history: [0x80, 0])
        target.adoptAfterSync(from: G(current: 0x301, bitmap: 0x100))
        #expect(target == G(current: 0x300, bitmap: 0, history: [0x100, 0x80]))
    }

    @Test func roleBitFollowsRole() {
        var ids = G(current: 0x100)
        ids.setRole(primary: true)
        #expect(ids.current == 0x101)
        ids.setRole(primary: false)
        #expect(ids.current == 0x100)
    }
}

@Suite struct SyncDecisionTableTests {
    @Test func equalCurrentsNoSync() {
        #expect(decideBoth(report("a", G(current: 0x100)), report("b", G(current: 0x101))) == .noSync)
    }

    @Test func bothJustCreatedNoSync() {
        #expect(decideBoth(report("a", G(), disk: .inconsistent), report("b", G(), disk: .inconsistent)) == .noSync)
    }

    @Test func justCreatedPeerGetsFullSync() {
        #expect(
            decideBoth(report("a", G(current: 0x100)), report("b", G(), disk: .inconsistent))
                == .fullSync(localIsSource: true))
    }

    @Test func crashedPrimaryBecomesBitmapSource() {
        #expect(
            decideBoth(report("a", G(current: 0x100)), report("b", G(current: 0x100), crashed: true))
                == .bitmapSync(localIsSource: false))
    }

    @Test func bothCrashedPrimariesBreakTheTieByName() {
        #expect(
            decideBoth(report("a", G(current: 0x100), crashed: true), report("b", G(current: 0x100), crashed: true))
                == .bitmapSync(localIsSource: false))
    }

    @Test func primaryThatLostPeerIsBitmapSource() {
        // a was primary, lost b, made a new generation; b still has the old one.
        var a = G(current: 0x100)
        a.startNewGeneration(random: 0x200, asPrimary: true)
        #expect(decideBoth(report("a", a, role: .primary), report("b", G(current: 0x100))) == .bitmapSync(localIsSource: true))
        #expect(
            decideBoth(report("b", G(current: 0x100)), report("a", a, role: .primary))
                == .bitmapSync(localIsSource: false))
    }

    @Test func currentInPeerHistoryMeansFullSync() {
        let ahead = G(current: 0x500, bitmap: 0, history: [0x300, 0x100])
        #expect(decideBoth(report("a", ahead), report("b", G(current: 0x100))) == .fullSync(localIsSource: true))
    }

    @Test func equalBitmapsAreAutoRecoverableSplitBrainDefaultDisconnect() {
        let a = G(current: 0x201, bitmap: 0x100)
        let b = G(current: 0x301, bitmap: 0x100)
        guard case .splitBrain = decideBoth(report("a", a, dirty: 3), report("b", b, dirty: 5)) else {
            Issue.record("expected split brain"); return
        }
    }

    @Test func historyOnlyMatchIsSplitBrainEvenWithPolicies() {
        let a = G(current: 0x201, bitmap: 0x180, history: [0x100, 0])
        let b = G(current: 0x301, bitmap: 0x190, history: [0x100, 0])
        let policies = Policies(zeroPrimaries: .discardLeastChanges)
        guard case .splitBrain(let reason) = decideBoth(report("a", a), report("b", b), policies: policies) else {
            Issue.record("expected split brain"); return
        }
        #expect(reason.contains("--discard"))
    }

    @Test func unrelatedDataIsRefused() {
        #expect(decideBoth(report("a", G(current: 0x100)), report("b", G(current: 0x900))) == .unrelatedData)
    }

    @Test func inconsistentSideIsAlwaysTarget() {
        // Identifiers say a is target, but b is Inconsistent (an interrupted resync toward b).
        let decision = decideBoth(
            report("a", G(current: 0x100)), report("b", G(current: 0x100), disk: .inconsistent))
        #expect(decision == .bitmapSync(localIsSource: true))
    }

    @Test func interruptedResyncResumesTowardInconsistentTarget() {
        var source = G(current: 0x100)
        source.startNewGeneration(random: 0x200, asPrimary: true)
        let target = G(current: 0x100)
        #expect(
            decideBoth(report("a", source, role: .primary), report("b", target, disk: .inconsistent))
                == .bitmapSync(localIsSource: true))
    }

    @Test func outdatedNeverBecomesSource() {
        let a = G(current: 0x201, bitmap: 0x100)
        let decision = Replication.decide(
            local: report("a", a, disk: .outdated), peer: report("b", G(current: 0x100), disk: .upToDate),
            policies: Policies())
        guard case .splitBrain = decision else { Issue.record("got \(decision)"); return }
    }

    @Test func discardMyDataResolvesManually() {
        let a = G(current: 0x201, bitmap: 0x100)
        let b = G(current: 0x301, bitmap: 0x100)
        #expect(
            decideBoth(report("a", a, dirty: 9), report("b", b, dirty: 1, discard: true))
                == .bitmapSync(localIsSource: true))
        // History-only split brain: full sync.
        let c = G(current: 0x201, bitmap: 0x180, history: [0x100, 0])
        let d = G(current: 0x301, bitmap: 0x190, history: [0x100, 0])
        #expect(decideBoth(report("c", c, discard: true), report("d", d)) == .fullSync(localIsSource: false))
    }

    @Test func bothDiscardingIsRefused() {
        let a = G(current: 0x201, bitmap: 0x100)
        let b = G(current: 0x301, bitmap: 0x100)
        guard case .splitBrain = decideBoth(report("a", a, discard: true), report("b", b, discard: true)) else {
            Issue.record("expected split brain"); return
        }
    }
}

@Suite struct SplitBrainPolicyTests {
    // a was primary when it lost b (bitmap role bit set: the older primary); b was promoted after the split.
    let older = G(current: 0x201, bitmap: 0x101)
    let younger = G(current: 0x301, bitmap: 0x100)

    @Test func discardYoungerPrimary() {
        let policies = Policies(zeroPrimaries: .discardYoungerPrimary)
        #expect(
            decideBoth(report("a", older, dirty: 1), report("b", younger, dirty: 50), policies: policies)
                == .bitmapSync(localIsSource: true))
    }

    @Test func discardOlderPrimary() {
        let policies = Policies(zeroPrimaries: .discardOlderPrimary)
        #expect(
            decideBoth(report("a", older, dirty: 1), report("b", younger, dirty: 50), policies: policies)
                == .bitmapSync(localIsSource: false))
    }

    @Test func youngerOlderFallBackToLeastChangesWhenRolesEqual() {
        let policies = Policies(zeroPrimaries: .discardYoungerPrimary)
        let a = G(current: 0x201, bitmap: 0x100)
        let b = G(current: 0x301, bitmap: 0x100)
        #expect(
            decideBoth(report("a", a, dirty: 2), report("b", b, dirty: 7), policies: policies)
                == .bitmapSync(localIsSource: false))
    }

    @Test func discardZeroChanges() {
        let policies = Policies(zeroPrimaries: .discardZeroChanges)
        #expect(
            decideBoth(report("a", older, dirty: 0), report("b", younger, dirty: 7), policies: policies)
                == .bitmapSync(localIsSource: false))
        guard case .splitBrain = decideBoth(
            report("a", older, dirty: 3), report("b", younger, dirty: 7), policies: policies)
        else { Issue.record("both changed: expected split brain"); return }
        // Neither changed: the tie breaker decides, consistently.
        #expect(
            decideBoth(report("a", older, dirty: 0), report("b", younger, dirty: 0), policies: policies)
                == .bitmapSync(localIsSource: false))
    }

    @Test func discardLeastChanges() {
        let policies = Policies(zeroPrimaries: .discardLeastChanges)
        #expect(
            decideBoth(report("a", older, dirty: 10), report("b", younger, dirty: 7), policies: policies)
                == .bitmapSync(localIsSource: true))
        #expect(
            decideBoth(report("a", older, dirty: 5), report("b", younger, dirty: 5), policies: policies)
                == .bitmapSync(localIsSource: false))
    }

    @Test func zeroPrimariesDisconnect() {
        guard case .splitBrain(let reason) = decideBoth(report("a", older), report("b", younger)) else {
            Issue.record("expected split brain"); return
        }
        #expect(reason.contains("after-sb-0pri disconnect"))
    }

    @Test func onePrimaryDiscardSecondary() {
        let policies = Policies(onePrimary: .discardSecondary)
        #expect(
            decideBoth(report("a", older, role: .secondary, dirty: 100), report("b", younger, role: .primary, dirty: 1),
                policies: policies) == .bitmapSync(localIsSource: false))
    }

    @Test func onePrimaryConsensusAcceptsOnlyWhenSecondaryLoses() {
        // 0pri policy says discard least changes; the secondary has fewer: consensus agrees.
        let agree = Policies(zeroPrimaries: .discardLeastChanges, onePrimary: .consensus)
        #expect(
            decideBoth(report("a", older, role: .secondary, dirty: 1), report("b", younger, role: .primary, dirty: 9),
                policies: agree) == .bitmapSync(localIsSource: false))
        // The 0pri result would discard the primary: consensus refuses.
        guard case .splitBrain = decideBoth(
            report("a", older, role: .secondary, dirty: 9), report("b", younger, role: .primary, dirty: 1),
            policies: agree)
        else { Issue.record("expected split brain"); return }
    }

    @Test func onePrimaryDisconnect() {
        guard case .splitBrain(let reason) = decideBoth(
            report("a", older, role: .primary), report("b", younger),
            policies: Policies(zeroPrimaries: .discardLeastChanges))
        else { Issue.record("expected split brain"); return }
        #expect(reason.contains("after-sb-1pri"))
    }

    @Test func twoPrimariesAlwaysDisconnect() {
        let policies = Policies(zeroPrimaries: .discardLeastChanges, onePrimary: .discardSecondary)
        guard case .splitBrain(let reason) = decideBoth(
            report("a", older, role: .primary), report("b", younger, role: .primary), policies: policies)
        else { Issue.record("expected split brain"); return }
        #expect(reason.contains("after-sb-2pri"))
    }
}

@Suite struct PromotionTests {
    func check(
        disk: Replication.DiskState, connection: Replication.ConnectionState = .connected,
        peerRole: Replication.Role = .secondary, peerDisk: Replication.DiskState = .upToDate, hasPeer: Bool = true,
        _ request: Replication.PromotionRequest = .init()
    ) -> Replication.PromotionDecision {
        Replication.checkPromotion(
            volume: "v", localDisk: disk, connection: connection, peerRole: peerRole, peerDisk: peerDisk,
            hasPeer: hasPeer, request: request)
    }

    @Test func upToDateConnectedToSecondaryIsAllowed() {
        #expect(check(disk: .upToDate) == .allowed)
    }

    @Test func outdatedOrInconsistentIsRefused() {
        guard case .refused(let reason) = check(disk: .outdated) else { Issue.record("allowed"); return }
        #expect(reason.contains("Outdated"))
        guard case .refused = check(disk: .inconsistent) else { Issue.record("allowed"); return }
    }

    @Test func peerPrimaryIsRefusedUnlessTwoPrimariesAllowed() {
        guard case .refused = check(disk: .upToDate, peerRole: .primary) else { Issue.record("allowed"); return }
        #expect(check(disk: .upToDate, peerRole: .primary, .init(allowTwoPrimaries: true)) == .allowed)
    }

    @Test func disconnectedNeedsProofThePeerIsFenced() {
        guard case .refused(let reason) = check(disk: .upToDate, connection: .connecting, peerRole: .unknown)
        else { Issue.record("allowed"); return }
        #expect(reason.contains("fenced"))
        #expect(
            check(disk: .upToDate, connection: .connecting, peerRole: .unknown, .init(peerFencedOrOutdated: true))
                == .allowed)
    }

    @Test func volumeWithoutPeerPromotesFreely() {
        #expect(check(disk: .upToDate, connection: .standAlone, peerRole: .unknown, hasPeer: false) == .allowed)
    }

    @Test func consistentNeedsPeerOutdated() {
        guard case .refused = check(disk: .consistent, connection: .connecting, peerRole: .unknown) else {
            Issue.record("allowed"); return
        }
        #expect(
            check(disk: .consistent, connection: .connecting, peerRole: .unknown, .init(peerFencedOrOutdated: true))
                == .allowed)
    }

    @Test func forceAllowsFirstPromotionOfInconsistentData() {
        #expect(check(disk: .inconsistent, peerDisk: .inconsistent, .init(force: true)) == .allowed)
        guard case .refused = check(disk: .inconsistent, peerDisk: .upToDate, .init(force: true)) else {
            Issue.record("force must not overwrite a good peer"); return
        }
    }

    @Test func resyncTargetIsRefused() {
        guard case .refused = check(disk: .upToDate, connection: .syncTarget) else { Issue.record("allowed"); return }
    }
}

@Suite struct ManualResolveTests {
    @Test func survivorNamingThePeerMakesThePeerDiscard() {
        let a = G(current: 0x201, bitmap: 0x100)
        let b = G(current: 0x301, bitmap: 0x100)
        var survivor = report("a", a, dirty: 3)
        survivor.discardPeerData = true
        #expect(decideBoth(survivor, report("b", b, dirty: 8)) == .bitmapSync(localIsSource: true))
    }
}

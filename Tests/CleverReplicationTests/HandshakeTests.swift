import CleverBytes
import Testing

@testable import CleverReplication

/// Two handshake machines wired to each other, with a link control and a report per side: what both volume
/// processes do, without sockets.
struct HandshakePair {
    struct Side {
        var machine: Replication.Handshake
        var control = Replication.LinkControl(hasPeer: true)
        var report: Replication.NodeReport
        var bitmap: Replication.DirtyBitmap
        var discard: Replication.Discard = .none
        var inbox: [Replication.Frame] = []
        var decided: Replication.SyncDecision?
        var established: (decision: Replication.SyncDecision, peerBitmap: Replication.DirtyBitmap)?
        var failure: String?
        var keys: Replication.SessionKeys?
    }

    static let size: UInt64 = 64 << 20
    var sides: [Side]

    init(alpha: Replication.NodeReport, beta: Replication.NodeReport, secrets: ([UInt8], [UInt8]) = (Array("0123456789abcdef0123".utf8), Array("0123456789abcdef0123".utf8)),
        policies: Replication.SplitBrainPolicies = .init(), alphaBitmap: Replication.DirtyBitmap? = nil,
        betaBitmap: Replication.DirtyBitmap? = nil)
    {
        func local(_ node: String, _ peer: String) -> Replication.Handshake.Local {
            .init(volume: "vol0", node: node, peer: peer, volumeSize: Self.size, policies: policies, protocolMode: .C)
        }
        let empty = Replication.DirtyBitmap(volumeSize: Self.size)
        self.sides = [
            Side(machine: .init(local: local("alpha", "beta"), secret: secrets.0, challenge: Array(repeating: 1, count: 32)),
                report: alpha, bitmap: alphaBitmap ?? empty),
            Side(machine: .init(local: local("beta", "alpha"), secret: secrets.1, challenge: Array(repeating: 2, count: 32)),
                report: beta, bitmap: betaBitmap ?? empty),
        ]
    }

    mutating func perform(_ index: Int, _ actions: [Replication.Handshake.Action]) {
        for action in actions {
            switch action {
            case .send(let frame): self.sides[1 - index].inbox.append(frame)
            case .authenticated(let keys):
                self.sides[index].keys = keys
                switch self.sides[index].control.claim(UInt64(index + 1)) {
                case .granted(let discard, _):
                    var report = self.sides[index].report
                    report.discardMyData = discard == .local || self.sides[index].discard == .local
                    report.discardPeerData = discard == .peer || self.sides[index].discard == .peer
                    self.sides[index].report = report
                    self.perform(index, self.sides[index].machine.reportReady(Replication.Report(
                        node: report, volumeSize: Self.size, policies: self.sides[index].machine.local.policies,
                        protocolMode: .C, allowTwoPrimaries: false)))
                case .refused(let reason):
                    self.perform(index, self.sides[index].machine.abort(reason))
                }
            case .sendBitmap:
                let bytes = self.sides[index].bitmap.encoded
                self.sides[1 - index].inbox.append(.bitmapChunk(startWord: 0, words: bytes))
                self.sides[1 - index].inbox.append(.bitmapDone)
            case .decided(let decision, let local, let peer):
                self.sides[index].decided = decision
                let verdict = self.sides[index].control.decided(UInt64(index + 1), decision, local: local.node, peer: peer.node)
                if let refusal = verdict.refusal { self.perform(index, self.sides[index].machine.abort(refusal)) }
            case .established(_, let decision, let peerBitmap):
                _ = self.sides[index].control.established(UInt64(index + 1))
                self.sides[index].established = (decision, peerBitmap)
            case .fail(let reason, let tellPeer):
                self.sides[index].failure = reason
                self.sides[index].control.ended(UInt64(index + 1))
                if tellPeer { self.sides[1 - index].inbox.append(.goodbye(reason)) }
            }
        }
    }

    /// Runs both machines until neither has anything to read.
    mutating func run() {
        for index in 0..<2 { self.perform(index, self.sides[index].machine.start()) }
        var progressed = true
        while progressed {
            progressed = false
            for index in 0..<2 where !self.sides[index].inbox.isEmpty {
                let frame = self.sides[index].inbox.removeFirst()
                self.perform(index, self.sides[index].machine.receive(frame))
                progressed = true
            }
        }
    }
}

func report(_ name: String, role: Replication.Role = .secondary, generations: Replication.GenerationIDs,
    dirty: UInt64 = 0) -> Replication.NodeReport
{
    Replication.NodeReport(name: name, role: role, disk: .upToDate, generations: generations, dirtyBlocks: dirty)
}

@Suite struct HandshakeTests {
    @Test func matchingSidesEstablishWithMirroredDecisionsAndKeys() {
        var bitmap = Replication.DirtyBitmap(volumeSize: HandshakePair.size)
        bitmap.set(7)
        var pair = HandshakePair(
            alpha: report("alpha", role: .primary, generations: .init(current: 0x301, bitmap: 0x200), dirty: 1),
            beta: report("beta", generations: .init(current: 0x200)), alphaBitmap: bitmap)
        pair.run()
        #expect(pair.sides[0].established?.decision == .bitmapSync(localIsSource: true))
        #expect(pair.sides[1].established?.decision == .bitmapSync(localIsSource: false))
        #expect(pair.sides[1].established?.peerBitmap.isSet(7) == true)
        #expect(pair.sides[0].machine.state == .established && pair.sides[1].machine.state == .established)
        // What one side seals with, the other opens with.
        #expect(pair.sides[0].keys?.sending == pair.sides[1].keys?.receiving)
        #expect(pair.sides[0].keys?.receiving == pair.sides[1].keys?.sending)
        #expect(pair.sides[0].keys?.sending != pair.sides[0].keys?.receiving)
        #expect(pair.sides[0].control.state == .established(connection: 1))
    }

    @Test func aWrongSecretFailsBeforeAnyReport() {
        var pair = HandshakePair(
            alpha: report("alpha", generations: .init(current: 0x200)), beta: report("beta", generations: .init(current: 0x200)),
            secrets: (Array("0123456789abcdef0123".utf8), Array("another-secret-entirely".utf8)))
        pair.run()
        #expect(pair.sides[0].failure?.contains("does not know the shared secret") == true)
        #expect(pair.sides[0].decided == nil && pair.sides[1].decided == nil)
        #expect(pair.sides[0].control.state == .connecting(.none))
    }

    @Test func framesBeforeAuthenticationAreSmall() {
        var machine = Replication.Handshake(
            local: .init(volume: "v", node: "a", peer: "b", volumeSize: 1 << 20, policies: .init(), protocolMode: .C),
            secret: Array(repeating: 1, count: 16), challenge: Array(repeating: 0, count: 32))
        _ = machine.start()
        #expect(machine.maxPayload == Replication.Wire.maxUnauthenticatedPayload)
        let actions = machine.receive(.report(Replication.Report(
            node: report("b", generations: .init()), volumeSize: 1 << 20, policies: .init(), protocolMode: .C,
            allowTwoPrimaries: false)))
        guard case .fail(let reason, true)? = actions.first else {
            Issue.record("a report before the hello was accepted: \(actions)")
            return
        }
        #expect(reason.contains("unexpected report frame during hello"))
    }

    @Test func aPeerNamingAnotherVolumeOrNodeIsRefused() {
        var machine = Replication.Handshake(
            local: .init(volume: "v", node: "a", peer: "b", volumeSize: 1 << 20, policies: .init(), protocolMode: .C),
            secret: Array(repeating: 1, count: 16), challenge: Array(repeating: 0, count: 32))
        _ = machine.start()
        let actions = machine.receive(.hello(.init(protocolVersion: 1, node: "mallory", volume: "v",
            challenge: Array(repeating: 3, count: 32))))
        #expect(actions == [.fail(reason: "peer says it is node 'mallory', expected 'b'", tellPeer: true)])
    }
}

@Suite struct SplitBrainAccountingTests {
    /// Both sides went on from generation 0x200 (alpha changed 6 blocks, beta 3 after its promotion).
    func diverged(
        alphaDirty: UInt64, betaDirty: UInt64, policies: Replication.SplitBrainPolicies = .init(),
        alphaDiscard: Replication.Discard = .none, betaDiscard: Replication.Discard = .none,
        alphaControl: Replication.LinkControl? = nil, betaControl: Replication.LinkControl? = nil
    ) -> HandshakePair {
        var pair = HandshakePair(
            alpha: report("alpha", generations: .init(current: 0x500, bitmap: 0x201), dirty: alphaDirty),
            beta: report("beta", generations: .init(current: 0x700, bitmap: 0x200), dirty: betaDirty),
            policies: policies)
        pair.sides[0].discard = alphaDiscard
        pair.sides[1].discard = betaDiscard
        if let alphaControl { pair.sides[0].control = alphaControl }
        if let betaControl { pair.sides[1].control = betaControl }
        pair.run()
        return pair
    }

    @Test func bothSidesRecordTheSameCountsAndReason() {
        let pair = self.diverged(alphaDirty: 6, betaDirty: 3)
        let alpha = pair.sides[0].control.splitBrain
        let beta = pair.sides[1].control.splitBrain
        #expect(alpha?.changesLine == "alpha changed 6 blocks (24 KiB); beta changed 3 blocks (12 KiB)")
        #expect(alpha?.changesLine == beta?.changesLine)
        #expect(alpha?.reason == beta?.reason)
        #expect(alpha?.reason.contains("alpha: 6 changed blocks, beta: 3 changed blocks") == true)
    }

    @Test(arguments: [(UInt64(744), UInt64(167)), (0, 5), (5, 0), (20, 20)])
    func leastAndZeroChangesPickTheSameLoserOnBothSides(counts: (UInt64, UInt64)) {
        for policy in [Replication.SplitBrainPolicies.ZeroPrimaries.discardLeastChanges, .discardZeroChanges] {
            let pair = self.diverged(alphaDirty: counts.0, betaDirty: counts.1, policies: .init(zeroPrimaries: policy))
            let alpha = pair.sides[0].decided
            let beta = pair.sides[1].decided
            switch (alpha, beta) {
            case (.bitmapSync(let alphaSource)?, .bitmapSync(let betaSource)?):
                #expect(alphaSource != betaSource, "both sides must agree who is the source (\(policy), \(counts))")
                if policy == .discardLeastChanges && counts.0 != counts.1 {
                    #expect(alphaSource == (counts.0 > counts.1), "the side that changed more wins")
                }
            case (.splitBrain?, .splitBrain?):
                #expect(policy == .discardZeroChanges && counts.0 > 0 && counts.1 > 0)
            default:
                Issue.record("the sides decided differently: \(String(describing: alpha)) vs \(String(describing: beta))")
            }
        }
    }

    @Test func aSplitBrainProbeRefreshesCountsButResyncsNothing() {
        let first = self.diverged(alphaDirty: 6, betaDirty: 3)
        // Alpha stayed primary and wrote more; the next report exchange updates both records alike.
        let second = self.diverged(
            alphaDirty: 10, betaDirty: 3, alphaControl: first.sides[0].control, betaControl: first.sides[1].control)
        #expect(second.sides[0].established == nil && second.sides[1].established == nil)
        #expect(second.sides[0].control.splitBrain?.changesLine == "alpha changed 10 blocks (40 KiB); beta changed 3 blocks (12 KiB)")
        #expect(second.sides[1].control.splitBrain?.changesLine == second.sides[0].control.splitBrain?.changesLine)
    }

    @Test func aResolveAskedOnEitherSideIsHonouredByTheOther() {
        for (alphaDiscard, betaDiscard) in [(Replication.Discard.peer, Replication.Discard.none), (.none, .local)] {
            let first = self.diverged(alphaDirty: 6, betaDirty: 3)
            var alphaControl = first.sides[0].control
            var betaControl = first.sides[1].control
            // Only one host runs `resolve --discard beta`; the other still awaits a resolve.
            if alphaDiscard != .none { _ = alphaControl.connect(discard: alphaDiscard) }
            if betaDiscard != .none { _ = betaControl.connect(discard: betaDiscard) }
            let pair = self.diverged(
                alphaDirty: 6, betaDirty: 3, alphaDiscard: alphaDiscard, betaDiscard: betaDiscard,
                alphaControl: alphaControl, betaControl: betaControl)
            #expect(pair.sides[0].established?.decision == .bitmapSync(localIsSource: true))
            #expect(pair.sides[1].established?.decision == .bitmapSync(localIsSource: false))
        }
    }
}

@Suite struct FrameSealerTests {
    @Test func tamperedReplayedOrReorderedFramesFail() {
        let key = Array(repeating: UInt8(7), count: 32)
        var sender = Replication.FrameSealer(key: key)
        let frames: [[UInt8]] = [Array(repeating: 1, count: 100), [], Array(repeating: 2, count: 70000)]
        let headers = frames.map { Replication.Wire.header(type: .write, length: $0.count, sealed: true) }
        let tags = zip(headers, frames).map { sender.seal(header: $0, payload: $1) }
        var receiver = Replication.FrameSealer(key: key)
        for index in frames.indices {
            let opened = receiver.open(header: headers[index], payload: frames[index], tag: tags[index])
            #expect(opened)
        }

        var tampered = frames[2]
        tampered[69999] ^= 1
        var fresh = Replication.FrameSealer(key: key)
        do { let opened = fresh.open(header: headers[0], payload: frames[0], tag: tags[0]); #expect(opened) }
        do { let opened = fresh.open(header: headers[1], payload: frames[1], tag: tags[1]); #expect(opened) }
        do { let opened = fresh.open(header: headers[2], payload: tampered, tag: tags[2]); #expect(!opened) }
        var reordered = Replication.FrameSealer(key: key)
        do { let opened = reordered.open(header: headers[1], payload: frames[1], tag: tags[1]); #expect(!opened) }
        var otherKey = Replication.FrameSealer(key: Array(repeating: 8, count: 32))
        do { let opened = otherKey.open(header: headers[0], payload: frames[0], tag: tags[0]); #expect(!opened) }
    }

    @Test func aWriteSealedInPiecesOpensWhole() {
        let key = Array(repeating: UInt8(9), count: 32)
        var sender = Replication.FrameSealer(key: key)
        let fields: [UInt8] = Array(repeating: 5, count: 17)
        let data: [UInt8] = (0..<4096).map { UInt8($0 & 0xFF) }
        let header = Replication.Wire.header(type: .write, length: fields.count + data.count, sealed: true)
        let tag = data.withUnsafeBytes { sender.seal(header: header, fields: fields, data: $0) }
        var receiver = Replication.FrameSealer(key: key)
        do { let opened = receiver.open(header: header, payload: fields + data, tag: tag); #expect(opened) }
    }
}

@Suite struct PeerRangeTests {
    @Test func overflowingRangesAreRefusedNotTrapped() {
        #expect(!Replication.rangeFits(offset: UInt64.max - 10, length: 4096, size: 1 << 30))
        #expect(!Replication.rangeFits(offset: 1 << 30, length: 1, size: 1 << 30))
        #expect(Replication.rangeFits(offset: (1 << 30) - 4096, length: 4096, size: 1 << 30))
        #expect(!Replication.blockRangeFits(start: UInt64.max, count: 2, blockCount: 10))
        // The crafted resyncAck of the review: used to trap in `blocks`.
        let blocks = Replication.DirtyBitmap.blocks(offset: UInt64.max - 100, length: UInt64(UInt32.max))
        #expect(blocks.lowerBound == (UInt64.max - 100) / 4096)
    }
}

@Suite struct PromotionCoreTests {
    let data = Replication.DiskData(
        disk: .upToDate, generations: .init(current: 0x200), crashedPrimary: false, peerOutdated: false)

    @Test func promotingWithoutThePeerStartsANewGenerationFromTheShellsRandom() throws {
        let promotion = try Replication.promote(
            volume: "v", self.data, connection: .connecting, peerRole: .unknown, peerDisk: .unknown, hasPeer: true,
            configAllowsTwoPrimaries: false, request: .init(peerFencedOrOutdated: true), random: 0xABC0).get()
        #expect(promotion.data.generations.current == 0xABC1)
        #expect(promotion.data.generations.bitmap == 0x200)
        #expect(promotion.data.peerOutdated && promotion.data.crashedPrimary)
        #expect(promotion.linkAction == .announceRole)
    }

    @Test func promotingConnectedKeepsTheGeneration() throws {
        let promotion = try Replication.promote(
            volume: "v", self.data, connection: .connected, peerRole: .secondary, peerDisk: .upToDate, hasPeer: true,
            configAllowsTwoPrimaries: false, request: .init(), random: 0xABC0).get()
        #expect(promotion.data.generations.current == 0x201)
    }

    @Test func twoPrimariesNeedTheConfig() {
        let result = Replication.promote(
            volume: "v", self.data, connection: .connected, peerRole: .primary, peerDisk: .upToDate, hasPeer: true,
            configAllowsTwoPrimaries: false, request: .init(allowTwoPrimaries: true), random: 1)
        #expect(throws: Replication.PromotionRefusal.self) { try result.get() }
    }
}

extension Replication {
    /// One replication connection from its first byte to the point where it carries data: hellos with fresh
    /// challenges, HMAC proofs both ways, then (sealed) state reports, the sync decision and both dirty bitmaps.
    /// No I/O: the shell sends what `.send` says, feeds every frame it reads to `receive`, and performs the
    /// other actions in order. Both sides run the same machine; the decision mirrors.
    public struct Handshake: Sendable {
        /// What this side is and expects of the peer.
        public struct Local: Sendable, Hashable {
            public var volume: String
            public var node: String
            public var peer: String
            public var volumeSize: UInt64
            public var policies: SplitBrainPolicies
            public var protocolMode: ProtocolMode
            public var protocolVersion: UInt16

            public init(
                volume: String, node: String, peer: String, volumeSize: UInt64, policies: SplitBrainPolicies,
                protocolMode: ProtocolMode, protocolVersion: UInt16 = Handshake.protocolVersion
            ) {
                self.volume = volume
                self.node = node
                self.peer = peer
                self.volumeSize = volumeSize
                self.policies = policies
                self.protocolMode = protocolMode
                self.protocolVersion = protocolVersion
            }
        }

        public static let protocolVersion: UInt16 = 1

        public enum State: Sendable, Equatable {
            /// Our hello is sent. Can become: awaitingProof, failed.
            case awaitingHello
            /// The peer's hello checked out and our proof is sent. Can become: awaitingAcceptance, failed.
            case awaitingProof(peerChallenge: [UInt8])
            /// We accepted the peer's proof; the peer has yet to accept ours. Can become: authenticated, failed.
            case awaitingAcceptance(peerChallenge: [UInt8])
            /// Both proofs accepted; from here every frame is sealed. Waiting for the shell to claim the link
            /// and hand in our report (`reportReady`). Can become: awaitingReport, failed.
            case authenticated
            /// Our report is sent. Can become: receivingBitmap, failed.
            case awaitingReport(local: Report)
            /// The decision is made; the peer's bitmap is arriving. Can become: established, failed.
            case receivingBitmap(local: Report, peer: Report, decision: SyncDecision, words: [UInt8])
            /// Final: the connection carries data.
            case established
            /// Final.
            case failed(reason: String)
        }

        public enum Action: Sendable, Equatable {
            /// Send this frame: plain before `.authenticated`, sealed from then on.
            case send(Frame)
            /// Both sides proved they know the secret: seal frames with these keys from now on, claim the link
            /// for this connection, then call `reportReady` with this side's report.
            case authenticated(SessionKeys)
            /// Send our bitmap, beside reading the peer's (both may be megabytes).
            case sendBitmap
            /// Both reports are in and this is the decision. Recorded before the bitmaps, so a refusal is seen by
            /// both sides whatever the timing of the goodbye.
            case decided(SyncDecision, local: Report, peer: Report)
            /// The handshake is over: apply `decision` with the peer's bitmap.
            case established(peer: Report, decision: SyncDecision, peerBitmap: DirtyBitmap)
            /// End the connection; `tellPeer`: send a goodbye with the reason first.
            case fail(reason: String, tellPeer: Bool)
        }

        public let local: Local
        private let secret: [UInt8]
        private let challenge: [UInt8]
        public private(set) var state: State = .awaitingHello

        /// `challenge` must be fresh random bytes (`Wire.challengeSize`); the shell provides them.
        public init(local: Local, secret: [UInt8], challenge: [UInt8]) {
            self.local = local
            self.secret = secret
            self.challenge = challenge
        }

        /// Whether frames from the peer are sealed now (after its acceptance of our proof).
        public var peerFramesSealed: Bool {
            switch self.state {
            case .awaitingHello, .awaitingProof, .awaitingAcceptance: false
            default: true
            }
        }

        /// The largest payload the next frame may have: small until the peer is authenticated.
        public var maxPayload: UInt32 { self.peerFramesSealed ? Wire.maxPayload : Wire.maxUnauthenticatedPayload }

        public var isFinished: Bool {
            switch self.state {
            case .established, .failed: true
            default: false
            }
        }

        public mutating func start() -> [Action] {
            [.send(.hello(Hello(
                protocolVersion: self.local.protocolVersion, node: self.local.node, volume: self.local.volume,
                challenge: self.challenge)))]
        }

        /// The shell could not read a frame (closed, timed out, malformed, bad tag).
        public mutating func readFailed(_ reason: String) -> [Action] {
            guard !self.isFinished else { return [] }
            return self.fail("handshake (\(self.stage)) failed: \(reason)", tellPeer: false)
        }

        private var stage: String {
            switch self.state {
            case .awaitingHello: "hello"
            case .awaitingProof: "authentication"
            case .awaitingAcceptance: "authentication result"
            case .authenticated, .awaitingReport: "state report"
            case .receivingBitmap: "bitmap"
            case .established: "established"
            case .failed: "failed"
            }
        }

        private mutating func fail(_ reason: String, tellPeer: Bool) -> [Action] {
            self.state = .failed(reason: reason)
            return [.fail(reason: reason, tellPeer: tellPeer)]
        }

        public mutating func receive(_ frame: Frame) -> [Action] {
            if case .goodbye(let reason) = frame, !self.isFinished {
                return self.fail("peer closed the connection during \(self.stage): \(reason)", tellPeer: false)
            }
            switch self.state {
            case .awaitingHello:
                guard case .hello(let hello) = frame else { return self.unexpected(frame) }
                guard hello.protocolVersion == self.local.protocolVersion else {
                    return self.fail(
                        "peer speaks protocol \(hello.protocolVersion), we speak \(self.local.protocolVersion)",
                        tellPeer: true)
                }
                guard hello.volume == self.local.volume else {
                    return self.fail("peer serves volume '\(hello.volume)', expected '\(self.local.volume)'", tellPeer: true)
                }
                guard hello.node == self.local.peer else {
                    return self.fail("peer says it is node '\(hello.node)', expected '\(self.local.peer)'", tellPeer: true)
                }
                guard hello.challenge.count == Wire.challengeSize else {
                    return self.fail("peer's challenge has \(hello.challenge.count) bytes", tellPeer: true)
                }
                self.state = .awaitingProof(peerChallenge: hello.challenge)
                let proof = Replication.authProof(secret: self.secret, transcript: Replication.authTranscript(
                    volume: self.local.volume, proverNode: self.local.node, verifierNode: self.local.peer,
                    verifierChallenge: hello.challenge, proverChallenge: self.challenge))
                return [.send(.authProof(proof))]
            case .awaitingProof(let peerChallenge):
                guard case .authProof(let proof) = frame else { return self.unexpected(frame) }
                let expected = Replication.authProof(secret: self.secret, transcript: Replication.authTranscript(
                    volume: self.local.volume, proverNode: self.local.peer, verifierNode: self.local.node,
                    verifierChallenge: self.challenge, proverChallenge: peerChallenge))
                guard Replication.constantTimeEqual(proof, expected) else {
                    return self.fail(
                        "authentication failed: peer \(self.local.peer) does not know the shared secret", tellPeer: true)
                }
                self.state = .awaitingAcceptance(peerChallenge: peerChallenge)
                return [.send(.authAccepted)]
            case .awaitingAcceptance(let peerChallenge):
                guard case .authAccepted = frame else { return self.unexpected(frame) }
                self.state = .authenticated
                return [.authenticated(SessionKeys.derive(
                    secret: self.secret, volume: self.local.volume, localNode: self.local.node,
                    peerNode: self.local.peer, localChallenge: self.challenge, peerChallenge: peerChallenge))]
            case .authenticated:
                return self.unexpected(frame)
            case .awaitingReport(let local):
                guard case .report(let peer) = frame else { return self.unexpected(frame) }
                return self.decide(local: local, peer: peer)
            case .receivingBitmap(let local, let peer, let decision, var words):
                let blockCount = DirtyBitmap(volumeSize: self.local.volumeSize).blockCount
                let expectedBytes = Int((blockCount + 63) / 64) * 8
                switch frame {
                case .bitmapChunk(let start, let chunk):
                    guard start == UInt64(words.count / 8) else {
                        return self.fail("peer bitmap chunk starts at word \(start), expected \(words.count / 8)",
                            tellPeer: true)
                    }
                    guard words.count + chunk.count <= expectedBytes else {
                        return self.fail("peer bitmap too large", tellPeer: true)
                    }
                    words += chunk
                    self.state = .receivingBitmap(local: local, peer: peer, decision: decision, words: words)
                    return []
                case .bitmapDone:
                    guard let bitmap = DirtyBitmap.decode(blockCount: blockCount, bytes: words) else {
                        return self.fail("peer bitmap has \(words.count) bytes, expected \(expectedBytes)", tellPeer: true)
                    }
                    self.state = .established
                    return [.established(peer: peer, decision: decision, peerBitmap: bitmap)]
                default:
                    return self.unexpected(frame)
                }
            case .established, .failed:
                return []
            }
        }

        private mutating func unexpected(_ frame: Frame) -> [Action] {
            self.fail("unexpected \(Wire.encodePayload(frame).0) frame during \(self.stage)", tellPeer: true)
        }

        /// The shell claimed the link and took this side's report (under its lock, so the report and the
        /// bitmap sent next describe the same moment).
        public mutating func reportReady(_ report: Report) -> [Action] {
            guard case .authenticated = self.state else { return [] }
            self.state = .awaitingReport(local: report)
            return [.send(.report(report)), .sendBitmap]
        }

        /// The shell ends the handshake: it could not claim the link (another connection holds it, the volume
        /// is stopping), or the link control refused the decision (a split brain nobody asked to resolve).
        public mutating func abort(_ reason: String) -> [Action] {
            guard !self.isFinished || self.state == .established else { return [] }
            return self.fail(reason, tellPeer: true)
        }

        private mutating func decide(local: Report, peer: Report) -> [Action] {
            guard peer.volumeSize == self.local.volumeSize else {
                return self.fail("peer volume is \(peer.volumeSize) bytes, ours \(self.local.volumeSize)", tellPeer: true)
            }
            guard peer.policies == self.local.policies else {
                return self.fail("after-split-brain policies differ between \(self.local.node) and \(self.local.peer)",
                    tellPeer: true)
            }
            guard peer.protocolMode == self.local.protocolMode else {
                return self.fail(
                    "protocol \(peer.protocolMode.rawValue) on \(self.local.peer), \(self.local.protocolMode.rawValue) here",
                    tellPeer: true)
            }
            guard peer.node.name == self.local.peer else {
                return self.fail("peer report names node '\(peer.node.name)', expected '\(self.local.peer)'", tellPeer: true)
            }
            let decision = Replication.decide(local: local.node, peer: peer.node, policies: self.local.policies)
            var actions: [Action] = [.decided(decision, local: local, peer: peer)]
            switch decision {
            case .splitBrain(let reason):
                actions += self.fail("split brain detected: \(reason)", tellPeer: true)
            case .unrelatedData:
                actions += self.fail("unrelated data: the disks share no generation history", tellPeer: true)
            case .bitmapSync(false) where local.node.role == .primary, .fullSync(false) where local.node.role == .primary:
                actions += self.fail("refusing to become sync target while Primary", tellPeer: true)
            default:
                self.state = .receivingBitmap(local: local, peer: peer, decision: decision, words: [])
            }
            return actions
        }
    }
}

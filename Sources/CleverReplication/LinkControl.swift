extension Replication {
    /// What both sides saw at the handshake that found a split brain: each side's own count of changed blocks
    /// as it sent it in its report. Both hosts record the same two numbers from the same handshake, so a dry
    /// run on either host says the same thing.
    public struct SplitBrainRecord: Sendable, Hashable, Codable {
        public var reason: String
        public var localNode: String
        public var localChangedBlocks: UInt64
        public var peerNode: String
        public var peerChangedBlocks: UInt64

        public init(reason: String, localNode: String, localChangedBlocks: UInt64, peerNode: String,
            peerChangedBlocks: UInt64)
        {
            self.reason = reason
            self.localNode = localNode
            self.localChangedBlocks = localChangedBlocks
            self.peerNode = peerNode
            self.peerChangedBlocks = peerChangedBlocks
        }

        /// `alpha changed 6 blocks (24 KiB); beta changed 3 blocks (12 KiB)`, nodes in name order so both hosts
        /// print the same line.
        public var changesLine: String {
            let sides = [(self.localNode, self.localChangedBlocks), (self.peerNode, self.peerChangedBlocks)]
                .sorted { $0.0 < $1.0 }
            return sides.map { "\($0.0) changed \($0.1) blocks (\($0.1 * 4) KiB)" }.joined(separator: "; ")
        }
    }

    /// The operator's choice of the side whose changes a reconnect throws away (`resolve --discard HOST`).
    public enum Discard: Sendable, Hashable {
        case none
        case local
        case peer
    }

    /// Why a volume is not connecting.
    public enum StandAloneCause: Sendable, Hashable {
        /// No peer, or an operator's `disconnect`.
        case disconnected
        /// The handshake found a split brain that the policies did not resolve. The volume keeps exchanging
        /// reports with its peer (so both sides' counts stay current and agree) and accepts a connection that
        /// carries an operator's `resolve` from either side; nothing else resyncs.
        case splitBrain(SplitBrainRecord)
        /// The disks share no history; an operator must connect again.
        case unrelatedData
        /// The volume process is stopping. Final.
        case stopping
    }

    /// Whether the replication link should exist, and which connection holds it. The volume shell asks it
    /// whether to dial or accept, and reports each connection's progress; it never decides that itself.
    /// Many connections may be in their (unauthenticated) handshake at once; only one may claim the link.
    public struct LinkControl: Sendable, Hashable {
        public enum State: Sendable, Hashable {
            /// Not connecting. Can become: connecting (`connect`, `resolve`), handshaking (a report exchange
            /// while awaiting a split-brain resolve).
            case standAlone(StandAloneCause)
            /// Wants a connection; none holds the claim. Can become: handshaking, standAlone (`disconnect`).
            case connecting(Discard)
            /// Connection `connection` authenticated and is exchanging reports and bitmaps. `probe`: only to
            /// refresh a split brain's counts, unless either side asks to resolve. Can become: established,
            /// connecting (the handshake failed), standAlone (split brain, unrelated data, `disconnect`).
            case handshaking(connection: UInt64, discard: Discard, probe: SplitBrainRecord?)
            /// Connection `connection` carries data. Can become: connecting (the link broke), standAlone
            /// (`disconnect`, stop).
            case established(connection: UInt64)
        }

        public enum Action: Sendable, Hashable {
            /// Close connection `connection` (tell the peer `reason`).
            case dropConnection(UInt64, reason: String)
        }

        /// The answer to an authenticated connection that wants the link.
        public enum Claim: Sendable, Hashable {
            /// Go on with the reports; the report carries `discard`; `probe` as in `State.handshaking`.
            case granted(discard: Discard, probe: SplitBrainRecord?)
            case refused(String)
        }

        public private(set) var state: State

        public init(hasPeer: Bool) {
            self.state = hasPeer ? .connecting(.none) : .standAlone(.disconnected)
        }

        /// The connection state in DRBD's words, before the data path refines `connected`.
        public var connectionState: ConnectionState {
            switch self.state {
            case .standAlone: .standAlone
            case .connecting, .handshaking: .connecting
            case .established: .connected
            }
        }

        public var splitBrain: SplitBrainRecord? {
            switch self.state {
            case .standAlone(.splitBrain(let record)): record
            case .handshaking(_, _, let probe?): probe
            default: nil
            }
        }

        public var isUnrelatedData: Bool { self.state == .standAlone(.unrelatedData) }

        /// Whether the side that dials should dial now, and the side that listens accept.
        public var wantsConnection: Bool {
            switch self.state {
            case .connecting, .standAlone(.splitBrain): true
            default: false
            }
        }

        public var isStopping: Bool { self.state == .standAlone(.stopping) }

        private var currentConnection: UInt64? {
            switch self.state {
            case .handshaking(let connection, _, _), .established(let connection): connection
            default: nil
            }
        }

        /// `connect` (with `discard` for a resolve). A split brain's record goes: the next handshake decides anew.
        public mutating func connect(discard: Discard = .none) -> [Action] {
            switch self.state {
            case .standAlone(.stopping), .established: return []
            case .handshaking(_, _, nil) where discard == .none: return []
            case .handshaking(let connection, _, _):
                // A resolve (or a connect that ends a split-brain probe) applies to the next connection.
                self.state = .connecting(discard)
                return [.dropConnection(connection, reason: "reconnecting on operator request")]
            case .standAlone, .connecting:
                self.state = .connecting(discard)
                return []
            }
        }

        public mutating func disconnect(reason: String = "disconnect requested") -> [Action] {
            guard !self.isStopping else { return [] }
            let connection = self.currentConnection
            self.state = .standAlone(.disconnected)
            return connection.map { [.dropConnection($0, reason: reason)] } ?? []
        }

        public mutating func stop() -> [Action] {
            let connection = self.currentConnection
            self.state = .standAlone(.stopping)
            return connection.map { [.dropConnection($0, reason: "volume process stopping")] } ?? []
        }

        /// Connection `connection` authenticated and wants the link.
        public mutating func claim(_ connection: UInt64) -> Claim {
            switch self.state {
            case .connecting(let discard):
                self.state = .handshaking(connection: connection, discard: discard, probe: nil)
                return .granted(discard: discard, probe: nil)
            case .standAlone(.splitBrain(let record)):
                self.state = .handshaking(connection: connection, discard: .none, probe: record)
                return .granted(discard: .none, probe: record)
            case .handshaking, .established:
                return .refused("already connected")
            case .standAlone(.stopping):
                return .refused("volume process stopping")
            case .standAlone:
                return .refused("not accepting connections now (StandAlone)")
            }
        }

        /// Both reports are in on `connection` and the handshake machine decided. Returns whether the
        /// connection may go on to the bitmaps (false: it ends, with `refusal` as the reason).
        public mutating func decided(
            _ connection: UInt64, _ decision: SyncDecision, local: NodeReport, peer: NodeReport
        ) -> (proceed: Bool, refusal: String?) {
            guard case .handshaking(connection, let discard, let probe) = self.state else {
                return (false, "connection superseded")
            }
            func record(_ reason: String) -> SplitBrainRecord {
                SplitBrainRecord(reason: reason, localNode: local.name, localChangedBlocks: local.dirtyBlocks,
                    peerNode: peer.name, peerChangedBlocks: peer.dirtyBlocks)
            }
            switch decision {
            case .splitBrain(let reason):
                self.state = .standAlone(.splitBrain(record(reason)))
                return (false, nil)
            case .unrelatedData:
                self.state = .standAlone(.unrelatedData)
                return (false, nil)
            default:
                break
            }
            let resolving = local.discardMyData || local.discardPeerData || peer.discardMyData || peer.discardPeerData
            if let probe, !resolving {
                // Nobody asked to resolve: this exchange only refreshed the counts.
                self.state = .standAlone(.splitBrain(record(probe.reason)))
                return (false, "split brain: waiting for `volume resolve` on either host")
            }
            _ = discard
            return (true, nil)
        }

        /// The handshake on `connection` finished: the link carries data.
        public mutating func established(_ connection: UInt64) -> Bool {
            guard case .handshaking(connection, _, _) = self.state else { return false }
            self.state = .established(connection: connection)
            return true
        }

        /// Connection `connection` ended (handshake failure or a broken link). Returns whether it held the link.
        @discardableResult
        public mutating func ended(_ connection: UInt64) -> Bool {
            switch self.state {
            case .handshaking(connection, let discard, let probe):
                // A failed probe keeps the split brain; a failed connect keeps the operator's wish.
                self.state = probe.map { .standAlone(.splitBrain($0)) } ?? .connecting(discard)
                return true
            case .established(connection):
                self.state = .connecting(.none)
                return true
            default:
                return false
            }
        }
    }
}

extension Replication {
    /// What the caller of `promote` vouches for.
    public struct PromotionRequest: Hashable, Sendable, Codable {
        /// The caller proved (by fencing or by outdating it through another path) that the peer is not primary
        /// and cannot become primary.
        public var peerFencedOrOutdated: Bool
        /// Allow two primaries (only for a live migration the cluster started).
        public var allowTwoPrimaries: Bool
        /// Promote even with Inconsistent data (first-time setup: this side's data becomes the reference).
        public var force: Bool

        public init(peerFencedOrOutdated: Bool = false, allowTwoPrimaries: Bool = false, force: Bool = false) {
            self.peerFencedOrOutdated = peerFencedOrOutdated
            self.allowTwoPrimaries = allowTwoPrimaries
            self.force = force
        }
    }

    public enum PromotionDecision: Hashable, Sendable {
        case allowed
        case refused(String)
    }

    /// DRBD's promotion rules. `hasPeer` is false for a volume configured without a peer.
    public static func checkPromotion(
        volume: String, localDisk: DiskState, connection: ConnectionState, peerRole: Role, peerDisk: DiskState,
        hasPeer: Bool, request: PromotionRequest
    ) -> PromotionDecision {
        switch localDisk {
        case .upToDate:
            break
        case .consistent where request.peerFencedOrOutdated || !hasPeer:
            break
        case .inconsistent where request.force && !connection.isConnected:
            break
        case .inconsistent where request.force && connection.isConnected && peerDisk <= .inconsistent:
            break
        default:
            return .refused("volume \(volume): local disk is \(localDisk), promotion needs UpToDate")
        }
        if connection.isConnected {
            if peerRole == .primary && !request.allowTwoPrimaries {
                return .refused("volume \(volume): peer is Primary and two primaries are not allowed")
            }
            if connection == .syncTarget {
                return .refused("volume \(volume): resync target in progress")
            }
        } else if hasPeer && !request.peerFencedOrOutdated && !request.force {
            return .refused(
                "volume \(volume): peer is not connected and may be Primary; prove it is fenced or outdated")
        }
        return .allowed
    }
}

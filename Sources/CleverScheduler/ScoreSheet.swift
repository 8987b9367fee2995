import CleverModel

/// Why a node has its score for a resource: every contribution, in the order it was added, so
/// `clevervm explain` can say what produced the number.
public struct ScoreSheet: Hashable, Sendable, Codable {
    public struct Contribution: Hashable, Sendable, Codable {
        public var score: Score
        public var reason: String

        public init(_ score: Score, _ reason: String) {
            self.score = score
            self.reason = reason
        }
    }

    public private(set) var contributions: [String: [Contribution]] = [:]
    public private(set) var totals: [String: Score] = [:]

    public init(nodes: [String]) {
        for node in nodes {
            self.contributions[node] = []
            self.totals[node] = .zero
        }
    }

    public var nodes: [String] { self.totals.keys.sorted() }

    public func total(on node: String) -> Score { self.totals[node] ?? .minusInfinity }

    public mutating func add(_ score: Score, on node: String, because reason: String) {
        guard self.totals[node] != nil else { return }
        self.contributions[node, default: []].append(Contribution(score, reason))
        self.totals[node] = self.total(on: node) + score
    }

    /// Merges another sheet, scaled, as Pacemaker merges a colocated resource's node scores.
    /// Returns false, and changes nothing, if the merge would leave no node allowed and
    /// `rollbackIfNoneAllowed`: a dependent's preferences are advisory to its primary and never make it
    /// unplaceable. `nonNegative` (Pacemaker's merge into a clone): a node the merge would turn negative
    /// keeps 1 if it was above zero, and its score if it was zero. `only`: the nodes the merge may change (all when nil).
    @discardableResult
    public mutating func merge(
        _ other: ScoreSheet, factor: Score, because reason: String, rollbackIfNoneAllowed: Bool, nonNegative: Bool = false,
        only: Set<String>? = nil
    ) -> Bool {
        var copy = self
        // Each node's contributions are its own list, so the order nodes are visited in does not matter.
        for node in self.totals.keys where only?.contains(node) ?? true {
            let theirs = other.total(on: node)
            let scaled = theirs.scaled(by: factor)
            // A negative factor applied to a node the other side dislikes must not become a preference.
            if factor.value < 0, theirs.value < 0 { continue }
            if scaled == .zero { continue }
            let mine = self.total(on: node)
            if nonNegative, (mine + scaled).value < 0, mine.value >= 0 {
                if mine.value > 0 {
                    copy.add(Score(1 - mine.value), on: node, because: "\(reason) (\(theirs) × \(factor)/INFINITY would make it negative: 1)")
                }
                continue
            }
            copy.add(scaled, on: node, because: "\(reason) (\(theirs) × \(factor)/INFINITY)")
        }
        if rollbackIfNoneAllowed, !copy.anyAllowed { return false }
        self = copy
        return true
    }

    public var anyAllowed: Bool { self.totals.values.contains { $0.allowsPlacement } }
}

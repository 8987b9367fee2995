import CleverModel

/// Why a resource is where it is and why not elsewhere, from the scores the scheduler computed.
public struct Explanation: Hashable, Sendable, Codable {
    public struct NodeScore: Hashable, Sendable, Codable {
        public var node: String
        public var score: Score
        public var contributions: [ScoreSheet.Contribution]
        public var chosen: Bool
    }

    public var resource: String
    public var type: String
    /// Where it runs after the transition, with roles.
    public var placement: [Placement]
    public var blockedReason: String?
    public var scores: [NodeScore]
    public var promotionScores: [NodeScore]?
    public var group: String?

    public init?(resource id: String, config: ClusterConfig, transition: Transition) {
        guard let resource = config.resource(named: id) else { return nil }
        let group = config.group(containing: id)
        let sheetKey = group?.id ?? id
        guard let sheet = transition.scores[sheetKey] else { return nil }
        self.resource = id
        self.type = resource.kind.typeName
        self.group = group?.id
        self.placement = transition.placement.filter { $0.baseResource == id }
        self.blockedReason = transition.blocked[id] ?? group.flatMap { transition.blocked[$0.id] }
        let chosen = Set(self.placement.map(\.node))
        self.scores = Self.rows(sheet, chosen: chosen)
        if let promotion = transition.promotionScores[id] {
            let promoted = Set(self.placement.filter { $0.role == .promoted }.map(\.node))
            self.promotionScores = Self.rows(promotion, chosen: promoted)
        }
    }

    private static func rows(_ sheet: ScoreSheet, chosen: Set<String>) -> [NodeScore] {
        sheet.nodes.map { node in
            NodeScore(node: node, score: sheet.total(on: node), contributions: sheet.contributions[node] ?? [],
                      chosen: chosen.contains(node))
        }.sorted { ($0.score, $1.node) > ($1.score, $0.node) }
    }

    public func render() -> String {
        var lines: [String] = []
        let kind = self.group.map { "\(self.type), member of group \($0)" } ?? self.type
        if self.placement.isEmpty {
            lines.append("\(self.resource) (\(kind)) is stopped: \(self.blockedReason ?? "no node allows it").")
        } else {
            let places = self.placement.map { "\($0.role.rawValue) on \($0.node)" }.joined(separator: ", ")
            lines.append("\(self.resource) (\(kind)): \(places).")
        }
        lines.append("")
        lines.append(self.group == nil ? "Node scores (highest allowed score wins; below 0 means not allowed):"
                     : "Node scores of group \(self.group!) (the group's members move together):")
        lines += Self.renderRows(self.scores)
        if let promotion = self.promotionScores {
            lines.append("")
            lines.append("Promotion scores (the highest allowed node holding an instance is promoted):")
            lines += Self.renderRows(promotion)
        }
        return lines.joined(separator: "\n")
    }

    private static func renderRows(_ rows: [NodeScore]) -> [String] {
        var lines: [String] = []
        let width = rows.map(\.node.count).max() ?? 0
        for row in rows {
            let verdict = row.chosen ? "chosen" : (row.score.allowsPlacement ? "allowed" : "not allowed")
            lines.append("  \(row.node.padded(to: width))  \(row.score.description.padded(to: 10))  \(verdict)")
            if row.contributions.isEmpty {
                lines.append("      0           no constraint, mark or history mentions this node")
            }
            for contribution in row.contributions {
                lines.append("      \(contribution.score.description.padded(to: 10))  \(contribution.reason)")
            }
        }
        return lines
    }
}

/// A location rule: the score applies on nodes where the expression holds.
public struct Rule: Hashable, Sendable, Codable {
    public var score: Score
    /// Take the score from this node attribute instead of `score` (Pacemaker's score-attribute).
    public var scoreAttribute: String?
    public var expression: Expression

    public init(score: Score, scoreAttribute: String? = nil, expression: Expression) {
        self.score = score
        self.scoreAttribute = scoreAttribute
        self.expression = expression
    }

    /// The score this rule gives a node with these attributes: nil where the expression does not hold, or where the
    /// score comes from an attribute (`score-attribute`) the node lacks or that is no score.
    public func score(on attributes: [String: String]) -> Score? {
        guard self.expression.evaluate(attributes) else { return nil }
        guard let attribute = self.scoreAttribute else { return self.score }
        // Pacemaker (get_node_score, char2score): a node without the attribute gets -INFINITY from the rule; a value
        // that is no number scores 0.
        guard let value = attributes[attribute] else { return .minusInfinity }
        return Score(parsing: value) ?? Score(0)
    }

    public indirect enum Expression: Hashable, Sendable, Codable {
        case compare(attribute: String, op: Comparison, value: String, type: ValueType)
        case defined(String)
        case notDefined(String)
        case and([Expression])
        case or([Expression])

        public func evaluate(_ attributes: [String: String]) -> Bool {
            switch self {
            case .defined(let name): return attributes[name] != nil
            case .notDefined(let name): return attributes[name] == nil
            case .and(let parts): return parts.allSatisfy { $0.evaluate(attributes) }
            case .or(let parts): return parts.contains { $0.evaluate(attributes) }
            case .compare(let name, let op, let expected, let type):
                guard let actual = attributes[name] else { return op == .ne }
                return op.holds(actual, expected, type: type)
            }
        }
    }

    public enum Comparison: String, Hashable, Sendable, Codable, CaseIterable {
        case eq, ne, lt, lte, gt, gte

        public var symbol: String {
            switch self {
            case .eq: "=="
            case .ne: "!="
            case .lt: "<"
            case .lte: "<="
            case .gt: ">"
            case .gte: ">="
            }
        }

        func holds(_ actual: String, _ expected: String, type: ValueType) -> Bool {
            let order: Int
            switch type {
            case .number:
                guard let a = Double(actual), let b = Double(expected) else {
                    return self == .ne
                }
                order = a < b ? -1 : (a > b ? 1 : 0)
            case .string:
                order = actual < expected ? -1 : (actual > expected ? 1 : 0)
            }
            switch self {
            case .eq: return order == 0
            case .ne: return order != 0
            case .lt: return order < 0
            case .lte: return order <= 0
            case .gt: return order > 0
            case .gte: return order >= 0
            }
        }
    }

    public enum ValueType: String, Hashable, Sendable, Codable, CaseIterable { case string, number }
}

extension Rule.Expression: CustomStringConvertible {
    public var description: String {
        switch self {
        case .defined(let name): "defined(\(name))"
        case .notDefined(let name): "not_defined(\(name))"
        case .and(let parts): parts.map { "(\($0))" }.joined(separator: " and ")
        case .or(let parts): parts.map { "(\($0))" }.joined(separator: " or ")
        case .compare(let name, let op, let value, _): "\(name) \(op.symbol) \(value)"
        }
    }
}

import CleverModel

/// The scheduler's answer: where everything should be, and the ordered actions that get it there.
public struct Transition: Hashable, Sendable, Codable {
    public var placement: [Placement]
    public var actions: [Action]
    /// Per resource: how each node scored, for `explain`.
    public var scores: [String: ScoreSheet]
    /// Per promotable resource: the promotion score of each node.
    public var promotionScores: [String: ScoreSheet]
    /// Resources that cannot run anywhere, with the reason.
    public var blocked: [String: String]

    public init(placement: [Placement] = [], actions: [Action] = [], scores: [String: ScoreSheet] = [:],
                promotionScores: [String: ScoreSheet] = [:], blocked: [String: String] = [:]) {
        self.placement = placement
        self.actions = actions
        self.scores = scores
        self.promotionScores = promotionScores
        self.blocked = blocked
    }

    public var isEmpty: Bool { self.actions.isEmpty }
}

public struct Placement: Hashable, Sendable, Codable, Comparable {
    public enum Role: String, Hashable, Sendable, Codable {
        case started = "Started", promoted = "Promoted", unpromoted = "Unpromoted"

        public var resourceRole: ResourceRole {
            switch self {
            case .started: .started
            case .promoted: .promoted
            case .unpromoted: .unpromoted
            }
        }
    }

    /// Resource id; a clone instance is `id:N`.
    public var resource: String
    public var node: String
    public var role: Role

    public init(resource: String, node: String, role: Role) {
        self.resource = resource
        self.node = node
        self.role = role
    }

    public static func < (lhs: Placement, rhs: Placement) -> Bool {
        (lhs.resource, lhs.node, lhs.role.rawValue) < (rhs.resource, rhs.node, rhs.role.rawValue)
    }

    /// The resource id without a clone instance suffix.
    public var baseResource: String {
        guard let colon = self.resource.lastIndex(of: ":") else { return self.resource }
        return String(self.resource[..<colon])
    }
}

/// One step of a transition. `after` lists the ids of actions that must complete first.
public struct Action: Hashable, Sendable, Codable, CustomStringConvertible {
    public var id: Int
    public var resource: String
    public var node: String
    public var action: ResourceAction
    public var reason: String
    public var after: [Int]

    public init(id: Int, resource: String, node: String, action: ResourceAction, reason: String, after: [Int] = []) {
        self.id = id
        self.resource = resource
        self.node = node
        self.action = action
        self.reason = reason
        self.after = after
    }

    public var description: String { "\(self.action.rawValue) \(self.resource) on \(self.node)" }
}

/// Placement and ordering constraints, with Pacemaker's meaning.
public enum Constraint: Hashable, Sendable, Codable {
    case location(LocationConstraint)
    case colocation(ColocationConstraint)
    case order(OrderConstraint)

    public var id: String {
        switch self {
        case .location(let c): c.id
        case .colocation(let c): c.id
        case .order(let c): c.id
        }
    }
}

/// Roles a constraint can name. `started` on a promotable clone means "any instance".
public enum ConstraintRole: String, Hashable, Sendable, Codable, CaseIterable {
    case started = "Started", promoted = "Promoted", unpromoted = "Unpromoted"
}

public struct LocationConstraint: Hashable, Sendable, Codable {
    public enum Placement: Hashable, Sendable, Codable {
        /// A fixed score on one node.
        case node(String, Score)
        /// A score on every node where the rule holds.
        case rule(Rule)
    }

    public var id: String
    public var resource: String
    public var placement: Placement
    /// Restricts the constraint to one role of a promotable clone.
    public var role: ConstraintRole?

    public init(id: String, resource: String, placement: Placement, role: ConstraintRole? = nil) {
        self.id = id
        self.resource = resource
        self.placement = placement
        self.role = role
    }
}

/// `dependent` runs with (score > 0) or away from (score < 0) `primary`. The primary is placed first.
public struct ColocationConstraint: Hashable, Sendable, Codable {
    public var id: String
    public var dependent: String
    public var primary: String
    public var score: Score
    public var dependentRole: ConstraintRole?
    public var primaryRole: ConstraintRole?

    public init(
        id: String, dependent: String, primary: String, score: Score,
        dependentRole: ConstraintRole? = nil, primaryRole: ConstraintRole? = nil
    ) {
        self.id = id
        self.dependent = dependent
        self.primary = primary
        self.score = score
        self.dependentRole = dependentRole
        self.primaryRole = primaryRole
    }
}

public enum ResourceAction: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
    case start, stop, promote, demote, monitor
    case migrateTo = "migrate_to", migrateFrom = "migrate_from"

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: ResourceAction, rhs: ResourceAction) -> Bool { lhs.rank < rhs.rank }

    /// The action undone by this one, for the reverse half of a symmetrical order.
    public var inverse: ResourceAction? {
        switch self {
        case .start: .stop
        case .stop: .start
        case .promote: .demote
        case .demote: .promote
        default: nil
        }
    }
}

/// `first`'s action happens before `then`'s. Mandatory (score > 0, `kind: mandatory`) or optional.
public struct OrderConstraint: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable { case mandatory, optional }

    public var id: String
    public var first: String
    public var firstAction: ResourceAction
    public var then: String
    public var thenAction: ResourceAction
    public var kind: Kind
    /// Also order the inverse actions in reverse (stop `then` before stopping `first`).
    public var symmetrical: Bool

    public init(
        id: String, first: String, firstAction: ResourceAction = .start, then: String,
        thenAction: ResourceAction = .start, kind: Kind = .mandatory, symmetrical: Bool = true
    ) {
        self.id = id
        self.first = first
        self.firstAction = firstAction
        self.then = then
        self.thenAction = thenAction
        self.kind = kind
        self.symmetrical = symmetrical
    }
}

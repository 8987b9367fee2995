import CleverModel
import Yams

extension ConfigDecoder {
    // MARK: Groups

    mutating func decodeGroup(_ node: Node, path: String) -> GroupConfig? {
        guard let fields = self.fields(node, path: path, known: ["id", "members", "meta"]) else { return nil }
        let id = self.value(fields, "id", required: true, expected: "an id", ValueSyntax.identifier)
        let members = self.scalarList(fields, "members", required: true, expected: "a resource id", ValueSyntax.identifier)
        if members?.isEmpty == true {
            self.report("a group needs at least one member", path: KeyPath.child(path, "members"))
        }
        let meta = self.node(fields, "meta", required: false).map { self.decodeMeta($0, path: KeyPath.child(path, "meta")) }
        guard let id, let members, !members.isEmpty else { return nil }
        return GroupConfig(id: id, members: members, meta: meta ?? ResourceMeta())
    }

    // MARK: Constraints

    static let constraintKinds = ["location", "colocation", "order"]

    /// One entry of `constraints`: a mapping with exactly one key naming the kind.
    mutating func decodeConstraint(_ node: Node, path: String) -> DecodedConstraint? {
        guard let outer = self.fields(node, path: path, known: Self.constraintKinds) else { return nil }
        guard outer.entries.count == 1, let entry = outer.entries.first else {
            if outer.entries.isEmpty, case .mapping(let mapping) = node, !mapping.isEmpty {
                // Its keys were all unknown, and each was reported.
            } else if outer.entries.isEmpty {
                self.report(
                    "expected one of location, colocation or order", at: outer.position, path: path,
                    hint: "e.g. - order: {first: disk0, then: mba7}")
            } else {
                self.report(
                    "one constraint per list entry, found \(outer.entries.map(\.key).joined(separator: " and "))",
                    at: outer.entries[1].keyPosition, path: path, hint: "start a new entry with '- '")
            }
            return nil
        }
        let innerPath = KeyPath.child(path, entry.key)
        switch entry.key {
        case "location": return self.decodeLocation(entry.value, path: innerPath, entryPath: path)
        case "colocation": return self.decodeColocation(entry.value, path: innerPath, entryPath: path)
        default: return self.decodeOrder(entry.value, path: innerPath, entryPath: path)
        }
    }

    mutating func decodeLocation(_ node: Node, path: String, entryPath: String) -> DecodedConstraint? {
        guard
            let fields = self.fields(
                node, path: path, known: ["id", "resource", "node", "score", "score-attribute", "rule", "role"])
        else { return nil }
        let id = self.value(fields, "id", expected: "an id", ValueSyntax.identifier)
        let resource = self.value(fields, "resource", required: true, expected: "a resource id", ValueSyntax.identifier)
        let role = self.value(fields, "role", expected: "a role") { ValueSyntax.choice($0, of: ConstraintRole.self) }
        let score = self.value(fields, "score", expected: "a score", ValueSyntax.score)
        let placement: LocationConstraint.Placement?
        switch (fields.has("node"), fields.has("rule")) {
        case (true, true):
            self.report(
                "a location constraint has either 'node' or 'rule', not both", path: KeyPath.child(path, "rule"),
                hint: "write two constraints")
            placement = nil
        case (false, false):
            self.report(
                "a location constraint needs 'node' or 'rule'", at: fields.position, path: path,
                hint: "e.g. node: alpha, score: 50")
            placement = nil
        case (true, false):
            if fields.has("score-attribute") {
                self.report(
                    "score-attribute applies to rules only", path: KeyPath.child(path, "score-attribute"),
                    hint: "use 'score' with 'node'")
            }
            let nodeName = self.string(fields, "node", required: true)
            placement = nodeName.map { .node($0, score ?? .infinity) }
        case (false, true):
            let scoreAttribute = self.value(fields, "score-attribute", expected: "an attribute name", ValueSyntax.attributeName)
            if scoreAttribute != nil, score != nil {
                self.report(
                    "a rule has either 'score' or 'score-attribute', not both",
                    path: KeyPath.child(path, "score-attribute"))
            }
            let expression = self.decodeRule(fields)
            placement = expression.map {
                .rule(Rule(score: scoreAttribute == nil ? score ?? .infinity : .zero, scoreAttribute: scoreAttribute, expression: $0))
            }
        }
        guard let resource, let placement else { return nil }
        let constraint = LocationConstraint(id: id ?? "", resource: resource, placement: placement, role: role)
        return DecodedConstraint(constraint: .location(constraint), path: entryPath, hasExplicitID: id != nil)
    }

    /// Parses the rule string; a syntax error points at its column inside the YAML scalar.
    mutating func decodeRule(_ fields: Fields) -> Rule.Expression? {
        let path = KeyPath.child(fields.path, "rule")
        guard let node = self.node(fields, "rule", required: true) else { return nil }
        guard case .scalar(let scalar) = node else {
            self.report("expected a rule string, found \(node.kindDescription)", at: SourcePosition(node.mark), path: path)
            return nil
        }
        switch RuleSyntax.parse(scalar.string) {
        case .success(let expression):
            return expression
        case .failure(let error):
            var position = SourcePosition(node.mark)
            if !scalar.string.contains("\n") {
                switch scalar.style {
                case .plain: position.column += error.offset
                case .singleQuoted, .doubleQuoted: position.column += 1 + error.offset
                default: break
                }
            }
            self.report("rule: \(error.message)", at: position, path: path, hint: error.hint)
            return nil
        }
    }

    mutating func decodeColocation(_ node: Node, path: String, entryPath: String) -> DecodedConstraint? {
        guard
            let fields = self.fields(node, path: path, known: ["id", "resource", "with", "score", "role", "with-role"])
        else { return nil }
        let id = self.value(fields, "id", expected: "an id", ValueSyntax.identifier)
        let dependent = self.value(fields, "resource", required: true, expected: "a resource id", ValueSyntax.identifier)
        let primary = self.value(fields, "with", required: true, expected: "a resource id", ValueSyntax.identifier)
        let score = self.value(fields, "score", expected: "a score", ValueSyntax.score) ?? .infinity
        let role = self.value(fields, "role", expected: "a role") { ValueSyntax.choice($0, of: ConstraintRole.self) }
        let withRole = self.value(fields, "with-role", expected: "a role") { ValueSyntax.choice($0, of: ConstraintRole.self) }
        guard let dependent, let primary else { return nil }
        let constraint = ColocationConstraint(
            id: id ?? "", dependent: dependent, primary: primary, score: score, dependentRole: role, primaryRole: withRole)
        return DecodedConstraint(constraint: .colocation(constraint), path: entryPath, hasExplicitID: id != nil)
    }

    static let orderActions: [ResourceAction] = [.start, .stop, .promote, .demote]

    mutating func decodeOrder(_ node: Node, path: String, entryPath: String) -> DecodedConstraint? {
        guard
            let fields = self.fields(
                node, path: path, known: ["id", "first", "first-action", "then", "then-action", "kind", "symmetrical"])
        else { return nil }
        let action: (String) -> Result<ResourceAction, ValueProblem> = { text in
            ValueSyntax.choice(text, of: ResourceAction.self).flatMap { action in
                Self.orderActions.contains(action)
                    ? .success(action)
                    : .failure(ValueProblem("'\(text)' cannot be ordered", hint: "one of: start, stop, promote, demote"))
            }
        }
        let id = self.value(fields, "id", expected: "an id", ValueSyntax.identifier)
        let first = self.value(fields, "first", required: true, expected: "a resource id", ValueSyntax.identifier)
        let then = self.value(fields, "then", required: true, expected: "a resource id", ValueSyntax.identifier)
        let firstAction = self.value(fields, "first-action", expected: "an action", action) ?? .start
        let thenAction = self.value(fields, "then-action", expected: "an action", action) ?? .start
        let kind = self.value(fields, "kind", expected: "mandatory or optional") {
            ValueSyntax.choice($0, of: OrderConstraint.Kind.self)
        } ?? .mandatory
        let symmetrical = self.value(fields, "symmetrical", expected: "true or false", ValueSyntax.boolean) ?? true
        guard let first, let then else { return nil }
        let constraint = OrderConstraint(
            id: id ?? "", first: first, firstAction: firstAction, then: then, thenAction: thenAction, kind: kind,
            symmetrical: symmetrical)
        return DecodedConstraint(constraint: .order(constraint), path: entryPath, hasExplicitID: id != nil)
    }
}

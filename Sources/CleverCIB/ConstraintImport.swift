import CleverModel

extension CIBImporter {
    mutating func importConstraints(_ section: XMLNode, path: String) throws(CIBError) {
        for element in section.children {
            let elementPath = "\(path)/\(element.pathStep)"
            switch element.name {
            case "rsc_location": try self.importLocation(element, path: elementPath)
            case "rsc_colocation": try self.importColocation(element, path: elementPath)
            case "rsc_order": try self.importOrder(element, path: elementPath)
            case "rsc_ticket": self.report(elementPath, "tickets (multi-site clusters) are not supported; constraint skipped")
            default: self.report(elementPath, "unknown constraint; skipped")
            }
        }
    }

    /// The model's id for a resource a constraint names; nil (reported) if that resource was skipped.
    private mutating func resolve(_ attribute: String, of element: XMLNode, path: String) throws(CIBError) -> String? {
        let name = try self.required(attribute, of: element, path: path)
        if let id = self.resourceIDs[name] { return id }
        if self.skippedResources.contains(name) {
            self.report(path, "\(attribute) \(name) is a resource that was not imported; constraint skipped")
            return nil
        }
        throw self.error(at: path, element, "\(attribute) \"\(name)\" is not a resource in this CIB")
    }

    private mutating func role(_ attribute: String, of element: XMLNode, path: String) throws(CIBError) -> ConstraintRole? {
        guard let text = element[attribute] else { return nil }
        guard let role = PacemakerValues.role(text) else {
            throw self.error(at: path, element, "\(attribute) \"\(text)\" is not a role (Started, Promoted/Master, Unpromoted/Slave)")
        }
        return role
    }

    private func score(_ element: XMLNode, path: String) throws(CIBError) -> Score? {
        guard let text = element["score"] else { return nil }
        guard let score = Score(parsing: text) else {
            throw self.error(at: path, element, "score \"\(text)\" is not a score (an integer or ±INFINITY)")
        }
        return score
    }

    /// Reports constraints built from resource sets, which none of the three kinds supports.
    private mutating func rejectResourceSets(_ element: XMLNode, path: String) -> Bool {
        guard element.child(named: "resource_set") != nil else { return false }
        self.report(path, "resource sets in constraints are not supported; constraint skipped")
        return true
    }

    private mutating func reportExtraAttributes(_ element: XMLNode, path: String, handled: Set<String>) {
        for attribute in element.attributes.keys.sorted() where !handled.contains(attribute) {
            self.report(path, "attribute \(attribute) is not supported; ignored")
        }
    }

    // MARK: - rsc_location

    private mutating func importLocation(_ element: XMLNode, path: String) throws(CIBError) {
        let id = try self.required("id", of: element, path: path)
        if self.rejectResourceSets(element, path: path) { return }
        if element["rsc-pattern"] != nil {
            self.report(path, "rsc-pattern (regular expressions over resource names) is not supported; constraint skipped")
            return
        }
        guard let resource = try self.resolve("rsc", of: element, path: path) else { return }
        let role = try self.role("role", of: element, path: path)
        self.reportExtraAttributes(element, path: path, handled: ["id", "rsc", "role", "node", "score"])

        if id.hasPrefix("cli-ban-") || id.hasPrefix("cli-prefer-"), role == nil,
            let mark = try self.placementMark(element, id: id, resource: resource, path: path)
        {
            self.marks.append(mark)
            return
        }

        if let node = element["node"] {
            guard let score = try self.score(element, path: path) else {
                throw self.error(at: path, element, "a location with a node needs a score")
            }
            if element.child(named: "rule") != nil {
                self.report(path, "a location with both a node and rules: Pacemaker ignores the rules; so does the import")
            }
            self.config.constraints.append(
                .location(LocationConstraint(id: id, resource: resource, placement: .node(node, score), role: role)))
            return
        }
        let rules = element.children(named: "rule")
        guard !rules.isEmpty else {
            throw self.error(at: path, element, "a location needs a node and a score, or rules")
        }
        for other in element.children where other.name != "rule" {
            self.report("\(path)/\(other.pathStep)", "unexpected element in a location; ignored")
        }
        for (index, ruleElement) in rules.enumerated() {
            let rulePath = "\(path)/\(ruleElement.pathStep)"
            guard let rule = try self.rule(ruleElement, path: rulePath, topLevel: true) else { continue }
            // Pacemaker 2.1.5 (unpack_rsc_location) reads the role of a location with rules from each rule only:
            // the constraint's own role attribute is not applied to its rules, so such a location weighs on every
            // role. Imported the same way, so the placement agrees.
            let ruleRole = try self.role("role", of: ruleElement, path: rulePath)
            let constraintID = index == 0 ? id : "\(id)#\(ruleElement["id"] ?? String(index))"
            self.config.constraints.append(
                .location(LocationConstraint(id: constraintID, resource: resource, placement: .rule(rule), role: ruleRole)))
        }
    }

    /// `crm_resource --ban/--move` leftovers as marks: a node with ±INFINITY, or the rule
    /// `#uname eq NODE and date lt END` that `--lifetime` writes. nil: keep it as a constraint.
    private mutating func placementMark(
        _ element: XMLNode, id: String, resource: String, path: String
    ) throws(CIBError) -> PlacementMark? {
        let kind: PlacementMark.Kind = id.hasPrefix("cli-ban-") ? .ban : .prefer
        let expected: Score = kind == .ban ? .minusInfinity : .infinity
        if let node = element["node"] {
            guard try self.score(element, path: path) == expected else { return nil }
            return PlacementMark(kind: kind, resource: resource, node: node, createdBy: "crm_resource (\(id))")
        }
        let rules = element.children(named: "rule")
        guard rules.count == 1, let rule = rules.first, try self.score(rule, path: path) == expected,
            rule["role"] == nil, (rule["boolean-op"] ?? "and") == "and"
        else { return nil }
        var node: String?
        var expires: Timestamp?
        for part in rule.children {
            switch part.name {
            case "expression" where part["attribute"] == "#uname" && part["operation"] == "eq" && node == nil:
                node = part["value"]
            case "date_expression" where part["operation"] == "lt" && expires == nil:
                guard let end = part["end"].flatMap(PacemakerValues.date) else { return nil }
                expires = end
            default:
                return nil
            }
        }
        guard let node else { return nil }
        return PlacementMark(kind: kind, resource: resource, node: node, expires: expires, createdBy: "crm_resource (\(id))")
    }

    // MARK: - rsc_colocation

    private mutating func importColocation(_ element: XMLNode, path: String) throws(CIBError) {
        let id = try self.required("id", of: element, path: path)
        if self.rejectResourceSets(element, path: path) { return }
        if element["score-attribute"] != nil || element["score-attribute-mangle"] != nil {
            self.report(path, "colocation score-attribute is not supported; constraint skipped")
            return
        }
        if let attribute = element["node-attribute"], attribute != "#uname" {
            self.report(path, "colocation by node-attribute \(attribute) is not supported; constraint skipped")
            return
        }
        if element["rsc-instance"] != nil || element["with-rsc-instance"] != nil {
            self.report(path, "colocation with a specific clone instance is not supported; constraint skipped")
            return
        }
        guard let dependent = try self.resolve("rsc", of: element, path: path),
            let primary = try self.resolve("with-rsc", of: element, path: path)
        else { return }
        guard let score = try self.score(element, path: path) else {
            throw self.error(at: path, element, "a colocation needs a score")
        }
        self.reportExtraAttributes(
            element, path: path, handled: ["id", "rsc", "with-rsc", "score", "rsc-role", "with-rsc-role", "node-attribute"])
        self.config.constraints.append(
            .colocation(
                ColocationConstraint(
                    id: id, dependent: dependent, primary: primary, score: score,
                    dependentRole: try self.role("rsc-role", of: element, path: path),
                    primaryRole: try self.role("with-rsc-role", of: element, path: path))))
    }

    // MARK: - rsc_order

    private mutating func importOrder(_ element: XMLNode, path: String) throws(CIBError) {
        let id = try self.required("id", of: element, path: path)
        if self.rejectResourceSets(element, path: path) { return }
        if element["first-instance"] != nil || element["then-instance"] != nil {
            self.report(path, "ordering of specific clone instances is not supported; constraint skipped")
            return
        }
        guard let first = try self.resolve("first", of: element, path: path),
            let then = try self.resolve("then", of: element, path: path)
        else { return }

        func action(_ attribute: String) throws(CIBError) -> ResourceAction? {
            guard let text = element[attribute] else { return nil }
            switch text {
            case "start": return .start
            case "stop": return .stop
            case "promote": return .promote
            case "demote": return .demote
            default: throw self.error(at: path, element, "\(attribute) \"\(text)\" is not supported (start, stop, promote, demote)")
            }
        }
        let firstAction = try action("first-action") ?? .start
        let thenAction = try action("then-action") ?? firstAction

        var kind = OrderConstraint.Kind.mandatory
        if let score = try self.score(element, path: path), score.value <= 0 { kind = .optional }
        if let text = element["kind"] {
            switch text.lowercased() {
            case "mandatory": kind = .mandatory
            case "optional": kind = .optional
            case "serialize":
                self.report(path, "kind Serialize is not supported; constraint skipped")
                return
            default: throw self.error(at: path, element, "kind \"\(text)\" is not an order kind (Mandatory, Optional, Serialize)")
            }
        }
        var symmetrical = true
        if let text = element["symmetrical"] {
            guard let value = PacemakerValues.boolean(text) else {
                throw self.error(at: path, element, "symmetrical \"\(text)\" is not a boolean")
            }
            symmetrical = value
        }
        self.reportExtraAttributes(
            element, path: path,
            handled: ["id", "first", "then", "first-action", "then-action", "kind", "score", "symmetrical"])
        self.config.constraints.append(
            .order(
                OrderConstraint(
                    id: id, first: first, firstAction: firstAction, then: then, thenAction: thenAction, kind: kind,
                    symmetrical: symmetrical)))
    }
}

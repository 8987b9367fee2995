import CleverModel

extension CIBImporter {
    /// A location rule, or nil (reported) if it uses something outside the subset (dates, value
    /// sources, version comparisons). Nested rules contribute only their expression.
    mutating func rule(_ element: XMLNode, path: String, topLevel: Bool) throws(CIBError) -> Rule? {
        if element["id-ref"] != nil {
            self.report(path, "references to rules (id-ref) are not supported; constraint skipped")
            return nil
        }
        var score = Score.zero
        var scoreAttribute: String?
        if topLevel {
            if let text = element["score"] {
                guard let value = Score(parsing: text) else {
                    throw self.error(at: path, element, "score \"\(text)\" is not a score (an integer or ±INFINITY)")
                }
                score = value
            } else if let attribute = element["score-attribute"] {
                scoreAttribute = attribute
            } else {
                throw self.error(at: path, element, "a location rule needs a score or a score-attribute")
            }
        }
        let booleanOp = element["boolean-op"] ?? "and"
        guard booleanOp == "and" || booleanOp == "or" else {
            throw self.error(at: path, element, "boolean-op \"\(booleanOp)\" is not and/or")
        }
        var parts: [Rule.Expression] = []
        for child in element.children {
            let childPath = "\(path)/\(child.pathStep)"
            switch child.name {
            case "expression":
                guard let expression = try self.expression(child, path: childPath) else { return nil }
                parts.append(expression)
            case "rule":
                guard let nested = try self.rule(child, path: childPath, topLevel: false) else { return nil }
                parts.append(nested.expression)
            case "date_expression":
                self.report(childPath, "date expressions are not supported; constraint skipped")
                return nil
            default:
                self.report(childPath, "\(child.name) in a rule is not supported; constraint skipped")
                return nil
            }
        }
        let expression: Rule.Expression = parts.count == 1 ? parts[0] : (booleanOp == "or" ? .or(parts) : .and(parts))
        return Rule(score: score, scoreAttribute: scoreAttribute, expression: expression)
    }

    private mutating func expression(_ element: XMLNode, path: String) throws(CIBError) -> Rule.Expression? {
        let attribute = try self.required("attribute", of: element, path: path)
        let operation = try self.required("operation", of: element, path: path)
        if let source = element["value-source"], source != "literal" {
            self.report(path, "value-source \(source) is not supported; constraint skipped")
            return nil
        }
        if attribute == "#id", operation == "eq" || operation == "ne", let value = element["value"],
            let uname = self.unameOfNodeID[value]
        {
            // A node's id names one node, as its uname does.
            return .compare(attribute: "#uname", op: operation == "eq" ? .eq : .ne, value: uname, type: .string)
        }
        if attribute.hasPrefix("#"), attribute != "#uname" {
            self.report(path, "special attribute \(attribute) is not supported (only #uname, and #id eq/ne a configured node); constraint skipped")
            return nil
        }
        switch operation {
        case "defined": return .defined(attribute)
        case "not_defined": return .notDefined(attribute)
        default: break
        }
        guard let comparison = Rule.Comparison(rawValue: operation) else {
            throw self.error(at: path, element, "operation \"\(operation)\" is not supported (defined, not_defined, eq, ne, lt, lte, gt, gte)")
        }
        let value = try self.required("value", of: element, path: path)
        let type: Rule.ValueType
        switch element["type"] {
        case "string": type = .string
        case "number", "integer": type = .number
        case nil:
            // Pacemaker compares numerically when no type is given and the operation is an ordering.
            type = [.lt, .lte, .gt, .gte].contains(comparison) ? .number : .string
        case "version":
            self.report(path, "version comparisons are not supported; constraint skipped")
            return nil
        case let other?:
            throw self.error(at: path, element, "type \"\(other)\" is not supported (string, number, integer)")
        }
        return .compare(attribute: attribute, op: comparison, value: value, type: type)
    }
}

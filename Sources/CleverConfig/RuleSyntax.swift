import CleverModel

/// A syntax error inside a rule string. `offset` counts Unicode scalars from the rule's start, so the
/// diagnostic can point at the column inside the YAML scalar.
struct RuleSyntaxError: Error, Equatable {
    var offset: Int
    var message: String
    var hint: String?
}

/// The rule language of `pcs constraint location … rule`, the subset CleverVM evaluates:
///
///     expression := conjunction ('or' conjunction)*
///     conjunction := term ('and' term)*          -- 'and' binds tighter than 'or'
///     term := '(' expression ')' | 'defined' ATTR | 'not_defined' ATTR
///           | ATTR OP [string|number|integer] VALUE   -- OP: eq ne lt lte gt gte
///
/// Without a type, VALUE compares as a number when it parses as one, else as a string.
enum RuleSyntax {
    static func parse(_ text: String) -> Result<Rule.Expression, RuleSyntaxError> {
        do {
            var parser = Parser(tokens: try Tokenizer.tokens(of: text), length: text.unicodeScalars.count)
            let expression = try parser.expression()
            if let extra = parser.peek {
                throw RuleSyntaxError(
                    offset: extra.offset, message: "unexpected \(extra.quotedText) after a complete expression",
                    hint: extra.text == ")" ? "this ')' has no matching '('" : "join expressions with 'and' or 'or'")
            }
            return .success(expression)
        } catch let error as RuleSyntaxError {
            return .failure(error)
        } catch {
            preconditionFailure("rule parser threw \(error)")
        }
    }

    /// The text `parse` reads back as the same expression. Nested and/or are always parenthesized,
    /// so the tree shape survives; the value type is spelled only when inference would differ.
    static func render(_ expression: Rule.Expression) -> String {
        switch expression {
        case .defined(let attribute): return "defined \(attribute)"
        case .notDefined(let attribute): return "not_defined \(attribute)"
        case .compare(let attribute, let op, let value, let type):
            let inferred: Rule.ValueType = Double(value) != nil ? .number : .string
            let typeWord = type == inferred ? "" : "\(type.rawValue) "
            return "\(attribute) \(op.rawValue) \(typeWord)\(self.quotedIfNeeded(value))"
        case .and(let parts): return parts.map(self.renderOperand).joined(separator: " and ")
        case .or(let parts): return parts.map(self.renderOperand).joined(separator: " or ")
        }
    }

    private static func renderOperand(_ expression: Rule.Expression) -> String {
        switch expression {
        case .and, .or: "(\(self.render(expression)))"
        default: self.render(expression)
        }
    }

    private static func quotedIfNeeded(_ value: String) -> String {
        let plain =
            !value.isEmpty && !value.contains(where: { $0.isWhitespace || "()\"".contains($0) })
            && !Tokenizer.keywords.contains(value)
        return plain ? value : "\"\(value)\""
    }

    // MARK: Tokens

    struct Token {
        enum Kind { case word, quoted, open, close }
        var kind: Kind
        var text: String
        var offset: Int

        var quotedText: String { self.kind == .quoted ? "\"\(self.text)\"" : "'\(self.text)'" }
        func isWord(_ word: String) -> Bool { self.kind == .word && self.text == word }
    }

    enum Tokenizer {
        static let keywords: Set<String> = ["and", "or", "defined", "not_defined"]

        static func tokens(of text: String) throws -> [Token] {
            let scalars = Array(text.unicodeScalars)
            var tokens: [Token] = []
            var index = 0
            while index < scalars.count {
                let scalar = scalars[index]
                if scalar.properties.isWhitespace {
                    index += 1
                } else if scalar == "(" || scalar == ")" {
                    tokens.append(Token(kind: scalar == "(" ? .open : .close, text: String(scalar), offset: index))
                    index += 1
                } else if scalar == "\"" {
                    let start = index
                    index += 1
                    var value = String.UnicodeScalarView()
                    while index < scalars.count, scalars[index] != "\"" {
                        value.append(scalars[index])
                        index += 1
                    }
                    guard index < scalars.count else {
                        throw RuleSyntaxError(offset: start, message: "unterminated quoted value", hint: "close it with '\"'")
                    }
                    index += 1
                    tokens.append(Token(kind: .quoted, text: String(value), offset: start))
                } else {
                    let start = index
                    var word = String.UnicodeScalarView()
                    while index < scalars.count, !scalars[index].properties.isWhitespace,
                        !"()\"".unicodeScalars.contains(scalars[index])
                    {
                        word.append(scalars[index])
                        index += 1
                    }
                    tokens.append(Token(kind: .word, text: String(word), offset: start))
                }
            }
            return tokens
        }
    }

    // MARK: Parser

    struct Parser {
        var tokens: [Token]
        var position = 0
        /// Open parentheses around the current term; bounded so no input can exhaust the stack.
        var depth = 0
        static let maximumDepth = 32
        /// Offset of the end of the text, for "expected … at the end" errors.
        var length: Int

        init(tokens: [Token], length: Int) {
            self.tokens = tokens
            self.length = length
        }

        var peek: Token? { self.position < self.tokens.count ? self.tokens[self.position] : nil }

        mutating func next() -> Token? {
            defer { self.position += 1 }
            return self.peek
        }

        func missing(_ what: String, after previous: Token? = nil) -> RuleSyntaxError {
            if let token = self.peek {
                return RuleSyntaxError(offset: token.offset, message: "expected \(what), found \(token.quotedText)")
            }
            let suffix = previous.map { " after '\($0.text)'" } ?? ""
            return RuleSyntaxError(offset: self.length, message: "expected \(what)\(suffix) at the end of the rule")
        }

        mutating func expression() throws -> Rule.Expression {
            var parts = [try self.conjunction()]
            while self.peek?.isWord("or") == true {
                self.position += 1
                parts.append(try self.conjunction())
            }
            return parts.count == 1 ? parts[0] : .or(parts)
        }

        mutating func conjunction() throws -> Rule.Expression {
            var parts = [try self.term()]
            while self.peek?.isWord("and") == true {
                self.position += 1
                parts.append(try self.term())
            }
            return parts.count == 1 ? parts[0] : .and(parts)
        }

        mutating func term() throws -> Rule.Expression {
            guard let token = self.peek else {
                let previous = self.position > 0 ? self.tokens[self.position - 1] : nil
                throw self.missing("an expression", after: previous)
            }
            switch token.kind {
            case .open:
                guard self.depth < Self.maximumDepth else {
                    throw RuleSyntaxError(
                        offset: token.offset, message: "parentheses nested more than \(Self.maximumDepth) deep")
                }
                self.position += 1
                self.depth += 1
                defer { self.depth -= 1 }
                let inner = try self.expression()
                guard self.peek?.kind == .close else {
                    if self.peek == nil {
                        throw RuleSyntaxError(
                            offset: token.offset, message: "'(' is never closed", hint: "add ')' at the end")
                    }
                    throw self.missing("')' or 'and'/'or'")
                }
                self.position += 1
                return inner
            case .close:
                throw RuleSyntaxError(offset: token.offset, message: "expected an expression, found ')'")
            case .quoted:
                throw RuleSyntaxError(
                    offset: token.offset, message: "expected an attribute name, found \(token.quotedText)",
                    hint: "only values may be quoted")
            case .word:
                break
            }
            self.position += 1
            switch token.text {
            case "defined", "not_defined":
                let attribute = try self.attribute(after: token)
                return token.text == "defined" ? .defined(attribute) : .notDefined(attribute)
            case "and", "or":
                throw RuleSyntaxError(
                    offset: token.offset, message: "expected an expression before '\(token.text)'")
            case "date", "date-spec", "duration":
                throw RuleSyntaxError(
                    offset: token.offset, message: "date expressions are not supported",
                    hint: "use defined, not_defined or attribute comparisons")
            default:
                return try self.comparison(attribute: token)
            }
        }

        mutating func attribute(after keyword: Token) throws -> String {
            guard let token = self.peek, token.kind == .word, !Tokenizer.keywords.contains(token.text) else {
                throw self.missing("an attribute name", after: keyword)
            }
            self.position += 1
            return token.text
        }

        mutating func comparison(attribute: Token) throws -> Rule.Expression {
            guard let opToken = self.peek, opToken.kind == .word else {
                throw self.missing("a comparison (eq, ne, lt, lte, gt, gte) or 'defined'", after: attribute)
            }
            guard let op = Rule.Comparison(rawValue: opToken.text) else {
                let symbolic: [String: String] = [
                    "==": "eq", "=": "eq", "!=": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte",
                ]
                let hint =
                    symbolic[opToken.text].map { "write '\($0)'" }
                    ?? (attribute.text == "not" ? "write 'not_defined ATTR'" : "one of eq, ne, lt, lte, gt, gte")
                throw RuleSyntaxError(
                    offset: opToken.offset, message: "expected a comparison after '\(attribute.text)', found '\(opToken.text)'",
                    hint: hint)
            }
            self.position += 1
            var explicitType: (word: String, token: Token)?
            if let typeToken = self.peek, typeToken.kind == .word, ["string", "number", "integer"].contains(typeToken.text),
                self.position + 1 < self.tokens.count, self.tokens[self.position + 1].kind != .close,
                !self.tokens[self.position + 1].isWord("and"), !self.tokens[self.position + 1].isWord("or")
            {
                explicitType = (typeToken.text, typeToken)
                self.position += 1
            }
            guard let valueToken = self.peek, valueToken.kind == .word || valueToken.kind == .quoted,
                !(valueToken.kind == .word && ["and", "or"].contains(valueToken.text))
            else {
                throw self.missing("a value", after: explicitType?.token ?? opToken)
            }
            self.position += 1
            let value = valueToken.text
            let type: Rule.ValueType
            switch explicitType?.word {
            case "string": type = .string
            case "number":
                guard Double(value) != nil else {
                    throw RuleSyntaxError(offset: valueToken.offset, message: "'\(value)' is not a number")
                }
                type = .number
            case "integer":
                guard Int(value) != nil else {
                    throw RuleSyntaxError(offset: valueToken.offset, message: "'\(value)' is not an integer")
                }
                type = .number
            default:
                type = valueToken.kind == .word && Double(value) != nil ? .number : .string
            }
            return .compare(attribute: attribute.text, op: op, value: value, type: type)
        }
    }
}

import CleverModel
import Testing

@testable import CleverConfig

@Suite struct RuleSyntaxTests {
    private func parsed(_ text: String) -> Rule.Expression? {
        switch RuleSyntax.parse(text) {
        case .success(let expression): return expression
        case .failure(let error):
            Issue.record("'\(text)' failed at \(error.offset): \(error.message)")
            return nil
        }
    }

    private func failure(_ text: String) -> RuleSyntaxError? {
        switch RuleSyntax.parse(text) {
        case .success(let expression):
            Issue.record("'\(text)' parsed as \(expression)")
            return nil
        case .failure(let error): return error
        }
    }

    @Test func definedAndNotDefined() {
        #expect(self.parsed("defined pingd") == .defined("pingd"))
        #expect(self.parsed("  not_defined   #uname ") == .notDefined("#uname"))
    }

    @Test func comparisonInfersTheValueType() {
        #expect(self.parsed("pingd lte 0") == .compare(attribute: "pingd", op: .lte, value: "0", type: .number))
        #expect(self.parsed("load gt 1.5") == .compare(attribute: "load", op: .gt, value: "1.5", type: .number))
        #expect(self.parsed("#uname eq alpha") == .compare(attribute: "#uname", op: .eq, value: "alpha", type: .string))
        #expect(self.parsed("rack ne \"a b\"") == .compare(attribute: "rack", op: .ne, value: "a b", type: .string))
        #expect(self.parsed("rack eq \"5\"") == .compare(attribute: "rack", op: .eq, value: "5", type: .string))
    }

    @Test func explicitTypes() {
        #expect(self.parsed("rev gt string 10") == .compare(attribute: "rev", op: .gt, value: "10", type: .string))
        #expect(self.parsed("cores gte integer 4") == .compare(attribute: "cores", op: .gte, value: "4", type: .number))
        #expect(self.parsed("ratio lt number 0.5") == .compare(attribute: "ratio", op: .lt, value: "0.5", type: .number))
        // A type word with nothing after it is the value itself.
        #expect(self.parsed("kind eq string") == .compare(attribute: "kind", op: .eq, value: "string", type: .string))
    }

    @Test func andBindsTighterThanOr() {
        #expect(
            self.parsed("defined a or defined b and defined c")
                == .or([.defined("a"), .and([.defined("b"), .defined("c")])]))
        #expect(
            self.parsed("defined a and defined b or defined c")
                == .or([.and([.defined("a"), .defined("b")]), .defined("c")]))
    }

    @Test func parenthesesOverridePrecedence() {
        #expect(
            self.parsed("(defined a or defined b) and defined c")
                == .and([.or([.defined("a"), .defined("b")]), .defined("c")]))
        #expect(self.parsed("((defined a))") == .defined("a"))
    }

    @Test func chainsOfOneOperatorAreFlat() {
        #expect(self.parsed("defined a and defined b and defined c") == .and([.defined("a"), .defined("b"), .defined("c")]))
        #expect(self.parsed("defined a or defined b or defined c") == .or([.defined("a"), .defined("b"), .defined("c")]))
        // A parenthesized chain stays a separate node, so rendering keeps the shape.
        #expect(
            self.parsed("defined a and (defined b and defined c)")
                == .and([.defined("a"), .and([.defined("b"), .defined("c")])]))
    }

    @Test func theMBA7Rule() {
        #expect(
            self.parsed("not_defined pingd or pingd lte 0")
                == .or([.notDefined("pingd"), .compare(attribute: "pingd", op: .lte, value: "0", type: .number)]))
    }

    @Test(arguments: [
        ("", 0, "expected an expression at the end of the rule"),
        ("pingd lte", 9, "expected a value after 'lte' at the end of the rule"),
        ("pingd == 0", 6, "expected a comparison after 'pingd', found '=='"),
        ("pingd", 5, "expected a comparison (eq, ne, lt, lte, gt, gte) or 'defined' after 'pingd' at the end of the rule"),
        ("(defined a", 0, "'(' is never closed"),
        ("defined a)", 9, "unexpected ')' after a complete expression"),
        ("defined a defined b", 10, "unexpected 'defined' after a complete expression"),
        ("and defined a", 0, "expected an expression before 'and'"),
        ("defined a or", 12, "expected an expression after 'or' at the end of the rule"),
        ("defined", 7, "expected an attribute name after 'defined' at the end of the rule"),
        ("defined and", 8, "expected an attribute name, found 'and'"),
        ("defined a and ()", 15, "expected an expression, found ')'"),
        ("rack eq \"a b", 8, "unterminated quoted value"),
        ("\"rack\" eq a", 0, "expected an attribute name, found \"rack\""),
        ("date gt 2024-01-01", 0, "date expressions are not supported"),
        ("cores eq integer 4.5", 17, "'4.5' is not an integer"),
        ("cores eq number four", 16, "'four' is not a number"),
        ("(defined a or defined b", 0, "'(' is never closed"),
        ("(defined a defined b)", 11, "expected ')' or 'and'/'or', found 'defined'"),
        ("pingd lte and defined x", 10, "expected a value, found 'and'"),
    ])
    func syntaxErrorsPointAtTheirOffset(text: String, offset: Int, message: String) {
        let error = self.failure(text)
        #expect(error?.offset == offset)
        #expect(error?.message == message)
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let rule = String(repeating: "(", count: 100_000) + "defined a" + String(repeating: ")", count: 100_000)
        #expect(self.failure(rule)?.message == "parentheses nested more than 32 deep")
        let fine = String(repeating: "(", count: 32) + "defined a" + String(repeating: ")", count: 32)
        #expect(self.parsed(fine) == .defined("a"))
    }

    @Test func symbolicOperatorsGetAHint() {
        #expect(self.failure("a >= 3")?.hint == "write 'gte'")
        #expect(self.failure("not defined a")?.hint == "write 'not_defined ATTR'")
    }

    @Test(arguments: [
        "defined a",
        "not_defined #uname",
        "pingd lte 0",
        "rev gt string 10",
        "rack eq \"a b\"",
        "rack eq \"\"",
        "x eq \"and\"",
        "(defined a or defined b) and defined c",
        "defined a or (defined b and defined c)",
        "defined a and (defined b and defined c)",
        "(defined a or (defined b or defined c)) and x ne string 5",
    ])
    func renderingParsesBackToTheSameExpression(text: String) throws {
        let expression = try #require(self.parsed(text))
        let rendered = RuleSyntax.render(expression)
        #expect(self.parsed(rendered) == expression, "\(rendered)")
    }

    @Test func renderedTextIsCanonical() throws {
        let expression = try #require(self.parsed("(  defined a   or defined b)and x eq 1"))
        #expect(RuleSyntax.render(expression) == "(defined a or defined b) and x eq 1")
    }
}

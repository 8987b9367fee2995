import CleverModel
import Testing

@Suite struct ScoreTests {
    @Test func infinityArithmeticFollowsPacemaker() {
        #expect(Score.infinity + .minusInfinity == .minusInfinity)
        #expect(Score.minusInfinity + .infinity == .minusInfinity)
        #expect(Score.infinity + 5 == .infinity)
        #expect(Score(999_999) + 5 == .infinity)
        #expect(Score(-999_999) + -5 == .minusInfinity)
        #expect(Score(7) + -3 == 4)
    }

    @Test func clampsAndParsesSpellings() {
        #expect(Score(5_000_000) == .infinity)
        #expect(Score(parsing: "INFINITY") == .infinity)
        #expect(Score(parsing: "+INFINITY") == .infinity)
        #expect(Score(parsing: "-infinity") == .minusInfinity)
        #expect(Score(parsing: " 42 ") == 42)
        #expect(Score(parsing: "lots") == nil)
    }

    @Test func scalingByColocationScore() {
        #expect(Score(100).scaled(by: .infinity) == 100)
        #expect(Score(100).scaled(by: 500_000) == 50)
        #expect(Score.minusInfinity.scaled(by: 500_000) == -500_000)
        #expect(Score.minusInfinity.scaled(by: 10) == -10)
        #expect(Score(3).scaled(by: 10) == 1)
        #expect(Score(100).scaled(by: .minusInfinity) == -100)
    }

    @Test func placementNeedsNonNegativeScore() {
        #expect(Score.zero.allowsPlacement)
        #expect(!Score(-1).allowsPlacement)
    }

    @Test func durationsParseUnitsAndRejectNonsense() {
        #expect(Seconds(parsing: "250ms")?.value == 0.25)
        #expect(Seconds(parsing: "30s")?.value == 30)
        #expect(Seconds(parsing: "5m")?.value == 300)
        #expect(Seconds(parsing: "1h")?.value == 3600)
        #expect(Seconds(parsing: "12")?.value == 12)
        #expect(Seconds(parsing: "-3s") == nil)
        #expect(Seconds(parsing: "soon") == nil)
        #expect(Seconds(300).description == "5m")
    }
}

@Suite struct RuleTests {
    let pingRule = Rule.Expression.or([.notDefined("pingd"), .compare(attribute: "pingd", op: .lte, value: "0", type: .number)])

    @Test func pingRuleHoldsWithoutConnectivity() {
        #expect(self.pingRule.evaluate([:]))
        #expect(self.pingRule.evaluate(["pingd": "0"]))
        #expect(!self.pingRule.evaluate(["pingd": "1000"]))
    }

    @Test func numberAndStringComparisons() {
        #expect(Rule.Expression.compare(attribute: "n", op: .gt, value: "9", type: .number).evaluate(["n": "10"]))
        #expect(!Rule.Expression.compare(attribute: "n", op: .gt, value: "9", type: .string).evaluate(["n": "10"]))
        #expect(Rule.Expression.compare(attribute: "rack", op: .eq, value: "a", type: .string).evaluate(["rack": "a"]))
        #expect(Rule.Expression.and([.defined("a"), .defined("b")]).evaluate(["a": "1", "b": "2"]))
        #expect(!Rule.Expression.and([.defined("a"), .defined("b")]).evaluate(["a": "1"]))
    }

    @Test func describesItselfReadably() {
        #expect(self.pingRule.description == "(not_defined(pingd)) or (pingd <= 0)")
    }
}

import CleverModel
import Testing

/// Rules that the scheduler, the coordinator and the status all apply, defined once in the model.
@Suite struct SharedRuleTests {
    @Test func aRuleScoresFromItsAttributeWhenItHasOne() {
        let fixed = Rule(score: Score(500), expression: .defined("pingd"))
        let fromAttribute = Rule(score: Score(500), scoreAttribute: "pingd", expression: .defined("pingd"))
        #expect(fixed.score(on: ["pingd": "2000"]) == Score(500))
        #expect(fromAttribute.score(on: ["pingd": "2000"]) == Score(2000))
        #expect(fromAttribute.score(on: ["pingd": "-INFINITY"]) == .minusInfinity)
        #expect(fromAttribute.score(on: ["pingd": "lots"]) == Score(0), "an attribute that is no number scores 0 (Pacemaker's char2score)")
        let anyNode = Rule(score: Score(500), scoreAttribute: "pingd", expression: .and([]))
        #expect(anyNode.score(on: [:]) == .minusInfinity, "a node without the attribute gets -INFINITY (Pacemaker)")
        #expect(fixed.score(on: [:]) == nil, "the expression does not hold")
    }

    @Test func failedIsActiveButNotRunningCleanly() {
        #expect(ResourceRole.failed.isActive)
        #expect(!ResourceRole.failed.isRunningCleanly)
        for role in [ResourceRole.started, .promoted, .unpromoted] { #expect(role.isActive && role.isRunningCleanly) }
        for role in [ResourceRole.stopped, .unknown] { #expect(!role.isActive && !role.isRunningCleanly) }
    }

    @Test func migrateReplacesItsOwnMarksAndUnmigrateRemovesThem() {
        var marks = [PlacementMark(kind: .ban, resource: "vm", node: "alpha", createdBy: "operator")]
        marks.migrate(node: "alpha", to: "beta", expires: nil)
        marks.migrate(node: "alpha", to: nil, expires: nil)
        #expect(marks.filter { $0.isMadeByMigrate && $0.kind == .ban }.count == 1, "a second migrate of alpha replaces its ban")
        marks.unmigrate(node: "alpha")
        #expect(marks == [PlacementMark(kind: .ban, resource: "vm", node: "alpha", createdBy: "operator")])
    }
}

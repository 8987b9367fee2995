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
        #expect(fromAttribute.score(on: ["pingd": "lots"]) == nil, "an attribute that is no score gives nothing")
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

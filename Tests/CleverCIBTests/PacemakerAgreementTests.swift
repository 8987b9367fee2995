import CleverCIB
import CleverModel
import CleverScheduler
import Foundation
import Testing

/// CleverVM's scheduler against Pacemaker's placements recorded in the corpus (`NAME.expected`,
/// from crm_simulate 2.1.5), without Pacemaker installed: the same comparison as
/// scripts/compare-pacemaker.sh, run like `clevervm simulate --cib`.
@Suite("Agreement with Pacemaker")
struct PacemakerAgreementTests {
    /// Files allowed to disagree (KNOWN-DIFFERENCES.md lines `- \`NAME\`: reason`).
    static let knownDifferences: Set<String> = {
        let text = (try? String(contentsOfFile: CorpusFiles.path("KNOWN-DIFFERENCES", "md"), encoding: .utf8)) ?? ""
        return Set(text.split(separator: "\n").filter { $0.hasPrefix("- `") }.map { String($0.dropFirst(3).prefix { $0 != "`" }) })
    }()

    @Test("placement agrees with crm_simulate", arguments: CorpusFiles.names)
    func placementAgrees(name: String) throws {
        let imported = try CorpusFiles.load(name)
        var simulator = Simulator(
            config: imported.config, state: imported.state, now: imported.now ?? CorpusFiles.now,
            synthesizesPingAttributes: false, reschedulesUntilSettled: true)
        let placement = simulator.run(nil).transition.placement
            .map { "\($0.baseResource) \($0.node) \($0.role.rawValue)" }
            .sorted()
        let expected = try CorpusFiles.expected(name)
        if Self.knownDifferences.contains(name) {
            withKnownIssue("\(name) is listed in KNOWN-DIFFERENCES.md") { #expect(placement == expected) }
        } else {
            #expect(placement == expected, "\(name): CleverVM \(placement) vs Pacemaker \(expected)")
        }
    }
}

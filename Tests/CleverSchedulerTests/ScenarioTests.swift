import CleverConfig
import CleverModel
import CleverScheduler
import CleverTesting
import Foundation
import Testing

/// Scenario tests kept as data (in the spirit of pve-ha-manager's regression tests): each folder under
/// Tests/Scenarios holds `cmdlist` (events, one per line), an optional `config.yaml` (default:
/// examples/mba7.yaml) and `expected`, the log the simulation must print. A new case needs no code.
/// Regenerate after an intended change with `CLEVERVM_UPDATE_SCENARIOS=1 swift test --filter Scenario`,
/// then review the diff.
@Suite struct ScenarioTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let folder = root.appendingPathComponent("Tests/Scenarios")

    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent("\($0)/cmdlist").path)
        }.sorted()
    }

    @Test func thereAreScenarios() {
        #expect(Self.names.count >= 10)
    }

    @Test(arguments: ScenarioTests.names)
    func scenario(_ name: String) throws {
        let directory = Self.folder.appendingPathComponent(name)
        let local = directory.appendingPathComponent("config.yaml").path
        let configPath = FileManager.default.fileExists(atPath: local) ? local : Self.root.appendingPathComponent("examples/mba7.yaml").path
        let config = try ConfigFile.load(path: configPath)
        let commands = try String(contentsOf: directory.appendingPathComponent("cmdlist"), encoding: .utf8)
        let events = try commands.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            .map { try SimulationEvent(parsing: $0, config: config) }

        var simulator = Simulator(config: config, state: .fresh(for: config), now: Fixtures.epoch)
        var log = ["== settling the given state ==", simulator.run(nil).render()]
        for event in events {
            log += ["", "== after \(event) ==", simulator.run(event).render()]
        }
        let actual = log.joined(separator: "\n") + "\n"

        let expectedURL = directory.appendingPathComponent("expected")
        if ProcessInfo.processInfo.environment["CLEVERVM_UPDATE_SCENARIOS"] == "1" {
            try actual.write(to: expectedURL, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: expectedURL, encoding: .utf8)
        #expect(actual == expected, "scenario \(name) differs from its expected log:\n\(actual)")
    }
}

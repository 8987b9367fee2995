import CleverModel
import Testing

@testable import CleverConfig

/// DRBD's resync-controller knobs on a volume: parsed, defaulted and rendered back.
@Suite struct VolumeResyncConfigTests {
    static func volume(_ lines: [String]) -> String {
        twoNodes + """
            resources:
              - id: disk0
                type: volume
                size: 1GiB
                backing: /dev/sdb

            """ + lines.map { "    \($0)\n" }.joined()
    }

    static func spec(_ config: ClusterConfig?) -> VolumeSpec? {
        guard case .volume(let spec)? = config?.resources.first?.kind else { return nil }
        return spec
    }

    @Test func absentKnobsMeanTheDefaults() {
        let spec = Self.spec(parse(Self.volume([])))
        #expect(spec != nil)
        let defaults = VolumeSpec.ResyncControl()
        #expect(spec?.resync == defaults)
        #expect(defaults.planAhead == Seconds(2))
        #expect(defaults.maxRate == 100 << 20)
    }

    @Test func knobsAreReadWithDRBDNamesAndRenderedBack() throws {
        let config = parse(Self.volume([
            "resync-rate: 40M", "c-plan-ahead: 500ms", "c-fill-target: 8MiB", "c-max-rate: 200MiB", "c-min-rate: 0",
        ]))
        let resync = Self.spec(config)?.resync
        #expect(resync == VolumeSpec.ResyncControl(
            planAhead: Seconds(0.5), fillTarget: 8 << 20, maxRate: 200 << 20, minRate: 0, resyncRate: 40 << 20))
        let rendered = ConfigFile.render(try #require(config))
        #expect(rendered.contains("c-fill-target: 8MiB"))
        #expect(try ConfigFile.parse(rendered, file: "rendered.yaml") == config)
    }
}

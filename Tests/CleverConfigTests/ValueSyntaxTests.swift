import CleverModel
import Testing

@testable import CleverConfig

@Suite struct ValueSyntaxTests {
    @Test(arguments: [
        ("4096", UInt64(4096)), ("4KiB", 4096), ("4k", 4096), ("1GiB", 1 << 30), ("1G", 1 << 30), ("1GB", 1_000_000_000),
        ("256MiB", 256 << 20), ("2TiB", 2 << 40), ("1_048_576", 1 << 20), ("512b", 512), ("10 MiB", 10 << 20),
    ])
    func sizes(text: String, bytes: UInt64) throws {
        #expect(try ValueSyntax.size(text).get() == bytes)
    }

    @Test(arguments: ["", "G", "1.5GiB", "-1", "1PiB", "lots", "99999999999999999999"])
    func badSizes(text: String) {
        #expect(throws: ValueProblem.self) { try ValueSyntax.size(text).get() }
    }

    @Test func sizeOverflowIsAnError() {
        #expect(throws: ValueProblem.self) { try ValueSyntax.size("20000000TiB").get() }
    }

    @Test(arguments: [
        ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("10", 10.0), ("1.5", 1.5), ("2min", 120.0), ("1d", 86400.0),
    ])
    func durations(text: String, seconds: Double) throws {
        #expect(try ValueSyntax.duration(text).get() == Seconds(seconds))
    }

    @Test(arguments: ["", "5 minutes", "-1s", "s", "fast", "inf", "nan", "1e300", "3651d"])
    func badDurations(text: String) {
        #expect(throws: ValueProblem.self) { try ValueSyntax.duration(text).get() }
    }

    @Test func neverAndZeroMeanNoLimit() throws {
        #expect(try ValueSyntax.durationOrNever("never").get() == nil)
        #expect(try ValueSyntax.durationOrNever("0").get() == nil)
        #expect(try ValueSyntax.durationOrNever("10m").get() == Seconds(600))
    }

    @Test(arguments: [
        ("100", Score(100)), ("-5", Score(-5)), ("INFINITY", Score.infinity), ("+INFINITY", .infinity),
        ("-INFINITY", .minusInfinity), ("inf", .infinity), ("5000000", .infinity),
    ])
    func scores(text: String, score: Score) throws {
        #expect(try ValueSyntax.score(text).get() == score)
    }

    @Test func choicesIgnoreCase() throws {
        #expect(try ValueSyntax.choice("promoted", of: ConstraintRole.self).get() == .promoted)
        #expect(try ValueSyntax.choice("c", of: VolumeSpec.ReplicationProtocol.self).get() == .C)
    }

    @Test(arguments: [
        "198.51.100.1", "0.0.0.0", "255.255.255.255", "::", "::1", "fe80::1", "2001:db8::50",
        "2001:0db8:0000:0000:0000:0000:0000:0001", "::ffff:198.51.100.1", "1::", "1:2:3:4:5:6:7::",
    ])
    func validAddresses(text: String) {
        #expect(IPAddress.isValid(text))
    }

    @Test(arguments: [
        "", "198.51.100", "198.51.100.256", "198.51.100.1.2", "198.51.100.-1", "1.2.3.04444", "a.b.c.d", ":::",
        "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7:8::", "::ffff:198.51.100", "fe80::1%eth0",
        "١٢٣.1.1.1",
    ])
    func invalidAddresses(text: String) {
        #expect(!IPAddress.isValid(text))
    }

    @Test func hostNames() {
        #expect(ValueSyntax.isHostName("alpha"))
        #expect(ValueSyntax.isHostName("qnetd.example.org"))
        #expect(ValueSyntax.isHostName("host-1"))
        #expect(!ValueSyntax.isHostName("-host"))
        #expect(!ValueSyntax.isHostName("a..b"))
        #expect(!ValueSyntax.isHostName("198.51.100.300"))
        #expect(!ValueSyntax.isHostName("be ta"))
        #expect(!ValueSyntax.isHostName(String(repeating: "a", count: 64)))
    }

    @Test func identifiers() {
        #expect((try? ValueSyntax.identifier("gw-ping").get()) == "gw-ping")
        #expect((try? ValueSyntax.identifier("_x.1").get()) == "_x.1")
        #expect(throws: ValueProblem.self) { try ValueSyntax.identifier("1vm").get() }
        #expect(throws: ValueProblem.self) { try ValueSyntax.identifier("a:b").get() }
    }

    @Test func editDistanceHints() {
        #expect(EditDistance.distance("kitten", "sitting") == 3)
        #expect(EditDistance.nearest(to: "adresses", among: ["name", "id", "addresses"]) == "addresses")
        #expect(EditDistance.nearest(to: "flavour", among: ["cluster", "nodes"]) == nil)
        #expect(EditDistance.nearest(to: "Memory", among: ["memory", "cpus"]) == "memory")
    }

    @Test(arguments: [
        "plain", "-INFINITY", "a b", "#uname", "x: y", "", "null", "~", "[list]", "{map}", "a,b", "it's", "say \"hi\"",
        "back\\slash", "tab\there", "line\nbreak", "::1", "trailing:", "- dash", "@at", "ünïcode", "\u{1}",
    ])
    func renderedScalarsReadBackUnchanged(text: String) throws {
        // Attribute values may be any string, so they carry the scalar; the key is rendered too.
        let scalar = ConfigRenderer.scalar(text)
        let yaml = """
            cluster: {name: lab}
            nodes: [{name: a, id: 1, addresses: [198.51.100.1], attributes: {value: \(scalar), \(scalar): key}}]

            """
        let config = try? ConfigFile.parse(yaml, file: "t.yaml")
        #expect(config?.nodes.first?.attributes["value"] == text, "\(yaml)")
        #expect(config?.nodes.first?.attributes[text] == (text == "value" ? text : "key"), "\(yaml)")
    }

    @Test func durationsRenderExactly() {
        for value in [0.25, 1.5, 10, 90, 600, 3600, 1.0005, 0.0015, 86400] {
            let text = ConfigRenderer.duration(Seconds(value))
            #expect(Seconds(parsing: text) == Seconds(value), "\(text)")
        }
        #expect(ConfigRenderer.duration(Seconds(600)) == "10m")
        #expect(ConfigRenderer.duration(Seconds(0.25)) == "250ms")
    }
}

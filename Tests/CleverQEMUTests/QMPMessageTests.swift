import CleverCluster
import Testing

@testable import CleverQEMU

@Suite struct QMPMessageTests {
    @Test func greeting() throws {
        let message = try QMP.parse(line: #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}"#)
        guard case .greeting(let value) = message else { Issue.record("not a greeting: \(message)"); return }
        #expect(value["version"]?["qemu"]?["major"]?.number == 7)
    }

    @Test func successWithID() throws {
        #expect(try QMP.parse(line: #"{"return": {"status": "running", "running": true}, "id": "clevervm-2"}"#)
            == .success(id: "clevervm-2", ["status": "running", "running": true]))
    }

    @Test func failureNamesClassAndDescription() throws {
        #expect(try QMP.parse(line: #"{"id": "x", "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#)
            == .failure(id: "x", errorClass: "CommandNotFound", description: "The command nope has not been found"))
    }

    @Test func event() throws {
        #expect(try QMP.parse(line: #"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#)
            == .event(name: "STOP", data: .null))
    }

    @Test(arguments: ["", "not json", "[1,2]", #"{"foo": 1}"#, "\u{0}\u{ff}garbage"])
    func badLinesAreErrors(line: String) {
        #expect(throws: QMP.ProtocolError.self) { try QMP.parse(line: line) }
    }

    @Test func commandLineEncoding() {
        #expect(QMP.command("migrate", arguments: ["uri": "tcp:127.0.0.1:4444"], id: "7")
            == #"{"arguments":{"uri":"tcp:127.0.0.1:4444"},"execute":"migrate","id":"7"}"# + "\n")
        #expect(QMP.command("query-status", id: "1") == #"{"execute":"query-status","id":"1"}"# + "\n")
    }

    @Test func lineBufferKeepsPartialLines() {
        var buffer = QMP.LineBuffer()
        #expect(buffer.append(Array(#"{"a":1}"#.utf8) + [10] + Array(#"{"b""#.utf8)) == [#"{"a":1}"#])
        #expect(buffer.append(Array(#":2}"#.utf8)) == [])
        #expect(buffer.append([13, 10]) == [#"{"b":2}"#])
    }

    @Test func reportRoundTrip() {
        var report = VMReport(action: .migrateTo, mode: .live)
        report.downtimeMs = 42
        report.target = "b"
        #expect(report.json == #"{"action":"migrate_to","downtimeMs":42,"mode":"live","target":"b"}"#)
        #expect(VMReport.parse(report.json) == report)
        #expect(VMReport.parse("not json") == nil)
    }
}

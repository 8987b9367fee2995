import CleverSystem
import Logging
import Testing

@Suite struct JournalLogHandlerTests {
    @Test func aLineCarriesItsPriorityForJournaldTheNodeFirstAndTheMetadataSorted() {
        let line = JournalLogHandler.line(level: .warning, message: "running start mba7 on alpha",
                                          metadata: ["op": "start", "node": "alpha", "resource": "mba7"], time: "01:02:03.456")
        #expect(line == "<4>01:02:03.456 warning alpha: running start mba7 on alpha op=start resource=mba7")
        #expect(JournalLogHandler.line(level: .error, message: "x", metadata: [:], time: "t") == "<3>t error: x")
    }
}

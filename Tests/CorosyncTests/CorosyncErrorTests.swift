import Corosync
import Testing

@Suite struct CorosyncErrorTests {
    @Test func aGroupNameTooLongIsRefusedBeforeConnecting() {
        do {
            _ = try ProcessGroup(joining: String(repeating: "x", count: 129))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.description.hasPrefix("process group name \"xxx"))
            #expect(error.description.hasSuffix("must be 1 to 128 bytes (cpg_join: no status)"))
        }
    }

    @Test func anEmptyGroupNameIsRefused() {
        #expect(throws: CorosyncError.self) { try ProcessGroup(joining: "") }
    }

    @Test func descriptionsNameTheCallAndTheStatus() {
        let error = CorosyncError(code: .notRunning, operation: "cpg_initialize", status: 2, message: "corosync is not running on this host")
        #expect(error.description == "corosync is not running on this host (cpg_initialize: CS_ERR_LIBRARY)")
        let busy = CorosyncError(code: .busy, operation: "cpg_mcast_joined", status: 6, message: "corosync stayed busy")
        #expect(busy.description == "corosync stayed busy (cpg_mcast_joined: CS_ERR_TRY_AGAIN)")
    }
}

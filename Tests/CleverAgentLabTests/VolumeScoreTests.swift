@testable import CleverAgent
import CleverModel
import CleverTesting
import CleverVolume
import Foundation
import Testing

/// The promotion score the agent reports for a volume, from its status: only UpToDate data, or a never-used
/// disk paired with a never-used peer, may be promoted.
struct VolumeScoreTests {
    let agent = VolumeAgent(
        spec: VolumeSpec(size: 1 << 20, backing: "/tmp/none"), config: Fixtures.twoHost(), binary: "/bin/false",
        stateDirectory: "/tmp", report: { _, _ in }, watchers: VolumeScoreWatchers(report: { _, _ in }))

    func status(connection: String = "Connected", disk: String, peerDisk: String, generations: String, syncing: Bool = false) throws -> VolumeStatus {
        let sync = syncing
            ? #"{"localIsSource":false,"full":true,"percentDone":40,"bytesMoved":1,"bytesRemaining":2,"rateMiBPerSecond":1}"# : "null"
        let json = """
            {"volume":"disk0","node":"beta","peer":"alpha","connection":"\(connection)","role":"Secondary","peerRole":"Unknown",
             "disk":"\(disk)","peerDisk":"\(peerDisk)","protocolMode":"C","generations":"\(generations)","crashedPrimary":false,
             "peerOutdated":false,"outOfSyncBlocks":0,"bytesDirtied":0,"resyncBytesMoved":0,"activityLogTransactions":0,
             "nbdClients":0,"sync":\(sync)}
            """
        return try JSONDecoder().decode(VolumeStatus.self, from: Data(json.utf8))
    }

    @Test func upToDateDataMayBePromoted() throws {
        #expect(self.agent.score(try self.status(connection: "Connecting", disk: "UpToDate", peerDisk: "DUnknown", generations: "A1:0:0:0")) == "10000")
    }

    @Test func twoNeverUsedDisksMayChooseAFirstSource() throws {
        #expect(self.agent.score(try self.status(disk: "Inconsistent", peerDisk: "Inconsistent", generations: "4:0:0:0")) == "1")
    }

    @Test func aNeverUsedDiskThatLostItsPeerMayNot() throws {
        // It may have been the target of a full sync that did not finish: the peer had data.
        #expect(self.agent.score(try self.status(connection: "Connecting", disk: "Inconsistent", peerDisk: "DUnknown", generations: "4:0:0:0")) == "-INFINITY")
        #expect(self.agent.score(try self.status(disk: "Inconsistent", peerDisk: "UpToDate", generations: "4:0:0:0", syncing: true)) == "-INFINITY")
    }

    @Test func outdatedOrInconsistentDataMayNot() throws {
        #expect(self.agent.score(try self.status(connection: "Connecting", disk: "Outdated", peerDisk: "DUnknown", generations: "A1:0:0:0")) == "-INFINITY")
        #expect(self.agent.score(try self.status(disk: "Inconsistent", peerDisk: "UpToDate", generations: "B2:A1:0:0", syncing: true)) == "-INFINITY")
    }
}

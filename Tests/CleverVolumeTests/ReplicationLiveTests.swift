#if canImport(Glibc)
import Glibc
#endif
import CleverReplication
import CleverSystem
import CleverVolume
import Foundation
import Testing

func pattern(_ byte: UInt8, _ count: Int = 4096) -> [UInt8] { [UInt8](repeating: byte, count: count) }

extension LiveVolumeTests {
    @Test func protocolCReplicatesAndBitmapResyncMovesOnlyDirtyBlocks() throws {
        let lab = try VolumeLab("bitmap")
        defer { lab.teardown() }
        try lab.startPair()
        let client = try NBDClient(socket: lab.path("alpha.nbd"))
        for index in 0..<64 { try client.write(offset: UInt64(index) * 65536, pattern(UInt8(index), 65536)) }
        try client.flush()
        #expect(lab.filesEqual("alpha.img", "beta.img"), "protocol C: beta must hold every acknowledged write")

        // Disconnect while a writer is running; it keeps writing while the peer is gone.
        let before = try lab.status("alpha")
        let writer = try NBDClient(socket: lab.path("alpha.nbd"))
        var written = 0
        for index in 0..<300 {
            if index == 100 { #expect(try lab.control("alpha", .init(command: .disconnect)).ok) }
            let block = UInt64((index * 37) % Int(lab.size / 4096))
            try writer.write(offset: block * 4096, pattern(0xA0 &+ UInt8(index % 50)))
            written += 1
        }
        try writer.flush()
        let disconnected = try lab.status("alpha")
        #expect(disconnected.connection == "StandAlone")
        #expect(disconnected.outOfSyncBlocks > 0)
        #expect(try lab.control("alpha", .init(command: .connect)).ok)
        let synced = try lab.wait("alpha", "resync done") {
            $0.connection == "Connected" && $0.outOfSyncBlocks == 0 && $0.peerDisk == "UpToDate"
        }
        try lab.wait("beta", "beta UpToDate") { $0.disk == "UpToDate" && $0.connection == "Connected" }
        let dirtied = synced.bytesDirtied - before.bytesDirtied
        let moved = synced.resyncBytesMoved - before.resyncBytesMoved
        print("bitmap resync: bytes dirtied \(dirtied), bytes moved \(moved), volume \(lab.size)")
        #expect(moved <= dirtied, "resync moved \(moved) bytes but only \(dirtied) were dirtied")
        #expect(moved > 0 && moved < lab.size / 4)
        #expect(lab.filesEqual("alpha.img", "beta.img"))
    }

    @Test func protocolAReplicates() throws {
        let lab = try VolumeLab("protoA")
        defer { lab.teardown() }
        for node in lab.nodes { try lab.configure(node, protocolMode: .A) }
        for node in lab.nodes { try lab.start(node) }
        try lab.wait("alpha", "connected") { $0.connection == "Connected" }
        try lab.control("alpha", .init(command: .promote, force: true))
        try lab.wait("alpha", "initial sync") { $0.peerDisk == "UpToDate" && $0.connection == "Connected" }
        let client = try NBDClient(socket: lab.path("alpha.nbd"))
        for index in 0..<32 { try client.write(offset: UInt64(index) * 8192, pattern(UInt8(index + 1), 8192)) }
        try client.flush()
        #expect(lab.filesEqual("alpha.img", "beta.img"), "after FLUSH both sides hold the data")
    }

    @Test func interruptedResyncResumes() throws {
        let lab = try VolumeLab("resume")
        defer { lab.teardown() }
        try lab.startPair(rateMiB: 4)
        try lab.control("alpha", .init(command: .disconnect))
        let client = try NBDClient(socket: lab.path("alpha.nbd"))
        let dirty = 16 << 20
        for offset in stride(from: 0, to: dirty, by: 1 << 20) {
            try client.write(offset: UInt64(offset), pattern(0x3C, 1 << 20))
        }
        let before = try lab.status("alpha")
        try lab.control("alpha", .init(command: .connect))
        try lab.wait("alpha", "resync under way") { ($0.sync?.percentDone ?? 0) > 15 }
        let midway = try lab.status("alpha")
        print("resync interrupted at: \(midway.line)")
        lab.kill("beta")  // the target dies mid-resync
        try lab.wait("alpha", "peer lost") { $0.connection == "Connecting" }
        try lab.start("beta")
        let restarted = try lab.status("beta")
        #expect(restarted.disk == "Inconsistent" || restarted.connection == "SyncTarget")
        try lab.wait("alpha", timeout: 30, "resync finished") {
            $0.connection == "Connected" && $0.outOfSyncBlocks == 0 && $0.peerDisk == "UpToDate"
        }
        try lab.wait("beta", "beta UpToDate") { $0.disk == "UpToDate" }
        let after = try lab.status("alpha")
        let moved = after.resyncBytesMoved - before.resyncBytesMoved
        print("interrupted resync: dirtied \(dirty) bytes, moved \(moved) bytes in total over both runs")
        #expect(moved < UInt64(dirty) * 3 / 2, "the second run must resume, not start over")
        #expect(lab.filesEqual("alpha.img", "beta.img"))
    }

    /// The dynamic controller's decisions are tested in CleverReplicationTests (fake time); here only that a
    /// resync with the application writing beside it progresses, finishes, and leaves both disks equal.
    @Test func resyncWithApplicationWritesFinishes() throws {
        let lab = try VolumeLab("resync-busy")
        defer { lab.teardown() }
        try lab.startPair(rateMiB: 16, minRateMiB: 2)
        try lab.control("alpha", .init(command: .disconnect))
        let client = try NBDClient(socket: lab.path("alpha.nbd"))
        let dirty = 16 << 20
        for offset in stride(from: 0, to: dirty, by: 1 << 20) {
            try client.write(offset: UInt64(offset), pattern(0x5A, 1 << 20))
        }
        try lab.control("alpha", .init(command: .connect))
        try lab.wait("alpha", "resync started") { $0.connection == "SyncSource" }
        // The application rewrites blocks inside and outside the dirty range while the resync runs.
        var round = 0
        var reasons: Set<String> = []
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline {
            round += 1
            let offset = UInt64((round * 3 % 31) << 20) + UInt64(round % 240) * 4096
            try client.write(offset: offset, pattern(UInt8(truncatingIfNeeded: round), 65536))
            if let reason = try lab.status("alpha").sync?.controllerReason { reasons.insert(reason) }
        }
        print("resync beside \(round) application writes; controller reasons seen: \(reasons.sorted())")
        try client.flush()
        try lab.wait("alpha", timeout: 60, "resync finished") {
            $0.connection == "Connected" && $0.outOfSyncBlocks == 0 && $0.peerDisk == "UpToDate"
        }
        try lab.wait("beta", "beta UpToDate") { $0.disk == "UpToDate" }
        try client.flush()
        #expect(lab.filesEqual("alpha.img", "beta.img"))
    }

    @Test func verifyFindsPlantedDifferencesAndResyncsThem() throws {
        let lab = try VolumeLab("verify")
        defer { lab.teardown() }
        try lab.startPair()
        let client = try NBDClient(socket: lab.path("alpha.nbd"))
        try client.write(offset: 0, pattern(0x42, 1 << 20))
        try client.flush()
        lab.kill("beta", signal: SIGTERM)
        let planted: [UInt64] = [7, 100, 2000, 8191]
        try lab.plant("beta", blocks: planted, byte: 0xEE)
        try lab.start("beta")
        try lab.wait("alpha", "reconnected") { $0.connection == "Connected" && $0.peerDisk == "UpToDate" }
        #expect(try lab.control("alpha", .init(command: .verify)).ok)
        let verified = try lab.wait("alpha", "verify finished") { $0.verify?.finished == true }
        print("verify: differing blocks \(verified.verify?.differingBlocks ?? [])")
        #expect(verified.verify?.differingBlocks.sorted() == planted)
        #expect(verified.verify?.differingCount == UInt64(planted.count))
        try lab.wait("alpha", "differences resynced") { $0.connection == "Connected" && $0.outOfSyncBlocks == 0 }
        #expect(lab.filesEqual("alpha.img", "beta.img"))
    }

    @Test func peerWithTheWrongSecretIsRefused() throws {
        let lab = try VolumeLab("secret")
        defer { lab.teardown() }
        try lab.writeSecret("a-completely-different-secret-value", name: "wrong")
        try lab.configure("alpha")
        try lab.configure("beta", secret: "wrong")
        try lab.start("alpha")
        try lab.start("beta")
        let alpha = try lab.wait("alpha", "authentication failure reported") {
            ($0.lastLinkError ?? "").contains("authentication failed")
        }
        print("wrong secret: \(alpha.lastLinkError ?? "")")
        Thread.sleep(forTimeInterval: 1)
        #expect(try lab.status("alpha").connection != "Connected")
        #expect(try lab.status("beta").connection != "Connected")
    }
}

// MARK: Split brain

extension LiveVolumeTests {
    enum Survivor { case alpha, beta, none }

    /// Makes a split brain: both sides write while disconnected (alpha was primary before the split, beta is
    /// promoted after it), then both demote to `primariesAtConnect` and reconnect.
    func splitBrain(
        _ name: String, policies: Replication.SplitBrainPolicies, alphaChanges: Int, betaChanges: Int,
        alphaPrimary: Bool = false, betaPrimary: Bool = false, expected: Survivor
    ) throws {
        let lab = try VolumeLab(name)
        defer { lab.teardown() }
        try lab.startPair(policies: policies)
        try lab.control("alpha", .init(command: .disconnect))
        try lab.control("beta", .init(command: .disconnect))
        do {
            let alpha = try NBDClient(socket: lab.path("alpha.nbd"))
            for index in 0..<alphaChanges { try alpha.write(offset: UInt64(index) * 4096, pattern(0xAA)) }
            try alpha.flush()
            alpha.disconnect()
        }
        #expect(try lab.control("beta", .init(command: .promote, peerOutdated: true)).ok)
        do {
            let beta = try NBDClient(socket: lab.path("beta.nbd"))
            for index in 0..<betaChanges { try beta.write(offset: UInt64(100 + index) * 4096, pattern(0xBB)) }
            try beta.flush()
            beta.disconnect()
        }
        Thread.sleep(forTimeInterval: 0.2)
        if !alphaPrimary { #expect(try lab.control("alpha", .init(command: .demote)).ok) }
        if !betaPrimary { #expect(try lab.control("beta", .init(command: .demote)).ok) }
        try lab.control("alpha", .init(command: .connect))
        try lab.control("beta", .init(command: .connect))
        switch expected {
        case .none:
            let alpha = try lab.wait("alpha", "split brain detected") { $0.splitBrain != nil }
            print("\(name): \(alpha.line)")
            #expect(alpha.connection == "StandAlone")
            try lab.wait("beta", "split brain detected on beta") { $0.splitBrain != nil }
            #expect(!lab.filesEqual("alpha.img", "beta.img"), "split brain must never merge silently")
        case .alpha, .beta:
            for node in lab.nodes {
                try lab.wait(node, "resolved and synced") {
                    $0.connection == "Connected" && $0.disk == "UpToDate" && $0.peerDisk == "UpToDate"
                        && $0.outOfSyncBlocks == 0
                }
            }
            #expect(lab.filesEqual("alpha.img", "beta.img"))
            // The survivor's changes are there, the victim's are gone.
            let data = AtomicFile.read(lab.path("alpha.img"))!
            let alphaKept = alphaChanges == 0 || data[0] == 0xAA
            let betaKept = betaChanges == 0 || data[100 * 4096] == 0xBB
            print("\(name): survivor \(expected), alpha changes kept \(alphaKept), beta changes kept \(betaKept)")
            if expected == .alpha {
                #expect(alphaKept && (betaChanges == 0 || !betaKept))
            } else {
                #expect(betaKept && (alphaChanges == 0 || !alphaKept))
            }
        }
    }

    @Test func splitBrainZeroPrimariesDisconnect() throws {
        try self.splitBrain("sb0-disconnect", policies: .init(), alphaChanges: 3, betaChanges: 5, expected: .none)
    }

    @Test func splitBrainDiscardYoungerPrimary() throws {
        try self.splitBrain("sb0-younger", policies: .init(zeroPrimaries: .discardYoungerPrimary),
            alphaChanges: 3, betaChanges: 9, expected: .alpha)
    }

    @Test func splitBrainDiscardOlderPrimary() throws {
        try self.splitBrain("sb0-older", policies: .init(zeroPrimaries: .discardOlderPrimary),
            alphaChanges: 9, betaChanges: 3, expected: .beta)
    }

    @Test func splitBrainDiscardZeroChanges() throws {
        try self.splitBrain("sb0-zero", policies: .init(zeroPrimaries: .discardZeroChanges),
            alphaChanges: 0, betaChanges: 4, expected: .beta)
    }

    @Test func splitBrainDiscardLeastChanges() throws {
        try self.splitBrain("sb0-least", policies: .init(zeroPrimaries: .discardLeastChanges),
            alphaChanges: 12, betaChanges: 4, expected: .alpha)
    }

    @Test func splitBrainOnePrimaryDiscardSecondary() throws {
        try self.splitBrain("sb1-secondary", policies: .init(onePrimary: .discardSecondary),
            alphaChanges: 2, betaChanges: 20, alphaPrimary: true, expected: .alpha)
    }

    @Test func splitBrainOnePrimaryConsensus() throws {
        try self.splitBrain("sb1-consensus",
            policies: .init(zeroPrimaries: .discardLeastChanges, onePrimary: .consensus),
            alphaChanges: 20, betaChanges: 2, alphaPrimary: true, expected: .alpha)
    }

    @Test func splitBrainOnePrimaryDisconnect() throws {
        try self.splitBrain("sb1-disconnect", policies: .init(zeroPrimaries: .discardLeastChanges),
            alphaChanges: 2, betaChanges: 5, alphaPrimary: true, expected: .none)
    }

    @Test func splitBrainTwoPrimariesDisconnect() throws {
        try self.splitBrain("sb2-disconnect",
            policies: .init(zeroPrimaries: .discardLeastChanges, onePrimary: .discardSecondary),
            alphaChanges: 2, betaChanges: 5, alphaPrimary: true, betaPrimary: true, expected: .none)
    }

    @Test func manualResolveWithDryRun() throws {
        let lab = try VolumeLab("resolve")
        defer { lab.teardown() }
        try lab.startPair()
        try lab.control("alpha", .init(command: .disconnect))
        try lab.control("beta", .init(command: .disconnect))
        let alpha = try NBDClient(socket: lab.path("alpha.nbd"))
        for index in 0..<6 { try alpha.write(offset: UInt64(index) * 4096, pattern(0xAA)) }
        alpha.disconnect()
        try lab.control("beta", .init(command: .promote, peerOutdated: true))
        let beta = try NBDClient(socket: lab.path("beta.nbd"))
        for index in 0..<3 { try beta.write(offset: UInt64(200 + index) * 4096, pattern(0xBB)) }
        beta.disconnect()
        Thread.sleep(forTimeInterval: 0.2)
        try lab.control("beta", .init(command: .demote))
        try lab.control("alpha", .init(command: .connect))
        try lab.control("beta", .init(command: .connect))
        try lab.wait("alpha", "split brain") { $0.splitBrain != nil }
        let dryRun = try lab.control("alpha", .init(command: .resolve, discard: "beta", dryRun: true))
        print("resolve dry run: \(dryRun.message)")
        #expect(dryRun.ok)
        #expect(dryRun.message.contains("alpha changed 6 blocks"))
        #expect(dryRun.message.contains("beta changed 3 blocks"))
        #expect(try !lab.control("alpha", .init(command: .resolve, discard: "gamma")).ok)
        // One command, on the survivor, naming the victim.
        #expect(try lab.control("alpha", .init(command: .resolve, discard: "beta")).ok)
        try lab.control("beta", .init(command: .connect))
        try lab.wait("beta", "victim resynced") {
            $0.connection == "Connected" && $0.disk == "UpToDate" && $0.outOfSyncBlocks == 0
        }
        try lab.wait("alpha", "survivor synced") { $0.connection == "Connected" && $0.outOfSyncBlocks == 0 }
        #expect(lab.filesEqual("alpha.img", "beta.img"))
        let data = AtomicFile.read(lab.path("beta.img"))!
        #expect(data[0] == 0xAA && data[200 * 4096] != 0xBB)
    }
}

extension LiveVolumeTests {
    @Test func eventsStreamStateChanges() throws {
        let lab = try VolumeLab("events")
        defer { lab.teardown() }
        try lab.startPair()
        let seen = AckedEvents()
        Thread.detachNewThread {
            try? ControlServer.streamEvents(from: lab.path("beta.ctl")) { event in
                seen.append("\(event.event): \(event.status.line)")
                return seen.count < 3
            }
        }
        Thread.sleep(forTimeInterval: 0.3)
        try lab.control("alpha", .init(command: .demote))
        Thread.sleep(forTimeInterval: 0.5)  // events are sampled every 100 ms: let the middle state be seen
        try lab.control("beta", .init(command: .promote))
        let deadline = Date().addingTimeInterval(10)
        while seen.count < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        print("events: \(seen.all)")
        #expect(seen.all.first?.hasPrefix("initial: vol0 Connected Secondary/Primary") == true)
        #expect(seen.all.contains { $0.hasPrefix("state: vol0 Connected Secondary/Secondary") })
        #expect(seen.all.contains { $0.hasPrefix("state: vol0 Connected Primary/Secondary") })
    }
}

final class AckedEvents: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) {
        self.lock.lock()
        self.lines.append(line)
        self.lock.unlock()
    }
    var all: [String] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.lines
    }
    var count: Int { self.all.count }
}

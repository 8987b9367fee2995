#if canImport(Glibc)
import Glibc
#endif
import CleverVolume
import Foundation
import Testing

/// Acknowledged sequence numbers, shared between the writer thread and the test.
final class AckedRecords: @unchecked Sendable {
    private let lock = NSLock()
    private var sequences: [UInt64] = []
    private var done = false
    private let finished = DispatchSemaphore(value: 0)

    func append(_ sequence: UInt64) {
        self.lock.lock()
        self.sequences.append(sequence)
        self.lock.unlock()
    }

    func finish() { self.finished.signal() }
    func waitFinished() { self.finished.wait() }

    var all: [UInt64] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.sequences
    }
}

extension LiveVolumeTests {
    /// The issue's crash test with a host-side writer: numbered records written with FUA under protocol C, the
    /// primary's volume process SIGKILLed at a random moment, the secondary promoted, every acknowledged record
    /// checked. Roles alternate; the killed side rejoins as bitmap sync target each time.
    @Test func killingThePrimaryLosesNoAcknowledgedRecord() throws {
        let lab = try VolumeLab("kill")
        defer { lab.teardown() }
        try lab.startPair()
        var primary = "alpha"
        var secondary = "beta"
        let iterations = 20
        let regionBlocks: UInt64 = 400
        var totalAcked = 0
        let started = Date()
        for iteration in 0..<iterations {
            let run = UInt64(iteration + 1)
            let base = UInt64(iteration) * regionBlocks
            let acked = AckedRecords()
            let client = try NBDClient(socket: lab.path("\(primary).nbd"))
            Thread.detachNewThread {
                for sequence in 0..<regionBlocks {
                    do {
                        try client.write(offset: (base + sequence) * 4096, Record.make(sequence: sequence, run: run), fua: true)
                    } catch {
                        break
                    }
                    acked.append(sequence)
                }
                acked.finish()
            }
            Thread.sleep(forTimeInterval: 0.02 + 0.38 * Double(run &* 7919 % 101) / 100)  // spread over 20–400 ms, the same every run
            lab.kill(primary)
            acked.waitFinished()
            let records = acked.all
            totalAcked += records.count
            try lab.wait(secondary, "\(secondary) notices the dead primary") { $0.connection == "Connecting" }
            let promoted = try lab.control(secondary, .init(command: .promote, peerOutdated: true))
            #expect(promoted.ok, "promote \(secondary): \(promoted.message)")
            let reader = try NBDClient(socket: lab.path("\(secondary).nbd"))
            var missing: [UInt64] = []
            for sequence in records {
                let block = try reader.read(offset: (base + sequence) * 4096, length: 4096)
                if !Record.check(block, sequence: sequence, run: run) { missing.append(sequence) }
            }
            reader.disconnect()
            #expect(missing.isEmpty, "iteration \(iteration): acknowledged records missing after failover: \(missing)")
            // The killed primary comes back as a crashed primary and resyncs from the new one.
            try lab.start(primary)
            for node in [primary, secondary] {
                try lab.wait(node, timeout: 30, "\(node) back in sync") {
                    $0.connection == "Connected" && $0.disk == "UpToDate" && $0.peerDisk == "UpToDate"
                }
            }
            swap(&primary, &secondary)
        }
        print("kill-the-primary: \(iterations) SIGKILLs, \(totalAcked) acknowledged records, all present after "
            + "failover (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
        #expect(lab.filesEqual("alpha.img", "beta.img"))
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// After a fault has healed and both replicas say UpToDate, the campaign checks the data itself, from outside, with
/// the guest running (pausing its QEMU made the agent's QMP monitor fail): both hosts' backing files are compared
/// byte for byte — all but the few blocks the writer is writing meanwhile (after the last record acknowledged when
/// the reading began, up to a margin past the last one acknowledged when it ended) — and every record the guest
/// acknowledged (1 … the highest `ACK`) is whole on each (the record format: scripts/test-guest/diskwriter.c).
public enum ReplicaCheck {
    public struct Outcome: Sendable {
        /// Records verified on disk (on each replica).
        public var recordsChecked: UInt64
        public var problems: [String]
    }

    static let block = 4096
    static let magic: UInt32 = 0x434c_5652
    /// Records the writer may have in flight beyond the last acknowledgement seen (it writes one every 100 ms; the
    /// watch reads the consoles every 50 ms).
    static let inFlightMargin: UInt64 = 8

    /// `acknowledged`: the highest record acknowledged so far (read before and after the images).
    public static func run(lab: CampaignLab, volume: String, acknowledged: () -> UInt64) -> Outcome {
        var problems: [String] = []
        var images: [String: Data] = [:]
        var before: UInt64 = 0
        var mismatch: String?
        for _ in 0..<3 {
            before = acknowledged()
            images = Dictionary(uniqueKeysWithValues: lab.hosts.compactMap { host in
                FileManager.default.contents(atPath: lab.backingFile(host, volume: volume)).map { (host, $0) }
            })
            let after = acknowledged()
            guard images.count == lab.hosts.count, let a = images[lab.hosts[0]], let b = images[lab.hosts[1]] else { break }
            mismatch = self.difference(a, b, skipping: Int(before)..<Int(after + Self.inFlightMargin))
            if mismatch == nil { break }
            // A resync or a write that was not in the window: look again in a moment.
            usleep(1_000_000)
        }
        if images.count != lab.hosts.count {
            problems.append("volume \(volume): a backing file is missing (\(lab.hosts.filter { images[$0] == nil }))")
        } else if let mismatch {
            problems.append("volume \(volume): the replicas differ: \(mismatch)")
        }
        for (host, image) in images.sorted(by: { $0.key < $1.key }) {
            if let bad = self.firstInvalidRecord(image, upTo: before) {
                problems.append("volume \(volume) on \(host): acknowledged record \(bad) is not on disk (records 1…\(before) were acknowledged)")
            }
        }
        return Outcome(recordsChecked: images.isEmpty ? 0 : before, problems: problems)
    }

    /// Where `a` and `b` differ outside the blocks `skipping`, or nil when they do not.
    static func difference(_ a: Data, _ b: Data, skipping: Range<Int>) -> String? {
        guard a.count == b.count else { return "sizes \(a.count) and \(b.count)" }
        let window = (skipping.lowerBound * Self.block)..<min(a.count, skipping.upperBound * Self.block)
        for range in [0..<min(window.lowerBound, a.count), max(window.upperBound, window.lowerBound)..<a.count] where !range.isEmpty {
            if a[range] != b[range] {
                let first = range.first { a[$0] != b[$0] } ?? range.lowerBound
                return "first at byte \(first) (block \(first / Self.block))"
            }
        }
        return nil
    }

    /// The first record of 1 … `highest` that is not whole in `image`, if any.
    static func firstInvalidRecord(_ image: Data, upTo highest: UInt64) -> UInt64? {
        guard highest > 0 else { return nil }
        return image.withUnsafeBytes { raw -> UInt64? in
            for record in 1...highest {
                let start = Int(record - 1) * Self.block
                guard start + Self.block <= raw.count else { return record }
                let bytes = UnsafeRawBufferPointer(rebasing: raw[start..<(start + Self.block)])
                if !self.valid(bytes, record: record) { return record }
            }
            return nil
        }
    }

    /// diskwriter.c's `valid`: magic, sequence number and checksum (FNV-1a over bytes 24…4095 ^ n ^ run << 32).
    static func valid(_ bytes: UnsafeRawBufferPointer, record: UInt64) -> Bool {
        let magic = bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
        let run = bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        let sequence = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let checksum = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        guard magic == Self.magic, sequence == record else { return false }
        var hash: UInt64 = 1_469_598_103_934_665_603
        for byte in bytes[24...] {
            hash ^= UInt64(byte)
            hash = hash &* 1_099_511_628_211
        }
        return checksum == hash ^ record ^ (UInt64(run) << 32)
    }
}

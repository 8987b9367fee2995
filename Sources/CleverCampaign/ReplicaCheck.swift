import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// After a fault has healed and both replicas say UpToDate, the campaign checks the data itself, from outside: with
/// the guest paused (SIGSTOP of its QEMU, so no write is in flight), both hosts' backing files are compared byte for
/// byte, and every record the guest acknowledged (1 … the highest `ACK`) is whole on each (the test guest's record
/// format: scripts/test-guest/diskwriter.c).
public enum ReplicaCheck {
    public struct Outcome: Sendable {
        /// Records verified on disk (on each replica).
        public var recordsChecked: UInt64
        public var problems: [String]
    }

    static let block = 4096
    static let magic: UInt32 = 0x434c_5652

    public static func run(lab: CampaignLab, volume: String, upTo highest: UInt64, vm: String = "mba7") -> Outcome {
        let running = lab.hosts.compactMap { lab.qemu(on: $0, vm: vm) }
        for pid in running { kill(pid, SIGSTOP) }
        defer { for pid in running { kill(pid, SIGCONT) } }
        // A write the volume process had already taken in reaches both replicas (protocol C) within a moment.
        var problems: [String] = []
        var images: [String: Data] = [:]
        for attempt in 0..<3 {
            usleep(attempt == 0 ? 300_000 : 1_000_000)
            images = Dictionary(uniqueKeysWithValues: lab.hosts.compactMap { host in
                FileManager.default.contents(atPath: lab.backingFile(host, volume: volume)).map { (host, $0) }
            })
            if images.count == lab.hosts.count, Set(images.values).count == 1 { break }
        }
        if images.count != lab.hosts.count {
            problems.append("volume \(volume): a backing file is missing (\(lab.hosts.filter { images[$0] == nil }))")
        } else if Set(images.values).count != 1, let a = images[lab.hosts[0]], let b = images[lab.hosts[1]] {
            let first = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
            problems.append("volume \(volume): the replicas differ (sizes \(a.count)/\(b.count), first at byte \(first), block \(first / Self.block))")
        }
        for (host, image) in images.sorted(by: { $0.key < $1.key }) {
            if let bad = self.firstInvalidRecord(image, upTo: highest) {
                problems.append("volume \(volume) on \(host): acknowledged record \(bad) is not on disk (records 1…\(highest) were acknowledged)")
            }
        }
        return Outcome(recordsChecked: images.isEmpty ? 0 : highest, problems: problems)
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

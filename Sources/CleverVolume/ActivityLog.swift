#if canImport(Glibc)
import Glibc
#endif
import CleverBytes

/// DRBD's activity log, simplified: the set of 4 MiB extents a primary may be writing. Before a write touches
/// an extent that is not in the set, the new set is made durable (a write-ahead transaction); an extent leaves
/// the set only after the bitmap that covers it was saved. After a primary crash, every block of every extent
/// in the set is treated as dirty, which bounds the resync to `capacity` × 4 MiB instead of the whole disk.
///
/// On disk: two 8 KiB slots written alternately in place (pwrite + fdatasync), each
/// `magic "CVAL", u64 sequence, u32 count, u32 crc32c(of the extents), count × u32 extent`; the valid slot with
/// the higher sequence wins, so a torn write loses only the newest transaction, whose write never started.
public final class ActivityLog: @unchecked Sendable {
    public static let extentSize: UInt64 = 4 << 20
    static let slotSize = 8192
    static let magic: UInt32 = 0x4356_414C
    public static var maxCapacity: Int { (slotSize - 20) / 4 }

    public let path: String
    public let capacity: Int
    private let fd: Int32
    private var sequence: UInt64 = 0
    /// Extent → last use (a counter), for least-recently-used eviction.
    private var active: [UInt32: UInt64] = [:]
    private var clock: UInt64 = 0
    public private(set) var transactions: UInt64 = 0

    public init(path: String, capacity: Int = 1237) throws {
        precondition(capacity > 0 && capacity <= Self.maxCapacity, "activity log capacity \(capacity) out of range")
        self.path = path
        self.capacity = capacity
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("open activity log", path) }
        self.fd = fd
        if ftruncate(fd, off_t(2 * Self.slotSize)) != 0 { throw SystemError("size activity log", path) }
    }

    deinit { close(self.fd) }

    /// The extents recorded by the newest valid transaction (what a crashed primary must resync).
    public func recordedExtents() -> [UInt32] {
        var best: (UInt64, [UInt32])? = nil
        for slot in 0..<2 {
            var buffer = [UInt8](repeating: 0, count: Self.slotSize)
            let got = buffer.withUnsafeMutableBytes { pread(self.fd, $0.baseAddress!, Self.slotSize, off_t(slot * Self.slotSize)) }
            guard got == Self.slotSize else { continue }
            var reader = ByteReader(buffer)
            guard reader.readUInt32() == Self.magic, let sequence = reader.readUInt64(), let count = reader.readUInt32(),
                let crc = reader.readUInt32(), Int(count) <= Self.maxCapacity,
                let body = reader.readBytes(Int(count) * 4), CRC32C.checksum(body) == crc
            else { continue }
            var extents: [UInt32] = []
            var bodyReader = ByteReader(body)
            while let extent = bodyReader.readUInt32() { extents.append(extent) }
            if best == nil || sequence > best!.0 { best = (sequence, extents) }
        }
        if let best { self.sequence = max(self.sequence, best.0) }
        return best?.1 ?? []
    }

    public static func extents(offset: UInt64, length: UInt64) -> ClosedRange<UInt32> {
        let first = UInt32(offset / extentSize)
        let last = UInt32((offset + max(length, 1) - 1) / extentSize)
        return first...last
    }

    /// Makes sure the extents of a write are active. Returns the extents that must be evicted first (the
    /// caller saves the bitmap before calling `commit`), or [] when nothing needs to change.
    public func plan(offset: UInt64, length: UInt64) -> (missing: [UInt32], evict: [UInt32]) {
        self.clock += 1
        var missing: [UInt32] = []
        for extent in Self.extents(offset: offset, length: length) {
            if self.active[extent] != nil {
                self.active[extent] = self.clock
            } else {
                missing.append(extent)
            }
        }
        guard !missing.isEmpty else { return ([], []) }
        let overflow = self.active.count + missing.count - self.capacity
        guard overflow > 0 else { return (missing, []) }
        let evict = self.active.sorted { $0.value < $1.value }.prefix(overflow).map(\.key)
        return (missing, evict)
    }

    /// Writes the transaction that adds `missing` and removes `evict`. The extents count as active only once
    /// the transaction is durable: after a failed write the next write to them tries again.
    public func commit(missing: [UInt32], evict: [UInt32]) throws {
        var next = self.active
        for extent in evict { next[extent] = nil }
        for extent in missing { next[extent] = self.clock }
        try self.writeTransaction(Array(next.keys))
        self.active = next
    }

    /// Empties the log (clean demote: nothing is in flight).
    public func clear() throws {
        try self.writeTransaction([])
        self.active = [:]
    }

    public var activeExtents: [UInt32] { self.active.keys.sorted() }

    private func writeTransaction(_ set: [UInt32]) throws {
        self.sequence += 1
        self.transactions += 1
        let extents = set.sorted()
        var body = ByteWriter(capacity: extents.count * 4)
        for extent in extents { body.write(extent) }
        var writer = ByteWriter(capacity: Self.slotSize)
        writer.write(Self.magic)
        writer.write(self.sequence)
        writer.write(UInt32(extents.count))
        writer.write(CRC32C.checksum(body.bytes))
        writer.write(bytes: body.bytes)
        writer.writeZeroes(Self.slotSize - writer.bytes.count)
        let slot = Int(self.sequence % 2)
        let put = writer.bytes.withUnsafeBytes { pwrite(self.fd, $0.baseAddress!, Self.slotSize, off_t(slot * Self.slotSize)) }
        guard put == Self.slotSize else { throw SystemError("write activity log transaction", self.path) }
        guard fdatasync(self.fd) == 0 else { throw SystemError("fdatasync activity log", self.path) }
    }
}

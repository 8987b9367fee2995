import CleverBytes

extension Replication {
    /// One bit per 4 KiB block: set when the block may differ on the peer.
    public struct DirtyBitmap: Hashable, Sendable {
        public static let blockSize: UInt64 = 4096
        public let blockCount: UInt64
        public private(set) var words: [UInt64]
        public private(set) var setCount: UInt64 = 0

        public init(volumeSize: UInt64) {
            self.blockCount = (volumeSize + Self.blockSize - 1) / Self.blockSize
            self.words = Array(repeating: 0, count: Int((self.blockCount + 63) / 64))
        }

        public init?(blockCount: UInt64, words: [UInt64]) {
            guard words.count == Int((blockCount + 63) / 64) else { return nil }
            self.blockCount = blockCount
            self.words = words
            // Bits past the end are not blocks: drop them so counts stay honest.
            if blockCount % 64 != 0, let last = words.indices.last {
                self.words[last] &= (UInt64(1) << (blockCount % 64)) - 1
            }
            self.setCount = self.words.reduce(0) { $0 + UInt64($1.nonzeroBitCount) }
        }

        public func isSet(_ block: UInt64) -> Bool {
            guard block < self.blockCount else { return false }
            return self.words[Int(block / 64)] & (1 << (block % 64)) != 0
        }

        public mutating func set(_ block: UInt64) {
            guard block < self.blockCount else { return }
            let index = Int(block / 64)
            let bit: UInt64 = 1 << (block % 64)
            if self.words[index] & bit == 0 {
                self.words[index] |= bit
                self.setCount += 1
            }
        }

        public mutating func clear(_ block: UInt64) {
            guard block < self.blockCount else { return }
            let index = Int(block / 64)
            let bit: UInt64 = 1 << (block % 64)
            if self.words[index] & bit != 0 {
                self.words[index] &= ~bit
                self.setCount -= 1
            }
        }

        /// Blocks touched by the byte range [offset, offset+length). A range past the end of UInt64 (only a
        /// peer's crafted frame can say one; `Replication.rangeFits` refuses those first) is cut at the end.
        public static func blocks(offset: UInt64, length: UInt64) -> Range<UInt64> {
            guard length > 0 else { return offset / blockSize..<offset / blockSize }
            let (last, overflow) = offset.addingReportingOverflow(length - 1)
            return (offset / blockSize)..<((overflow ? UInt64.max : last) / blockSize + 1)
        }

        public mutating func mark(offset: UInt64, length: UInt64) {
            for block in Self.blocks(offset: offset, length: length) { self.set(block) }
        }

        public mutating func setAll() {
            for block in 0..<self.blockCount { self.set(block) }
        }

        public mutating func clearAll() {
            self.words = Array(repeating: 0, count: self.words.count)
            self.setCount = 0
        }

        /// OR-merge (DRBD merges both sides' bitmaps on reconnect).
        public mutating func merge(_ other: DirtyBitmap) {
            precondition(other.blockCount == self.blockCount, "bitmap sizes differ: \(other.blockCount) vs \(self.blockCount)")
            for index in self.words.indices { self.words[index] |= other.words[index] }
            self.setCount = self.words.reduce(0) { $0 + UInt64($1.nonzeroBitCount) }
        }

        /// The first set block at or after `start`.
        public func nextSet(from start: UInt64) -> UInt64? {
            var block = start
            while block < self.blockCount {
                let index = Int(block / 64)
                let word = self.words[index] >> (block % 64)
                if word != 0 {
                    let found = block + UInt64(word.trailingZeroBitCount)
                    return found < self.blockCount ? found : nil
                }
                block = UInt64(index + 1) * 64
            }
            return nil
        }

        /// Little-endian words, as stored on disk and sent on the wire.
        public var encoded: [UInt8] {
            var writer = ByteWriter(capacity: self.words.count * 8)
            for word in self.words { writer.write(word.byteSwapped) }
            return writer.bytes
        }

        public static func decode(blockCount: UInt64, bytes: [UInt8]) -> DirtyBitmap? {
            guard bytes.count % 8 == 0 else { return nil }
            var reader = ByteReader(bytes)
            var words: [UInt64] = []
            words.reserveCapacity(bytes.count / 8)
            while let word = reader.readUInt64() { words.append(word.byteSwapped) }
            return DirtyBitmap(blockCount: blockCount, words: words)
        }
    }
}

extension Replication {
    /// Whether [offset, offset+length) lies inside a volume of `size` bytes, without overflowing: every offset
    /// and length a peer sends is checked with this before it is used.
    public static func rangeFits(offset: UInt64, length: UInt64, size: UInt64) -> Bool {
        let (end, overflow) = offset.addingReportingOverflow(length)
        return !overflow && end <= size
    }

    /// Whether `count` blocks from `start` lie inside a bitmap of `blockCount` blocks, without overflowing.
    public static func blockRangeFits(start: UInt64, count: UInt64, blockCount: UInt64) -> Bool {
        let (end, overflow) = start.addingReportingOverflow(count)
        return !overflow && end <= blockCount
    }
}

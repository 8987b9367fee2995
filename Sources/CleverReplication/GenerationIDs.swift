extension Replication {
    /// DRBD's data generation identifiers: which version of the data a disk holds, and its ancestry.
    ///
    /// The lowest bit of each identifier is the role bit: set when the identifier was made (or last held) while
    /// the node was primary. Comparisons mask it; the after-split-brain policies read it from the Bitmap
    /// identifier to tell an older primary (was primary when the peer was lost) from a younger one (promoted
    /// after the split).
    public struct GenerationIDs: Hashable, Sendable, Codable, CustomStringConvertible {
        /// "Just created" (DRBD's UUID_JUST_CREATED): a disk that has never been in use.
        public static let justCreated: UInt64 = 4

        public var current: UInt64
        /// Non-zero while we track changes the peer does not have (since we lost it).
        public var bitmap: UInt64
        public var history: [UInt64]

        public init(current: UInt64 = GenerationIDs.justCreated, bitmap: UInt64 = 0, history: [UInt64] = [0, 0]) {
            self.current = current
            self.bitmap = bitmap
            self.history = Array((history + [0, 0]).prefix(2))
        }

        public var description: String {
            func hex(_ value: UInt64) -> String { String(value, radix: 16, uppercase: true) }
            return "\(hex(self.current)):\(hex(self.bitmap)):\(hex(self.history[0])):\(hex(self.history[1]))"
        }

        static func masked(_ value: UInt64) -> UInt64 { value & ~1 }

        /// Starts a new data generation. `random` must come from a good random source (the shell provides it).
        /// The old Current becomes the Bitmap identifier (we now record what the peer lacks) unless a Bitmap
        /// identifier is already set, in which case the old bitmap still covers the peer's missing blocks.
        public mutating func startNewGeneration(random: UInt64, asPrimary: Bool) {
            if self.bitmap == 0 {
                self.bitmap = self.current
            }
            var fresh = random & ~1
            // 0 means "none" and 4 means "just created": never use them for a real generation.
            if fresh == 0 || fresh == Self.justCreated { fresh = 0x5EED_0000_0000_0010 }
            self.current = fresh | (asPrimary ? 1 : 0)
        }

        /// The peer has all our changes again: the Bitmap identifier retires into History.
        public mutating func clearBitmap() {
            guard self.bitmap != 0 else { return }
            self.history = [self.bitmap, self.history[0]]
            self.bitmap = 0
        }

        /// A resync target finished: it now holds the source's generation.
        public mutating func adoptAfterSync(from source: GenerationIDs) {
            if Self.masked(self.current) != Self.masked(source.current) && Self.masked(self.current) != Self.justCreated {
                self.history = [self.current, self.history[0]]
            }
            self.current = Self.masked(source.current)
            self.bitmap = 0
        }

        /// Marks the role bit of Current (set while primary).
        public mutating func setRole(primary: Bool) {
            self.current = primary ? (self.current | 1) : Self.masked(self.current)
        }
    }
}

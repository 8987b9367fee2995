/// Big-endian reading over a byte array, with bounds checks that return nil instead of trapping.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var position: Int

    public init(_ bytes: [UInt8], position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    public var remaining: Int { self.bytes.count - self.position }

    public mutating func readUInt8() -> UInt8? {
        guard self.remaining >= 1 else { return nil }
        defer { self.position += 1 }
        return self.bytes[self.position]
    }

    public mutating func readUInt16() -> UInt16? { self.readInteger(UInt16.self) }
    public mutating func readUInt32() -> UInt32? { self.readInteger(UInt32.self) }
    public mutating func readUInt64() -> UInt64? { self.readInteger(UInt64.self) }

    public mutating func readInteger<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard self.remaining >= size else { return nil }
        var value: T = 0
        for index in 0..<size {
            value = (value << 8) | T(self.bytes[self.position + index])
        }
        self.position += size
        return value
    }

    public mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, self.remaining >= count else { return nil }
        defer { self.position += count }
        return Array(self.bytes[self.position..<(self.position + count)])
    }

    public mutating func readRest() -> [UInt8] {
        defer { self.position = self.bytes.count }
        return Array(self.bytes[self.position...])
    }
}

/// Big-endian writing into a growing byte array.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { self.bytes.append(value) }

    public mutating func write<T: FixedWidthInteger & UnsignedInteger>(_ value: T) {
        let size = MemoryLayout<T>.size
        for index in stride(from: size - 1, through: 0, by: -1) {
            self.bytes.append(UInt8(truncatingIfNeeded: value >> (index * 8)))
        }
    }

    public mutating func write(bytes: some Sequence<UInt8>) { self.bytes.append(contentsOf: bytes) }

    public mutating func writeZeroes(_ count: Int) { self.bytes.append(contentsOf: repeatElement(0, count: count)) }
}

/// A placement score with Pacemaker's arithmetic: values are clamped to ±1,000,000 (±INFINITY),
/// and -INFINITY absorbs everything, including +INFINITY.
public struct Score: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let infinityValue = 1_000_000

    public let value: Int

    public init(_ value: Int) {
        self.value = min(max(value, -Self.infinityValue), Self.infinityValue)
    }

    public static let zero = Score(0)
    public static let infinity = Score(infinityValue)
    public static let minusInfinity = Score(-infinityValue)

    public var isInfinite: Bool { self.value == Self.infinityValue }
    public var isMinusInfinite: Bool { self.value == -Self.infinityValue }
    /// A node is allowed for a resource while its score is above -INFINITY... and not negative (Pacemaker).
    public var allowsPlacement: Bool { self.value >= 0 }

    public static func + (lhs: Score, rhs: Score) -> Score {
        if lhs.isMinusInfinite || rhs.isMinusInfinite { return .minusInfinity }
        if lhs.isInfinite || rhs.isInfinite { return .infinity }
        return Score(lhs.value + rhs.value)
    }

    public static func += (lhs: inout Score, rhs: Score) { lhs = lhs + rhs }

    public static func < (lhs: Score, rhs: Score) -> Bool { lhs.value < rhs.value }

    /// Parses Pacemaker's spellings: an integer, `INFINITY`, `+INFINITY`, `-INFINITY`, `inf`.
    public init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace().lowercased()
        switch trimmed {
        case "infinity", "+infinity", "inf", "+inf": self = .infinity
        case "-infinity", "-inf": self = .minusInfinity
        default:
            guard let number = Int(trimmed) else { return nil }
            self.init(number)
        }
    }

    public var description: String {
        if self.isInfinite { return "+INFINITY" }
        if self.isMinusInfinite { return "-INFINITY" }
        return String(self.value)
    }

    /// Scales a score by `factor / INFINITY`, as Pacemaker does when merging the node scores of a
    /// resource colocated with a finite score: in single precision, rounded half away from zero, and
    /// never to zero when neither side is zero (so -INFINITY at 10/INFINITY is -10, not -INFINITY).
    public func scaled(by factor: Score) -> Score {
        if factor.isInfinite { return self }
        if factor.isMinusInfinite { return Score(-self.value) }
        let product = Float(factor.value) / Float(Self.infinityValue) * Float(self.value)
        var rounded = Int(product < 0 ? product - 0.5 : product + 0.5)
        if rounded == 0, self.value != 0, factor.value != 0 { rounded = factor.value > 0 ? 1 : -1 }
        return Score(rounded)
    }
}

extension Score: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self.init(value) }
}

extension String {
    package func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}

extension Score: Codable {
    /// Encoded as Pacemaker writes it: an integer, or `INFINITY` / `-INFINITY`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            self.init(number)
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = Score(parsing: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a score: '\(text)'")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if self.isInfinite || self.isMinusInfinite {
            try container.encode(self.isInfinite ? "INFINITY" : "-INFINITY")
        } else {
            try container.encode(self.value)
        }
    }
}

extension String {
    /// Left-aligned in a column of `width` characters (no Foundation in the pure layers).
    public func padded(to width: Int) -> String {
        self.count >= width ? self : self + String(repeating: " ", count: width - self.count)
    }
}

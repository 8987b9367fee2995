/// Wall-clock time in seconds since the Unix epoch. Decision cores never read the clock: the shell
/// passes `now` in. Expiring marks and failure timeouts are agreed across hosts, hence wall time.
public struct Timestamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var seconds: Double

    public init(seconds: Double) { self.seconds = seconds }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.seconds < rhs.seconds }

    public static func + (lhs: Timestamp, rhs: Seconds) -> Timestamp { Timestamp(seconds: lhs.seconds + rhs.value) }

    public func seconds(since earlier: Timestamp) -> Double { self.seconds - earlier.seconds }

    public var description: String { String(self.seconds) }

    public init(from decoder: any Decoder) throws {
        self.seconds = try decoder.singleValueContainer().decode(Double.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.seconds)
    }
}

/// A duration in seconds, as written in the config (`30s`, `5m`, `1h`, `250ms`, or a bare number).
public struct Seconds: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var value: Double

    public init(_ value: Double) { self.value = value }

    public static func < (lhs: Seconds, rhs: Seconds) -> Bool { lhs.value < rhs.value }

    public init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace().lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("min", 60), ("h", 3600), ("d", 86400)]
        if let plain = Double(trimmed), plain >= 0 {
            self.value = plain
            return
        }
        for (suffix, factor) in units.sorted(by: { $0.0.count > $1.0.count }) where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            if let amount = Double(number), amount >= 0 {
                self.value = amount * factor
                return
            }
        }
        return nil
    }

    public var description: String {
        if self.value >= 3600, self.value.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(self.value / 3600))h" }
        if self.value >= 60, self.value.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(self.value / 60))m" }
        if self.value < 1, self.value > 0 { return "\(Int((self.value * 1000).rounded()))ms" }
        if self.value == self.value.rounded() { return "\(Int(self.value))s" }
        return "\(self.value)s"
    }

    public init(from decoder: any Decoder) throws {
        self.value = try decoder.singleValueContainer().decode(Double.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.value)
    }
}

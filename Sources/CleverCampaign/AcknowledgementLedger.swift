import Foundation

/// Every acknowledged record must survive (the design's invariant 2), checked from the guests' consoles alone: the
/// test guest's writer prints `ACK n` once record n is durable, and on each boot `RESUME n`, the last record it found
/// on its disk. A `RESUME` below an `ACK` any host printed before it means acknowledged records were lost. Pure:
/// the watch feeds it each host's console log as it grows.
public struct AcknowledgementLedger: Sendable {
    /// The highest record any host acknowledged.
    public private(set) var highest: UInt64 = 0
    /// Boots seen, each with the record it resumed after.
    public private(set) var resumes: [(host: String, record: UInt64)] = []
    private var consumed: [String: Int] = [:]
    private var logIdentity: [String: UInt64] = [:]

    public init() {}

    /// Reads what `host`'s console log gained since the last call; returns a line per loss found. `identity` tells a
    /// new log (a power-on empties /run, a new QEMU may start a new file) from the old one grown.
    public mutating func read(host: String, log: Data, identity: UInt64 = 0) -> [String] {
        var start = self.consumed[host] ?? 0
        if self.logIdentity[host] != identity || log.count < start { start = 0 }
        self.logIdentity[host] = identity
        // Only whole lines: a line still being written is read next time.
        guard let end = log[start...].lastIndex(of: 10) else { return [] }
        self.consumed[host] = end + 1
        var losses: [String] = []
        for line in log[start..<end].split(separator: 10) {
            let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let words = text.split(separator: " ")
            guard words.count == 2, let number = UInt64(words[1]) else { continue }
            switch words[0] {
            case "ACK":
                self.highest = max(self.highest, number)
            case "RESUME":
                self.resumes.append((host, number))
                if number < self.highest {
                    losses.append("the guest on \(host) resumed after record \(number), but record \(self.highest) was acknowledged: \(self.highest - number) acknowledged records lost")
                }
            default:
                continue
            }
        }
        return losses
    }
}

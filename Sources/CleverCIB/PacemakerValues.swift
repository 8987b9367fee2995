import CleverModel

/// Pacemaker's spellings of booleans, roles, durations and dates.
enum PacemakerValues {
    /// `crm_is_true`: yes/true/on/y/1 (any case).
    static func boolean(_ text: String) -> Bool? {
        switch text.trimmingWhitespace().lowercased() {
        case "true", "yes", "on", "y", "1": true
        case "false", "no", "off", "n", "0": false
        default: nil
        }
    }

    /// Role names, old (Master/Slave) and new (Promoted/Unpromoted).
    static func role(_ text: String) -> ConstraintRole? {
        switch text.trimmingWhitespace().lowercased() {
        case "started": .started
        case "master", "promoted": .promoted
        case "slave", "unpromoted": .unpromoted
        default: nil
        }
    }

    static func targetRole(_ text: String) -> ResourceMeta.TargetRole? {
        if text.trimmingWhitespace().lowercased() == "stopped" { return .stopped }
        switch self.role(text) {
        case .started: return .started
        case .promoted: return .promoted
        case .unpromoted: return .unpromoted
        case nil: return nil
        }
    }

    /// Pacemaker's duration syntax (`crm_get_msec`): a number with an optional unit; bare numbers are seconds.
    static func duration(_ text: String) -> Seconds? {
        let trimmed = text.trimmingWhitespace().lowercased()
        if trimmed.hasPrefix("p") { return self.isoDuration(trimmed) }
        let units: [(String, Double)] = [
            ("msec", 0.001), ("ms", 0.001), ("usec", 0.000_001), ("us", 0.000_001), ("sec", 1), ("s", 1),
            ("min", 60), ("m", 60), ("hr", 3600), ("h", 3600),
        ]
        if let plain = Double(trimmed), plain >= 0 { return Seconds(plain) }
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = String(trimmed.dropLast(suffix.count)).trimmingWhitespace()
            if let amount = Double(number), amount >= 0 { return Seconds(amount * factor) }
        }
        return nil
    }

    /// ISO 8601 durations with day/time parts only (`PT10S`, `P1DT2H`).
    private static func isoDuration(_ text: String) -> Seconds? {
        var total = 0.0
        var number = ""
        var inTime = false
        for character in text.dropFirst() {
            switch character {
            case "t": inTime = true
            case "0"..."9", ".": number.append(character)
            default:
                guard let amount = Double(number) else { return nil }
                number = ""
                switch (character, inTime) {
                case ("d", false): total += amount * 86400
                case ("w", false): total += amount * 7 * 86400
                case ("h", true): total += amount * 3600
                case ("m", true): total += amount * 60
                case ("s", true): total += amount
                default: return nil
                }
            }
        }
        return number.isEmpty ? Seconds(total) : nil
    }

    /// Integers as Pacemaker writes them, with INFINITY spellings mapped to ±1,000,000.
    static func integer(_ text: String) -> Int? {
        Score(parsing: text)?.value
    }

    /// The integer a decimal starts with (`2.0`, `-3.5`), as strtol reads it; nil without one.
    static func leadingInteger(_ text: String) -> Int? {
        let trimmed = text.trimmingWhitespace()
        guard let dot = trimmed.firstIndex(of: "."), trimmed[trimmed.index(after: dot)...].allSatisfy(\.isNumber) else { return nil }
        return Int(trimmed[..<dot])
    }

    /// `2026-11-24 21:00:00Z`, `2026-11-24T21:00:00+01:00`, `2026-11-24 21:00:00 +00:00`, `2026-11-24`.
    static func date(_ text: String) -> Timestamp? {
        let trimmed = text.trimmingWhitespace()
        let scalars = Array(trimmed.unicodeScalars)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= scalars.count else { return nil }
            var value = 0
            for index in range {
                guard let digit = Int(String(scalars[index])) else { return nil }
                value = value * 10 + digit
            }
            return value
        }
        guard let year = number(0..<4), scalars.count >= 10, scalars[4] == "-", scalars[7] == "-",
            let month = number(5..<7), let day = number(8..<10), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var seconds = Double(self.daysFromCivil(year: year, month: month, day: day)) * 86400
        var index = 10
        if index < scalars.count, scalars[index] == " " || scalars[index] == "T" {
            guard let hour = number(index + 1..<index + 3), scalars.count >= index + 6, scalars[index + 3] == ":",
                let minute = number(index + 4..<index + 6)
            else { return nil }
            seconds += Double(hour * 3600 + minute * 60)
            index += 6
            if index < scalars.count, scalars[index] == ":" {
                guard let second = number(index + 1..<index + 3) else { return nil }
                seconds += Double(second)
                index += 3
            }
        }
        while index < scalars.count, scalars[index] == " " { index += 1 }
        if index < scalars.count {
            let zone = String(String.UnicodeScalarView(scalars[index...]))
            if zone == "Z" || zone == "z" { return Timestamp(seconds: seconds) }
            let sign: Double = zone.hasPrefix("-") ? -1 : 1
            guard zone.hasPrefix("+") || zone.hasPrefix("-") else { return nil }
            let digits = zone.dropFirst().filter { $0 != ":" }
            guard digits.count == 2 || digits.count == 4, let value = Int(digits) else { return nil }
            let offset = digits.count == 2 ? value * 3600 : (value / 100) * 3600 + (value % 100) * 60
            seconds -= sign * Double(offset)
        }
        return Timestamp(seconds: seconds)
    }

    /// `Tue Nov 24 20:36:44 2026` (ctime format of `cib-last-written`), read as UTC.
    static func ctimeDate(_ text: String) -> Timestamp? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        guard parts.count == 5, let monthIndex = months.firstIndex(of: parts[1].lowercased()),
            let day = Int(parts[2]), let year = Int(parts[4])
        else { return nil }
        let clock = parts[3].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3 else { return nil }
        let days = self.daysFromCivil(year: year, month: monthIndex + 1, day: day)
        return Timestamp(seconds: Double(days * 86400 + clock[0] * 3600 + clock[1] * 60 + clock[2]))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468
    }
}

import CleverModel

/// How scalars in the config are spelled: integers, booleans, durations, sizes, scores, enums,
/// addresses and ids. Each returns a `ValueProblem` that says what was expected.
enum ValueSyntax {
    static func integer(_ text: String) -> Result<Int, ValueProblem> {
        guard let value = Int(text.replacingUnderscores()) else {
            return .failure(ValueProblem("expected an integer, found '\(text)'"))
        }
        return .success(value)
    }

    static func integer(_ text: String, atLeast minimum: Int) -> Result<Int, ValueProblem> {
        self.integer(text).flatMap { value in
            value >= minimum ? .success(value) : .failure(ValueProblem("must be at least \(minimum), found \(value)"))
        }
    }

    static func boolean(_ text: String) -> Result<Bool, ValueProblem> {
        switch text.lowercased() {
        case "true", "yes", "on": .success(true)
        case "false", "no", "off": .success(false)
        default: .failure(ValueProblem("expected true or false, found '\(text)'"))
        }
    }

    /// Case-insensitive; the hint lists the accepted spellings.
    static func choice<Choice: RawRepresentable & CaseIterable>(
        _ text: String, of type: Choice.Type = Choice.self
    ) -> Result<Choice, ValueProblem> where Choice.RawValue == String {
        if let match = Choice.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) {
            return .success(match)
        }
        let names = Choice.allCases.map(\.rawValue)
        let hint = EditDistance.nearest(to: text, among: names).map { "did you mean '\($0)'?" }
            ?? "one of: \(names.joined(separator: ", "))"
        return .failure(ValueProblem("'\(text)' is not one of \(names.joined(separator: ", "))", hint: hint))
    }

    static func score(_ text: String) -> Result<Score, ValueProblem> {
        guard let score = Score(parsing: text) else {
            return .failure(
                ValueProblem("expected a score, found '\(text)'", hint: "an integer, INFINITY or -INFINITY"))
        }
        return .success(score)
    }

    // MARK: Durations

    /// `250ms`, `30s`, `5m`, `1h`, `1d`, or a bare number of seconds.
    static func duration(_ text: String) -> Result<Seconds, ValueProblem> {
        guard let seconds = Seconds(parsing: text), seconds.value.isFinite else {
            return .failure(
                ValueProblem(
                    "expected a duration, found '\(text)'", hint: "a number with unit ms, s, m, h or d, e.g. 30s"))
        }
        guard seconds.value <= self.longestDuration else {
            return .failure(ValueProblem("duration '\(text)' is longer than 10 years"))
        }
        return .success(seconds)
    }

    /// Ten years: longer is a typo, and would overflow integer arithmetic on seconds elsewhere.
    static let longestDuration: Double = 10 * 365 * 86400

    static func positiveDuration(_ text: String) -> Result<Seconds, ValueProblem> {
        self.duration(text).flatMap { seconds in
            seconds.value > 0 ? .success(seconds) : .failure(ValueProblem("must be longer than 0, found '\(text)'"))
        }
    }

    /// A duration where `never` or 0 means "no limit" (nil).
    static func durationOrNever(_ text: String) -> Result<Seconds?, ValueProblem> {
        if text.lowercased() == "never" { return .success(nil) }
        return self.duration(text).map { $0.value == 0 ? nil : $0 }
    }

    // MARK: Sizes

    static let sizeUnits: [(suffix: String, factor: UInt64)] = [
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
        ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000),
        ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40), ("b", 1),
    ]

    /// Bytes: `4096`, `1GiB`, `1G` (binary, as qemu-img and DRBD read it), `1GB` (decimal).
    static func size(_ text: String) -> Result<UInt64, ValueProblem> {
        let lowered = text.replacingUnderscores().lowercased()
        var number = Substring(lowered)
        var factor: UInt64 = 1
        for unit in self.sizeUnits where lowered.hasSuffix(unit.suffix) {
            number = lowered.dropLast(unit.suffix.count)
            factor = unit.factor
            break
        }
        let digits = number.trimmingCharacters(in: " ")
        guard let amount = UInt64(digits) else {
            return .failure(
                ValueProblem(
                    "expected a size, found '\(text)'", hint: "bytes, or a whole number with K, M, G, T, KiB, MiB, GiB, TiB"
                ))
        }
        let (bytes, overflow) = amount.multipliedReportingOverflow(by: factor)
        guard !overflow else { return .failure(ValueProblem("size '\(text)' is too large")) }
        return .success(bytes)
    }

    // MARK: Names and addresses

    /// Pacemaker's id syntax (an XML NCName without colons): a letter or `_`, then letters, digits,
    /// `_`, `-`, `.`.
    /// Linux interface names: 1 to 15 bytes, no '/' or whitespace.
    static func interfaceName(_ text: String) -> Result<String, ValueProblem> {
        text.isEmpty || text.utf8.count > 15 || text.contains("/") || text.contains(where: \.isWhitespace)
            ? .failure(ValueProblem("'\(text)' is not a network interface name (at most 15 characters, no '/' or spaces)"))
            : .success(text)
    }

    /// Six hex pairs separated by ':', unicast (the first octet's lowest bit clear).
    static func unicastMAC(_ text: String) -> Result<String, ValueProblem> {
        let octets = text.split(separator: ":", omittingEmptySubsequences: false)
        guard octets.count == 6, octets.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) else {
            return .failure(ValueProblem("'\(text)' is not a MAC address (like 52:54:00:12:34:56)"))
        }
        guard let first = UInt8(octets[0], radix: 16), first & 1 == 0 else {
            return .failure(ValueProblem("'\(text)' is a multicast MAC address; a NIC needs a unicast one"))
        }
        return .success(text.lowercased())
    }

    static func identifier(_ text: String) -> Result<String, ValueProblem> {
        guard let first = text.unicodeScalars.first else { return .failure(ValueProblem("must not be empty")) }
        let isValid =
            (first.isASCIILetter || first == "_")
            && text.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || "_-.".unicodeScalars.contains($0) }
        guard isValid else {
            return .failure(
                ValueProblem(
                    "'\(text)' is not a valid id",
                    hint: "start with a letter or '_', then letters, digits, '_', '-' or '.'"))
        }
        return .success(text)
    }

    /// Corosync's cluster_name: 1 to 64 letters, digits, `-`, `_`, `.`.
    static func clusterName(_ text: String) -> Result<String, ValueProblem> {
        let valid =
            (1...64).contains(text.unicodeScalars.count)
            && text.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || "-_.".unicodeScalars.contains($0) }
        return valid
            ? .success(text)
            : .failure(
                ValueProblem("'\(text)' is not a valid cluster name", hint: "1 to 64 letters, digits, '-', '_' or '.'"))
    }

    /// A host name (RFC 1123 labels) or an IP address.
    static func host(_ text: String) -> Result<String, ValueProblem> {
        if IPAddress.isValid(text) || self.isHostName(text) { return .success(text) }
        return .failure(ValueProblem("'\(text)' is neither an IP address nor a host name"))
    }

    static func isHostName(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        // A name made only of digits and dots is a mistyped IPv4 address, not a host name.
        guard !labels.allSatisfy({ $0.allSatisfy(\.isNumber) }) else { return false }
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "-" }
        }
    }

    static func ipAddress(_ text: String) -> Result<String, ValueProblem> {
        IPAddress.isValid(text)
            ? .success(text) : .failure(ValueProblem("'\(text)' is not an IPv4 or IPv6 address"))
    }
}

/// IP address syntax, checked without the C library so the result is the same on every platform.
enum IPAddress {
    static func isValid(_ text: String) -> Bool { self.isIPv4(text) || self.isIPv6(text) }

    static func isIPv4(_ text: some StringProtocol) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCIIDigit) && Int(part)! <= 255
            }
    }

    static func isIPv6(_ text: String) -> Bool {
        guard text.contains(":") else { return false }
        let halves = text.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
        guard halves.count <= 2 else { return false }
        func groups(_ half: String) -> [Substring]? {
            half.isEmpty ? [] : half.split(separator: ":", omittingEmptySubsequences: false)
        }
        guard let head = groups(halves[0]) else { return false }
        let tail = halves.count == 2 ? groups(halves[1]) ?? [] : []
        var all = head + tail
        var count = 0
        // An embedded IPv4 address (::ffff:192.0.2.1) counts as two groups and must come last.
        if let last = all.last, last.contains(".") {
            guard self.isIPv4(last) else { return false }
            all.removeLast()
            count += 2
        }
        guard all.allSatisfy({ group in !group.isEmpty && group.count <= 4 && group.allSatisfy { $0.isASCII && $0.isHexDigit } })
        else { return false }
        count += all.count
        return halves.count == 2 ? count < 8 : count == 8
    }
}

/// Levenshtein distance, for "did you mean" hints.
enum EditDistance {
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased())
        let b = Array(b.lowercased())
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            previous = current
        }
        return previous[b.count]
    }

    /// The closest candidate, if it is close enough to be a likely typo.
    static func nearest(to word: String, among candidates: [String]) -> String? {
        let limit = max(2, word.count / 3)
        let scored = candidates.map { (candidate: $0, distance: self.distance(word, $0)) }
        guard let best = scored.min(by: { $0.distance < $1.distance }), best.distance <= limit else { return nil }
        return best.candidate
    }
}

extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension Character {
    var isASCIIDigit: Bool { self.isASCII && self.isNumber }
}

extension StringProtocol {
    func replacingUnderscores() -> String { String(self.filter { $0 != "_" }) }

    func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}

import Foundation

/// What `clevervm init` prints and `clevervm join` takes (Proxmox's "Join Information"): where a member's join
/// service listens, the SHA-256 fingerprint of that member's TLS certificate (the joiner pins it: no CA needed),
/// and a one-time secret that proves the joiner was given the token. Printed as `clevervm-join:` and the
/// base64url of a small JSON object, so it is one word to copy.
public struct JoinToken: Hashable, Sendable, Codable {
    public static let prefix = "clevervm-join:"
    public static let defaultPort = 7850

    /// host:port of the member's join service.
    public var address: String
    /// SHA-256 of the member's certificate (DER), lower-case hex without separators.
    public var fingerprint: String
    /// 32 random bytes, lower-case hex.
    public var secret: String

    public init(address: String, fingerprint: String, secret: String) {
        self.address = address
        self.fingerprint = fingerprint
        self.secret = secret
    }

    enum CodingKeys: String, CodingKey {
        case address = "a", fingerprint = "f", secret = "s"
    }

    public var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = (try? encoder.encode(self)) ?? Data()
        return Self.prefix + json.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Parses a token; the error says what is wrong with it (never echoing the secret).
    public static func parse(_ text: String) -> Result<JoinToken, SetupError> {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix(Self.prefix) else {
            return .failure(SetupError(.badToken, "the join token must start with '\(Self.prefix)' (copy the whole line `clevervm init` printed)"))
        }
        var base64 = String(trimmed.dropFirst(Self.prefix.count))
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        guard let data = Data(base64Encoded: base64), let token = try? JSONDecoder().decode(JoinToken.self, from: data) else {
            return .failure(SetupError(.badToken, "the join token is damaged (not the base64 of a token): copy it again"))
        }
        if let problem = token.problem { return .failure(SetupError(.badToken, "the join token is damaged: \(problem)")) }
        return .success(token)
    }

    var problem: String? {
        if HostPort.parse(self.address) == nil { return "address '\(self.address)' is not HOST:PORT" }
        if !Self.isHex(self.fingerprint, count: 64) { return "the certificate fingerprint is not 64 hex digits" }
        if !Self.isHex(self.secret, count: 64) { return "the secret is not 64 hex digits" }
        return nil
    }

    static func isHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// host:port, with IPv6 hosts in brackets.
public struct HostPort: Hashable, Sendable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public static func parse(_ text: String) -> HostPort? {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (1...65535).contains(number) else { return nil }
        return HostPort(host: String(host), port: number)
    }

    public var text: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
}

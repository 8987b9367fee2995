import Foundation

/// qemu-guest-agent inside the guest, reached over the VM's virtio-serial channel (`guest-agent: true`). The
/// channel's socket accepts a connection even when no agent runs in the guest, so every call is bounded by a
/// short timeout, and `guest-sync` first tells a live agent from a silent channel (and drops stale replies).
public struct GuestAgent: Sendable {
    public var socket: String
    public var timeout: Duration

    public init(socket: String, timeout: Duration = .seconds(3)) {
        self.socket = socket
        self.timeout = timeout
    }

    /// A connection whose agent answered `guest-sync`; nil when no agent answers.
    func connect() async -> QMPClient? {
        guard let client = try? await QMPClient.connect(self.socket, timeout: self.timeout, greeting: false) else { return nil }
        let token = Double(Int.random(in: 1...1_000_000_000))
        guard let reply = try? await client.execute("guest-sync", ["id": .number(token)], timeout: self.timeout),
            reply.number == token
        else {
            await client.close()
            return nil
        }
        return client
    }

    /// Asks the guest to power off cleanly (its agent answers nothing on success); false when no agent answered.
    public func shutdown() async -> Bool {
        guard let client = await self.connect() else { return false }
        defer { Task { await client.close() } }
        return (try? await client.post("guest-shutdown", ["mode": "powerdown"])) != nil
    }

    /// Freezes the guest's file systems (before its RAM is saved); the number frozen, nil without an agent.
    public func freeze() async -> Int? {
        guard let client = await self.connect() else { return nil }
        defer { Task { await client.close() } }
        return (try? await client.execute("guest-fsfreeze-freeze", timeout: .seconds(30)))?.number.map { Int($0) }
    }

    /// Whether the guest's file systems are frozen: "frozen" or "thawed" (`guest-fsfreeze-status`); nil without an
    /// agent.
    public func freezeStatus() async -> String? {
        guard let client = await self.connect() else { return nil }
        defer { Task { await client.close() } }
        return (try? await client.execute("guest-fsfreeze-status", timeout: self.timeout))?.string
    }

    /// Thaws what `freeze` froze (after a resume, or when saving failed); nil without an agent.
    @discardableResult
    public func thaw() async -> Int? {
        guard let client = await self.connect() else { return nil }
        defer { Task { await client.close() } }
        return (try? await client.execute("guest-fsfreeze-thaw", timeout: .seconds(30)))?.number.map { Int($0) }
    }
}

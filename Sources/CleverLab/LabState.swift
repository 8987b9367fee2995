import Foundation

/// What a running lab is made of, recorded in /run/clevervm-lab/NAME/state.json so that any process (a later
/// `lab down`, `lab power off`) can act on it.
public struct LabState: Hashable, Sendable, Codable {
    public var layout: LabLayout
    /// Holder ("init") process per host (and "gw"): it owns the host's mount namespace.
    public var holders: [String: Int32] = [:]
    /// Services per host, in start order (power on restarts them in this order): "corosync", "qdevice", and
    /// whatever `startService` added (the agent); on "gw": "qnetd".
    public var services: [String: [Service]] = [:]
    public var poweredOff: Set<String> = []
    /// Per host: peer addresses it cannot reach (partition).
    public var blocked: [String: Set<String>] = [:]
    /// Hosts whose ping to the gateway is cut.
    public var pingCut: Set<String> = []
    /// Whether the cluster uses a qdevice (qnetd on the gateway).
    public var usesQdevice: Bool = false

    public init(layout: LabLayout) { self.layout = layout }

    /// A daemon the lab runs on a host, with the command that starts it (inside the host).
    public struct Service: Hashable, Sendable, Codable {
        public var name: String
        public var command: [String]
        public var pid: Int32?
        public init(name: String, command: [String], pid: Int32? = nil) {
            self.name = name
            self.command = command
            self.pid = pid
        }
    }

    static func path(in directory: String) -> String { "\(directory)/state.json" }

    static func load(from directory: String) throws(LabError) -> LabState {
        let path = Self.path(in: directory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LabError("lab state \(path)", "no lab recorded here: is the lab up? (`clevervm lab up`)")
        }
        do {
            return try JSONDecoder().decode(LabState.self, from: data)
        } catch {
            throw LabError("lab state \(path)", "unreadable (\(error)); `clevervm lab down` cleans up by name")
        }
    }

    /// Written to a temp file and renamed, so a reader never sees half a state.
    func save() throws(LabError) {
        let directory = self.layout.stateDirectory
        let path = Self.path(in: directory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            let data = try encoder.encode(self)
            let temporary = "\(path).tmp-\(getpid())"
            try data.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else { throw LabError("lab state \(path)", String(cString: strerror(errno))) }
        } catch let error as LabError {
            throw error
        } catch {
            throw LabError("lab state \(path)", "cannot write: \(error)")
        }
    }
}

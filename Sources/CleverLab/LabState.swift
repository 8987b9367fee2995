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
        /// Started again when it dies by a crash signal, as systemd does for a unit with `Restart=on-abnormal`
        /// (Debian's corosync-qnetd.service): `command` runs under `LabState.restartingOnCrash`, and the lab signals
        /// the whole process group (the loop and the daemon) to stop or crash it.
        public var restartsOnCrash: Bool?
        public init(name: String, command: [String], pid: Int32? = nil, restartsOnCrash: Bool = false) {
            self.name = name
            self.command = restartsOnCrash ? LabState.restartingOnCrash(command) : command
            self.pid = pid
            self.restartsOnCrash = restartsOnCrash ? true : nil
        }

        /// Sends `signal` to the service (to its process group when it restarts on crash: the loop and the daemon).
        func signal(_ signal: Int32) {
            guard let pid, pid > 0 else { return }
            kill(self.restartsOnCrash == true ? -pid : pid, signal)
        }
    }

    /// `command` under a shell loop that starts it again when it dies by SIGSEGV, SIGBUS, SIGFPE or SIGABRT — the
    /// crashes systemd's `Restart=on-abnormal` covers that a lab test does not cause itself (the lab's own crash is a
    /// SIGKILL of the whole group, so it stays down). corosync-qnetd 3.0.3 segfaults now and then when a client
    /// disconnects while another connects; a real installation gets it back 100 ms later, so the lab must too.
    static func restartingOnCrash(_ command: [String]) -> [String] {
        let quoted = command.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let loop = """
            while :; do \(quoted); status=$?; case $status in 134|135|136|139) \
            echo "lab: \(command[0]) died by signal $((status - 128)); started again 100 ms later (systemd Restart=on-abnormal)" >&2; \
            sleep 0.1;; *) exit $status;; esac; done
            """
        return ["sh", "-c", loop]
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

import CleverModel
import CleverQEMU
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Opens a VM's serial console or VNC display for the browser, wherever the VM runs: the VM's root-only socket in
/// the run directory when it runs on this host, else the console relay (`ConsoleRelay`, TCP 7788, authenticated
/// with the cluster key and encrypted) of the host that runs it, on the asked channel. Where it runs comes from the
/// agent's snapshot at the moment of opening, not from the page's last frame, so a console follows a move.
public struct ConsoleDialer: Sendable {
    /// Where this host's VMs have their sockets (`VM.console`, `VM.vnc`).
    public var runDirectory: String
    /// The cluster key (every host's Corosync authkey, root-only), read at each opening.
    public var keyFile: String
    public var relayPort: Int
    /// The address of a host's relay: its first cluster address (tests put a loopback relay there).
    public var relayAddress: @Sendable (NodeConfig) -> String?

    public init(runDirectory: String = "/run/clevervm", keyFile: String = ConsoleRelay.defaultKeyFile, relayPort: Int = ConsoleRelay.defaultPort,
                relayAddress: @escaping @Sendable (NodeConfig) -> String? = { $0.addresses.first }) {
        self.runDirectory = runDirectory
        self.keyFile = keyFile
        self.relayPort = relayPort
        self.relayAddress = relayAddress
    }

    /// An open channel: a blocking file descriptor (the caller closes it) and the host whose VM it reaches.
    public struct Opened: Sendable {
        public var fd: Int32
        public var host: String
    }

    /// Whether `vm` is a VM of `config` that has the channel (a serial console always, VNC with `display: vnc`).
    static func check(_ vm: String, channel: ConsoleRelay.Channel, config: ClusterConfig) throws(WebError) {
        guard case .vm(let spec)? = config.resource(named: vm)?.kind else { throw WebError(.notFound, "no VM named '\(vm)'") }
        if channel == .vnc, spec.display != .vnc {
            throw WebError(.notFound, "\(vm) has no screen to show: give it `display: vnc` in the cluster config")
        }
    }

    private static let queue = DispatchQueue(label: "clevervm-web.console", attributes: .concurrent)

    public func open(_ vm: String, channel: ConsoleRelay.Channel, link: AgentLink) async throws -> Opened {
        let snapshot = try await link.snapshot()
        try Self.check(vm, channel: channel, config: snapshot.config)
        guard let host = snapshot.state.activeNodes(of: vm).first else { throw WebError(.conflict, "\(vm) runs nowhere: start it first") }
        let paths = VMAgent.Paths(vm: vm, runDirectory: self.runDirectory, stateDirectory: "")
        let local = channel == .vnc ? paths.vncSocket : paths.consoleSocket
        let address = snapshot.config.node(named: host).flatMap(self.relayAddress)
        let (keyFile, port) = (self.keyFile, self.relayPort)
        // Connecting and the relay's handshake block (up to its 10 s): off Swift's cooperative pool.
        let result: Result<Int32, WebError> = await withCheckedContinuation { continuation in
            Self.queue.async {
                if FileManager.default.fileExists(atPath: local), let fd = try? ConsoleSession.connect(local) {
                    return continuation.resume(returning: .success(fd))
                }
                guard let address else { return continuation.resume(returning: .failure(WebError(.badGateway, "host \(host) has no address"))) }
                do {
                    let key = try ConsoleRelay.key(file: keyFile)
                    continuation.resume(returning: .success(try ConsoleRelay.connect(address: address, port: port, channel: channel, vm: vm, key: key)))
                } catch {
                    continuation.resume(returning: .failure(WebError(.badGateway, "\(vm) on \(host): \(error)")))
                }
            }
        }
        return Opened(fd: try result.get(), host: host)
    }
}

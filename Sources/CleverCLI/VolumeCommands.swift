import ArgumentParser
import CleverVolume
import Foundation

/// `clevervm volume …`: this host's replicated volumes, through each volume process's control socket.
struct VolumeVerbs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume",
        abstract: "Replicated volumes on this host: status, online verify, split-brain recovery.",
        subcommands: [VolumeStatusVerb.self, Verify.self, Resolve.self, VolumeAccept.self, Import.self]
    )

    struct Options: ParsableArguments {
        @Argument(help: "The volume (its resource id).") var name: String
        @Option(name: .long, help: "Where the volume processes keep their control sockets.") var runDirectory = "/run/clevervm"
        @OptionGroup var output: OutputOptions

        var socket: String { "\(self.runDirectory)/\(self.name).ctl" }

        /// Sends one request to the local volume; the reply, or an error naming the volume and its socket.
        func send(_ request: VolumeControlRequest) throws -> VolumeControlReply {
            do {
                return try ControlServer.send(request, to: self.socket)
            } catch {
                throw CLIError("volume \(self.name) is not running on this host (no answer on \(self.socket)): \(error)")
            }
        }

        func call(_ request: VolumeControlRequest) throws {
            try Output.run(json: self.output.json) {
                let reply = try self.send(request)
                if self.output.json {
                    try Output.printJSON(reply)
                } else {
                    if request.command != .status { print(reply.message) }
                    if let status = reply.status { print(status.line) }
                }
                if !reply.ok { throw CLIError(reply.message) }
            }
        }
    }

    struct VolumeStatusVerb: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status", abstract: "Connection, roles, disk states, sync progress (DRBD's words).")
        @OptionGroup var options: Options
        func run() throws { try self.options.call(VolumeControlRequest(command: .status)) }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compare both sides' checksums; differing blocks are resynced.")
        @OptionGroup var options: Options
        func run() throws { try self.options.call(VolumeControlRequest(command: .verify)) }
    }

    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recover from a split brain by discarding one host's changes (see --dry-run first).",
            discussion: "Run it on either host of the volume: the peer takes the resolve over the replication link. "
                + "On a host without a replica, the agent forwards it to the host that runs the volume. "
                + "Waits until the resync has finished.")
        @OptionGroup var options: Options
        @OptionGroup var agent: AgentOptions
        @Option(name: .long, help: "The host whose changes since the split are thrown away.") var discard: String
        @Flag(name: .long, help: "Only show how many blocks each side changed.") var dryRun = false
        @Option(name: .long, help: "Seconds to wait for the resync to finish.") var timeout = 3600
        func run() throws {
            let json = self.options.output.json
            try Output.run(json: json) {
                // No replica here: through the agents, to the host that runs it.
                if !FileManager.default.fileExists(atPath: self.options.socket) {
                    return try VolumeResolveRemote.run(agent: self.agent, volume: self.options.name, discard: self.discard,
                                                       dryRun: self.dryRun, json: json)
                }
                let reply = try self.options.send(VolumeControlRequest(command: .resolve, discard: self.discard, dryRun: self.dryRun))
                if !reply.ok, !json { throw CLIError(reply.message) }
                if !reply.ok || self.dryRun {
                    if json { try Output.printJSON(ResolveResult(reply: reply, resyncFinished: nil, status: reply.status)) } else { print(reply.message) }
                    if !reply.ok { throw ExitCode(1) }
                    return
                }
                if !json {
                    print(reply.message)
                    if let status = reply.status { print(status.line) }
                }
                let result = try ControlServer.waitForSync(at: self.options.socket, timeout: .seconds(self.timeout)) {
                    if !json { print("resync: \($0)") }
                }
                // One JSON document: the volume's answer, whether the resync finished, and the last status seen.
                if json {
                    try Output.printJSON(ResolveResult(reply: reply, resyncFinished: result.finished, status: result.status))
                    if !result.finished { throw ExitCode(1) }
                    return
                }
                guard result.finished else { throw CLIError("volume \(self.options.name): the resync did not finish within \(self.timeout) s") }
                if !json { print("resync finished: both sides UpToDate") }
            }
        }
    }

    /// What `volume resolve --json` prints: one document.
    struct ResolveResult: Encodable {
        var reply: VolumeControlReply
        /// nil for a dry run or a refused resolve.
        var resyncFinished: Bool?
        var status: VolumeStatus?
    }
}

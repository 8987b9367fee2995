import ArgumentParser
import CleverSystem
import CleverVolume
import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// `clevervm-volume`: one replicated volume as its own process, and the client verbs for its control socket.
@main
struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clevervm-volume",
        abstract: "A CleverVM replicated volume: NBD server + replication link, one process per volume.",
        subcommands: [
            Serve.self, Status.self, Promote.self, Demote.self, Connect.self, Disconnect.self, Verify.self,
            Resolve.self, Outdate.self, MarkPeerOutdated.self, Events.self, Secret.self,
        ]
    )
}

struct ControlOptions: ParsableArguments {
    @Option(name: .long, help: "The volume's config file (its controlSocket is used).")
    var config: String?

    @Option(name: .long, help: "The volume's control socket (instead of --config).")
    var socket: String?

    @Flag(name: .long, help: "Print the reply as JSON.")
    var json = false

    func socketPath() throws -> String {
        if let socket { return socket }
        guard let config else { throw ValidationError("give --config FILE or --socket PATH") }
        do {
            return try VolumeConfig.load(path: config).controlSocket
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run(_ request: VolumeControlRequest) throws {
        let reply: VolumeControlReply
        do {
            reply = try ControlServer.send(request, to: try self.socketPath())
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("clevervm-volume: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if self.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(reply), as: UTF8.self))
        } else {
            if request.command != .status || !reply.ok { print(reply.message) }
            if let status = reply.status { print(status.line) }
        }
        if !reply.ok { throw ExitCode(1) }
    }
}

extension VolumeCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the volume (NBD server, replication, control).")

        @Option(name: .long, help: "JSON config file.")
        var config: String

        func run() async throws {
            let config: VolumeConfig
            do {
                config = try VolumeConfig.load(path: self.config)
            } catch {
                throw ValidationError("\(error)")
            }
            LoggingSystem.bootstrap { JournalLogHandler(label: $0) }
            var logger = Logger(label: "clevervm.volume")
            logger[metadataKey: "node"] = "\(config.node)"
            logger[metadataKey: "volume"] = "\(config.name)"
            signal(SIGPIPE, SIG_IGN)
            let volume: Volume
            do {
                volume = try Volume(config: config, logger: logger)
                try ControlServer(volume: volume, path: config.controlSocket).start()
                try NBDServer(volume: volume, path: config.nbdSocket).start()
                try volume.startReplication()
            } catch {
                logger.critical("cannot start: \(error)")
                throw ExitCode(1)
            }
            logger.notice("serving: nbd \(config.nbdSocket), control \(config.controlSocket), protocol \(config.protocolMode.rawValue)")
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: VolumeService(volume: volume, logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the volume's state in DRBD's vocabulary.")
        @OptionGroup var options: ControlOptions
        func run() throws { try self.options.run(VolumeControlRequest(command: .status)) }
    }

    struct Promote: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Become Primary (export over NBD).")
        @OptionGroup var options: ControlOptions
        @Flag(name: .long, help: "The peer is proven fenced or outdated.") var peerOutdated = false
        @Flag(name: .long, help: "Allow two primaries (live migration only).") var allowTwoPrimaries = false
        @Flag(name: .long, help: "Promote Inconsistent data (first-time setup).") var force = false
        func run() throws {
            try self.options.run(VolumeControlRequest(
                command: .promote, peerOutdated: self.peerOutdated, allowTwoPrimaries: self.allowTwoPrimaries,
                force: self.force))
        }
    }

    struct Demote: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Become Secondary (stop exporting).")
        @OptionGroup var options: ControlOptions
        @Flag(name: .long, help: "Disconnect NBD clients.") var force = false
        func run() throws { try self.options.run(VolumeControlRequest(command: .demote, force: self.force)) }
    }

    struct Connect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "(Re)connect to the peer.")
        @OptionGroup var options: ControlOptions
        @Flag(name: .long, help: "On a split brain, this side's changes are discarded.") var discardMyData = false
        func run() throws { try self.options.run(VolumeControlRequest(command: .connect, discardMyData: self.discardMyData)) }
    }

    struct Disconnect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Drop the peer connection and stay StandAlone.")
        @OptionGroup var options: ControlOptions
        func run() throws { try self.options.run(VolumeControlRequest(command: .disconnect)) }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Online verify against the peer.")
        @OptionGroup var options: ControlOptions
        func run() throws { try self.options.run(VolumeControlRequest(command: .verify)) }
    }

    struct Outdate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark this Secondary's data Outdated (fencing).")
        @OptionGroup var options: ControlOptions
        func run() throws { try self.options.run(VolumeControlRequest(command: .outdate)) }
    }

    struct MarkPeerOutdated: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The cluster recorded the peer's disk as Outdated: writes held by fencing go on alone.")
        @OptionGroup var options: ControlOptions
        func run() throws { try self.options.run(VolumeControlRequest(command: .markPeerOutdated)) }
    }

    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream state changes (one JSON line each, or the status line without --json).")
        @OptionGroup var options: ControlOptions
        func run() throws {
            let json = self.options.json
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            do {
                try ControlServer.streamEvents(from: try self.options.socketPath()) { event in
                    if json, let line = try? encoder.encode(event) {
                        print(String(decoding: line, as: UTF8.self))
                    } else {
                        print("\(event.event): \(event.status.line)")
                    }
                    fflush(nil)
                    return true
                }
            } catch let error as ValidationError {
                throw error
            } catch {
                FileHandle.standardError.write(Data("clevervm-volume: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
    }

    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resolve a split brain by discarding one host's changes (on either host; waits for the resync).")
        @OptionGroup var options: ControlOptions
        @Option(name: .long, help: "The host whose changes are dropped.") var discard: String
        @Flag(name: .long, help: "Only count the changed blocks on each side.") var dryRun = false
        @Option(name: .long, help: "Seconds to wait for the resync to finish.") var timeout = 3600
        func run() throws {
            try self.options.run(VolumeControlRequest(command: .resolve, discard: self.discard, dryRun: self.dryRun))
            if self.dryRun { return }
            let result: (finished: Bool, status: VolumeStatus?)
            do {
                result = try ControlServer.waitForSync(at: try self.options.socketPath(), timeout: .seconds(self.timeout)) {
                    if !self.options.json { print("resync: \($0)") }
                }
            } catch {
                FileHandle.standardError.write(Data("clevervm-volume: \(error)\n".utf8))
                throw ExitCode(2)
            }
            guard result.finished else {
                FileHandle.standardError.write(Data("clevervm-volume: the resync did not finish within \(self.timeout) s\n".utf8))
                throw ExitCode(1)
            }
            if !self.options.json { print("resync finished: both sides UpToDate") }
        }
    }

    struct Secret: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new replication secret: 32 random bytes, mode 0600 (copy it to the peer as is).")
        @Argument(help: "The file to create (never overwritten).") var path: String
        @Flag(name: .long, help: "Print the result as JSON.") var json = false
        func run() throws {
            do {
                try SecretFile.generate(path: self.path)
            } catch {
                FileHandle.standardError.write(Data("clevervm-volume: \(error)\n".utf8))
                throw ExitCode(1)
            }
            print(self.json ? "{\"created\":\"\(self.path)\",\"bytes\":\(SecretFile.generatedLength)}" : "wrote \(SecretFile.generatedLength) random bytes to \(self.path) (mode 0600)")
        }
    }
}

/// A served volume as a `Service`: it runs until SIGTERM or SIGINT, then stops gracefully (closes the NBD
/// clients, tells the peer, saves the bitmap), as the daemon always has.
struct VolumeService: Service {
    let volume: Volume
    let logger: Logger

    func run() async throws {
        // Returns once the group shuts down gracefully (a signal); throws only when the task is cancelled.
        try? await gracefulShutdown()
        self.logger.notice("stopping")
        self.volume.shutdown()
    }
}

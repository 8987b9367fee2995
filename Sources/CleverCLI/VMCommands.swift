import ArgumentParser
import CleverCIB
import CleverConfig
import CleverControl
import CleverModel
import CleverQEMU
import CleverSystem
import CleverVolume
import Foundation

// MARK: - volume import

extension VolumeVerbs {
    /// `clevervm volume import VOLUME IMAGE`: an existing disk image into the volume, on the host where it is primary.
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a disk image (raw, qcow2, vmdk…) into a volume on its primary host; zeros are not written.")

        @Argument(help: "The volume (its resource id); primary on this host, no VM using it.") var volume: String
        @Argument(help: "The image file or block device.") var image: String
        @Option(name: .long, help: "Where the volume processes keep their sockets.") var runDirectory = "/run/clevervm"
        @Flag(name: .long, help: "Replace a volume that already holds data.") var overwrite = false
        @OptionGroup var output: OutputOptions

        struct Report: Encodable {
            var volume: String
            var image: String
            var format: String
            var imageBytes: UInt64
            var volumeBytes: UInt64
            var zerosSkipped: Bool
            var elapsedMs: Int
        }

        func run() throws {
            try Output.run(json: self.output.json) {
                let began = Date()
                guard FileManager.default.isReadableFile(atPath: self.image) else { throw CLIError("cannot read image \(self.image)") }
                let control = "\(self.runDirectory)/\(self.volume).ctl"
                let reply: VolumeControlReply
                do {
                    reply = try ControlServer.send(VolumeControlRequest(command: .status), to: control)
                } catch {
                    throw CLIError("volume \(self.volume) is not running on this host (no answer on \(control)): \(error)")
                }
                guard let status = reply.status else { throw CLIError("volume \(self.volume) gave no status: \(reply.message)") }
                guard status.role == "Primary" else {
                    let primary = status.peerRole == "Primary" ? status.peer.map { "its Primary is \($0)" } : nil
                    throw CLIError("volume \(self.volume) is \(status.role) here; import on the host where it is Primary (\(primary ?? "no host is Primary now: start its VM's volumes first"))")
                }
                guard status.nbdClients == 0 else {
                    throw CLIError("volume \(self.volume) is in use (\(status.nbdClients) NBD clients, e.g. its VM): stop the VM first")
                }
                let uri = VMAgent.volumeURI(socket: "\(self.runDirectory)/\(self.volume).nbd", volume: self.volume)
                let infoRun = Subprocess.run(["qemu-img", "info", "--output=json", self.image], timeout: .seconds(60))
                guard infoRun.succeeded else { throw CLIError("qemu-img info \(self.image): \(infoRun.output)") }
                let info = try DiskImport.ImageInfo.parse(json: infoRun.output, image: self.image)
                let sizeRun = Subprocess.run(["nbdinfo", "--size", uri], timeout: .seconds(30))
                guard sizeRun.succeeded, let volumeSize = UInt64(sizeRun.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                    throw CLIError("volume \(self.volume): nbdinfo --size \(uri): \(sizeRun.output)")
                }
                let isZero = Subprocess.run(DiskImport.zeroCheckCommand(uri: uri, size: volumeSize), timeout: .seconds(3600)).status == 0
                let command = try DiskImport.convertCommand(
                    image: self.image, info: info, volume: self.volume, volumeSize: volumeSize, uri: uri,
                    volumeIsZero: isZero, overwrite: self.overwrite)
                // qemu-img prints its own progress; with --json it goes to stderr so stdout stays one document.
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = command
                if self.output.json { process.standardOutput = FileHandle.standardError }
                try process.run()
                process.waitUntilExit()
                guard process.terminationStatus == 0 else {
                    throw CLIError("qemu-img convert \(self.image) into \(self.volume) failed (exit \(process.terminationStatus))")
                }
                let report = Report(volume: self.volume, image: self.image, format: info.format, imageBytes: info.virtualSize,
                                    volumeBytes: volumeSize, zerosSkipped: isZero, elapsedMs: Int(Date().timeIntervalSince(began) * 1000))
                if self.output.json {
                    try Output.printJSON(report)
                } else {
                    print("\(self.image) (\(info.format), \(info.virtualSize) bytes) imported into \(self.volume)"
                        + (isZero ? "; zero blocks skipped" : "; zeros written over old data"))
                }
            }
        }
    }
}

// MARK: - config import-libvirt

extension Config {
    /// `clevervm config import-libvirt DOMAIN.xml`: a libvirt domain as a `vm` resource with its volumes.
    struct ImportLibvirt: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-libvirt",
            abstract: "Translate a libvirt domain (virsh dumpxml) into a vm with its volumes; report what is not carried over.")

        @Argument(help: "The domain XML, as `virsh dumpxml DOMAIN` prints it.") var file: String
        @Option(name: .long, help: "Add the VM to this cluster config and print the whole config, checked.") var config: String?
        @Option(name: .long, help: "A floating address ADDRESS/PREFIX that follows the VM.") var address: String?
        @Option(name: .long, help: "A libvirt network's bridge on the hosts, NETWORK=BRIDGE (repeatable).") var network: [String] = []
        @Option(name: .long, help: "Directory of the volumes' backing files on each host.") var backingDirectory = "/var/lib/clevervm/volumes"
        @Option(name: .long, help: "Replication port of the first volume.") var firstPort = 7800
        @OptionGroup var output: OutputOptions

        struct Report: Encodable {
            var resources: [ResourceConfig]
            var config: String
            var imports: [String]
            var notImported: [String]
        }

        func run() throws {
            try Output.run(json: self.output.json) {
                var options = LibvirtImport.Options(sourceSize: { ImportLibvirt.sourceSize($0) }, backingDirectory: self.backingDirectory, firstPort: self.firstPort)
                for pair in self.network {
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw CLIError("--network \(pair): write NETWORK=BRIDGE") }
                    options.networkBridges[parts[0]] = parts[1]
                }
                if let address = self.address {
                    let parts = address.split(separator: "/").map(String.init)
                    guard parts.count == 2, let prefix = Int(parts[1]) else { throw CLIError("--address \(address): write ADDRESS/PREFIX") }
                    options.address = (parts[0], prefix)
                }
                let result = try LibvirtImport.load(path: self.file, options: options)
                var cluster: ClusterConfig
                if let path = self.config {
                    cluster = try ConfigFile.load(path: path)
                    for resource in result.resources where cluster.resource(named: resource.id) != nil {
                        throw CLIError("\(path) already has a resource \(resource.id)")
                    }
                    // Ports after the highest one the config already uses.
                    let used = cluster.resources.compactMap { resource -> Int? in
                        if case .volume(let spec) = resource.kind { return spec.port }
                        return nil
                    }
                    var next = max(self.firstPort, (used.max() ?? 0) + 1)
                    for resource in result.resources {
                        var resource = resource
                        if case .volume(var spec) = resource.kind {
                            spec.port = next
                            next += 1
                            resource.kind = .volume(spec)
                        }
                        cluster.resources.append(resource)
                    }
                    // Checked as `config check` would: the printed config validates.
                    _ = try ConfigFile.parse(ConfigFile.render(cluster), file: path)
                } else {
                    cluster = ClusterConfig(name: "imported", resources: result.resources)
                }
                let rendered = ConfigFile.render(cluster)
                let text = self.config == nil ? Self.resourcesSection(rendered) : rendered
                let imports = result.disks.map { "clevervm volume import \($0.volume) \($0.source)" }
                if self.output.json {
                    try Output.printJSON(Report(resources: result.resources, config: text, imports: imports,
                                                notImported: result.unsupported.map(\.description)))
                    return
                }
                print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
                for element in result.unsupported { Output.warn("not carried over: \(element)") }
                if !imports.isEmpty {
                    print("# Then, on the host where each volume is primary (the VM stopped):")
                    for line in imports { print("#   \(line)") }
                }
            }
        }

        /// Only the `resources:` part of a rendered config (the cluster it goes into is the operator's).
        static func resourcesSection(_ rendered: String) -> String {
            guard let start = rendered.range(of: "\nresources:\n") else { return rendered }
            var section = String(rendered[rendered.index(after: start.lowerBound)...])
            if let end = section.range(of: "\n(groups|constraints):", options: .regularExpression) {
                section = String(section[..<end.lowerBound]) + "\n"
            }
            return section
        }

        /// A file's virtual size (`qemu-img info`), or a block device's size; nil when it cannot be read here.
        static func sourceSize(_ path: String) -> UInt64? {
            let info = Subprocess.run(["qemu-img", "info", "--output=json", path], timeout: .seconds(30))
            guard info.succeeded else { return nil }
            return try? DiskImport.ImageInfo.parse(json: info.output, image: path).virtualSize
        }
    }
}

// MARK: - console and screenshot

/// `clevervm console VM`: the VM's serial console, interactive, from any host: the local socket where the VM runs
/// here, else through the console relay of the host that runs it; after a live move it reconnects there.
struct Console: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attach to a VM's serial console from any host (detach with Ctrl-]).",
        discussion: "Here: the root-only socket RUN/VM.console. Elsewhere: the console relay (TCP 7788) of the host that runs the VM, authenticated with the cluster's Corosync authkey.")

    @Argument(help: "The VM (its resource id).") var vm: String
    @Option(name: .long, help: "The agent's run directory.") var runDirectory = "/run/clevervm"
    @Option(name: .long, help: "The cluster key file (every host's).") var keyFile = ConsoleRelay.defaultKeyFile
    @Option(name: .long, help: "Seconds to wait for the VM to run again after its console closed (a move); 0: never.")
    var reconnect = 30
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions

    /// A console connection to the VM wherever it runs, and where that is.
    func open() throws -> (fd: Int32, host: String) {
        let socket = VMAgent.Paths(vm: self.vm, runDirectory: self.runDirectory, stateDirectory: "").consoleSocket
        if FileManager.default.fileExists(atPath: socket), let fd = try? ConsoleSession.connect(socket) { return (fd, "this host") }
        guard case .snapshot(let config, let state, _) = try self.agent.call(.snapshot) else { throw CLIError("unexpected answer from the agent") }
        guard config.resource(named: self.vm).map({ $0.kind.typeName == "vm" }) == true else { throw CLIError("\(self.vm) is not a vm resource") }
        guard let node = state.activeNodes(of: self.vm).first else {
            throw CLIError("\(self.vm) runs nowhere")
        }
        guard let address = config.node(named: node)?.addresses.first else { throw CLIError("node \(node) has no address") }
        let fd = try ConsoleRelay.connect(address: address, port: ConsoleRelay.defaultPort, vm: self.vm, key: try ConsoleRelay.key(file: self.keyFile))
        return (fd, node)
    }

    func run() throws {
        try Output.run(json: self.output.json) {
            let interactive = isatty(STDIN_FILENO) == 1
            var (fd, host) = try self.open()
            while true {
                if interactive { FileHandle.standardError.write(Data("connected to \(self.vm)'s console on \(host); Ctrl-] detaches\r\n".utf8)) }
                let ended = try ConsoleSession.attach(fd: fd, name: "\(self.vm) on \(host)", input: STDIN_FILENO, output: STDOUT_FILENO,
                                                      rawTerminal: interactive)
                close(fd)
                if ended == .detached || self.reconnect == 0 {
                    if interactive { FileHandle.standardError.write(Data("\r\n\(ended == .detached ? "detached" : "console closed")\r\n".utf8)) }
                    if self.output.json { try Output.printJSON(["vm": self.vm, "ended": ended == .detached ? "detached" : "closed"]) }
                    return
                }
                // The console closed: the VM stopped or moved. Follow it for a while.
                let deadline = Date().addingTimeInterval(Double(self.reconnect))
                var next: (fd: Int32, host: String)?
                while next == nil, Date() < deadline {
                    next = try? self.open()
                    if next == nil { Thread.sleep(forTimeInterval: 0.5) }
                }
                guard let found = next else { throw CLIError("\(self.vm)'s console closed and the VM did not run again within \(self.reconnect) s") }
                (fd, host) = found
            }
        }
    }
}

/// `clevervm screenshot VM FILE.png`: the VM's screen (QMP screendump) as a PNG.
struct Screenshot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Save a VM's screen as a PNG (the VM must run on this host).")

    @Argument(help: "The VM (its resource id).") var vm: String
    @Argument(help: "Where to write the PNG.") var file: String
    @Option(name: .long, help: "The agent's run directory.") var runDirectory = "/run/clevervm"
    @OptionGroup var output: OutputOptions

    func run() async throws {
        do {
            let bytes = try await VMScreen.screenshot(vm: self.vm, runDirectory: self.runDirectory, to: self.file)
            if self.output.json {
                try Output.printJSON(["vm": self.vm, "file": self.file, "bytes": "\(bytes)"])
            } else {
                print("\(self.file): \(bytes) bytes")
            }
        } catch {
            Output.printError(String(describing: error), json: self.output.json)
            throw ExitCode(1)
        }
    }
}

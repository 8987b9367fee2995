import ArgumentParser
import CleverConfig
import CleverControl
import CleverLab
import CleverModel
import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `clevervm lab …`: a real cluster on this machine (network namespaces, a bridge with no uplink,
/// real Corosync and qnetd, a CleverVM agent per host). Needs root.
struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Run a real multi-host cluster on this machine, and break it on purpose.",
        subcommands: [Up.self, Down.self, Exec.self, Power.self, Partition.self, Heal.self, CutPing.self, RestorePing.self, CutReplication.self,
                      RestoreReplication.self, Crash.self, Restart.self, LabStatus.self, WatchdogWatch.self, Campaign.self]
    )

    struct Options: ParsableArguments {
        @Option(name: .long, help: "Lab name: prefixes namespaces (NAME-alpha), the bridge (NAMEbr0) and /run/clevervm-lab/NAME.")
        var name: String = LabLayout.defaultName

        func lab() throws -> Lab {
            do { return try Lab(name: self.name) } catch { throw CLIError(error.description) }
        }
    }

    /// After a change to the lab, `--json` prints the lab's state (hosts, power, services, quorum, partitions).
    static func report(_ lab: Lab, _ output: OutputOptions) throws {
        guard output.json else { return }
        let status = try LabCommand.lab { () throws(LabError) in try lab.status() }
        try Output.printJSON(status)
    }

    static func lab<T>(_ body: () throws(LabError) -> T) throws -> T {
        do { return try body() } catch { throw CLIError(error.description) }
    }

    /// This executable's absolute path, so lab hosts run the same build.
    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// A helper script the lab runs (e.g. build-test-guest.sh): from the checkout this binary was built in
    /// (…/.build/…/clevervm → …/scripts/), else from the installed package (/usr/share/clevervm/scripts).
    static func helperScript(_ name: String) throws -> String {
        var candidates: [String] = []
        let executable = LabCommand.executablePath
        if let checkout = executable.components(separatedBy: "/.build/").first, checkout != executable {
            candidates.append("\(checkout)/scripts/\(name)")
        }
        let binDirectory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        candidates.append(binDirectory.deletingLastPathComponent().appendingPathComponent("share/clevervm/scripts/\(name)").path)
        candidates.append("/usr/share/clevervm/scripts/\(name)")
        if let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) }) { return found }
        throw CLIError("cannot find the lab's helper script \(name); looked in: \(candidates.joined(separator: ", "))")
    }

    /// The test guest prints this line on its console once its disk writer and echo service are up
    /// (scripts/test-guest/init).
    static let guestReadyLine = "GUEST UP"

    /// Waits until every running VM's guest has printed `guestReadyLine` on its console, or the deadline.
    /// Returns the guests still booting then: (vm, host, console log).
    static func waitForGuests(
        report: StatusReport, config: ClusterConfig, layout: LabLayout, until deadline: ContinuousClock.Instant,
        clock: ContinuousClock, progress: (String) -> Void
    ) -> [(String, String, String)] {
        var waiting: [(String, String, String)] = []
        for resource in config.resources {
            guard case .vm = resource.kind, let status = report.resources.first(where: { $0.id == resource.id }) else { continue }
            for host in status.roles.keys.sorted() {
                guard let entry = layout.hosts.first(where: { $0.name == host }) else { continue }
                waiting.append((resource.id, host, "\(layout.directory(of: entry))/run/clevervm/\(resource.id).console.log"))
            }
        }
        if waiting.isEmpty { return [] }
        progress("waiting for the guests to boot: \(waiting.map { "\($0.0) on \($0.1)" }.joined(separator: ", "))")
        while true {
            waiting.removeAll { guest in
                guard let data = FileManager.default.contents(atPath: guest.2) else { return false }
                let booted = String(decoding: data, as: UTF8.self).contains(LabCommand.guestReadyLine)
                if booted { progress("guest of \(guest.0) on \(guest.1) is up") }
                return booted
            }
            if waiting.isEmpty || clock.now >= deadline { return waiting }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build the lab, start Corosync, qnetd and a CleverVM agent on every host, and show the cluster.")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Option(name: .long, help: "The cluster config (its nodes become the lab's hosts). Default: examples/lab.yaml.")
        var config = "examples/lab.yaml"
        @Option(name: .long, help: "Seconds to wait for quorum and for the agents.") var timeout = 90
        @Flag(name: .long, help: "Only Corosync and qnetd: no CleverVM agents.") var noAgents = false
        @Option(name: .long, help: "Seconds to wait, once the cluster has settled, for its VMs' guests to boot.") var guestTimeout = 60

        /// The config file: as given, else (a relative path such as examples/lab-vm.yaml, outside a checkout) the
        /// installed package's copy under /usr/share/clevervm.
        var configPath: String {
            if self.config.hasPrefix("/") || FileManager.default.fileExists(atPath: self.config) { return self.config }
            let installed = "/usr/share/clevervm/\(self.config)"
            return FileManager.default.fileExists(atPath: installed) ? installed : self.config
        }
        @Flag(name: .long, help: "No web console on the hosts.") var noConsole = false

        func run() throws {
            let lab = try self.options.lab()
            let config: ClusterConfig
            let path = self.configPath
            do { config = try ConfigFile.load(path: path) } catch { throw CLIError("\(path) is not valid:\n\(error)") }
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let clock = ContinuousClock()
            let start = clock.now
            func progress(_ line: String) {
                let elapsed = Double((clock.now - start).components.attoseconds) / 1e18 + Double((clock.now - start).components.seconds)
                // Under --json the progress goes to stderr, the settled cluster's status to stdout.
                (self.output.json ? FileHandle.standardError : FileHandle.standardOutput)
                    .write(Data((String(format: "[%6.2fs] ", elapsed) + line + "\n").utf8))
            }
            let layout = try LabCommand.lab { () throws(LabError) in try LabLayout(name: lab.name, config: config) }
            try LabCommand.lab { () throws(LabError) in
                try lab.up(layout: layout, config: config, timeout: .seconds(self.timeout), progress: progress)
            }
            if self.noAgents {
                try LabCommand.report(lab, self.output)
                return
            }
            // One shared secret per secret file the volumes name, the same on every host.
            var secrets: [String: String] = [:]
            for resource in config.resources {
                guard case .volume(let spec) = resource.kind, let file = spec.secretFile, file.hasPrefix("/etc/clevervm/") else { continue }
                if secrets[file] == nil {
                    var bytes = [UInt8](repeating: 0, count: 32)
                    for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
                    secrets[file] = bytes.map { String(format: "%02x", $0) }.joined()
                }
            }
            if config.resources.contains(where: { if case .vm = $0.kind { true } else { false } }) {
                progress("test guest (kernel + busybox initramfs) in /var/cache/clevervm-guest")
                let script = try LabCommand.helperScript("build-test-guest.sh")
                let built = Subprocess.run(["bash", script, "/var/cache/clevervm-guest"], timeout: .seconds(600))
                guard built.succeeded else { throw CLIError("building the test guest failed:\n\(built.output)") }
            }
            for host in layout.hosts {
                for (file, secret) in secrets {
                    let path = "\(layout.directory(of: host))/etc-clevervm/\(file.dropFirst("/etc/clevervm/".count))"
                    _ = FileManager.default.createFile(atPath: path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
                }
            }
            for host in layout.hosts {
                let path = "\(layout.directory(of: host))/etc-clevervm/cluster.yaml"
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                progress("clevervm agent on \(host.name)")
                try LabCommand.lab { () throws(LabError) in
                    _ = try lab.startService(host: host.name, name: "clevervm", command: [LabCommand.executablePath, "agent"])
                }
            }
            progress("waiting for the agents to form the cluster and settle")
            let deadline = clock.now + .seconds(self.timeout)
            var last = ""
            while clock.now < deadline {
                let result = try LabCommand.lab { () throws(LabError) in
                    try lab.run(host: layout.hosts[0].name, [LabCommand.executablePath, "status", "--json"], timeout: .seconds(10))
                }
                if result.succeeded, let report = try? JSONDecoder().decode(StatusReport.self, from: Data(result.output.utf8)) {
                    let settled = report.quorate && report.nodes.allSatisfy(\.online) && report.pendingActions.isEmpty
                        && report.resources.allSatisfy { $0.target.isEmpty }
                    if settled {
                        progress("cluster settled")
                        let booting = LabCommand.waitForGuests(
                            report: report, config: config, layout: layout, until: clock.now + .seconds(self.guestTimeout), clock: clock,
                            progress: progress)
                        for (vm, host, console) in booting {
                            progress("the guest of \(vm) on \(host) is still booting (its console: \(console))")
                        }
                        let console = self.noConsole ? nil : try LabConsole.start(lab, layout: layout, progress: progress)
                        if self.output.json {
                            try Output.printJSON(report)
                        } else {
                            print("")
                            print(report.render())
                            if let console { print(LabConsole.render(console, layout: layout)) }
                        }
                        return
                    }
                    last = report.render()
                } else {
                    last = result.output
                }
                Thread.sleep(forTimeInterval: 0.5)
            }
            throw CLIError("the cluster did not settle within \(self.timeout) s; last status:\n\(last)\nlogs: \(lab.logDirectory(of: layout.hosts[0].name))")
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Tear the lab down (idempotent; also cleans up after a crash).")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions

        func run() throws {
            var removed: [String] = []
            let problems = try self.options.lab().down { line in
                if self.output.json { removed.append(line) } else { print(line) }
            }
            for problem in problems { Output.warn(problem) }
            if self.output.json { try Output.printJSON(["removed": removed, "problems": problems]) }
            if !problems.isEmpty { throw ExitCode(1) }
        }
    }

    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a command inside a host (gw: the gateway), e.g. `lab exec alpha -- clevervm status`.")
        @OptionGroup var options: Options
        @Argument(help: "Host name, or gw.") var host: String
        @Argument(parsing: .captureForPassthrough, help: "The command, after --.") var command: [String] = []

        func run() throws {
            var command = self.command.first == "--" ? Array(self.command.dropFirst()) : self.command
            if command.first == "clevervm" { command[0] = LabCommand.executablePath }
            guard !command.isEmpty else { throw ValidationError("give a command after --") }
            let lab = try self.options.lab()
            let argv = try LabCommand.lab { () throws(LabError) in try lab.commandLine(host: self.host, command) }
            let cArguments = argv.map { strdup($0) } + [nil]
            execvp(argv[0], cArguments)
            throw CLIError("cannot run \(argv[0]): \(String(cString: strerror(errno)))")
        }
    }

    struct Power: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "power off HOST: kill all its processes, link down (a pulled plug). power on HOST: boot it again.")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Argument(help: "on or off.") var state: String
        @Argument(help: "The host.") var host: String

        func validate() throws {
            guard ["on", "off"].contains(self.state) else { throw ValidationError("power takes on or off, not '\(self.state)'") }
        }

        func run() throws {
            let lab = try self.options.lab()
            if self.state == "off" {
                try LabCommand.lab { () throws(LabError) in try lab.powerOff(self.host) }
            } else {
                try LabCommand.lab { () throws(LabError) in
                    try lab.powerOn(self.host) { line in self.output.json ? Output.warn(line) : print(line) }
                }
            }
            try LabCommand.report(lab, self.output)
        }
    }

    struct Partition: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cut traffic between HOSTS and the --from hosts (default: all other hosts).")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Argument(help: "One side.") var hosts: [String]
        @Option(parsing: .upToNextOption, help: "The other side (gw allowed).") var from: [String] = []

        func run() throws {
            let lab = try self.options.lab()
            try LabCommand.lab { () throws(LabError) in try lab.partition(self.hosts, from: self.from.isEmpty ? nil : self.from) }
            try LabCommand.report(lab, self.output)
        }
    }

    struct Heal: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every partition.")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        func run() throws {
            let lab = try self.options.lab()
            try LabCommand.lab { () throws(LabError) in try lab.heal() }
            try LabCommand.report(lab, self.output)
        }
    }

    struct CutPing: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cut-ping", abstract: "HOST can no longer ping its gateway (the tie-breaker stays reachable).")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Argument(help: "The host.") var host: String
        func run() throws {
            let lab = try self.options.lab()
            try LabCommand.lab { () throws(LabError) in try lab.cutPing(self.host) }
            try LabCommand.report(lab, self.output)
        }
    }

    struct CutReplication: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cut-replication", abstract: "HOST's replication links break; Corosync, qnetd and ping go on.")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Argument(help: "The host.") var host: String
        func run() throws {
            let lab = try self.options.lab()
            try LabCommand.lab { () throws(LabError) in try lab.cutReplication(self.host) }
            try LabCommand.report(lab, self.output)
        }
    }

    struct RestoreReplication: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "restore-replication", abstract: "Undo cut-replication.")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Argument(help: "The host.") var host: String
        func run() throws {
            let lab = try self.options.lab()
            try LabCommand.lab { () throws(LabError) in try lab.restoreReplication(self.host) }
            try LabCommand.report(lab, self.output)
        }
    }

    struct RestorePing: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "restore-ping", abstract: "Undo cut-ping.")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Argument(help: "The host.") var host: String
        func run() throws {
            let lab = try self.options.lab()
            try LabCommand.lab { () throws(LabError) in try lab.restorePing(self.host) }
            try LabCommand.report(lab, self.output)
        }
    }

    struct Crash: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Kill one service of HOST (SIGKILL; nothing restarts it), e.g. `lab crash alpha clevervm`: the agent dies, the VM and Corosync stay.")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Argument(help: "The host.") var host: String
        @Argument(help: "The service: corosync, corosync-qdevice, clevervm, ... (see `lab status`).") var service: String
        func run() throws {
            let lab = try self.options.lab()
            try LabCommand.lab { () throws(LabError) in try lab.crashService(host: self.host, name: self.service) }
            try LabCommand.report(lab, self.output)
        }
    }

    struct Restart: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start one service of HOST again (stopping it first if it runs).",
            discussion: """
                With `-- COMMAND...` the service runs that command from now on, e.g. another release's agent for a rolling \
                upgrade: `lab restart beta clevervm -- /opt/old/clevervm agent`.
                """)
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Argument(help: "The host.") var host: String
        @Argument(help: "The service (see `lab status`).") var service: String
        @Argument(parsing: .postTerminator, help: "The service's new command line (absolute program path).") var command: [String] = []
        func run() throws {
            let lab = try self.options.lab()
            try LabCommand.lab { () throws(LabError) in
                if self.command.isEmpty {
                    try lab.restartService(host: self.host, name: self.service)
                } else {
                    try lab.stopService(host: self.host, name: self.service)
                    _ = try lab.startService(host: self.host, name: self.service, command: self.command)
                }
            }
            try LabCommand.report(lab, self.output)
        }
    }

    struct LabStatus: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Hosts, power, services, quorum, partitions.")
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        func run() throws {
            let lab = try self.options.lab()
            let status = try LabCommand.lab { () throws(LabError) in try lab.status() }
            if self.output.json { try Output.printJSON(status) } else { print(status.description) }
        }
    }
}

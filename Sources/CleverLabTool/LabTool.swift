// clevervm-lab: drives CleverLab until `clevervm lab …` exists in the main CLI. Thin: parsing and printing only.
import ArgumentParser
import CleverLab
import Foundation

#if canImport(Glibc)
import Glibc
#endif

@main
struct LabTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clevervm-lab",
        abstract: "A real Corosync cluster on this machine: network namespaces, a bridge, qnetd on a gateway.",
        subcommands: [Up.self, Down.self, Exec.self, Power.self, Partition.self, Heal.self, CutPing.self, RestorePing.self, Status.self]
    )
}

struct LabOptions: ParsableArguments {
    @Option(name: .long, help: "Lab name: prefixes namespaces (NAME-alpha), the bridge (NAMEbr0) and the state directory.")
    var name: String = LabLayout.defaultName

    func lab() throws -> Lab {
        do { return try Lab(name: self.name) } catch { throw ValidationError(error.description) }
    }
}

func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func failing<T>(_ body: () throws(LabError) -> T) throws -> T {
    do { return try body() } catch {
        FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
        throw ExitCode.failure
    }
}

extension LabTool {
    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Build the lab and wait until every host is quorate.")
        @OptionGroup var options: LabOptions
        @Option(help: "Number of hosts (alpha, bravo, …). Two hosts get a qdevice on the gateway.") var hosts: Int = 2
        @Option(help: "Seconds to wait for quorum.") var timeout: Int = 60

        func run() throws {
            let lab = try self.options.lab()
            let clock = ContinuousClock()
            let start = clock.now
            try failing { () throws(LabError) in
                let layout = try LabLayout(name: lab.name, hostCount: self.hosts)
                try lab.up(layout: layout, timeout: .seconds(self.timeout)) { line in
                    printLine("[\((clock.now - start).formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow)))] \(line)")
                }
            }
            printLine("lab \(lab.name) is up; `clevervm-lab exec HOST -- CMD` runs a command in a host")
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Tear the lab down (idempotent; also cleans up after a crash).")
        @OptionGroup var options: LabOptions

        func run() throws {
            let problems = try self.options.lab().down(progress: printLine)
            for problem in problems { FileHandle.standardError.write(Data("warning: \(problem)\n".utf8)) }
            if !problems.isEmpty { throw ExitCode.failure }
        }
    }

    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a command inside a host (gw: the gateway).")
        @OptionGroup var options: LabOptions
        @Argument(help: "Host name, or gw.") var host: String
        @Argument(parsing: .captureForPassthrough, help: "The command, after --.") var command: [String] = []

        func run() throws {
            let command = self.command.first == "--" ? Array(self.command.dropFirst()) : self.command
            let lab = try self.options.lab()
            let argv = try failing { () throws(LabError) in try lab.commandLine(host: self.host, command) }
            let cArguments = argv.map { strdup($0) } + [nil]
            execvp(argv[0], cArguments)
            FileHandle.standardError.write(Data("error: cannot run \(argv[0]): \(String(cString: strerror(errno)))\n".utf8))
            throw ExitCode(127)
        }
    }

    struct Power: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "power off HOST: kill all its processes, link down. power on HOST: boot it again.")
        @OptionGroup var options: LabOptions
        @Argument(help: "on or off.") var state: String
        @Argument var host: String

        func run() throws {
            let lab = try self.options.lab()
            switch self.state {
            case "off": try failing { () throws(LabError) in try lab.powerOff(self.host) }
            case "on": try failing { () throws(LabError) in try lab.powerOn(self.host, progress: printLine) }
            default: throw ValidationError("power takes on or off, not \"\(self.state)\"")
            }
        }
    }

    struct Partition: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cut traffic between HOSTS and the --from hosts (default: all others).")
        @OptionGroup var options: LabOptions
        @Argument var hosts: [String]
        @Option(parsing: .upToNextOption, help: "The other side (gw allowed).") var from: [String] = []

        func run() throws {
            let lab = try self.options.lab()
            try failing { () throws(LabError) in try lab.partition(self.hosts, from: self.from.isEmpty ? nil : self.from) }
        }
    }

    struct Heal: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every partition.")
        @OptionGroup var options: LabOptions
        func run() throws {
            let lab = try self.options.lab()
            try failing { () throws(LabError) in try lab.heal() }
        }
    }

    struct CutPing: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cut-ping", abstract: "HOST can no longer ping the gateway (qnetd still reachable).")
        @OptionGroup var options: LabOptions
        @Argument var host: String
        func run() throws {
            let lab = try self.options.lab()
            try failing { () throws(LabError) in try lab.cutPing(self.host) }
        }
    }

    struct RestorePing: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "restore-ping", abstract: "Undo cut-ping.")
        @OptionGroup var options: LabOptions
        @Argument var host: String
        func run() throws {
            let lab = try self.options.lab()
            try failing { () throws(LabError) in try lab.restorePing(self.host) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hosts, power, services, quorum, partitions.")
        @OptionGroup var options: LabOptions
        @Flag var json = false
        func run() throws {
            let lab = try self.options.lab()
            let status = try failing { () throws(LabError) in try lab.status() }
            if self.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                printLine(String(decoding: try encoder.encode(status), as: UTF8.self))
            } else {
                printLine(status.description)
            }
        }
    }
}

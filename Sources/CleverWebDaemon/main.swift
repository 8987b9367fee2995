import ArgumentParser
import CleverControl
import CleverWeb
import Foundation
import Logging

/// `clevervm-web`: the web console, HTTP API and metrics of one host, and its accounts.
@main
struct WebCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clevervm-web",
        abstract: "The CleverVM web console (HTTPS), HTTP API and Prometheus metrics of this host.",
        subcommands: [Serve.self, User.self]
    )
}

struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of text.") var json = false
}

func fail(_ message: String, json: Bool) -> ExitCode {
    let text = json ? "{\"error\": \(String(decoding: (try? JSONEncoder().encode(message)) ?? Data(), as: UTF8.self))}" : "clevervm-web: error: \(message)"
    FileHandle.standardError.write(Data((text + "\n").utf8))
    return ExitCode(1)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the console (normally started by clevervm-web.service).")

    @Option(name: .long, help: "Address the HTTPS console listens on.") var bind = "0.0.0.0"
    @Option(name: .long, help: "HTTPS port.") var port = 7443
    @Option(name: .long, help: "Address /metrics (plain HTTP) listens on.") var metricsBind = "0.0.0.0"
    @Option(name: .long, help: "Metrics port (0: no metrics).") var metricsPort = 9664
    @Option(name: .long, help: "The host certificate (PEM). Default: the host certificate if present, else a self-signed one.")
    var certificate: String?
    @Option(name: .long, help: "The certificate's private key (PEM).") var key: String?
    @Option(name: .long, help: "Where a self-signed certificate is made when none is given.") var selfSignedDirectory = SelfSignedCertificate.defaultDirectory
    @Option(name: .long, help: "The accounts file.") var users = AccountFile.defaultPath
    @Option(name: .long, help: "The agent's control socket.") var socket = ControlSocket.defaultPath
    @Option(name: .long, help: "Where the volume processes keep their control sockets and this host's VMs their console and VNC sockets.")
    var runDirectory = "/run/clevervm"
    @Option(name: .long, help: "The cluster key (Corosync's authkey): the console relay to the host that runs a VM.")
    var clusterKey = "/etc/corosync/authkey"
    @Option(name: .long, help: "Minutes without a request before a session ends.") var idleMinutes = 30
    @Option(name: .long, help: "Hours after login before a session ends.") var sessionHours = 12
    @Option(name: .long, help: "Seconds between polls of the agent.") var poll = 1.0

    static let hostCertificate = "/etc/clevervm/tls/host.crt"
    static let hostKey = "/etc/clevervm/tls/host.key"

    func validate() throws {
        if (self.certificate == nil) != (self.key == nil) { throw ValidationError("give --certificate and --key together") }
        guard (1...65535).contains(self.port) else { throw ValidationError("--port: \(self.port) is not a port") }
        guard (0...65535).contains(self.metricsPort) else { throw ValidationError("--metrics-port: \(self.metricsPort) is not a port") }
        guard self.idleMinutes > 0, self.sessionHours > 0 else { throw ValidationError("--idle-minutes and --session-hours must be positive") }
        guard self.poll >= 0.1 else { throw ValidationError("--poll: at least 0.1 seconds") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "clevervm-web")
        logger.logLevel = .info
        do {
            var options = WebConsole.Options()
            options.bind = self.bind
            options.port = self.port
            options.metricsBind = self.metricsBind
            options.metricsPort = self.metricsPort
            options.accountsPath = self.users
            options.link = AgentLink(socketPath: self.socket, runDirectory: self.runDirectory)
            options.console = ConsoleDialer(runDirectory: self.runDirectory, keyFile: self.clusterKey)
            options.pollInterval = .milliseconds(Int(self.poll * 1000))
            options.sessions = SessionTable(idleTimeout: .seconds(self.idleMinutes * 60), lifetime: .seconds(self.sessionHours * 3600))
            if let certificate = self.certificate, let key = self.key {
                options.tls = .init(certificate: certificate, key: key)
            } else if FileManager.default.fileExists(atPath: Self.hostCertificate), FileManager.default.fileExists(atPath: Self.hostKey) {
                options.tls = .init(certificate: Self.hostCertificate, key: Self.hostKey)
            } else {
                let host = ProcessInfo.processInfo.hostName
                let addresses = self.bind == "0.0.0.0" ? [] : [self.bind]
                options.tls = try SelfSignedCertificate.ensure(directory: self.selfSignedDirectory, hostName: host, addresses: addresses)
                logger.notice("no host certificate: using a self-signed one", metadata: ["certificate": "\(options.tls!.certificate)"])
            }
            if (try? AccountFile.load(path: self.users))?.accounts.isEmpty ?? true {
                logger.warning("no console accounts yet: create one with `clevervm-web user add NAME --role operator`", metadata: ["file": "\(self.users)"])
            }
            let console = try await WebConsole(options: options, logger: logger)
            logger.info("console listening", metadata: ["url": "https://\(self.bind):\(self.port)/", "metrics": "http://\(self.metricsBind):\(self.metricsPort)/metrics"])
            try await console.run()
        } catch let error as ExitCode {
            throw error
        } catch {
            throw fail(String(describing: error), json: false)
        }
    }
}

struct User: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Console accounts (bcrypt-hashed passwords, roles viewer and operator).",
        subcommands: [Add.self, Passwd.self, Remove.self, List.self]
    )

    struct Common: ParsableArguments {
        @Option(name: .long, help: "The accounts file.") var users = AccountFile.defaultPath
        @Flag(name: .long, help: "Read the password from standard input (one line) instead of asking.") var passwordStdin = false
        @Flag(name: .long, help: "Make a random password and print it once (for a first account set up by a script).")
        var generatePassword = false
        @OptionGroup var output: JSONOption

        func validate() throws {
            if self.passwordStdin && self.generatePassword {
                throw ValidationError("--password-stdin and --generate-password exclude each other")
            }
        }

        func password(for name: String) throws -> String {
            if self.generatePassword {
                // 18 characters from 108 random bits, without look-alikes (0/O, 1/l/I).
                let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                var generator = SystemRandomNumberGenerator()
                return String((0..<18).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
            }
            if self.passwordStdin {
                guard let line = readLine(strippingNewline: true) else { throw fail("no password on standard input", json: self.output.json) }
                return line
            }
            guard let first = getpass("Password for \(name): ").map({ String(cString: $0) }) else { throw fail("no password given", json: self.output.json) }
            guard let second = getpass("Again: ").map({ String(cString: $0) }), second == first else {
                throw fail("the two passwords differ", json: self.output.json)
            }
            return first
        }

        /// `shownPassword`: a generated password, printed once with the result (never logged).
        func change(shownPassword: String? = nil, _ body: (inout AccountFile) throws -> String) throws {
            do {
                var file = try AccountFile.load(path: self.users)
                let message = try body(&file)
                try file.save()
                if self.output.json {
                    var answer = ["result": message]
                    if let shownPassword { answer["password"] = shownPassword }
                    print(String(decoding: try JSONEncoder().encode(answer), as: UTF8.self))
                } else {
                    print(message)
                    if let shownPassword { print("password: \(shownPassword) (shown once; change it with `clevervm-web user passwd NAME`)") }
                }
            } catch let error as ExitCode {
                throw error
            } catch {
                throw fail(String(describing: error), json: self.output.json)
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account.")
        @Argument(help: "The user name.") var name: String
        @Option(name: .long, help: "viewer (sees, simulates) or operator (also acts).") var role: Role = .viewer
        @OptionGroup var common: Common
        func run() throws {
            let password = try self.common.password(for: self.name)
            try self.common.change(shownPassword: self.common.generatePassword ? password : nil) { file in
                try file.set(name: self.name, role: self.role, password: password, replace: false)
                return "account \(self.name) (\(self.role.rawValue)) created in \(file.path)"
            }
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change an account's password (and role).")
        @Argument(help: "The user name.") var name: String
        @Option(name: .long, help: "A new role (default: keep).") var role: Role?
        @OptionGroup var common: Common
        func run() throws {
            let existing = try? AccountFile.load(path: self.common.users).account(named: self.name)
            let password = try self.common.password(for: self.name)
            try self.common.change(shownPassword: self.common.generatePassword ? password : nil) { file in
                try file.set(name: self.name, role: self.role ?? existing?.role ?? .viewer, password: password, replace: true)
                return "password of \(self.name) changed (sessions already open stay until they expire)"
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an account.")
        @Argument(help: "The user name.") var name: String
        @OptionGroup var common: Common
        func run() throws {
            try self.common.change { file in
                try file.remove(name: self.name)
                return "account \(self.name) removed"
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the accounts (names and roles; never hashes).")
        @Option(name: .long, help: "The accounts file.") var users = AccountFile.defaultPath
        @OptionGroup var output: JSONOption
        func run() throws {
            do {
                let file = try AccountFile.load(path: self.users)
                struct Entry: Encodable { var name: String; var role: Role }
                let entries = file.accounts.map { Entry(name: $0.name, role: $0.role) }
                if self.output.json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    print(String(decoding: try encoder.encode(entries), as: UTF8.self))
                } else {
                    for entry in entries { print("\(entry.name)  \(entry.role.rawValue)") }
                    if entries.isEmpty { print("no accounts in \(self.users)") }
                }
            } catch {
                throw fail(String(describing: error), json: self.output.json)
            }
        }
    }
}

extension Role: ExpressibleByArgument {}

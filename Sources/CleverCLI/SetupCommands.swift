import ArgumentParser
import CleverConfig
import CleverModel
import CleverSetup
import CleverSystem
import CorosyncConfig
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Shared by the set-up verbs.
struct SetupOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Write under this directory instead of / (for tests and images).", visibility: .hidden))
    var root = ""
    @Flag(name: .long, help: "Write the files only: do not restart corosync or start the agent (for images).")
    var noStart = false

    var paths: SetupPaths { SetupPaths(root: self.root) }
    /// Services are only touched on the real host.
    var startsServices: Bool { !self.noStart && self.root.isEmpty }
}

/// This host's watchdog, for init and join: what its node entry in the cluster config says.
struct WatchdogOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "This host's watchdog device, or 'none' to run without one (default: /dev/watchdog if it exists). "
            + "A host with no watchdog configured runs no resources.", valueName: "path|none"))
    var watchdog: String?

    static let device = "/dev/watchdog"

    /// The setting to write, and a warning for the operator when there is none.
    func setting() throws -> (WatchdogSetting?, warning: String?) {
        switch self.watchdog {
        case WatchdogSetting.noneKeyword?: return (.disabled, nil)
        case let path?:
            guard path.hasPrefix("/") else { throw SetupError(.badInput, "--watchdog '\(path)' is neither an absolute device path nor 'none'") }
            return (.device(path), nil)
        case nil:
            if FileManager.default.fileExists(atPath: Self.device) { return (.device(Self.device), nil) }
            return (nil, "this host has no \(Self.device): the agent runs no resources here until its node has a watchdog "
                + "(`modprobe softdog`, then `watchdog: \(Self.device)` in the config) or `watchdog: none`; see `clevervm status`")
        }
    }
}

/// `clevervm init`: the first host of a new cluster.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make this host the first member of a new cluster, and print the join token for the next host.",
        discussion: """
            Writes /etc/clevervm/cluster.yaml, /etc/corosync/corosync.conf (knet, crypto aes256/sha256), the Corosync
            authkey (0400), the volumes' shared secret (/etc/clevervm/volumes.secret), this host's TLS certificate and
            key (/etc/clevervm/tls/host.crt, host.key), then restarts corosync and starts the agent. Run again, it keeps
            what is there and prints the same token. On any failure every file is put back as it was.
            """)
    @OptionGroup var setup: SetupOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var watchdog: WatchdogOption
    @Option(name: .long, help: "The cluster's name (Corosync's cluster_name): letters, digits, '-', '_', '.'.")
    var name: String
    @Option(name: .long, help: "This host's cluster address (default: its first global IPv4 address).")
    var address: String?
    @Option(name: .long, help: "This host's node name (default: its host name).")
    var nodeName: String?
    @Option(name: .long, help: "The TCP port of this host's join service (in the token).")
    var joinPort = JoinToken.defaultPort

    struct Report: Encodable {
        var cluster: String
        var node: String
        var address: String
        var changed: [String]
        var kept: [String]
        var certificate: String
        var certificateKey: String
        var fingerprint: String
        var token: String
        var servicesStarted: Bool
    }

    func run() throws {
        try Output.run(json: self.output.json) {
            let paths = self.setup.paths
            let nodeName = try self.nodeName ?? HostIdentity.shortHostName()
            let address = try self.address ?? HostIdentity.firstGlobalIPv4()
            let (watchdog, warning) = try self.watchdog.setting()
            let request = InitPlan.Request(clusterName: self.name, nodeName: nodeName, address: address, joinPort: self.joinPort,
                                           watchdog: watchdog)
            let existing = try SetupFiles.readExisting(paths)
            let material = InitPlan.Material(
                authKey: AuthKey.generate(), volumeSecret: SetupFiles.randomHex(32), joinSecret: SetupFiles.randomHex(32))
            let plan: InitPlan.Plan
            switch InitPlan.plan(request, existing: existing, material: material, paths: paths) {
            case .success(let value): plan = value
            case .failure(let error): throw error
            }
            let started = try SetupFiles.perform(plan.directives, paths: paths, startServices: self.setup.startsServices)
            let fingerprint = try Certificates.fingerprint(of: paths.certificate)
            let token = JoinToken(address: HostPort(host: address, port: self.joinPort).text, fingerprint: fingerprint, secret: plan.joinSecret)
            let report = Report(
                cluster: self.name, node: nodeName, address: address, changed: plan.changed, kept: plan.kept,
                certificate: paths.certificate, certificateKey: paths.certificateKey, fingerprint: fingerprint, token: token.text,
                servicesStarted: started)
            if self.output.json {
                try Output.printJSON(report)
                return
            }
            if let warning, existing.cluster == nil { Output.printError("warning: \(warning)", json: false) }
            print(plan.changed.isEmpty
                ? "\(nodeName) is already the member of cluster '\(self.name)' (\(address)); nothing changed."
                : "Cluster '\(self.name)' created on \(nodeName) (\(address)).")
            for path in plan.changed { print("  wrote \(path)") }
            for path in plan.kept { print("  kept  \(path)") }
            if started { print("  corosync and the clevervm agent are running (`clevervm status`).") }
            print("")
            print("Join information (certificate \(fingerprint.prefix(16))…); on the next host run:")
            print("  clevervm join \(token.text)")
        }
    }
}

/// Reading what set-up finds, and performing its directives.
enum SetupFiles {
    static func randomHex(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    static func readExisting(_ paths: SetupPaths) throws -> InitPlan.Existing {
        var existing = InitPlan.Existing()
        if FileManager.default.fileExists(atPath: paths.clusterConfig) {
            do { existing.cluster = try ConfigFile.load(path: paths.clusterConfig) } catch {
                throw SetupError(.conflict, "\(paths.clusterConfig) exists but is not a valid cluster config; nothing changed:\n\(error)")
            }
        }
        existing.corosyncConf = try? String(contentsOfFile: paths.corosyncConf, encoding: .utf8)
        existing.hasAuthKey = FileManager.default.fileExists(atPath: paths.authKey)
        existing.hasVolumeSecret = FileManager.default.fileExists(atPath: paths.volumeSecret)
        existing.hasCertificate = FileManager.default.fileExists(atPath: paths.certificate)
            && FileManager.default.fileExists(atPath: paths.certificateKey)
        existing.joinSecret = (try? String(contentsOfFile: paths.joinSecret, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if let secret = existing.joinSecret, secret.isEmpty { existing.joinSecret = nil }
        return existing
    }

    /// Performs a set-up plan in one transaction: the files of `directives` in order, then `more` (further files, in
    /// the same transaction), then on the real host the services the directives ask for, in order (enable, then
    /// restart, or only start when Corosync's files did not change).
    /// On any failure every file is put back, `undo` runs, each service this restarted is restarted again on the old
    /// files if it was active before or stopped if it was not, and the error says whether the files came back.
    /// Returns whether services were started. `init` and `join` both go through here.
    static func perform(_ directives: [InitPlan.Directive], paths: SetupPaths, startServices: Bool,
                        more: (FileTransaction) throws -> Void = { _ in }, undo: () -> Void = {}) throws -> Bool {
        let transaction = FileTransaction()
        var restarted: [(unit: String, wasActive: Bool)] = []
        do {
            for directive in directives {
                switch directive {
                case .write(let path, let contents, let mode):
                    try transaction.write(Data(contents), to: path, mode: mode_t(mode))
                case .makeCertificate(let certificate, let key, let commonName, let address):
                    try transaction.makeDirectory((certificate as NSString).deletingLastPathComponent, mode: 0o755)
                    transaction.willChange(certificate)
                    transaction.willChange(key)
                    try Certificates.makeSelfSigned(certificate: certificate, key: key, commonName: commonName, address: address)
                case .restartCorosync, .startQdevice, .startAgent:
                    continue
                }
            }
            try more(transaction)
            guard startServices else { return false }
            // Corosync's files changed: everything on top of it restarts. Otherwise (init run again) what runs keeps
            // running, and what does not is started.
            let verb = directives.contains(.restartCorosync) ? "restart" : "start"
            for unit in directives.flatMap(Self.units) {
                restarted.append((unit, Subprocess.run(["systemctl", "is-active", "--quiet", unit]).succeeded))
                try Services.run(["systemctl", "enable", "--quiet", unit], what: "cannot enable \(unit)")
                try Services.run(["systemctl", verb, unit], what: "\(unit) did not start (see `journalctl -u \(unit)`)")
            }
            return true
        } catch {
            let problems = transaction.rollBack()
            undo()
            for (unit, wasActive) in restarted.reversed() {
                _ = Subprocess.run(["systemctl", wasActive ? "restart" : "stop", unit], timeout: .seconds(60))
            }
            let base = (error as? SetupError) ?? SetupError(.io, String(describing: error))
            let rolled = problems.isEmpty ? "every file was put back as it was" : "rolling back also failed: \(problems.joined(separator: "; "))"
            throw SetupError(base.code, "\(base.message)\n(\(rolled))")
        }
    }

    /// The systemd units a service directive restarts.
    static func units(_ directive: InitPlan.Directive) -> [String] {
        switch directive {
        case .write, .makeCertificate: []
        case .restartCorosync: ["corosync"]
        case .startQdevice: ["corosync-qdevice"]
        case .startAgent: ["clevervm", "clevervm-join", "clevervm-web"]
        }
    }
}

enum Services {
    static func run(_ command: [String], what: String, timeout: Duration = .seconds(90)) throws {
        let result = Subprocess.run(command, timeout: timeout)
        guard result.succeeded else {
            let output = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
            throw SetupError(.service, "\(what): `\(command.joined(separator: " "))` exited \(result.status)\(output.isEmpty ? "" : ": \(output)")")
        }
    }
}

/// The host's TLS certificate, made with Debian's openssl: ECDSA P-256, self-signed, ten years; the joiner pins
/// its SHA-256 fingerprint from the token, so no CA is involved.
enum Certificates {
    static func makeSelfSigned(certificate: String, key: String, commonName: String, address: String) throws {
        let temporaryKey = "\(key).new"
        let temporaryCertificate = "\(certificate).new"
        defer { unlink(temporaryKey); unlink(temporaryCertificate) }
        let result = Subprocess.run([
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
            "-subj", "/O=CleverVM/CN=\(commonName)", "-addext", "subjectAltName=DNS:\(commonName),IP:\(address)",
            "-keyout", temporaryKey, "-out", temporaryCertificate,
        ], timeout: .seconds(60))
        guard result.succeeded else {
            throw SetupError(.command, "cannot make the host certificate with openssl: \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard chmod(temporaryKey, 0o600) == 0, rename(temporaryKey, key) == 0, chmod(temporaryCertificate, 0o644) == 0,
              rename(temporaryCertificate, certificate) == 0
        else {
            throw SetupError(.io, "cannot install the host certificate in \((certificate as NSString).deletingLastPathComponent): \(String(cString: strerror(errno)))")
        }
    }

    /// SHA-256 of the certificate's DER, lower-case hex.
    static func fingerprint(of certificate: String) throws -> String {
        let result = Subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", certificate])
        guard result.succeeded, let equals = result.output.firstIndex(of: "=") else {
            throw SetupError(.command, "cannot read the certificate \(certificate): \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return result.output[result.output.index(after: equals)...].trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: ":", with: "").lowercased()
    }
}

/// This host's name and address, as defaults for init and join.
enum HostIdentity {
    static func shortHostName() throws -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { throw SetupError(.io, "cannot read the host name; give --node-name") }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(name.split(separator: ".").first ?? Substring(name))
    }

    /// The first IPv4 address of an interface that is up and not loopback.
    static func firstGlobalIPv4() throws -> String {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { throw SetupError(.io, "cannot list this host's addresses; give --address") }
        defer { freeifaddrs(list) }
        var entry: UnsafeMutablePointer<ifaddrs>? = first
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            let flags = Int32(current.pointee.ifa_flags)
            guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0
            else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var inet = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            inet_ntop(AF_INET, &inet, &text, socklen_t(text.count))
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        throw SetupError(.badInput, "this host has no IPv4 address on an interface that is up; give --address")
    }
}

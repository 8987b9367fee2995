import ArgumentParser
import CleverConfig
import CleverControl
import CleverModel
import CleverSetup
import CleverSystem
import CorosyncConfig
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where the qdevice certificates live (corosync-qdevice-net-certutil's defaults).
enum QdevicePaths {
    static func caCertificate(_ paths: SetupPaths) -> String { "\(paths.corosyncDirectory)/qnetd-cacert.crt" }
    static func nssDirectory(_ paths: SetupPaths) -> String { "\(paths.corosyncDirectory)/qdevice/net/nssdb" }
    static func clusterCertificate(_ paths: SetupPaths) -> String { "\(nssDirectory(paths))/qdevice-net-node.p12" }
}

/// `clevervm join TOKEN`: the next host. Fetches the member's certificate, checks it against the fingerprint in the
/// token, then (over TLS pinned to that certificate) sends the one-time secret and receives the cluster's config,
/// Corosync authkey, volume secret and qdevice certificates; writes them, starts corosync, qdevice and the agent.
struct Join: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the cluster of the host that printed TOKEN (`clevervm init`).",
        discussion: """
            The member adds this host to its cluster config and corosync.conf and reloads Corosync; this host receives
            the config and keys over TLS pinned to the member's certificate (the token's fingerprint). Run again, a host
            that already joined changes nothing. On any failure here, every file is put back as it was.
            """)
    @OptionGroup var setup: SetupOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var watchdog: WatchdogOption
    @Argument(help: "The join token `clevervm init` printed (clevervm-join:…).") var token: String
    @Option(name: .long, help: "This host's cluster address (default: its first global IPv4 address).") var address: String?
    @Option(name: .long, help: "This host's node name (default: its host name).") var nodeName: String?

    struct Report: Encodable {
        var cluster: String
        var node: String
        var nodeID: Int
        var address: String
        var member: String
        var changed: [String]
        var servicesStarted: Bool
    }

    func run() throws {
        try Output.run(json: self.output.json) {
            let token: JoinToken
            switch JoinToken.parse(self.token) {
            case .success(let value): token = value
            case .failure(let error): throw error
            }
            let paths = self.setup.paths
            let nodeName = try self.nodeName ?? HostIdentity.shortHostName()
            let address = try self.address ?? HostIdentity.firstGlobalIPv4()
            if FileManager.default.fileExists(atPath: paths.clusterConfig) {
                let current: ClusterConfig
                do { current = try ConfigFile.load(path: paths.clusterConfig) } catch {
                    throw SetupError(.conflict, "\(paths.clusterConfig) exists but is not a valid cluster config; nothing changed:\n\(error)")
                }
                guard let node = current.node(named: nodeName), node.addresses.first == address, current.nodes.count > 1 else {
                    throw SetupError(.conflict,
                        "this host already has a cluster config (\(paths.clusterConfig), cluster '\(current.name)'); nothing changed. "
                            + "`clevervm remove \(nodeName)` on a member and delete the file to join another cluster")
                }
                let report = Report(cluster: current.name, node: nodeName, nodeID: node.id, address: address, member: token.address,
                                    changed: [], servicesStarted: false)
                if self.output.json { try Output.printJSON(report) } else { print("\(nodeName) is already a member of cluster '\(current.name)'; nothing changed.") }
                return
            }
            let (watchdog, warning) = try self.watchdog.setting()
            let response = try JoinChannel.exchange(
                token: token, request: JoinPlan.Request(secret: token.secret, node: nodeName, address: address, watchdog: watchdog?.description))
            if let error = response.error { throw SetupError(.conflict, "\(token.address) refused the join: \(error); nothing changed here") }
            guard let clusterText = response.clusterConfig, let corosync = response.corosyncConf, let keyText = response.authKey,
                  let key = Data(base64Encoded: keyText), let volumeSecret = response.volumeSecret, let nodeID = response.nodeID
            else { throw SetupError(.io, "\(token.address) sent an incomplete answer; nothing changed here") }
            let cluster: ClusterConfig
            do { cluster = try ConfigFile.parse(clusterText, file: "cluster.yaml from \(token.address)") } catch {
                throw SetupError(.io, "\(token.address) sent a cluster config that does not load: \(error)")
            }

            var directives: [InitPlan.Directive] = [
                .write(path: paths.clusterConfig, contents: Array(clusterText.utf8), mode: 0o644),
                .write(path: paths.corosyncConf, contents: Array(corosync.utf8), mode: 0o644),
                .write(path: paths.authKey, contents: Array(key), mode: 0o400),
                .write(path: paths.volumeSecret, contents: Array(volumeSecret.utf8), mode: 0o600),
            ]
            if !FileManager.default.fileExists(atPath: paths.certificate) {
                directives.append(.makeCertificate(certificate: paths.certificate, key: paths.certificateKey, commonName: nodeName, address: address))
            }
            var qdevice: (ca: Data, p12: Data)?
            if let ca = response.qnetdCACertificate.flatMap({ Data(base64Encoded: $0) }),
               let p12 = response.qdeviceCertificate.flatMap({ Data(base64Encoded: $0) }) {
                qdevice = (ca, p12)
            }
            let started = try SetupFiles.performJoin(directives, qdevice: qdevice, paths: paths, startServices: self.setup.startsServices)
            let changed = directives.compactMap { directive -> String? in
                switch directive {
                case .write(let path, _, _): path
                case .makeCertificate(let certificate, _, _, _): certificate
                default: nil
                }
            } + (qdevice == nil ? [] : [QdevicePaths.nssDirectory(paths)])
            let report = Report(cluster: cluster.name, node: nodeName, nodeID: nodeID, address: address, member: token.address,
                                changed: changed, servicesStarted: started)
            if self.output.json {
                try Output.printJSON(report)
                return
            }
            if let warning { Output.printError("warning: \(warning)", json: false) }
            print("\(nodeName) (node \(nodeID), \(address)) joined cluster '\(cluster.name)' through \(token.address).")
            for path in changed { print("  wrote \(path)") }
            if started { print("  corosync\(qdevice == nil ? "" : ", corosync-qdevice") and the clevervm agent are running (`clevervm status`).") }
        }
    }
}

extension SetupFiles {
    /// The joiner's files, then qdevice's NSS database from the member's certificates, then corosync, qdevice and
    /// the agent; all of it undone on a failure (`perform`).
    static func performJoin(_ directives: [InitPlan.Directive], qdevice: (ca: Data, p12: Data)?, paths: SetupPaths,
                            startServices: Bool) throws -> Bool {
        let nss = QdevicePaths.nssDirectory(paths)
        let madeNSS = !FileManager.default.fileExists(atPath: nss)
        let services: [InitPlan.Directive] = [.restartCorosync] + (qdevice == nil ? [] : [.startQdevice]) + [.startAgent]
        return try Self.perform(directives + services, paths: paths, startServices: startServices, more: { transaction in
            guard let qdevice else { return }
            let ca = QdevicePaths.caCertificate(paths)
            try transaction.write(qdevice.ca, to: ca, mode: 0o644)
            let p12 = "\(paths.corosyncDirectory)/qdevice-net-node.p12"
            try transaction.write(qdevice.p12, to: p12, mode: 0o600)
            if madeNSS {
                try Services.run(["corosync-qdevice-net-certutil", "-i", "-c", ca], what: "cannot create qdevice's certificate database")
            }
            try Services.run(["corosync-qdevice-net-certutil", "-m", "-c", p12], what: "cannot import the cluster's qdevice certificate")
        }, undo: {
            if madeNSS { try? FileManager.default.removeItem(atPath: (nss as NSString).deletingLastPathComponent) }
        })
    }
}

/// The joiner's half of the channel, with Debian's openssl: one connection fetches the member's certificate (not
/// trusted yet) and compares its SHA-256 with the token's fingerprint; only then a second connection, verified
/// against exactly that certificate, carries the secret. The member serves with socat (clevervm-join.service).
enum JoinChannel {
    static func exchange(token: JoinToken, request: JoinPlan.Request) throws -> JoinPlan.Response {
        guard let target = HostPort.parse(token.address) else { throw SetupError(.badToken, "the token's address is not HOST:PORT") }
        let connect = target.text
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("clevervm-join-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let fetched = Subprocess.run(["openssl", "s_client", "-connect", connect, "-servername", target.host], input: "", timeout: .seconds(20))
        guard let begin = fetched.output.range(of: "-----BEGIN CERTIFICATE-----"),
              let end = fetched.output.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<fetched.output.endIndex)
        else {
            throw SetupError(.io, "cannot reach the join service at \(connect) (is clevervm-join running on the member, port \(target.port) open?): "
                + (fetched.output.split(separator: "\n").first { $0.contains("error") || $0.contains("errno") }.map(String.init) ?? "no certificate received"))
        }
        let pinned = "\(directory)/member.crt"
        try (String(fetched.output[begin.lowerBound..<end.upperBound]) + "\n").write(toFile: pinned, atomically: true, encoding: .utf8)
        let fingerprint = try Certificates.fingerprint(of: pinned)
        guard fingerprint == token.fingerprint else {
            throw SetupError(.badToken,
                "the certificate at \(connect) has fingerprint \(fingerprint.prefix(16))…, the token says \(token.fingerprint.prefix(16))…: "
                    + "not the member that printed the token (or someone in between); nothing was sent, nothing changed")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let line = String(decoding: try encoder.encode(request), as: UTF8.self) + "\n"
        let answer = Subprocess.run(
            ["openssl", "s_client", "-quiet", "-verify_return_error", "-CAfile", pinned, "-connect", connect, "-servername", target.host],
            input: line, timeout: .seconds(120))
        guard let json = answer.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let response = try? JSONDecoder().decode(JoinPlan.Response.self, from: Data(json.utf8))
        else {
            throw SetupError(.io, "no answer from the join service at \(connect): \(answer.output.suffix(300))")
        }
        return response
    }
}

/// `clevervm join-serve`: one join request on stdin, the answer on stdout; run by socat for each TLS connection
/// of clevervm-join.service. Hidden: not for operators.
struct JoinServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join-serve", abstract: "Answer one join request on stdin (run by clevervm-join.service).", shouldDisplay: false)
    @OptionGroup var setup: SetupOptions
    /// The answer is JSON either way.
    @OptionGroup var output: OutputOptions
    @Option(name: .long, help: "The agent's control socket.") var socket = ControlSocket.defaultPath

    func run() throws {
        let response = self.answer()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let line = String(decoding: (try? encoder.encode(response)) ?? Data("{\"error\":\"unprintable\"}".utf8), as: UTF8.self)
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    func log(_ message: String) {
        FileHandle.standardError.write(Data("clevervm join-serve: \(message)\n".utf8))
    }

    func answer() -> JoinPlan.Response {
        guard let line = readLine(strippingNewline: true), line.utf8.count < 65536,
              let request = try? JSONDecoder().decode(JoinPlan.Request.self, from: Data(line.utf8))
        else { return JoinPlan.Response(error: "not a join request") }
        let paths = self.setup.paths
        // One join at a time.
        let lock = open("/run/clevervm-join.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer { if lock >= 0 { close(lock) } }
        let expected = ((try? String(contentsOfFile: paths.joinSecret, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard JoinPlan.secretMatches(request.secret, expected: expected) else {
            self.log("refused \(request.node) (\(request.address)): wrong or used secret")
            sleep(1)
            return JoinPlan.Response(error: "the token's secret is not valid (already used?): run `clevervm init --name CLUSTER` on the member for a new token")
        }
        do {
            let cluster = try ConfigFile.load(path: paths.clusterConfig)
            let outcome: JoinPlan.Outcome
            switch JoinPlan.plan(request, cluster: cluster) {
            case .success(let value): outcome = value
            case .failure(let error): return JoinPlan.Response(error: error.message)
            }
            let config: ClusterConfig
            let corosync: String
            let nodeID: Int
            switch outcome {
            case .alreadyMember(let current, let text, let id): (config, corosync, nodeID) = (current, text, id)
            case .add(let joined, let text, let id):
                (config, corosync, nodeID) = (joined, text, id)
                try self.admit(joined, corosync: corosync, paths: paths)
                self.log("\(request.node) (\(request.address)) joined as node \(id)")
            }
            unlink(paths.joinSecret)
            let read = { (path: String) in FileManager.default.contents(atPath: path)?.base64EncodedString() }
            return JoinPlan.Response(
                nodeID: nodeID, clusterConfig: ConfigFile.render(config), corosyncConf: corosync, authKey: read(paths.authKey),
                volumeSecret: (try? String(contentsOfFile: paths.volumeSecret, encoding: .utf8)) ?? "",
                qnetdCACertificate: read(QdevicePaths.caCertificate(paths)), qdeviceCertificate: read(QdevicePaths.clusterCertificate(paths)))
        } catch {
            self.log("join of \(request.node) failed: \(error)")
            return JoinPlan.Response(error: "\(error)")
        }
    }

    /// Writes the new cluster.yaml and corosync.conf, reloads corosync, and applies the config through the agent;
    /// rolls the files back (and reloads again) if any step fails.
    func admit(_ config: ClusterConfig, corosync: String, paths: SetupPaths) throws {
        let transaction = FileTransaction()
        do {
            try transaction.write(Data(ConfigFile.render(config).utf8), to: paths.clusterConfig, mode: 0o644)
            try transaction.write(Data(corosync.utf8), to: paths.corosyncConf, mode: 0o644)
            guard self.setup.startsServices else { return }
            try Services.run(["corosync-cfgtool", "-R"], what: "corosync did not reload the new nodelist")
            if FileManager.default.fileExists(atPath: self.socket) {
                let response = try ControlSocket.call(.applyConfig(config), path: self.socket)
                if case .failure(let message) = response { throw SetupError(.service, "the agent refused the config with the new host: \(message)") }
            }
        } catch {
            transaction.rollBack()
            if self.setup.startsServices { _ = Subprocess.run(["corosync-cfgtool", "-R"]) }
            throw error
        }
    }
}

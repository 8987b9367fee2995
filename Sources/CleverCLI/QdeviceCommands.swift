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

/// `clevervm qdevice …`: the tie-breaker on a third host.
struct Qdevice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qdevice", abstract: "Set up the quorum device (corosync-qnetd on a third host).", subcommands: [Setup.self])

    /// `clevervm qdevice setup HOST`, on a member: over ssh (as `pvecm qdevice setup` does) qnetd's CA is made on
    /// HOST and the cluster's certificate signed by it, with corosync-qnetd-certutil and
    /// corosync-qdevice-net-certutil (the steps of corosync-qdevice-net-certutil(8)); then the cluster config gets
    /// the quorum device, corosync reloads and corosync-qdevice starts here. Hosts that join later receive the
    /// certificates with the join.
    struct Setup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make HOST (running corosync-qnetd, reachable as root over ssh) the cluster's tie-breaker.")
        @OptionGroup var setup: SetupOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The qnetd host's address (it needs the corosync-qnetd package and root ssh from here).") var host: String
        @Option(name: .long, help: "A ping target for qdevice's heuristics (the side that cannot reach it loses a tie); repeatable.")
        var ping: [String] = []
        @Option(name: .long, help: "qnetd's algorithm: ffsplit or lms.") var algorithm = "ffsplit"
        @Option(name: .long, help: "The ssh destination for HOST (default: root@HOST).") var ssh: String?
        @Option(name: .long, help: "The agent's control socket.") var socket = ControlSocket.defaultPath

        struct Report: Encodable {
            var cluster: String
            var qdevice: String
            var algorithm: String
            var ping: [String]
            var changed: [String]
        }

        func run() throws {
            try Output.run(json: self.output.json) {
                let paths = self.setup.paths
                let config: ClusterConfig
                do { config = try ConfigFile.load(path: paths.clusterConfig) } catch {
                    throw SetupError(.badInput, "this host is not a cluster member yet (run `clevervm init` first): \(error)")
                }
                var updated = config
                updated.quorum = QuorumConfig(qdeviceHost: self.host, algorithm: self.algorithm, pingTargets: self.ping)
                let corosync: String
                do { corosync = try CorosyncConfigFile.render(updated) } catch {
                    throw SetupError(.badInput, "qdevice \(self.host): \(error); nothing changed")
                }
                let destination = self.ssh ?? "root@\(self.host)"
                let transaction = FileTransaction()
                let nss = QdevicePaths.nssDirectory(paths)
                let madeNSS = !FileManager.default.fileExists(atPath: nss)
                var changed: [String] = []
                do {
                    if !FileManager.default.fileExists(atPath: QdevicePaths.clusterCertificate(paths)) || config.quorum?.qdeviceHost != self.host {
                        try self.makeCertificates(cluster: config.name, destination: destination, paths: paths, transaction: transaction,
                                                  madeNSS: madeNSS)
                        changed.append(QdevicePaths.clusterCertificate(paths))
                    }
                    if updated != config {
                        updated.epoch = config.epoch + 1
                        try transaction.write(Data(ConfigFile.render(updated).utf8), to: paths.clusterConfig, mode: 0o644)
                        changed.append(paths.clusterConfig)
                    }
                    if (try? String(contentsOfFile: paths.corosyncConf, encoding: .utf8)) != corosync {
                        try transaction.write(Data(corosync.utf8), to: paths.corosyncConf, mode: 0o644)
                        changed.append(paths.corosyncConf)
                    }
                    if self.setup.startsServices {
                        // The agent first, while the partition is quorate: once corosync counts the device's vote,
                        // a one-host cluster has no quorum until corosync-qdevice has connected.
                        if updated != config, FileManager.default.fileExists(atPath: self.socket) {
                            let response = try ControlSocket.call(.applyConfig(updated), path: self.socket)
                            if case .failure(let message) = response { throw SetupError(.service, "the agent refused the config with the quorum device: \(message)") }
                        }
                        try Services.run(["corosync-cfgtool", "-R"], what: "corosync did not reload corosync.conf with the quorum device")
                        try Services.run(["systemctl", "enable", "--quiet", "corosync-qdevice"], what: "cannot enable corosync-qdevice")
                        try Services.run(["systemctl", "restart", "corosync-qdevice"], what: "corosync-qdevice did not start (see `journalctl -u corosync-qdevice`)")
                    }
                } catch {
                    let problems = transaction.rollBack()
                    if madeNSS { try? FileManager.default.removeItem(atPath: (nss as NSString).deletingLastPathComponent) }
                    if self.setup.startsServices { _ = Subprocess.run(["corosync-cfgtool", "-R"]) }
                    let base = (error as? SetupError) ?? SetupError(.io, String(describing: error))
                    throw SetupError(base.code, "\(base.message)\n(\(problems.isEmpty ? "every file was put back as it was" : "rolling back also failed: \(problems.joined(separator: "; "))"))")
                }
                let report = Report(cluster: config.name, qdevice: self.host, algorithm: self.algorithm, ping: self.ping, changed: changed)
                if self.output.json {
                    try Output.printJSON(report)
                    return
                }
                print(changed.isEmpty
                    ? "\(self.host) is already the quorum device of cluster '\(config.name)'; nothing changed."
                    : "\(self.host) is the quorum device of cluster '\(config.name)' (\(self.algorithm)); corosync-qdevice runs here.")
                for path in changed { print("  wrote \(path)") }
            }
        }

        /// The certificate steps, the qnetd host's over ssh, ours here.
        func makeCertificates(cluster: String, destination: String, paths: SetupPaths, transaction: FileTransaction, madeNSS: Bool) throws {
            func remote(_ script: String, input: String? = nil, what: String) throws -> String {
                let result = Subprocess.run(
                    ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                     destination, script],
                    input: input, timeout: .seconds(120))
                guard result.succeeded else {
                    throw SetupError(.command, "on \(destination): \(what) failed (exit \(result.status)): \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
                return result.output
            }
            let ca = try remote(
                "set -e; command -v corosync-qnetd-certutil >/dev/null || { echo 'corosync-qnetd is not installed there (apt install corosync-qnetd)' >&2; exit 1; }; "
                    + "[ -f /etc/corosync/qnetd/nssdb/qnetd-cacert.crt ] || corosync-qnetd-certutil -i >/dev/null; "
                    + "systemctl enable --quiet corosync-qnetd; systemctl restart corosync-qnetd; cat /etc/corosync/qnetd/nssdb/qnetd-cacert.crt",
                what: "qnetd's certificate authority")
            guard let begin = ca.range(of: "-----BEGIN CERTIFICATE-----"),
                  let end = ca.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<ca.endIndex)
            else { throw SetupError(.io, "on \(destination): qnetd's CA certificate did not come back (\(ca.prefix(200)))") }
            let caPath = QdevicePaths.caCertificate(paths)
            try transaction.write(Data((ca[begin.lowerBound..<end.upperBound] + "\n").utf8), to: caPath, mode: 0o644)
            if madeNSS {
                try Services.run(["corosync-qdevice-net-certutil", "-i", "-c", caPath], what: "cannot create qdevice's certificate database")
            }
            try Services.run(["corosync-qdevice-net-certutil", "-r", "-n", cluster], what: "cannot make the cluster's certificate request")
            let nss = QdevicePaths.nssDirectory(paths)
            // certutil writes the request as DER (binary): it travels base64-encoded.
            guard let request = FileManager.default.contents(atPath: "\(nss)/qdevice-net-node.crq"), !request.isEmpty else {
                throw SetupError(.io, "corosync-qdevice-net-certutil wrote no \(nss)/qdevice-net-node.crq")
            }
            let signed = try remote(
                "set -e; umask 077; f=$(mktemp); base64 -d > \"$f\"; cd /etc/corosync/qnetd/nssdb; "
                    + "corosync-qnetd-certutil -s -c \"$f\" -n '\(cluster)' >/dev/null; rm -f \"$f\"; base64 cluster-'\(cluster)'.crt",
                input: request.base64EncodedString(options: [.lineLength76Characters, .endLineWithLineFeed]) + "\n", what: "signing the cluster's certificate")
            // Only the base64 lines (ssh says nothing else with LogLevel=ERROR, but a login banner could).
            let base64 = signed.split(separator: "\n").filter { $0.allSatisfy { $0.isLetter || $0.isNumber || "+/=".contains($0) } }.joined()
            guard let signedCertificate = Data(base64Encoded: base64), !signedCertificate.isEmpty else {
                throw SetupError(.io, "on \(destination): the signed cluster certificate did not come back (\(signed.prefix(200)))")
            }
            let certificate = "\(paths.corosyncDirectory)/cluster-\(cluster).crt"
            try transaction.write(signedCertificate, to: certificate, mode: 0o644)
            try Services.run(["corosync-qdevice-net-certutil", "-M", "-c", certificate], what: "cannot import the cluster's signed certificate")
        }
    }
}

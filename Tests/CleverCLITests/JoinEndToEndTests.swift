import CleverConfig
import CleverSystem
import CorosyncConfig
import Foundation
import Testing

/// `clevervm init` and `clevervm join` run as built, each on a host of its own (a directory given as --root,
/// services left alone), with the real join channel between them: socat terminating TLS with the member's
/// certificate on loopback, as clevervm-join.service runs it, and openssl on the joiner's side.
@Suite(.serialized) struct JoinEndToEndTests {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["CLEVERVM_BINARY"] { return path }
        return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("clevervm").path
    }

    static var toolsPresent: Bool {
        ["/usr/bin/socat", "/usr/bin/openssl"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Hosts {
        let directory: String
        var member: String { "\(self.directory)/alpha" }
        var joiner: String { "\(self.directory)/beta" }

        init() throws {
            self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("clevervm-join-test-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        }

        func remove() { try? FileManager.default.removeItem(atPath: self.directory) }
    }

    static func clevervm(_ arguments: [String]) -> Subprocess.Result {
        Subprocess.run([Self.binary] + arguments, timeout: .seconds(60))
    }

    static func json(_ text: String) -> [String: Any] {
        guard let start = text.firstIndex(of: "{"),
              let value = try? JSONSerialization.jsonObject(with: Data(text[start...].utf8)) as? [String: Any]
        else { return [:] }
        return value
    }

    /// Serves the member's join service on a free loopback port; returns the port and socat's pid.
    static func serve(_ hosts: Hosts) throws -> (port: Int, pid: pid_t) {
        let port = 20000 + Int.random(in: 0..<20000)
        let tls = "\(hosts.member)/etc/clevervm/tls"
        let pid = try Subprocess.spawnDaemon([
            "/usr/bin/socat", "OPENSSL-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork,cert=\(tls)/host.crt,key=\(tls)/host.key,verify=0",
            "EXEC:\(Self.binary) join-serve --root \(hosts.member)",
        ], log: "\(hosts.directory)/socat.log")
        for _ in 0..<50 where Subprocess.run(["sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"]).status != 0 { usleep(100_000) }
        return (port, pid)
    }

    /// The token init printed, pointed at the loopback port (the fingerprint and secret unchanged).
    static func token(_ printed: String, port: Int) throws -> String {
        var base64 = String(printed.dropFirst("clevervm-join:".count)).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        let data = try #require(Data(base64Encoded: base64))
        var fields = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        fields["a"] = "127.0.0.1:\(port)"
        let changed = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        return "clevervm-join:" + changed.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test(.enabled(if: Self.toolsPresent)) func aHostJoinsOverPinnedTLSAndTheSecretWorksOnce() throws {
        let hosts = try Hosts()
        defer { hosts.remove() }
        let initialised = Self.clevervm(["init", "--root", hosts.member, "--name", "plant", "--address", "198.51.100.11", "--node-name", "alpha", "--json"])
        #expect(initialised.succeeded, "\(initialised.output)")
        let printed = try #require(Self.json(initialised.output)["token"] as? String)
        // A two-host cluster needs its tie-breaker in the config before the second host joins.
        let config = "\(hosts.member)/etc/clevervm/cluster.yaml"
        try (String(contentsOfFile: config, encoding: .utf8) + "quorum:\n  qdevice: 198.51.100.1\n").write(toFile: config, atomically: true, encoding: .utf8)

        let (port, socat) = try Self.serve(hosts)
        defer { kill(socat, SIGTERM) }
        let token = try Self.token(printed, port: port)
        let joined = Self.clevervm(["join", token, "--root", hosts.joiner, "--address", "198.51.100.12", "--node-name", "beta", "--json"])
        #expect(joined.succeeded, "\(joined.output)")
        #expect(Self.json(joined.output)["nodeID"] as? Int == 2)

        // Both hosts now have the same two-node config and the same authkey; the member's secret is used up.
        let memberConfig = try String(contentsOfFile: config, encoding: .utf8)
        #expect(memberConfig.contains("name: beta"))
        #expect(try String(contentsOfFile: "\(hosts.joiner)/etc/clevervm/cluster.yaml", encoding: .utf8).contains("name: alpha"))
        #expect(FileManager.default.contents(atPath: "\(hosts.member)/etc/corosync/authkey")
            == FileManager.default.contents(atPath: "\(hosts.joiner)/etc/corosync/authkey"))
        #expect(try String(contentsOfFile: "\(hosts.joiner)/etc/corosync/corosync.conf", encoding: .utf8).contains("ring0_addr: 198.51.100.12"))
        #expect(!FileManager.default.fileExists(atPath: "\(hosts.member)/etc/clevervm/join.secret"))

        // A third host with the same token is refused by the member, and nothing is written there.
        let third = "\(hosts.directory)/gamma"
        let again = Self.clevervm(["join", token, "--root", third, "--address", "198.51.100.13", "--node-name", "gamma"])
        #expect(!again.succeeded)
        #expect(again.output.contains("refused the join: the token's secret is not valid"), "\(again.output)")
        #expect(!FileManager.default.fileExists(atPath: "\(third)/etc/clevervm/cluster.yaml"))
    }

    @Test(.enabled(if: Self.toolsPresent)) func aTokenWhoseFingerprintIsNotTheMembersSendsNothing() throws {
        let hosts = try Hosts()
        defer { hosts.remove() }
        let initialised = Self.clevervm(["init", "--root", hosts.member, "--name", "plant", "--address", "198.51.100.11", "--node-name", "alpha", "--json"])
        let printed = try #require(Self.json(initialised.output)["token"] as? String)
        // Another host's certificate in the member's place: someone in between.
        let other = "\(hosts.directory)/other"
        _ = Self.clevervm(["init", "--root", other, "--name", "plant", "--address", "198.51.100.11", "--node-name", "alpha"])
        for file in ["host.crt", "host.key"] {
            let path = "\(hosts.member)/etc/clevervm/tls/\(file)"
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.copyItem(atPath: "\(other)/etc/clevervm/tls/\(file)", toPath: path)
        }
        let (port, socat) = try Self.serve(hosts)
        defer { kill(socat, SIGTERM) }
        let joined = Self.clevervm(["join", try Self.token(printed, port: port), "--root", hosts.joiner, "--address", "198.51.100.12", "--node-name", "beta"])
        #expect(!joined.succeeded)
        #expect(joined.output.contains("nothing was sent, nothing changed"), "\(joined.output)")
        #expect(FileManager.default.fileExists(atPath: "\(hosts.member)/etc/clevervm/join.secret"))
        #expect(!FileManager.default.fileExists(atPath: "\(hosts.joiner)/etc/clevervm/cluster.yaml"))
    }

    /// Three hosts: each joiner gets every member's address, and the member that was not asked (beta, when gamma
    /// joins through alpha) gets the new nodelist through its agent, which rewrites corosync.conf from the applied
    /// config (`CorosyncConfigFile.follow`, as `Agent.followCorosyncConf` does on a set-up host).
    @Test(.enabled(if: Self.toolsPresent)) func aThirdHostsAddressReachesEveryMembersNodelist() throws {
        let hosts = try Hosts()
        defer { hosts.remove() }
        let initialised = Self.clevervm(["init", "--root", hosts.member, "--name", "plant", "--address", "198.51.100.11", "--node-name", "alpha", "--json"])
        #expect(initialised.succeeded, "\(initialised.output)")
        let config = "\(hosts.member)/etc/clevervm/cluster.yaml"
        try (String(contentsOfFile: config, encoding: .utf8) + "quorum:\n  qdevice: 198.51.100.1\n").write(toFile: config, atomically: true, encoding: .utf8)
        let (port, socat) = try Self.serve(hosts)
        defer { kill(socat, SIGTERM) }

        let gamma = "\(hosts.directory)/gamma"
        for (root, name, address) in [(hosts.joiner, "beta", "198.51.100.12"), (gamma, "gamma", "198.51.100.13")] {
            // `clevervm init --name plant` again on the member: the same cluster, a new one-time secret.
            let again = Self.clevervm(["init", "--root", hosts.member, "--name", "plant", "--address", "198.51.100.11", "--node-name", "alpha", "--json"])
            let printed = try #require(Self.json(again.output)["token"] as? String, "\(again.output)")
            let joined = Self.clevervm(["join", try Self.token(printed, port: port), "--root", root, "--address", address, "--node-name", name, "--json"])
            #expect(joined.succeeded, "\(joined.output)")
        }

        let applied = try ConfigFile.load(path: config)
        #expect(applied.nodes.map(\.name) == ["alpha", "beta", "gamma"])
        let everyAddress = ["198.51.100.11", "198.51.100.12", "198.51.100.13"]
        for root in [hosts.member, gamma] {
            let corosync = try String(contentsOfFile: "\(root)/etc/corosync/corosync.conf", encoding: .utf8)
            for address in everyAddress { #expect(corosync.contains("ring0_addr: \(address)"), "\(root): \(corosync)") }
        }
        // beta still has the two-host nodelist it joined with; the config its agent applies brings gamma.
        let betaFile = "\(hosts.joiner)/etc/corosync/corosync.conf"
        let before = try String(contentsOfFile: betaFile, encoding: .utf8)
        #expect(!before.contains("198.51.100.13"))
        guard case .rewrite(let after) = CorosyncConfigFile.follow(applied, current: before) else {
            Issue.record("beta's corosync.conf would not follow the three-host config")
            return
        }
        for address in everyAddress { #expect(after.contains("ring0_addr: \(address)")) }
        #expect(after == (try String(contentsOfFile: "\(gamma)/etc/corosync/corosync.conf", encoding: .utf8)))
        // Once it says the same, the next apply (a resource change, a new epoch) reloads nothing.
        var next = applied
        next.epoch += 1
        #expect(CorosyncConfigFile.follow(next, current: after) == .unchanged)
    }
}

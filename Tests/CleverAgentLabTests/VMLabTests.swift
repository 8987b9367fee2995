import CleverControl
import Foundation
import Testing

/// Issue 5's acceptance on a real lab: the whole two-host installation with a real VM (QEMU, TCG) on
/// replicated volumes. The guest's writer appends numbered records with O_DIRECT and prints `ACK n` on its
/// console after each is durable; after a power-off it prints `RESUME n`, the last record it finds on disk.
@Suite(.serialized, .enabled(if: AgentLab.requirementsMet, "needs root, corosync, corosync-qnetd, corosync-qdevice, nft and qemu"))
struct VMLabTests {
    func console(_ lab: AgentLab, _ host: String) -> [String] {
        let text = (try? String(contentsOfFile: "\(lab.hostsDirectory)/\(host)/run/clevervm/mba7.console.log", encoding: .utf8)) ?? ""
        // The serial console ends lines with CR LF.
        return text.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    func lastNumber(_ lines: [String], _ prefix: String) -> Int? {
        lines.last { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
    }

    @Test func theVMMovesLiveOnPingLossAndMigrateAndSurvivesThePowerOffOfItsHost() throws {
        let lab = try AgentLab(name: "cvm", config: "examples/lab-vm.yaml")
        defer { lab.down() }
        do {
            // The VM starts on whichever host the cluster picks first (both are equal in this config); the
            // test follows it from there.
            var first: String?
            #expect(lab.waitUntil(60) {
                first = lab.placement("mba7", from: "alpha").first ?? lab.placement("mba7", from: "beta").first
                return first != nil
            })
            let a = try #require(first)
            let b = a == "alpha" ? "beta" : "alpha"
            #expect(lab.waitUntil(60) { self.lastNumber(self.console(lab, a), "ACK ") ?? 0 > 5 })
            // A client on the gateway holds a TCP session to the floating address, forwarded to the guest's echo
            // service, across the move.
            let session = GuestSession(lab: lab, address: "198.51.100.50", port: 7777)
            #expect(session.waitEstablished(), "no session to the guest: \(session.finish())")
            // a loses its gateway: the VM moves live to b; the writer goes on where it was.
            try lab.lab(["cut-ping", a])
            #expect(lab.waitUntil(40) { lab.placement("mba7", from: b) == [b] && lab.settled(b) })
            let echoed = session.finish()
            print("session to the floating address across the live move: \(echoed.split(separator: "\n").joined(separator: "; "))")
            #expect(echoed.contains("echo before") && echoed.contains("echo after"), "the session did not survive the move: \(echoed)")
            let move = lab.status(b)?.resources.first { $0.id == "mba7" }?.lastMove
            #expect(move?.mode == .live && move?.from == a && move?.to == b)
            print("live move: guest downtime \(move?.downtimeMilliseconds.map(String.init) ?? "?") ms")
            #expect((move?.downtimeMilliseconds ?? 10_000) < 2000)
            #expect(self.console(lab, b).filter { $0.hasPrefix("RESUME") }.isEmpty, "the guest must not reboot")
            #expect(lab.placement("vip", from: b) == [b])
            try lab.lab(["restore-ping", a])
            #expect(lab.waitUntil(60) { lab.settled(a) && lab.status(a)?.resources.allSatisfy {
                $0.replication == nil || $0.replication!.contains("UpToDate/UpToDate") } == true })
            #expect(lab.waitUntil(20) { lab.status(b)?.nodes.first { $0.name == a }?.attributes["pingd"] == "1000" })
            // Stickiness: a is fit again, nothing moves back.
            #expect(lab.placement("mba7", from: a) == [b])
            // The operator on b: `migrate` moves everything off b (live) and marks it unfit; `unmigrate`
            // removes the mark and nothing moves back.
            #expect(lab.clevervm(b, ["migrate"]).status == 0)
            #expect(lab.waitUntil(40) { lab.placement("mba7", from: a) == [a] && lab.settled(a) })
            #expect(lab.status(a)?.resources.first { $0.id == "mba7" }?.lastMove?.mode == .live)
            #expect(self.console(lab, a).filter { $0.hasPrefix("RESUME") }.count == 1, "migrate must move the VM live, not reboot it")
            #expect(lab.clevervm(b, ["unmigrate"]).status == 0)
            Thread.sleep(forTimeInterval: 3)
            #expect(lab.settled(b) && lab.placement("mba7", from: b) == [a], "after unmigrate nothing moves back")
            #expect(lab.waitUntil(60) { lab.status(b)?.resources.allSatisfy {
                $0.replication == nil || $0.replication!.contains("UpToDate/UpToDate") } == true })
            // a loses power: the VM boots on b and finds every record it had acknowledged.
            #expect(lab.waitUntil(10) { self.lastNumber(self.console(lab, a), "ACK ") ?? 0 > 20 })
            let acknowledged = try #require(self.lastNumber(self.console(lab, a), "ACK "))
            try lab.lab(["power", "off", a])
            #expect(lab.waitUntil(60) { self.console(lab, b).contains { $0.hasPrefix("RESUME") && Int($0.dropFirst(7)) ?? 0 > 0 } })
            let resumed = try #require(self.lastNumber(self.console(lab, b), "RESUME "))
            print("power off: last acknowledged record \(acknowledged) on alpha; the guest on beta resumed after \(resumed)")
            #expect(resumed >= acknowledged, "acknowledged record \(acknowledged) is lost: the disk ends at \(resumed)")
            let failover = lab.status(b)?.resources.first { $0.id == "mba7" }?.lastMove
            #expect(failover?.mode == .coldBoot && failover?.from == a && failover?.to == b, "\(String(describing: failover))")
        } catch {
            lab.dumpLogs()
            throw error
        }
    }
}

/// A TCP session from the lab's gateway namespace into the guest: one line echoed before the move, then held
/// open until `finish()` sends a second line on the same connection.
final class GuestSession {
    let flag: String
    let output: String
    let process: Process

    init(lab: AgentLab, address: String, port: Int) {
        let directory = NSTemporaryDirectory() + "cvm-session-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.flag = "\(directory)/go"
        self.output = "\(directory)/out"
        unlink(self.flag)
        let script = """
            import os, socket, sys, time
            out = open(sys.argv[2], "w", buffering=1)
            deadline = time.time() + 60
            while True:
                try:
                    s = socket.create_connection(("\(address)", \(port)), timeout=2)
                    break
                except OSError:
                    if time.time() > deadline: raise
                    time.sleep(0.3)
            s.settimeout(20)
            s.sendall(b"before\\n"); out.write("echo " + s.recv(100).decode().strip() + "\\n")
            while not os.path.exists(sys.argv[1]): time.sleep(0.05)
            s.sendall(b"after\\n"); out.write("echo " + s.recv(100).decode().strip() + "\\n")
            """
        self.process = Process()
        self.process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        self.process.arguments = ["netns", "exec", "\(lab.name)-gw", "/usr/bin/python3", "-c", script, self.flag, self.output]
        self.process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try? self.process.run()
    }

    var transcript: String { (try? String(contentsOfFile: self.output, encoding: .utf8)) ?? "" }

    func waitEstablished(seconds: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if self.transcript.contains("echo before") { return true }
            if !self.process.isRunning { return false }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }

    /// Sends the second line, waits for the client (at most 30 s) and returns what it got back.
    func finish() -> String {
        _ = FileManager.default.createFile(atPath: self.flag, contents: Data())
        let deadline = Date().addingTimeInterval(30)
        while self.process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if self.process.isRunning { self.process.terminate() }
        let transcript = self.transcript
        try? FileManager.default.removeItem(atPath: (self.flag as NSString).deletingLastPathComponent)
        return transcript
    }
}

import CleverCluster
import CleverExecutor
import CleverModel
import CleverSystem
import Foundation
import Testing

@testable import CleverQEMU

#if canImport(Glibc)
import Glibc
#endif

/// The heavier guest (scripts/build-debian-guest.sh): Debian bookworm with systemd on ext4, booted by SeaBIOS from
/// its disk volume under TCG, with qemu-guest-agent and a TCP echo service inside. Host a loses power (QEMU
/// killed while the guest writes); b boots it afresh from the same disk; the file system comes back clean and the
/// service answers again; the real guest agent freezes and thaws, and shuts the guest down cleanly.
///
/// The hibernate case (file systems frozen around it by the agent) is slower (a 384 MiB guest's RAM through the
/// state volume): it runs when CLEVERVM_DEBIAN_HIBERNATE=1.
@Suite(.serialized, .timeLimit(.minutes(12)))
struct DebianGuestLabTests {
    static let memoryMiB = 384

    @Test func aPowerOffLeavesACleanFileSystemAndTheGuestAgentShutsItDown() async throws {
        let lab = try GuestLab(memoryMiB: Self.memoryMiB, network: true, firmware: .bios, osDisk: try DebianGuest.build(), guestAgent: true)
        defer { lab.tearDown() }
        let onA = lab.agent(on: "a")
        let onB = lab.agent(on: "b")

        let first = try await DebianGuest.boot(lab, onA, on: "a")
        print("debian guest on a: \(first.timing)")
        // The writer is busy on the root file system when the power goes.
        try await DebianGuest.waitForTick(lab, "a", above: 0)
        let pid = try #require(onA.runningQEMU(lab.paths("a")))
        kill(pid, SIGKILL)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await onA.perform(.monitor, lab.context("a")) == .notRunning)

        let second = try await DebianGuest.boot(lab, onB, on: "b")
        print("debian guest on b after a's power-off: \(second.timing)")
        #expect(second.bootID != first.bootID, "a fresh boot on b")
        let console = lab.console("b")
        // The kernel replays ext4's journal; neither it nor systemd-fsck-root finds damage.
        let ext4 = console.filter { $0.contains("EXT4-fs (vda2)") }
        print("b's kernel on the root: \(ext4.joined(separator: " | "))")
        #expect(ext4.contains { $0.contains("mounted filesystem") }, "\(ext4)")
        for damage in ["EXT4-fs error", "UNEXPECTED INCONSISTENCY", "Failed to start systemd-fsck-root", "systemd-fsck-root.service: Failed",
                       "Failed to start systemd-remount-fs"] {
            #expect(!console.contains { $0.contains(damage) }, "b's console says \(damage): \(console.filter { $0.contains(damage) })")
        }
        let ticks = try await DebianGuest.waitForTick(lab, "b", above: 0)
        print("the writer goes on at \(ticks) on b")

        // The real qemu-guest-agent: a freeze stops the writer, a thaw lets it go on.
        let agent = GuestAgent(socket: lab.paths("b").guestAgentSocket, timeout: .seconds(10))
        #expect(await agent.freezeStatus() == "thawed")
        let frozen = await agent.freeze()
        #expect((frozen ?? 0) >= 1, "the agent froze the root: \(String(describing: frozen))")
        #expect(await agent.freezeStatus() == "frozen")
        let atFreeze = DebianGuest.ticks(lab, "b").max() ?? 0
        try await Task.sleep(for: .seconds(3))
        #expect((DebianGuest.ticks(lab, "b").max() ?? 0) <= atFreeze + 10, "a frozen file system takes no writes")
        #expect(await agent.thaw() == frozen)
        #expect(await agent.freezeStatus() == "thawed")
        try await DebianGuest.waitForTick(lab, "b", above: atFreeze + 10)
        #expect(DebianGuest.said(lab, "b", "FSFREEZE freeze") && DebianGuest.said(lab, "b", "FSFREEZE thaw"),
                "the guest's own fsfreeze hook ran both ways")

        // A clean shutdown through the agent (guest-shutdown), not ACPI and not a kill.
        let stopped = await onB.perform(.stop, lab.context("b", resource: lab.resource(stopMode: .shutdown), timeout: 120))
        #expect(stopped.exitCode == OCFExit.success, "\(stopped)")
        let report = stopped.report
        #expect(report?.mode == .shutdown && report?.message == "shut down by the guest agent", "\(stopped)")
        #expect(lab.console("b").contains { $0.contains("reboot: Power down") }, "\(lab.console("b").suffix(5))")

        // The volume's file system, checked from outside after the guest stopped: clean.
        let check = await DebianGuest.fsck(lab)
        #expect(check.status == 0, "e2fsck -fn on the root partition: \(check.output)")
        print("e2fsck -fn after the failover and the agent's shutdown: \(check.output.split(separator: "\n").last ?? "")")
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["CLEVERVM_DEBIAN_HIBERNATE"] == "1"))
    func hibernateFreezesTheFileSystemsAndResumeThawsThem() async throws {
        let lab = try GuestLab(memoryMiB: Self.memoryMiB, withStateVolume: true, network: true, firmware: .bios,
                               osDisk: try DebianGuest.build(), guestAgent: true)
        defer { lab.tearDown() }
        let onA = lab.agent(on: "a")
        let onB = lab.agent(on: "b")
        let booted = try await DebianGuest.boot(lab, onA, on: "a")
        try await DebianGuest.waitForTick(lab, "a", above: 0)
        let hibernated = await onA.perform(.stop, lab.context("a", timeout: 180))
        #expect(hibernated.exitCode == OCFExit.success, "\(hibernated)")
        let report = hibernated.report
        #expect(report?.mode == .hibernate)
        #expect(report?.message?.hasSuffix("file systems frozen by the guest agent") == true, "\(hibernated)")
        #expect(lab.console("a").last { $0.contains("FSFREEZE") }?.hasSuffix("FSFREEZE freeze") == true, "frozen when its RAM was saved")
        let lastOnA = DebianGuest.ticks(lab, "a").max() ?? 0

        let resumed = await onB.perform(.start, lab.context("b", timeout: 180))
        #expect(resumed.exitCode == OCFExit.success, "\(resumed)")
        #expect(resumed.report?.mode == .resume)
        #expect(resumed.report?.message == nil, "\(resumed)")
        #expect(await GuestAgent(socket: lab.paths("b").guestAgentSocket, timeout: .seconds(10)).freezeStatus() == "thawed")
        #expect(DebianGuest.said(lab, "b", "FSFREEZE thaw"))
        try await DebianGuest.waitForTick(lab, "b", above: lastOnA)
        let bootID = try await DebianGuest.echo(timeout: .seconds(60))
        #expect(bootID == booted.bootID, "resumed, not rebooted")
    }
}

/// Building, booting and probing the Debian guest.
enum DebianGuest {
    static let directory = "/var/cache/clevervm/debian-guest"
    /// Where scripts/build-boot-disk.sh puts the root partition (after the 62 MiB boot partition at 1 MiB).
    static let rootOffset = 63 << 20

    /// Builds the guest's disk (or finds it built) and returns its path.
    static func build() throws -> String {
        let build = Subprocess.run(["bash", "\(GuestLab.repositoryRoot)/scripts/build-debian-guest.sh", Self.directory], timeout: .seconds(1200))
        guard build.succeeded else { throw LabError("build-debian-guest.sh failed: \(build.output.suffix(2000))") }
        return "\(Self.directory)/disk.img"
    }

    struct Boot {
        var bootID: String
        /// From the start action to the kernel's first console line, to "CLEVERVM MULTI-USER", to the TCP
        /// service's answer.
        var firstLine: Duration?
        var multiUser: Duration
        var answered: Duration

        var timing: String {
            func seconds(_ duration: Duration?) -> String { duration.map { String(format: "%.1f s", Double(milliseconds($0)) / 1000) } ?? "?" }
            return "kernel's first line \(seconds(self.firstLine)), multi-user \(seconds(self.multiUser)), TCP service \(seconds(self.answered))"
        }
    }

    /// Cold-boots the guest on `host` and waits until systemd reached multi-user and the TCP service answers.
    static func boot(_ lab: GuestLab, _ agent: VMAgent, on host: String) async throws -> Boot {
        let clock = ContinuousClock()
        let began = clock.now
        let started = await agent.perform(.start, lab.context(host, timeout: 120))
        guard started.exitCode == OCFExit.success, started.report?.mode == .cold else {
            throw LabError("start on \(host): \(started)")
        }
        var firstLine: Duration?
        var multiUser: Duration?
        let deadline = clock.now + .seconds(420)
        while multiUser == nil, clock.now < deadline {
            let console = lab.console(host)
            if firstLine == nil, console.contains(where: { $0.contains("Linux version") }) { firstLine = clock.now - began }
            if console.contains(where: { $0.contains("CLEVERVM MULTI-USER") }) { multiUser = clock.now - began }
            try await Task.sleep(for: .milliseconds(200))
        }
        guard let multiUser else { throw LabError("no CLEVERVM MULTI-USER on \(host) in 420 s: \(lab.console(host).suffix(15))") }
        let bootID = try await Self.echo(timeout: .seconds(60))
        return Boot(bootID: bootID, firstLine: firstLine, multiUser: multiUser, answered: clock.now - began)
    }

    /// The boot id the guest's TCP service greets with, once it answers and echoes a line (from the lab's
    /// namespace, 198.51.100.232 → 198.51.100.231:7777).
    static func echo(timeout: Duration) async throws -> String {
        let script = """
            import socket, sys, time
            deadline = time.time() + float(sys.argv[1])
            while True:
                try:
                    s = socket.create_connection(("198.51.100.231", 7777), timeout=3)
                    f = s.makefile("rb")
                    greeting = f.readline().decode().strip()
                    s.sendall(b"ping\\n")
                    if f.readline().decode().strip() == "ping" and greeting.startswith("CLEVERVM-ECHO "):
                        print(greeting.split()[1]); break
                except OSError:
                    pass
                if time.time() > deadline: sys.exit("the TCP service does not answer")
                time.sleep(0.5)
            """
        let seconds = timeout.components.seconds
        let result = await Subprocess.run(["ip", "netns", "exec", GuestLab.namespace, "/usr/bin/python3", "-c", script, "\(seconds)"],
                                          timeout: timeout + .seconds(10))
        let bootID = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.succeeded, !bootID.isEmpty else { throw LabError("echo service: \(result.output)") }
        return bootID
    }

    /// The writer's `TICK n` lines on `host`'s console (a line may begin with getty's login prompt).
    static func ticks(_ lab: GuestLab, _ host: String) -> [Int] {
        lab.console(host).compactMap { line in line.range(of: "TICK ").flatMap { Int(line[$0.upperBound...]) } }
    }

    /// Whether a line of `host`'s console ends with `text` (what the guest's services print on ttyS0).
    static func said(_ lab: GuestLab, _ host: String, _ text: String) -> Bool {
        lab.console(host).contains { $0.hasSuffix(text) }
    }

    @discardableResult
    static func waitForTick(_ lab: GuestLab, _ host: String, above: Int, timeout: Duration = .seconds(180)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let last = Self.ticks(lab, host).max(), last > above { return last }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw LabError("no TICK above \(above) on \(host): \(lab.console(host).suffix(8))")
    }

    /// `e2fsck -fn` on the root partition of the VM's disk volume (its backing file), read-only.
    static func fsck(_ lab: GuestLab) async -> Subprocess.Result {
        await Subprocess.run(["e2fsck", "-fn", "\(lab.directory)/os0.img?offset=\(Self.rootOffset)"], timeout: .seconds(300))
    }
}

import CleverModel
import Foundation
import Testing

@testable import CleverAgent

#if canImport(Glibc)
import Glibc
#endif

/// The watchdog's device shell on a FIFO (what the lab's watchdog is; a FIFO refuses the ioctls with ENOTTY), and
/// the damaged cluster.json. No root, no lab: these run anywhere.
@Suite struct WatchdogShellTests {
    final class FIFO {
        let path: String
        let reader: Int32
        init() {
            self.path = NSTemporaryDirectory() + "clevervm-watchdog-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            mkfifo(self.path, 0o600)
            self.reader = open(self.path, O_RDONLY | O_NONBLOCK)
        }
        deinit {
            close(self.reader)
            unlink(self.path)
        }
        func drain() -> [UInt8] {
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(self.reader, &buffer, buffer.count)
                guard count > 0 else { return bytes }
                bytes += buffer[0..<count]
            }
        }
    }

    @Test func aMissingDeviceIsAClearErrorNamingIt() {
        do {
            _ = try WatchdogDevice(path: "/dev/no-such-watchdog", timeout: 5)
            Issue.record("opened a device that does not exist")
        } catch {
            #expect(error.description.contains("/dev/no-such-watchdog"))
            #expect(error.description.contains("watchdog: none"))
        }
    }

    @Test func aFIFOTakesKeepalivesAndTheMagicClose() throws {
        let fifo = FIFO()
        let device = try WatchdogDevice(path: fifo.path, timeout: 3)
        #expect(device.timeout == 3)  // ENOTTY: W from the config
        #expect(device.pet() == nil)
        #expect(device.pet() == nil)
        device.magicClose()
        #expect(fifo.drain() == [0x2E, 0x2E, UInt8(ascii: "V")])
    }

    /// The petting thread pets only when the core says so: here Corosync never answers (no corosync in a unit
    /// test), so it pets while nothing runs, stops once something runs, and a stop with something running leaves
    /// the device armed (no magic 'V').
    @Test func thePetterPetsOnlyWhenAllowed() throws {
        let fifo = FIFO()
        var config = ClusterConfig(name: "t", nodes: [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"], watchdog: .device(fifo.path))])
        config.properties.watchdogTimeout = Seconds(2)
        let petter = try WatchdogPetter(path: fifo.path, timing: FencingTiming(config: config), node: config.nodes[0], log: { _ in })
        petter.localResourcesChanged(runsSomething: false)
        for _ in 0..<5 {
            petter.agentBeat()
            usleep(100_000)
        }
        let whileIdle = fifo.drain()
        #expect(whileIdle.count >= 2, "petted \(whileIdle.count) times in 0.5 s")
        petter.localResourcesChanged(runsSomething: true)
        usleep(150_000)
        _ = fifo.drain()
        for _ in 0..<4 {
            petter.agentBeat()
            usleep(100_000)
        }
        #expect(fifo.drain().isEmpty, "petted while resources run and corosync does not answer")
        petter.stop()
        #expect(!fifo.drain().contains(UInt8(ascii: "V")))
    }

    @Test func aCleanStopWithNothingRunningDisarms() throws {
        let fifo = FIFO()
        let node = NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"], watchdog: .device(fifo.path))
        let petter = try WatchdogPetter(path: fifo.path, timing: FencingTiming(config: ClusterConfig(name: "t", nodes: [node])),
                                        node: node, log: { _ in })
        petter.localResourcesChanged(runsSomething: false)
        petter.stop()
        #expect(fifo.drain().last == UInt8(ascii: "V"))
    }

    /// A damaged cluster.json is set aside and reported; the agent starts from the config (issue 11, finding 8).
    @Test func aDamagedDocumentIsMovedAsideAndTheConfigUsed() throws {
        let directory = NSTemporaryDirectory() + "clevervm-doc-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("{\"config\": {\"name\": tor".utf8).write(to: URL(fileURLWithPath: "\(directory)/cluster.json"))
        try """
            cluster: {name: lab}
            nodes: [{name: alpha, id: 1, addresses: [198.51.100.11], watchdog: none}]
            """.write(toFile: "\(directory)/cluster.yaml", atomically: true, encoding: .utf8)
        var problems: [String] = []
        let document = try Agent.loadDocument(
            Agent.Options(configPath: "\(directory)/cluster.yaml", stateDirectory: directory), problems: &problems)
        #expect(document.config.name == "lab")
        #expect(problems.count == 1)
        #expect(problems.first?.contains("cluster.json is damaged") == true)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/cluster.json"))
        let aside = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("cluster.json.damaged-") }
        #expect(aside.count == 1)
    }
}

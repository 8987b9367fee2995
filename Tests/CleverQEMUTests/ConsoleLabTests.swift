import CleverCluster
import CleverExecutor
import CleverModel
import Foundation
import Testing

@testable import CleverQEMU

#if canImport(Glibc)
import Glibc
#endif

/// The serial console and the screen of a VM booted by SeaBIOS from its disk, with a shell on ttyS0.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct ConsoleLabTests {
    @Test func typeIntoTheGuestShellReadTheAnswerDetachAndTakeAScreenshot() async throws {
        let lab = try GuestLab(firmware: .bios, shell: true)
        defer { lab.tearDown() }
        let agent = lab.agent()
        let started = await agent.perform(.start, lab.context("a"))
        #expect(started.exitCode == OCFExit.success, "\(started)")
        let deadline = ContinuousClock.now + .seconds(120)
        while !lab.console("a").contains("GUEST UP"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(lab.console("a").contains("GUEST UP"), "\(lab.console("a").suffix(5))")
        let paths = lab.paths("a")
        #expect(((try? FileManager.default.attributesOfItem(atPath: paths.consoleSocket))?[.posixPermissions] as? Int) == 0o600,
                "the console is root-only")

        // A program's connection (what a relay or the web console uses): a command typed, its answer read.
        let connection = try ConsoleSession.Connection.open(paths.consoleSocket)
        var answer = ""
        for _ in 0..<10 where !answer.contains("CONSOLE-42") {
            try await connection.send("echo CONSOLE-$((6 * 7))\n")
            answer += try await connection.read(for: .seconds(3))
        }
        await connection.close()
        #expect(answer.contains("CONSOLE-42"), "console said: \(answer.suffix(300))")

        // The interactive attach of `clevervm console`: keys in, screen out, Ctrl-] detaches.
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        #expect(pipe(&input) == 0 && pipe(&output) == 0)
        let socket = paths.consoleSocket
        let (readInput, writeOutput) = (input[0], output[1])
        let attached = Task.detached { try ConsoleSession.attach(socket: socket, input: readInput, output: writeOutput, rawTerminal: false) }
        try await Task.sleep(for: .milliseconds(300))
        var seen = ""
        let until = ContinuousClock.now + .seconds(15)
        _ = fcntl(output[0], F_SETFL, fcntl(output[0], F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Typed again every 3 s: on a loaded machine the guest's shell may not be reading yet (TCG), and a line typed
        // then is lost, as it would be for a person, who types it again.
        var typedAt = ContinuousClock.now - .seconds(10)
        while !seen.contains("ATTACHED-10"), ContinuousClock.now < until {
            if ContinuousClock.now - typedAt > .seconds(3) {
                ConsoleSession.writeAll(input[1], Array("echo ATTACHED-$((5 + 5))\n".utf8)[...])
                typedAt = ContinuousClock.now
            }
            let count = read(output[0], &buffer, buffer.count)
            if count > 0 { seen += String(decoding: buffer[..<count], as: UTF8.self) } else { try await Task.sleep(for: .milliseconds(50)) }
        }
        ConsoleSession.writeAll(input[1], [ConsoleSession.detachKey][...])
        #expect(try await attached.value == .detached)
        #expect(seen.contains("ATTACHED-10"), "attach saw: \(seen.suffix(300))")
        for fd in input + output { close(fd) }
        #expect(await agent.perform(.monitor, lab.context("a")) == .success, "detaching leaves the VM running")

        // The screen: a PNG from QMP screendump of the VGA card.
        let png = "\(lab.directory)/screen.png"
        let bytes = try await VMScreen.screenshot(vm: "vm1", runDirectory: "\(lab.directory)/a", to: png)
        let data = try Data(contentsOf: URL(fileURLWithPath: png))
        #expect(bytes == data.count && data.count > 100)
        #expect(data.starts(with: VMScreen.pngSignature))
        // IHDR: width and height of the text-mode or graphics screen, both above zero.
        let width = data[16..<20].reduce(0) { $0 << 8 | Int($1) }
        let height = data[20..<24].reduce(0) { $0 << 8 | Int($1) }
        #expect(width >= 320 && height >= 200, "\(width)x\(height)")
        print("screenshot \(width)x\(height), \(bytes) bytes")

        // From the host that does not run the VM: through the relay of the host that does. Each "host" has its
        // relay; a wrong key is refused; after a live move the client reconnects to the new host's relay.
        let key = Array("cluster-key-of-this-test".utf8)
        let relays = try ["a", "b"].map { host in
            let socket = lab.paths(host).consoleSocket
            return try ConsoleRelay.Server(address: "127.0.0.1", port: 0, key: key) { channel, vm in
                channel == .serial && vm == "vm1" && FileManager.default.fileExists(atPath: socket) ? socket : nil
            }
        }
        defer { relays.forEach { $0.stop() } }
        #expect(throws: ConsoleRelay.Failure.self) { try ConsoleRelay.connect(address: "127.0.0.1", port: relays[0].port, vm: "vm1", key: Array("wrong".utf8)) }
        #expect(throws: ConsoleRelay.Failure.self) { try ConsoleRelay.connect(address: "127.0.0.1", port: relays[1].port, vm: "vm1", key: key) }
        #expect(try await Self.ask(relayPort: relays[0].port, key: key, "echo RELAYED-$((20 + 1))", expect: "RELAYED-21"))

        let moved = await lab.agent(on: "a", prepareTarget: "b").perform(.migrateTo, lab.context("a", migrationTarget: "b"))
        #expect(moved.exitCode == OCFExit.success, "\(moved)")
        #expect(try await Self.ask(relayPort: relays[1].port, key: key, "echo MOVED-$((40 + 2))", expect: "MOVED-42"),
                "the same shell answers on the new host")
    }

    /// Connects through a relay, types `command`, and waits up to 20 s for `expect` in the console's output.
    static func ask(relayPort: Int, key: [UInt8], _ command: String, expect: String) async throws -> Bool {
        let fd = try ConsoleRelay.connect(address: "127.0.0.1", port: relayPort, vm: "vm1", key: key)
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var seen = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        let until = ContinuousClock.now + .seconds(20)
        var sent = ContinuousClock.now - .seconds(10)
        while !seen.contains(expect), ContinuousClock.now < until {
            if ContinuousClock.now - sent > .seconds(3) {
                ConsoleSession.writeAll(fd, Array("\(command)\n".utf8)[...])
                sent = ContinuousClock.now
            }
            let count = read(fd, &buffer, buffer.count)
            if count > 0 { seen += String(decoding: buffer[..<count], as: UTF8.self) } else { try await Task.sleep(for: .milliseconds(50)) }
        }
        return seen.contains(expect)
    }
}

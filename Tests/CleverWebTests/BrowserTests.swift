import CleverWeb
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The console in headless Chromium (Debian's, driven by Playwright: scripts/web-browser-test.py), served live on
/// loopback over the in-memory cluster: log in, the overview shows the VM, migrate with its preview and the VM page
/// follows the move without a reload, what-if, events. Screenshots in .build/web-screenshots/local-*.png.
/// The lab version (real agents, the ping cut) is scripts/test-web.sh.
@Suite(.serialized) struct BrowserTests {
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
            && Self.shell("python3 -c 'import playwright'").status == 0
    }

    static func shell(_ command: String, environment: [String: String] = [:]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard (try? process.run()) != nil else { return (127, "cannot run /bin/sh") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The package root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test(.enabled(if: BrowserTests.available, "needs Debian's chromium and Playwright (scripts/install-deps.sh)"))
    func theConsoleInChromium() async throws {
        let harness = try await RouteTests.harness()
        let feed = harness.console.feed
        let poller = Task { await feed.run() }
        defer { poller.cancel() }
        let app = Application(router: harness.console.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let environment = [
                "BASE": "http://127.0.0.1:\(port)/", "USER": "olga", "PASSWORD": RouteTests.operatorPassword,
                "OUT": Self.root + "/.build/web-screenshots",
            ]
            let script = Self.root + "/scripts/web-browser-test.py"
            let result = await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(returning: Self.shell("timeout 300 python3 \(script)", environment: environment))
                }
            }
            print(result.output)
            #expect(result.status == 0, "the browser checks: \(result.output)")
        }
        #expect(harness.agent.running("mba7") == ["beta"])
        #expect(harness.agent.volume?.resolved == true)
        #expect(harness.agent.volume?.requests.contains { $0.command == .resolve && $0.dryRun == true && $0.discard == "beta" } == true)
    }
}

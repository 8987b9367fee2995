import CleverCluster
import CleverControl
import CleverModel
import CleverTesting
import CleverWeb
import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Testing

/// `scripts/bench-web.sh --local` (CLEVERVM_WEB_BENCH=1): the console served live on loopback over the in-memory
/// cluster with 50 VMs (process stand-ins). Prints figures beside references measured in the same run; asserts no
/// timing. Page load: GET / with a session, beside the agent's status answer over the control socket alone. Event
/// latency: a forcestop through the API until the console's feed (what the SSE stream sends next) shows the VM
/// stopped, beside the console's poll interval.
@Suite struct WebBenchmark {
    static let enabled = ProcessInfo.processInfo.environment["CLEVERVM_WEB_BENCH"] == "1"

    static func config(vms: Int) -> ClusterConfig {
        var config = Fixtures.twoHost()
        config.constraints = []
        config.resources = (1...vms).map { index in
            ResourceConfig(id: String(format: "vm%02d", index), kind: .process(ProcessSpec(command: ["/bin/sleep", "infinity"])))
        }
        return config
    }

    static func median(_ values: [Duration]) -> Double {
        let sorted = values.sorted()
        let middle = sorted[sorted.count / 2]
        return Double(middle.components.seconds) * 1000 + Double(middle.components.attoseconds) / 1e15
    }

    @Test(.enabled(if: WebBenchmark.enabled, "a benchmark: scripts/bench-web.sh --local"))
    func pageLoadAndEventLatencyWith50VMs() async throws {
        let vms = 50
        let harness = try await RouteTests.harness(config: Self.config(vms: vms))
        let feed = harness.console.feed
        let poller = Task { await feed.run() }
        defer { poller.cancel() }
        let link = harness.console.options.link
        let clock = ContinuousClock()
        let app = Application(router: harness.console.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let login = try await RouteTests.login(client, user: "olga", password: RouteTests.operatorPassword)
            var pageTimes: [Duration] = [], statusTimes: [Duration] = []
            var bytes = 0
            for _ in 0..<30 {
                let start = clock.now
                try await client.execute(uri: "/", method: .get, headers: RouteTests.headers(login)) { response in
                    bytes = response.body.readableBytes
                    #expect(String(buffer: response.body).components(separatedBy: "data-resource=\"vm").count - 1 == vms)
                }
                pageTimes.append(clock.now - start)
                let statusStart = clock.now
                _ = try await link.status()
                statusTimes.append(clock.now - statusStart)
            }
            print(String(format: "page load (GET / with %d VMs, %d bytes): median %.1f ms | reference: the agent's status over the control socket: median %.1f ms",
                         vms, bytes, Self.median(pageTimes), Self.median(statusTimes)))
            var latencies: [Duration] = []
            for index in 1...10 {
                let vm = String(format: "vm%02d", index)
                let (id, frames) = await feed.subscribe()
                let start = clock.now
                try await client.execute(uri: "/api/v1/forcestop/\(vm)", method: .post, headers: RouteTests.headers(login, csrf: login.csrf),
                                         body: ByteBuffer(string: "{}")) { #expect($0.status == .ok) }
                for await message in frames {
                    guard case .frame(let frame) = message else { continue }
                    if frame.status?.resources.first(where: { $0.id == vm })?.roles.isEmpty == true { break }
                }
                latencies.append(clock.now - start)
                await feed.unsubscribe(id)
            }
            print(String(format: "event latency (forcestop via API -> the feed the SSE stream sends shows it stopped, %d VMs): median %.1f ms, max %.1f ms | reference: poll interval %.0f ms",
                         vms, Self.median(latencies), Self.median([latencies.max()!]), Self.median([harness.console.options.pollInterval])))
        }
    }
}

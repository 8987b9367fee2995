import CleverModel
import Testing

@testable import CleverConfig

/// The watchdog keys (issue 11, findings 1-3): a device or an explicit none per host, W, and the policies and
/// timeouts `config check` refuses because they let a VM run twice.
@Suite struct WatchdogConfigTests {
    @Test func watchdogKeysAreRead() throws {
        let config = try #require(
            parse(
                """
                cluster:
                  name: lab
                  properties: {watchdog-timeout: 3s, token: 500ms}
                nodes:
                  - {name: alpha, id: 1, addresses: [198.51.100.11], watchdog: /dev/watchdog}
                  - {name: beta, id: 2, addresses: [198.51.100.12], watchdog: none, watchdog-timeout: 10s}
                  - {name: gamma, id: 3, addresses: [198.51.100.13]}
                quorum: {qdevice: 198.51.100.1, timeout: 2s, sync-timeout: 4s}
                """))
        #expect(config.nodes.map(\.watchdog) == [.device("/dev/watchdog"), .disabled, nil])
        #expect(config.nodes[1].watchdogTimeout == Seconds(10))
        #expect(config.properties.watchdogTimeout == Seconds(3))
        #expect(config.properties.token == Seconds(0.5))
        #expect(config.quorum?.timeout == Seconds(2))
        #expect(config.quorum?.syncTimeout == Seconds(4))
        // Round trip through the renderer.
        #expect(parse(ConfigRenderer.render(config)) == config)
    }

    @Test func aWatchdogIsAPathOrNone() {
        expectSingleError(
            twoNodes.replacingOccurrences(of: "addresses: [198.51.100.11]}", with: "addresses: [198.51.100.11], watchdog: softdog}"),
            line: 4, column: 64, path: "nodes[0].watchdog", containing: "neither a watchdog device path nor none")
    }

    @Test func watchdogTimeoutIsWholeSeconds() {
        expectSingleError(
            twoNodes.replacingOccurrences(of: "  name: lab\n", with: "  name: lab\n  properties: {watchdog-timeout: 1500ms}\n"),
            line: 3, column: 34, path: "cluster.properties.watchdog-timeout", containing: "whole seconds")
    }

    @Test func freezeAndIgnoreAreRefusedWithAVMOrAVolume() {
        for policy in ["freeze", "ignore"] {
            let yaml = """
                cluster:
                  name: lab
                  properties: {no-quorum-policy: \(policy)}
                nodes:
                  - {name: alpha, id: 1, addresses: [198.51.100.11]}
                resources:
                  - {id: disk0, type: volume, size: 1MiB, backing: /var/lib/clevervm/disk0.img, port: 7789}
                """
            expectSingleError(yaml, line: 3, column: 34, path: "cluster.properties.no-quorum-policy", containing: "would run twice")
        }
        // Without anything that must never run twice, freeze stays allowed.
        #expect(parse(twoNodes.replacingOccurrences(of: "  name: lab\n", with: "  name: lab\n  properties: {no-quorum-policy: freeze}\n")) != nil)
    }

    @Test func timeoutsThatDoNotFitAreRefused() {
        expectSingleError(
            twoNodes.replacingOccurrences(of: "  name: lab\n", with: "  name: lab\n  properties: {token: 1s, consensus: 1s}\n"),
            line: 3, column: 38, path: "cluster.properties.consensus", containing: "1.2 × token")
        expectSingleError(
            twoNodes + "quorum: {qdevice: 198.51.100.1, timeout: 5s, sync-timeout: 3s}\n",
            line: 6, column: 60, path: "quorum.sync-timeout", containing: "sync-timeout ≥ timeout")
        expectSingleError(
            twoNodes.replacingOccurrences(of: "  name: lab\n", with: "  name: lab\n  properties: {token: 3s, watchdog-timeout: 2s}\n")
                .replacingOccurrences(of: "addresses: [198.51.100.11]}", with: "addresses: [198.51.100.11], watchdog: /dev/watchdog}"),
            line: 3, column: 45, path: "cluster.properties.watchdog-timeout", containing: "shorter than the token")
    }

    /// Survivors wait the departed host's last possible pet + W: derived, never shorter than W.
    @Test func survivorWaitIsDerivedFromTheTimeouts() {
        var config = ClusterConfig(
            name: "lab",
            properties: ClusterProperties(watchdogTimeout: Seconds(2)),
            nodes: [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"], watchdog: .device("/dev/watchdog")),
                    NodeConfig(name: "beta", id: 2, addresses: ["198.51.100.12"], watchdog: .disabled)],
            quorum: QuorumConfig(qdeviceHost: "198.51.100.1"))
        var timing = FencingTiming(config: config)
        // Corosync may stay silent for token 1 s + consensus 1.2 s + qdevice sync 5 s: last pet 7.2 s after the
        // fault; the survivor's view change is at least a token after it: 7.2 - 1 + W 2 s + reset 0.25 s.
        #expect(timing.livenessBound == Seconds(7.2))
        #expect(abs(timing.survivorWait(for: config.nodes[0]).value - 8.45) < 1e-9)
        // watchdog none: nothing bounds the host's last pet; survivors wait its self-fence time (2 s), as before.
        #expect(timing.survivorWait(for: config.nodes[1]) == config.properties.selfFenceTimeout)
        config.quorum = nil
        config.properties.token = Seconds(0.5)
        timing = FencingTiming(config: config)
        // Without a qdevice the verdict comes with the ring: consensus (600 ms) + W + reset.
        #expect(abs(timing.survivorWait(for: config.nodes[0]).value - 2.85) < 1e-9)
        #expect(timing.survivorWait(for: config.nodes[0]) >= Seconds(2))
    }
}

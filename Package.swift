// swift-tools-version:6.0
import PackageDescription

// One target per layer: the folder list is the architecture (docs/architecture.md).
let package = Package(
    name: "CleverVM",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "clevervm", targets: ["CleverCLI"]),
        .executable(name: "corosync-probe", targets: ["CorosyncProbe"]),
        .executable(name: "clevervm-volume", targets: ["CleverVolumeDaemon"]),
        .executable(name: "clevervm-web", targets: ["CleverWebDaemon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // Pure: the cluster model (config and state types, scores, rules). No I/O.
        .target(name: "CleverModel"),
        // Config file (YAML) to model, with file:line:column diagnostics.
        .target(name: "CleverConfig", dependencies: ["CleverModel", .product(name: "Yams", package: "Yams")]),
        // Pure: (config, state, now) -> placement + transition; explain; event simulation.
        .target(name: "CleverScheduler", dependencies: ["CleverModel"]),
        // Pure: the replicated cluster state machine, its message format, and the coordinator.
        .target(name: "CleverCluster", dependencies: ["CleverModel", "CleverScheduler"]),
        // I/O helpers shared by the shells: subprocesses, daemons, atomic files.
        .target(name: "CleverSystem", dependencies: ["CSpawn", .product(name: "Logging", package: "swift-log")]),
        // The local resource manager: resource agents (process, ip, ping, ocf, lsb) and recurring monitors.
        .target(name: "CleverExecutor", dependencies: ["CleverModel", "CleverCluster", "CleverSystem"]),
        // VMs on QEMU: QMP client, command line, the `vm` resource agent (start/stop/monitor/migrate, hibernate).
        // CleverReplication's frame sealer encrypts the console relay.
        .target(name: "CleverQEMU", dependencies: ["CleverModel", "CleverExecutor", "CleverCluster", "CleverSystem",
                                                   "CleverReplication", .product(name: "Crypto", package: "swift-crypto")]),
        // The control socket's protocol, client and server, and the status report.
        .target(name: "CleverControl", dependencies: ["CleverModel", "CleverCluster", "CleverScheduler", "CleverSystem"]),
        // Pure: every decision the agent makes (ledger and coordinator wiring, verdict pause, timers, control calls).
        .target(name: "CleverAgentCore", dependencies: ["CleverModel", "CleverCluster", "CleverControl", "CleverReplication"]),
        // The agent daemon: Corosync in, ledger and coordinator, executor, control socket.
        .target(name: "CleverAgent", dependencies: [
            "CleverModel", "CleverCluster", "CleverConfig", "CleverControl", "CleverExecutor", "CleverSystem", "Corosync",
            "CleverVolume", "CleverReplication", "CleverQEMU", "CorosyncConfig",
            "CleverAgentCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Host set-up (init, join, qdevice setup, remove): pure plans of what to write, and the join token.
        .target(name: "CleverSetup", dependencies: ["CleverModel", "CleverConfig", "CorosyncConfig"]),
        // Pacemaker CIB (XML) import into the model.
        .target(name: "CleverCIB", dependencies: ["CleverModel"]),
        // Thin executable: the `clevervm` command.
        .executableTarget(
            name: "CleverCLI",
            dependencies: [
                "CleverModel", "CleverConfig", "CleverScheduler", "CleverCIB", "CleverCluster", "CleverControl", "CleverAgent",
                "CleverLab", "CleverCampaign", "CleverSystem", "CleverVolume", "CleverQEMU",
                "CleverSetup", "CleverAgentCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The Corosync client libraries (C; Debian libcpg-dev libvotequorum-dev libcmap-dev libquorum-dev). Headers
        // are in /usr/include and the module map links cpg, votequorum, cmap, quorum. No `pkgConfig:` on purpose:
        // their .pc files pull in libqb's `-pthread`, which SwiftPM rejects with a warning on every build.
        .systemLibrary(name: "CCorosync"),
        // Swift binding: process groups (CPG), vote quorum, cmap; dispatch on dedicated threads.
        .target(name: "Corosync", dependencies: ["CCorosync"]),
        // Pure: corosync.conf (+ qdevice) text from the cluster config.
        .target(name: "CorosyncConfig", dependencies: ["CleverModel"]),
        // C: three wrappers for glibc GNU extensions the lab needs (addclosefrom_np, pipe2, POSIX_SPAWN_SETSID).
        .target(name: "CSpawn"),
        // The local multi-host lab: namespaces, bridge, real corosync/qnetd/qdevice per host.
        .target(name: "CleverLab", dependencies: ["CleverModel", "CorosyncConfig", "CleverSystem", "CSpawn"]),
        // The fault campaign and the lab tests' harness: a lab driven through the clevervm binary, watched from outside.
        .target(name: "CleverCampaign", dependencies: ["CleverControl", "CleverSystem", "CleverVolume", "CleverTesting", "CleverConfig"]),
        // Test helper: joins a CPG group, prints deliveries, views and quorum as JSON lines.
        .executableTarget(name: "CorosyncProbe", dependencies: ["Corosync"]),
        // Test support: fake clock, fixtures, scenario runner helpers.
        .target(name: "CleverTesting", dependencies: ["CleverModel", "CleverConfig", "CleverScheduler", "CleverCluster", "CleverAgentCore", "CleverControl", "CleverSystem"]),

        // Pure: big-endian byte reading and writing with bounds checks, shared by the wire codecs.
        .target(name: "CleverBytes"),
        // Pure: NBD protocol codec and server handshake state machine. No I/O.
        .target(name: "CleverNBD", dependencies: ["CleverBytes"]),
        // Pure: replication roles, disk states, generation ids, sync decision, bitmap, split-brain policies,
        // promotion rules, replication wire frames. No I/O.
        .target(name: "CleverReplication", dependencies: ["CleverBytes", .product(name: "Crypto", package: "swift-crypto")]),
        // I/O shell of a replicated volume: NBD server, metadata files, replication link, control socket.
        .target(
            name: "CleverVolume",
            dependencies: [
                "CleverNBD", "CleverReplication", "CleverModel", "CleverSystem", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Thin executable: one volume process, `clevervm-volume serve|status|promote|...`.
        .executableTarget(
            name: "CleverVolumeDaemon",
            dependencies: [
                "CleverVolume", "CleverSystem", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The web console, HTTP API and Prometheus metrics: a process of its own that talks to the local agent only
        // over the control socket (docs/architecture-web.md).
        .target(
            name: "CleverWeb",
            dependencies: [
                "CleverModel", "CleverCluster", "CleverScheduler", "CleverControl", "CleverSystem", "CleverVolume", "CleverReplication",
                "CleverQEMU",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.copy("Templates"), .copy("Static")]
        ),
        // Thin executable: `clevervm-web serve|user`.
        .executableTarget(
            name: "CleverWebDaemon",
            dependencies: ["CleverWeb", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "CleverWebTests",
            dependencies: ["CleverWeb", "CleverControl", "CleverModel", "CleverCluster", "CleverTesting", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           "CleverQEMU"]
        ),
        .testTarget(name: "CleverNBDTests", dependencies: ["CleverNBD", "CleverBytes"]),
        .testTarget(name: "CleverReplicationTests", dependencies: ["CleverReplication", "CleverBytes"]),
        // The guest crash test boots the test guest with the VM agent's QEMU command line.
        .testTarget(
            name: "CleverVolumeTests",
            dependencies: ["CleverVolume", "CleverNBD", "CleverReplication", "CleverQEMU", "CleverModel", "CleverSystem"]
        ),

        .testTarget(name: "CleverModelTests", dependencies: ["CleverModel"]),
        .testTarget(name: "CleverConfigTests", dependencies: ["CleverConfig", "CleverTesting"], exclude: ["Fixtures"]),
        .testTarget(name: "CleverSchedulerTests", dependencies: ["CleverScheduler", "CleverConfig", "CleverTesting"]),
        .testTarget(name: "CleverClusterTests", dependencies: ["CleverCluster", "CleverTesting", "CleverAgentCore", "CleverControl", "CleverReplication"], exclude: ["Golden"]),
        .testTarget(name: "CleverExecutorTests", dependencies: ["CleverExecutor", "CleverCluster", "CleverModel", "CleverSystem"]),
        // The control protocol's golden bytes and the control socket (in-process, no root).
        .testTarget(name: "CleverControlTests", dependencies: ["CleverControl", "CleverCluster", "CleverModel", "CleverTesting", "CleverSystem", .product(name: "Logging", package: "swift-log")], exclude: ["Golden"]),
        .testTarget(name: "CleverCIBTests", dependencies: ["CleverCIB", "CleverScheduler", "CleverTesting"]),
        .testTarget(name: "CleverCLITests", dependencies: ["CleverCLI", "CleverTesting", "CleverSystem", "CleverConfig", "CorosyncConfig"]),
        .testTarget(name: "CorosyncTests", dependencies: ["Corosync"]),
        // Real QEMU under TCG with nbdkit disks; builds the test guest with scripts/build-test-guest.sh.
        .testTarget(name: "CleverQEMUTests", dependencies: ["CleverQEMU", "CleverExecutor", "CleverModel", "CleverCluster", "CleverReplication", "CleverTesting"]),
        .testTarget(name: "CorosyncConfigTests", dependencies: ["CorosyncConfig", "CleverModel"]),
        .testTarget(name: "CleverSetupTests", dependencies: ["CleverSetup", "CleverModel", "CleverConfig"]),
        // Lab tests need root, corosync, corosync-qnetd, corosync-qdevice; they run corosync-probe in lab hosts.
        // The agent on a real lab, driven through the clevervm binary (root, corosync, qnetd, nft).
        .testTarget(name: "CleverAgentLabTests", dependencies: ["CleverCampaign", "CleverControl", "CleverSystem", "CleverCLI", "CorosyncProbe", "CleverTesting", "CleverAgent", "CleverVolume", "CleverModel"]),
        .testTarget(name: "CleverLabTests", dependencies: ["CleverLab", "CleverModel", "CorosyncProbe", "CleverCLI"]),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.swiftLanguageMode(.v6))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}

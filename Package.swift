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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
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
        .target(name: "CleverSystem", dependencies: ["CSpawn"]),
        // The local resource manager: resource agents (process, ip, ping, ocf, lsb) and recurring monitors.
        .target(name: "CleverExecutor", dependencies: ["CleverModel", "CleverCluster", "CleverSystem"]),
        // VMs on QEMU: QMP client, command line, the `vm` resource agent (start/stop/monitor/migrate, hibernate).
        .target(name: "CleverQEMU", dependencies: ["CleverModel", "CleverExecutor", "CleverCluster", "CleverSystem"]),
        // The control socket's protocol, client and server, and the status report.
        .target(name: "CleverControl", dependencies: ["CleverModel", "CleverCluster", "CleverScheduler"]),
        // The agent daemon: Corosync in, ledger and coordinator, executor, control socket.
        .target(name: "CleverAgent", dependencies: [
            "CleverModel", "CleverCluster", "CleverConfig", "CleverControl", "CleverExecutor", "CleverSystem", "Corosync",
            "CleverVolume", "CleverQEMU",
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
                "CleverLab", "CleverSystem", "CleverVolume",
                "CleverSetup",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
        // Test helper: joins a CPG group, prints deliveries, views and quorum as JSON lines.
        .executableTarget(name: "CorosyncProbe", dependencies: ["Corosync"]),
        // Test support: fake clock, fixtures, scenario runner helpers.
        .target(name: "CleverTesting", dependencies: ["CleverModel", "CleverConfig", "CleverScheduler", "CleverCluster"]),

        // Pure: big-endian byte reading and writing with bounds checks, shared by the wire codecs.
        .target(name: "CleverBytes"),
        // Pure: NBD protocol codec and server handshake state machine. No I/O.
        .target(name: "CleverNBD", dependencies: ["CleverBytes"]),
        // Pure: replication roles, disk states, generation ids, sync decision, bitmap, split-brain policies,
        // promotion rules, replication wire frames. No I/O.
        .target(name: "CleverReplication", dependencies: ["CleverBytes"]),
        // I/O shell of a replicated volume: NBD server, metadata files, replication link, control socket.
        .target(
            name: "CleverVolume",
            dependencies: [
                "CleverNBD", "CleverReplication", "CleverModel", .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Thin executable: one volume process, `clevervm-volume serve|status|promote|...`.
        .executableTarget(
            name: "CleverVolumeDaemon",
            dependencies: ["CleverVolume", .product(name: "ArgumentParser", package: "swift-argument-parser")]
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
        .testTarget(name: "CleverClusterTests", dependencies: ["CleverCluster", "CleverTesting"]),
        .testTarget(name: "CleverExecutorTests", dependencies: ["CleverExecutor", "CleverCluster", "CleverModel", "CleverSystem"]),
        .testTarget(name: "CleverCIBTests", dependencies: ["CleverCIB", "CleverScheduler", "CleverTesting"]),
        .testTarget(name: "CleverCLITests", dependencies: ["CleverCLI", "CleverTesting", "CleverSystem"]),
        .testTarget(name: "CorosyncTests", dependencies: ["Corosync"]),
        // Real QEMU under TCG with nbdkit disks; builds the test guest with scripts/build-test-guest.sh.
        .testTarget(name: "CleverQEMUTests", dependencies: ["CleverQEMU", "CleverExecutor", "CleverModel", "CleverCluster"]),
        .testTarget(name: "CorosyncConfigTests", dependencies: ["CorosyncConfig", "CleverModel"]),
        .testTarget(name: "CleverSetupTests", dependencies: ["CleverSetup", "CleverModel", "CleverConfig"]),
        // Lab tests need root, corosync, corosync-qnetd, corosync-qdevice; they run corosync-probe in lab hosts.
        // The agent on a real lab, driven through the clevervm binary (root, corosync, qnetd, nft).
        .testTarget(name: "CleverAgentLabTests", dependencies: ["CleverControl", "CleverSystem", "CleverCLI", "CorosyncProbe", "CleverTesting", "CleverAgent", "CleverVolume", "CleverModel"]),
        .testTarget(name: "CleverLabTests", dependencies: ["CleverLab", "CleverModel", "CorosyncProbe", "CleverCLI"]),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.swiftLanguageMode(.v6))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}

// swift-tools-version:6.0
import PackageDescription

// One target per layer: the folder list is the architecture (docs/architecture.md).
let package = Package(
    name: "CleverVM",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "clevervm", targets: ["CleverCLI"]),
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
        // Pacemaker CIB (XML) import into the model.
        .target(name: "CleverCIB", dependencies: ["CleverModel"]),
        // Thin executable: the `clevervm` command.
        .executableTarget(
            name: "CleverCLI",
            dependencies: [
                "CleverModel", "CleverConfig", "CleverScheduler", "CleverCIB",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Test support: fake clock, fixtures, scenario runner helpers.
        .target(name: "CleverTesting", dependencies: ["CleverModel", "CleverConfig", "CleverScheduler"]),

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
        .testTarget(name: "CleverVolumeTests", dependencies: ["CleverVolume", "CleverNBD", "CleverReplication"]),

        .testTarget(name: "CleverModelTests", dependencies: ["CleverModel"]),
        .testTarget(name: "CleverConfigTests", dependencies: ["CleverConfig", "CleverTesting"]),
        .testTarget(name: "CleverSchedulerTests", dependencies: ["CleverScheduler", "CleverConfig", "CleverTesting"]),
        .testTarget(name: "CleverCIBTests", dependencies: ["CleverCIB", "CleverScheduler", "CleverTesting"]),
        .testTarget(name: "CleverCLITests", dependencies: ["CleverTesting"]),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.swiftLanguageMode(.v6))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}

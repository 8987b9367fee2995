/// One resource as configured. `kind` carries what the resource is; `meta` how the cluster treats it.
public struct ResourceConfig: Hashable, Sendable, Codable {
    public var id: String
    public var kind: ResourceKind
    public var meta: ResourceMeta
    /// How many copies run: one (primitive), everywhere (clone), or with one promoted (promotable).
    public var cloning: Cloning
    /// Recurring monitor interval; nil: no recurring monitor.
    public var monitorInterval: Seconds?
    public var operationTimeout: Seconds

    public init(
        id: String,
        kind: ResourceKind,
        meta: ResourceMeta = ResourceMeta(),
        cloning: Cloning? = nil,
        monitorInterval: Seconds? = Seconds(10),
        operationTimeout: Seconds = Seconds(20)
    ) {
        self.id = id
        self.kind = kind
        self.meta = meta
        self.cloning = cloning ?? kind.defaultCloning
        self.monitorInterval = monitorInterval
        self.operationTimeout = operationTimeout
    }

    public var isPromotable: Bool {
        if case .promotable = self.cloning { return true }
        return false
    }

    public var isClone: Bool {
        if case .single = self.cloning { return false }
        return true
    }
}

public enum Cloning: Hashable, Sendable, Codable {
    case single
    /// `max` copies (nil: one per node), at most one per node.
    case clone(max: Int?)
    /// `max` copies, of which at most `promotedMax` are promoted.
    case promotable(max: Int?, promotedMax: Int)
}

public enum ResourceKind: Hashable, Sendable, Codable {
    case volume(VolumeSpec)
    case vm(VMSpec)
    case ip(IPSpec)
    case ping(PingSpec)
    case process(ProcessSpec)
    case ocf(OCFSpec)
    case lsb(LSBSpec)

    public var typeName: String {
        switch self {
        case .volume: "volume"
        case .vm: "vm"
        case .ip: "ip"
        case .ping: "ping"
        case .process: "process"
        case .ocf: "ocf"
        case .lsb: "lsb"
        }
    }

    /// A replicated volume is a promotable clone (one Primary); ping runs on every node.
    public var defaultCloning: Cloning {
        switch self {
        case .volume: .promotable(max: 2, promotedMax: 1)
        case .ping: .clone(max: nil)
        default: .single
        }
    }

    public var supportsLiveMigration: Bool {
        switch self {
        case .vm(let spec): spec.migration == .live
        case .ocf: true
        default: false
        }
    }
}

public struct VolumeSpec: Hashable, Sendable, Codable {
    public enum ReplicationProtocol: String, Hashable, Sendable, Codable, CaseIterable { case A, C }
    public enum AfterSplitBrain0: String, Hashable, Sendable, Codable, CaseIterable {
        case disconnect, discardYoungerPrimary = "discard-younger-primary",
            discardOlderPrimary = "discard-older-primary", discardZeroChanges = "discard-zero-changes",
            discardLeastChanges = "discard-least-changes"
    }
    public enum AfterSplitBrain1: String, Hashable, Sendable, Codable, CaseIterable {
        case disconnect, consensus, discardSecondary = "discard-secondary"
    }
    public enum AfterSplitBrain2: String, Hashable, Sendable, Codable, CaseIterable { case disconnect }

    /// Size in bytes.
    public var size: UInt64
    /// Backing file or block device on each host.
    public var backing: String
    public var protocolMode: ReplicationProtocol
    public var port: Int
    public var afterSplitBrain0: AfterSplitBrain0
    public var afterSplitBrain1: AfterSplitBrain1
    public var afterSplitBrain2: AfterSplitBrain2
    /// Name of the file holding the replication link's shared secret (never the secret itself).
    public var secretFile: String?
    /// Resync speed in DRBD's terms (defaults: the dynamic controller, 2 s plan-ahead).
    public var resync = ResyncControl()

    /// DRBD's resync controller settings: `c-plan-ahead` (0: a fixed `resync-rate`), `c-fill-target` (bytes in
    /// flight the controller aims for), `c-max-rate`, `c-min-rate` (the resync is held to this while the
    /// application does I/O; 0: never held back). Rates are bytes per second.
    public struct ResyncControl: Hashable, Sendable, Codable {
        public static let defaultPlanAhead = Seconds(2)
        public static let defaultFillTarget: UInt64 = 4 << 20
        public static let defaultMaxRate: UInt64 = 100 << 20
        public static let defaultMinRate: UInt64 = 4 << 20
        public static let defaultResyncRate: UInt64 = 100 << 20

        public var planAhead: Seconds
        public var fillTarget: UInt64
        public var maxRate: UInt64
        public var minRate: UInt64
        public var resyncRate: UInt64

        public init(
            planAhead: Seconds = defaultPlanAhead, fillTarget: UInt64 = defaultFillTarget,
            maxRate: UInt64 = defaultMaxRate, minRate: UInt64 = defaultMinRate, resyncRate: UInt64 = defaultResyncRate
        ) {
            self.planAhead = planAhead
            self.fillTarget = fillTarget
            self.maxRate = maxRate
            self.minRate = minRate
            self.resyncRate = resyncRate
        }
    }

    public init(
        size: UInt64, backing: String, protocolMode: ReplicationProtocol = .C, port: Int = 7789,
        afterSplitBrain0: AfterSplitBrain0 = .disconnect, afterSplitBrain1: AfterSplitBrain1 = .disconnect,
        afterSplitBrain2: AfterSplitBrain2 = .disconnect, secretFile: String? = nil
    ) {
        self.size = size
        self.backing = backing
        self.protocolMode = protocolMode
        self.port = port
        self.afterSplitBrain0 = afterSplitBrain0
        self.afterSplitBrain1 = afterSplitBrain1
        self.afterSplitBrain2 = afterSplitBrain2
        self.secretFile = secretFile
    }

    private enum CodingKeys: String, CodingKey {
        case size, backing, protocolMode, port, afterSplitBrain0, afterSplitBrain1, afterSplitBrain2, secretFile
        case resync
    }

    /// `resync` may be absent (documents written before it existed): the defaults.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.size = try container.decode(UInt64.self, forKey: .size)
        self.backing = try container.decode(String.self, forKey: .backing)
        self.protocolMode = try container.decode(ReplicationProtocol.self, forKey: .protocolMode)
        self.port = try container.decode(Int.self, forKey: .port)
        self.afterSplitBrain0 = try container.decode(AfterSplitBrain0.self, forKey: .afterSplitBrain0)
        self.afterSplitBrain1 = try container.decode(AfterSplitBrain1.self, forKey: .afterSplitBrain1)
        self.afterSplitBrain2 = try container.decode(AfterSplitBrain2.self, forKey: .afterSplitBrain2)
        self.secretFile = try container.decodeIfPresent(String.self, forKey: .secretFile)
        self.resync = try container.decodeIfPresent(ResyncControl.self, forKey: .resync) ?? ResyncControl()
    }
}

public struct VMSpec: Hashable, Sendable, Codable {
    public enum StopMode: String, Hashable, Sendable, Codable, CaseIterable { case hibernate, shutdown }
    public enum Migration: String, Hashable, Sendable, Codable, CaseIterable { case live, hibernate }

    public var cpus: Int
    /// Memory in MiB.
    public var memoryMiB: Int
    /// Volumes (resource ids) holding the VM's disks, in order.
    public var volumes: [String]
    /// A volume of its own (not one of `volumes`) that receives the saved RAM state on hibernate, so
    /// another host can resume it; nil: a file on the host (hibernate then resumes only there).
    public var stateVolume: String?
    /// Kernel image path, or a disk to boot from.
    public var boot: String
    public var stopMode: StopMode
    public var migration: Migration
    /// Floating addresses (resource ids) that follow the VM.
    public var addresses: [String]
    /// The host bridge the VM's NIC (virtio-net on a tap) joins, so the guest is on that network with its own
    /// address; none when nil. The bridge must exist on every host that may run the VM.
    public var bridge: String?
    /// The NIC's MAC address; nil: derived from the VM's name, the same on every host (a live-migrated guest
    /// keeps its MAC, and switches learn the new port from QEMU's announcement after the move).
    public var mac: String?
    /// Appended to the kernel command line when `boot` is a kernel directory (e.g. the guest's address).
    public var kernelArguments: String?

    // Real VMs (issue 12). All optional, so documents written before these keys existed still decode.

    /// How a VM booting from a disk starts: SeaBIOS (`bios`, the default) or OVMF (`uefi`).
    public var firmware: Firmware?
    /// The volume that keeps the UEFI variables (OVMF's vars file), so boot entries follow the VM to another host.
    public var nvramVolume: String?
    /// A read-only ISO image attached as a CD-ROM (e.g. an installer); the same path on every host.
    public var cdrom: String?
    /// How the volumes appear to the guest; nil: virtio-blk.
    public var diskBus: DiskBus?
    /// NICs after the first one (`bridge`/`mac`), in order.
    public var extraNICs: [NICSpec]?
    /// QEMU's CPU model; nil: a model every host runs (see the agent), `host` only when written.
    public var cpuModel: String?
    /// QEMU's machine type, pinned (e.g. `pc-q35-7.2`) so every host emulates the same machine version.
    public var machine: String?
    /// Whether the guest runs qemu-guest-agent (a virtio-serial channel for clean shutdown and fs freeze).
    public var guestAgent: Bool?
    /// A graphical display; nil: none (serial console only).
    public var display: Display?

    public enum Firmware: String, Hashable, Sendable, Codable, CaseIterable { case bios, uefi }
    public enum DiskBus: String, Hashable, Sendable, Codable, CaseIterable {
        case virtioBlk = "virtio-blk"
        case virtioSCSI = "virtio-scsi"
    }
    public enum Display: String, Hashable, Sendable, Codable, CaseIterable { case vnc }

    /// One more NIC: a tap on `bridge` with `mac` (nil: derived from the VM's name and the NIC's place).
    public struct NICSpec: Hashable, Sendable, Codable {
        public var bridge: String
        public var mac: String?
        public init(bridge: String, mac: String? = nil) {
            self.bridge = bridge
            self.mac = mac
        }
    }

    /// `boot` as written names the CD-ROM.
    public static let cdromBoot = "cdrom"

    /// The volume the firmware boots from, when `boot` names one of `volumes`.
    public var bootVolume: String? { self.volumes.contains(self.boot) ? self.boot : nil }

    /// Every volume the VM's QEMU opens: the disks, the state volume and the UEFI variables.
    public var allVolumes: [String] {
        self.volumes + [self.stateVolume, self.nvramVolume].compactMap { $0 }
    }

    public init(
        cpus: Int = 1, memoryMiB: Int = 256, volumes: [String] = [], stateVolume: String? = nil, boot: String = "",
        stopMode: StopMode = .hibernate, migration: Migration = .live, addresses: [String] = [],
        bridge: String? = nil, mac: String? = nil, kernelArguments: String? = nil
    ) {
        self.bridge = bridge
        self.mac = mac
        self.kernelArguments = kernelArguments
        self.cpus = cpus
        self.memoryMiB = memoryMiB
        self.volumes = volumes
        self.stateVolume = stateVolume
        self.boot = boot
        self.stopMode = stopMode
        self.migration = migration
        self.addresses = addresses
    }
}

public struct IPSpec: Hashable, Sendable, Codable {
    public var address: String
    public var prefixLength: Int
    public var interface: String?
    /// Forward everything sent to the floating address to this one (a VM behind the host, on a host-internal
    /// bridge): the "where is the VM" address then reaches the VM itself, and TCP sessions to it survive a live
    /// migration, because the next host forwards the same way (IPv4 only).
    public var forwardTo: String?

    public init(address: String, prefixLength: Int, interface: String? = nil, forwardTo: String? = nil) {
        self.forwardTo = forwardTo
        self.address = address
        self.prefixLength = prefixLength
        self.interface = interface
    }
}

public struct PingSpec: Hashable, Sendable, Codable {
    public var hosts: [String]
    public var multiplier: Int
    public var dampen: Seconds
    /// The node attribute it maintains (Pacemaker's `pingd`).
    public var attribute: String

    public init(hosts: [String], multiplier: Int = 1, dampen: Seconds = Seconds(5), attribute: String = "pingd") {
        self.hosts = hosts
        self.multiplier = multiplier
        self.dampen = dampen
        self.attribute = attribute
    }
}

public struct ProcessSpec: Hashable, Sendable, Codable {
    public var command: [String]
    public init(command: [String]) { self.command = command }
}

public struct OCFSpec: Hashable, Sendable, Codable {
    public var provider: String
    public var type: String
    public var parameters: [String: String]

    public init(provider: String, type: String, parameters: [String: String] = [:]) {
        self.provider = provider
        self.type = type
        self.parameters = parameters
    }
}

public struct LSBSpec: Hashable, Sendable, Codable {
    public var script: String
    public init(script: String) { self.script = script }
}

/// Pacemaker's meta attributes, on a resource or a group. nil means: inherit the cluster default.
public struct ResourceMeta: Hashable, Sendable, Codable {
    public enum TargetRole: String, Hashable, Sendable, Codable, CaseIterable {
        case stopped = "Stopped", started = "Started", unpromoted = "Unpromoted", promoted = "Promoted"
    }

    public var stickiness: Score?
    public var migrationThreshold: Int?
    public var failureTimeout: Seconds?
    public var targetRole: TargetRole?
    public var allowMigrate: Bool?
    public var priority: Int

    public init(
        stickiness: Score? = nil, migrationThreshold: Int? = nil, failureTimeout: Seconds? = nil,
        targetRole: TargetRole? = nil, allowMigrate: Bool? = nil, priority: Int = 0
    ) {
        self.stickiness = stickiness
        self.migrationThreshold = migrationThreshold
        self.failureTimeout = failureTimeout
        self.targetRole = targetRole
        self.allowMigrate = allowMigrate
        self.priority = priority
    }
}

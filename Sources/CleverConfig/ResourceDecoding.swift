import CleverModel
import Yams

extension ConfigDecoder {
    static let commonResourceKeys = ["id", "type", "meta", "monitor", "timeout", "clone", "promotable"]

    /// Keys of each resource type, besides the common ones.
    static let resourceTypeKeys: [(type: String, keys: [String])] = [
        (
            "volume",
            [
                "size", "backing", "protocol", "port", "secret-file", "after-sb-0pri", "after-sb-1pri",
                "after-sb-2pri", "resync-rate", "c-plan-ahead", "c-fill-target", "c-max-rate", "c-min-rate",
            ]
        ),
        ("vm", ["cpus", "memory", "volumes", "state-volume", "boot", "stop-mode", "migration", "addresses", "bridge", "mac",
                "kernel-args", "firmware", "nvram", "cdrom", "disk-bus", "nics", "cpu-model", "machine", "guest-agent",
                "display"]),
        ("ip", ["address", "interface", "forward-to"]),
        ("ping", ["hosts", "multiplier", "dampen", "attribute"]),
        ("process", ["command"]),
        ("ocf", ["agent", "params"]),
        ("lsb", ["script"]),
    ]

    static let minimumMemoryMiB = 16

    mutating func decodeResource(_ node: Node, path: String) -> ResourceConfig? {
        // The type decides which keys are known, so read it before checking the keys.
        let typeNames = Self.resourceTypeKeys.map(\.type)
        var typeName: String?
        if case .mapping(let mapping) = node, let typeNode = mapping["type"], !typeNode.isNull {
            typeName = self.convert(typeNode, path: KeyPath.child(path, "type"), expected: "a resource type") { text in
                typeNames.contains(text)
                    ? .success(text)
                    : .failure(
                        ValueProblem(
                            "unknown resource type '\(text)'",
                            hint: EditDistance.nearest(to: text, among: typeNames).map { "did you mean '\($0)'?" }
                                ?? "one of: \(typeNames.joined(separator: ", "))"))
            }
            if typeName == nil {
                return nil
            }
        }
        // Without a type, accept the keys of every type: the missing type is the one error.
        let typeKeys =
            Self.resourceTypeKeys.first { $0.type == typeName }?.keys
            ?? Self.resourceTypeKeys.flatMap(\.keys).reduce(into: [String]()) { keys, key in
                if !keys.contains(key) { keys.append(key) }
            }
        guard let fields = self.fields(node, path: path, known: Self.commonResourceKeys + typeKeys) else { return nil }
        let id = self.value(fields, "id", required: true, expected: "an id", ValueSyntax.identifier)
        guard let typeName else {
            _ = self.node(fields, "type", required: true)
            return nil
        }

        let kind: ResourceKind?
        switch typeName {
        case "volume": kind = self.decodeVolume(fields).map(ResourceKind.volume)
        case "vm": kind = self.decodeVM(fields).map(ResourceKind.vm)
        case "ip": kind = self.decodeIP(fields).map(ResourceKind.ip)
        case "ping": kind = self.decodePing(fields).map(ResourceKind.ping)
        case "process": kind = self.decodeProcess(fields).map(ResourceKind.process)
        case "ocf": kind = self.decodeOCF(fields).map(ResourceKind.ocf)
        default: kind = self.decodeLSB(fields).map(ResourceKind.lsb)
        }

        let meta = self.node(fields, "meta", required: false).map { self.decodeMeta($0, path: KeyPath.child(path, "meta")) }
        let monitor: Seconds?? = self.value(fields, "monitor", expected: "a duration") {
            (text: String) -> Result<Seconds?, ValueProblem> in
            ["none", "never", "0"].contains(text.lowercased()) ? .success(nil) : ValueSyntax.positiveDuration(text).map { $0 }
        }
        let timeout = self.value(fields, "timeout", expected: "a duration", ValueSyntax.positiveDuration)
        let cloning = self.decodeCloning(fields)
        guard let id, let kind else { return nil }
        return ResourceConfig(
            id: id, kind: kind, meta: meta ?? ResourceMeta(), cloning: cloning,
            monitorInterval: monitor ?? Seconds(10), operationTimeout: timeout ?? Seconds(20))
    }

    // MARK: Kinds

    /// A rate in bytes per second, written as a size (`100M`).
    mutating func rate(_ fields: Fields, _ key: String, allowZero: Bool) -> UInt64? {
        self.value(fields, key, expected: "a size per second") { text in
            ValueSyntax.size(text).flatMap { bytes in
                bytes > 0 || allowZero
                    ? .success(bytes) : .failure(ValueProblem("\(key) must be above 0", hint: "bytes per second, e.g. 100M"))
            }
        }
    }

    mutating func decodeVolume(_ fields: Fields) -> VolumeSpec? {
        let size = self.value(fields, "size", required: true, expected: "a size") { text in
            ValueSyntax.size(text).flatMap { (bytes: UInt64) -> Result<UInt64, ValueProblem> in
                if bytes == 0 { return .failure(ValueProblem("a volume needs a size above 0")) }
                if bytes % 4096 != 0 {
                    return .failure(
                        ValueProblem(
                            "size \(bytes) bytes is not a multiple of 4096",
                            hint: "round to \((bytes / 4096 + 1) * 4096) bytes, or use KiB/MiB/GiB"))
                }
                return .success(bytes)
            }
        }
        let backing = self.value(fields, "backing", required: true, expected: "a path", ValueSyntax.absolutePath)
        var spec = VolumeSpec(size: size ?? 4096, backing: backing ?? "")
        if let mode = self.value(fields, "protocol", expected: "A or C", { ValueSyntax.choice($0, of: VolumeSpec.ReplicationProtocol.self) }) {
            spec.protocolMode = mode
        }
        if let port = self.value(fields, "port", expected: "a port", ValueSyntax.port) {
            spec.port = port
        }
        spec.secretFile = self.value(fields, "secret-file", expected: "a path", ValueSyntax.absolutePath)
        if let policy = self.value(fields, "after-sb-0pri", expected: "a policy", { ValueSyntax.choice($0, of: VolumeSpec.AfterSplitBrain0.self) }) {
            spec.afterSplitBrain0 = policy
        }
        if let policy = self.value(fields, "after-sb-1pri", expected: "a policy", { ValueSyntax.choice($0, of: VolumeSpec.AfterSplitBrain1.self) }) {
            spec.afterSplitBrain1 = policy
        }
        if let policy = self.value(fields, "after-sb-2pri", expected: "a policy", { ValueSyntax.choice($0, of: VolumeSpec.AfterSplitBrain2.self) }) {
            spec.afterSplitBrain2 = policy
        }
        var resync = VolumeSpec.ResyncControl()
        if let planAhead = self.value(fields, "c-plan-ahead", expected: "a duration", { text in
            ValueSyntax.duration(text).flatMap { seconds in
                seconds.value <= 30 ? .success(seconds)
                    : .failure(ValueProblem("c-plan-ahead \(text) is longer than 30s", hint: "0 (fixed resync-rate) to 30s"))
            }
        }) {
            resync.planAhead = planAhead
        }
        if let fill = self.value(fields, "c-fill-target", expected: "a size", { text in
            ValueSyntax.size(text).flatMap { bytes in
                (64 << 10)...(1 << 30) ~= bytes ? .success(bytes)
                    : .failure(ValueProblem("c-fill-target \(text) is outside 64KiB…1GiB"))
            }
        }) {
            resync.fillTarget = fill
        }
        if let value = self.rate(fields, "resync-rate", allowZero: false) {
            resync.resyncRate = value
        }
        if let value = self.rate(fields, "c-max-rate", allowZero: false) {
            resync.maxRate = value
        }
        if let value = self.rate(fields, "c-min-rate", allowZero: true) {
            resync.minRate = value
        }
        spec.resync = resync
        // Missing or bad values were reported; the partial spec still serves the cross-entry checks.
        return spec
    }

    mutating func decodeVM(_ fields: Fields) -> VMSpec? {
        var spec = VMSpec()
        if let cpus = self.value(fields, "cpus", expected: "an integer", { ValueSyntax.integer($0, atLeast: 1) }) {
            spec.cpus = cpus
        }
        if let memory = self.value(fields, "memory", expected: "a size", ValueSyntax.memoryMiB) {
            spec.memoryMiB = memory
        }
        spec.volumes = self.scalarList(fields, "volumes", expected: "a volume id", ValueSyntax.identifier) ?? []
        spec.stateVolume = self.value(fields, "state-volume", expected: "a volume id", ValueSyntax.identifier)
        let boot = self.value(fields, "boot", required: true, expected: "a path, a volume id or cdrom") { text in
            text.hasPrefix("/") ? ValueSyntax.absolutePath(text) : ValueSyntax.identifier(text)
        }
        if let mode = self.value(fields, "stop-mode", expected: "a stop mode", { ValueSyntax.choice($0, of: VMSpec.StopMode.self) }) {
            spec.stopMode = mode
        }
        if let migration = self.value(fields, "migration", expected: "a migration mode", { ValueSyntax.choice($0, of: VMSpec.Migration.self) }) {
            spec.migration = migration
        }
        spec.addresses = self.scalarList(fields, "addresses", expected: "an ip resource id", ValueSyntax.identifier) ?? []
        spec.bridge = self.value(fields, "bridge", expected: "a bridge name", ValueSyntax.interfaceName)
        spec.mac = self.value(fields, "mac", expected: "a MAC address", ValueSyntax.unicastMAC)
        spec.kernelArguments = self.value(fields, "kernel-args", expected: "kernel arguments") { text in
            text.contains(where: \.isNewline) ? .failure(ValueProblem("kernel arguments must be one line")) : .success(text)
        }
        spec.boot = boot ?? ""
        self.decodeRealVM(fields, into: &spec)
        return spec
    }

    /// The keys of a VM that boots an installed OS through firmware (issue 12).
    mutating func decodeRealVM(_ fields: Fields, into spec: inout VMSpec) {
        spec.firmware = self.value(fields, "firmware", expected: "bios or uefi") { ValueSyntax.choice($0, of: VMSpec.Firmware.self) }
        spec.nvramVolume = self.value(fields, "nvram", expected: "a volume id", ValueSyntax.identifier)
        spec.cdrom = self.value(fields, "cdrom", expected: "an ISO path", ValueSyntax.absolutePath)
        spec.diskBus = self.value(fields, "disk-bus", expected: "a disk bus") { ValueSyntax.choice($0, of: VMSpec.DiskBus.self) }
        spec.cpuModel = self.value(fields, "cpu-model", expected: "a QEMU CPU model") { text in
            text.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
                ? .success(text) : .failure(ValueProblem("'\(text)' is not a CPU model name", hint: "e.g. Nehalem, Haswell-v4, host"))
        }
        spec.machine = self.value(fields, "machine", expected: "a QEMU machine type") { text in
            text.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
                ? .success(text) : .failure(ValueProblem("'\(text)' is not a machine type", hint: "e.g. pc-q35-7.2"))
        }
        spec.guestAgent = self.value(fields, "guest-agent", expected: "true or false", ValueSyntax.boolean)
        spec.display = self.value(fields, "display", expected: "a display") { ValueSyntax.choice($0, of: VMSpec.Display.self) }
        if let elements = self.list(fields, "nics") {
            var nics: [VMSpec.NICSpec] = []
            for element in elements {
                guard let nic = self.fields(element.node, path: element.path, known: ["bridge", "mac"]) else { continue }
                let bridge = self.value(nic, "bridge", required: true, expected: "a bridge name", ValueSyntax.interfaceName)
                let mac = self.value(nic, "mac", expected: "a MAC address", ValueSyntax.unicastMAC)
                if let bridge { nics.append(VMSpec.NICSpec(bridge: bridge, mac: mac)) }
            }
            spec.extraNICs = nics
            if spec.bridge == nil, !nics.isEmpty {
                self.report("nics are the VM's second and later NICs; the first is 'bridge' (and 'mac')",
                            path: KeyPath.child(fields.path, "nics"), hint: "add bridge: BRIDGE for the first NIC")
            }
        }
        let bootPath = KeyPath.child(fields.path, "boot")
        if !spec.boot.isEmpty, !spec.boot.hasPrefix("/") {
            if spec.boot == VMSpec.cdromBoot {
                if spec.cdrom == nil { self.report("boot: cdrom needs a cdrom ISO", path: bootPath, hint: "add cdrom: /path/to/installer.iso") }
            } else if !spec.volumes.contains(spec.boot) {
                self.report("boot '\(spec.boot)' is not one of the VM's volumes", path: bootPath,
                            hint: spec.volumes.isEmpty ? "list it under volumes" : "one of: \(spec.volumes.joined(separator: ", ")), cdrom, or a kernel directory")
            }
        }
        if spec.firmware == .uefi, spec.nvramVolume == nil {
            self.report("firmware: uefi needs an nvram volume for the UEFI variables", path: KeyPath.child(fields.path, "firmware"),
                        hint: "add a small volume (e.g. 1MiB) and nvram: VOLUME, so boot entries follow the VM")
        }
        if spec.nvramVolume != nil, spec.firmware != .uefi {
            self.report("nvram is only used with firmware: uefi", path: KeyPath.child(fields.path, "nvram"))
        }
        if let nvram = spec.nvramVolume, spec.volumes.contains(nvram) || spec.stateVolume == nvram {
            self.report("nvram '\(nvram)' is also a disk or the state volume", path: KeyPath.child(fields.path, "nvram"),
                        hint: "give the UEFI variables a volume of their own")
        }
    }

    mutating func decodeIP(_ fields: Fields) -> IPSpec? {
        let parsed = self.value(fields, "address", required: true, expected: "ADDRESS/PREFIX", ValueSyntax.addressWithPrefix)
        let interface = self.value(fields, "interface", expected: "an interface name", ValueSyntax.interfaceName)
        let forwardTo = self.value(fields, "forward-to", expected: "an IPv4 address") { text in
            IPAddress.isIPv4(text) ? .success(text) : .failure(ValueProblem("'\(text)' is not an IPv4 address"))
        }
        guard let parsed else { return nil }
        if forwardTo != nil, !IPAddress.isIPv4(parsed.address) {
            self.report("forward-to needs an IPv4 floating address, found \(parsed.address)", path: KeyPath.child(fields.path, "forward-to"))
        }
        return IPSpec(address: parsed.address, prefixLength: parsed.prefixLength, interface: interface, forwardTo: forwardTo)
    }

    mutating func decodePing(_ fields: Fields) -> PingSpec? {
        let hosts = self.scalarList(fields, "hosts", required: true, expected: "a host", ValueSyntax.host)
        if hosts?.isEmpty == true, self.list(fields, "hosts")?.isEmpty == true {
            self.report("ping needs at least one host", path: KeyPath.child(fields.path, "hosts"))
        }
        var spec = PingSpec(hosts: hosts ?? [])
        if let multiplier = self.value(fields, "multiplier", expected: "an integer", { ValueSyntax.integer($0, atLeast: 1) }) {
            spec.multiplier = multiplier
        }
        if let dampen = self.value(fields, "dampen", expected: "a duration", ValueSyntax.duration) {
            spec.dampen = dampen
        }
        if let attribute = self.value(fields, "attribute", expected: "an attribute name", ValueSyntax.attributeName) {
            spec.attribute = attribute
        }
        return spec
    }

    mutating func decodeProcess(_ fields: Fields) -> ProcessSpec? {
        let path = KeyPath.child(fields.path, "command")
        guard let node = self.node(fields, "command", required: true) else { return nil }
        let command: [String]?
        if case .scalar(let scalar) = node {
            // A single string is split on spaces; use a list for arguments that contain spaces.
            command = scalar.string.split(whereSeparator: \.isWhitespace).map(String.init)
        } else {
            command = self.stringList(fields, "command")
        }
        guard let command else { return nil }
        if command.isEmpty {
            self.report("the command is empty", path: path, hint: "name the program to run, e.g. [/bin/sleep, infinity]")
        }
        return ProcessSpec(command: command)
    }

    mutating func decodeOCF(_ fields: Fields) -> OCFSpec? {
        let agent = self.value(fields, "agent", required: true, expected: "PROVIDER:TYPE") {
            (text: String) -> Result<(provider: String, type: String), ValueProblem> in
            var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 3, parts[0] == "ocf" { parts.removeFirst() }
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && !$0.contains("/") }) else {
                return .failure(
                    ValueProblem("'\(text)' is not an OCF agent", hint: "write PROVIDER:TYPE, e.g. heartbeat:Dummy"))
            }
            return .success((provider: parts[0], type: parts[1]))
        }
        let parameters = self.stringMap(fields, "params") ?? [:]
        guard let agent else { return nil }
        return OCFSpec(provider: agent.provider, type: agent.type, parameters: parameters)
    }

    mutating func decodeLSB(_ fields: Fields) -> LSBSpec? {
        self.value(fields, "script", required: true, expected: "a path") { text in
            // Bare names are looked up in /etc/init.d, as Pacemaker's lsb class does.
            text.contains(where: \.isWhitespace)
                ? .failure(ValueProblem("'\(text)' is not a script path")) : .success(text)
        }.map(LSBSpec.init(script:))
    }

    // MARK: Meta and cloning

    mutating func decodeMeta(_ node: Node, path: String) -> ResourceMeta {
        var meta = ResourceMeta()
        guard
            let fields = self.fields(
                node, path: path,
                known: ["stickiness", "migration-threshold", "failure-timeout", "target-role", "allow-migrate", "priority"])
        else { return meta }
        meta.stickiness = self.value(fields, "stickiness", expected: "a score", ValueSyntax.score)
        meta.migrationThreshold = self.value(fields, "migration-threshold", expected: "an integer") {
            ValueSyntax.integer($0, atLeast: 0)
        }
        // nil means "inherit the cluster's"; never (or 0) is kept as 0: failures never expire.
        meta.failureTimeout = self.value(fields, "failure-timeout", expected: "a duration") { text in
            ValueSyntax.durationOrNever(text).map { $0 ?? Seconds(0) }
        }
        meta.targetRole = self.value(fields, "target-role", expected: "a role") {
            ValueSyntax.choice($0, of: ResourceMeta.TargetRole.self)
        }
        meta.allowMigrate = self.value(fields, "allow-migrate", expected: "true or false", ValueSyntax.boolean)
        meta.priority = self.value(fields, "priority", expected: "an integer", ValueSyntax.integer) ?? 0
        return meta
    }

    /// `clone: {max: 2}` / `clone: true` / `clone: false` (a single instance), or
    /// `promotable: {max: 2, promoted-max: 1}` / `promotable: true`. nil: the type's default.
    mutating func decodeCloning(_ fields: Fields) -> Cloning? {
        let cloneNode = self.node(fields, "clone", required: false)
        let promotableNode = self.node(fields, "promotable", required: false)
        if cloneNode != nil, promotableNode != nil {
            self.report(
                "a resource is either a clone or promotable, not both", path: KeyPath.child(fields.path, "promotable"),
                hint: "promotable already implies clone")
            return nil
        }
        if let cloneNode {
            let path = KeyPath.child(fields.path, "clone")
            if case .scalar = cloneNode {
                return self.convert(cloneNode, path: path, expected: "true, false or a mapping", ValueSyntax.boolean)
                    .map { $0 ? .clone(max: nil) : .single }
            }
            guard let clone = self.fields(cloneNode, path: path, known: ["max"]) else { return nil }
            let max = self.value(clone, "max", expected: "an integer") { ValueSyntax.integer($0, atLeast: 1) }
            return .clone(max: max)
        }
        if let promotableNode {
            let path = KeyPath.child(fields.path, "promotable")
            if case .scalar = promotableNode {
                return self.convert(promotableNode, path: path, expected: "true, false or a mapping", ValueSyntax.boolean)
                    .map { $0 ? .promotable(max: nil, promotedMax: 1) : .single }
            }
            guard let promotable = self.fields(promotableNode, path: path, known: ["max", "promoted-max"]) else {
                return nil
            }
            let max = self.value(promotable, "max", expected: "an integer") { ValueSyntax.integer($0, atLeast: 1) }
            let promotedMax =
                self.value(promotable, "promoted-max", expected: "an integer") { ValueSyntax.integer($0, atLeast: 1) } ?? 1
            if let max, promotedMax > max {
                self.report(
                    "promoted-max \(promotedMax) is more than max \(max)", path: KeyPath.child(path, "promoted-max"),
                    hint: "at most max copies can be promoted")
                return nil
            }
            return .promotable(max: max, promotedMax: promotedMax)
        }
        return nil
    }
}

extension ValueSyntax {
    static func port(_ text: String) -> Result<Int, ValueProblem> {
        self.integer(text).flatMap { port in
            (1...65535).contains(port)
                ? .success(port) : .failure(ValueProblem("port \(port) is outside 1...65535"))
        }
    }

    static func absolutePath(_ text: String) -> Result<String, ValueProblem> {
        text.hasPrefix("/")
            ? .success(text)
            : .failure(ValueProblem("'\(text)' is not an absolute path", hint: "start it with '/'"))
    }

    /// Memory as a size, in whole MiB, at least 16 MiB.
    static func memoryMiB(_ text: String) -> Result<Int, ValueProblem> {
        self.size(text).flatMap { bytes in
            let mib: UInt64 = 1 << 20
            if bytes < UInt64(ConfigDecoder.minimumMemoryMiB) * mib {
                let hint = UInt64(text) != nil ? "a bare number is bytes; write \(text)MiB" : "at least 16MiB"
                return .failure(ValueProblem("memory '\(text)' is less than 16MiB", hint: hint))
            }
            guard bytes % mib == 0 else {
                return .failure(ValueProblem("memory '\(text)' is not a whole number of MiB"))
            }
            guard bytes / mib <= UInt64(Int32.max) else { return .failure(ValueProblem("memory '\(text)' is too large")) }
            return .success(Int(bytes / mib))
        }
    }

    /// `198.51.100.50/24`: the prefix length is required, at most 32 (IPv4) or 128 (IPv6).
    static func addressWithPrefix(_ text: String) -> Result<(address: String, prefixLength: Int), ValueProblem> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let address = String(parts[0])
        guard IPAddress.isValid(address) else {
            return .failure(ValueProblem("'\(address)' is not an IPv4 or IPv6 address"))
        }
        let limit = IPAddress.isIPv4(address) ? 32 : 128
        guard parts.count == 2 else {
            return .failure(
                ValueProblem("'\(text)' has no prefix length", hint: "write ADDRESS/PREFIX, e.g. \(address)/\(limit == 32 ? 24 : 64)"))
        }
        guard let prefix = Int(parts[1]), parts[1].allSatisfy(\.isASCIIDigit) else {
            return .failure(ValueProblem("'\(parts[1])' is not a prefix length"))
        }
        guard prefix <= limit else {
            return .failure(
                ValueProblem("prefix length \(prefix) is more than \(limit) for an IPv\(limit == 32 ? 4 : 6) address"))
        }
        return .success((address, prefix))
    }

    /// Node attribute names: anything without whitespace or parentheses (they end a word in rules).
    static func attributeName(_ text: String) -> Result<String, ValueProblem> {
        text.isEmpty || text.contains(where: { $0.isWhitespace || "()\"".contains($0) })
            ? .failure(ValueProblem("'\(text)' is not an attribute name", hint: "no spaces, parentheses or quotes"))
            : .success(text)
    }
}

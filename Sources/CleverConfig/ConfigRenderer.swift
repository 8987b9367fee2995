import CleverModel

/// Writes a `ClusterConfig` in the config file format, keys in the documented order. Every value
/// is spelled so the parser reads back exactly the same config; defaults of optional keys are left
/// out, cluster properties are always written (they are the settings an operator looks for).
enum ConfigRenderer {
    static func render(_ config: ClusterConfig) -> String {
        var out = Lines()
        out.add("cluster:")
        out.add("name: \(self.scalar(config.name))", indent: 1)
        out.add("epoch: \(config.epoch)", indent: 1)
        out.add("properties:", indent: 1)
        let properties = config.properties
        out.add("stickiness: \(self.score(properties.defaultStickiness))", indent: 2)
        out.add("no-quorum-policy: \(properties.noQuorumPolicy.rawValue)", indent: 2)
        out.add("migration-threshold: \(properties.migrationThreshold)", indent: 2)
        out.add("failure-timeout: \(properties.failureTimeout.map(self.duration) ?? "never")", indent: 2)
        out.add("symmetric: \(properties.symmetric)", indent: 2)
        out.add("self-fence-timeout: \(self.duration(properties.selfFenceTimeout))", indent: 2)
        if let timeout = properties.watchdogTimeout { out.add("watchdog-timeout: \(self.duration(timeout))", indent: 2) }
        if let token = properties.token { out.add("token: \(self.duration(token))", indent: 2) }
        if let consensus = properties.consensus { out.add("consensus: \(self.duration(consensus))", indent: 2) }

        out.add("nodes:")
        for node in config.nodes {
            out.item("name: \(self.scalar(node.name))")
            out.add("id: \(node.id)", indent: 2)
            // A config imported from a Pacemaker CIB has no link addresses: leave a note where they go.
            let note = node.addresses.isEmpty ? "  # required: one or two link addresses" : ""
            out.add("addresses: \(self.list(node.addresses))\(note)", indent: 2)
            out.map("attributes", node.attributes, indent: 2)
            if let agent = node.fenceAgent { out.add("fence-agent: \(self.scalar(agent))", indent: 2) }
            out.map("fence-params", node.fenceParameters, indent: 2)
            if let watchdog = node.watchdog { out.add("watchdog: \(self.scalar(watchdog.description))", indent: 2) }
            if let timeout = node.watchdogTimeout { out.add("watchdog-timeout: \(self.duration(timeout))", indent: 2) }
        }

        if let quorum = config.quorum {
            out.add("quorum:")
            if let host = quorum.qdeviceHost { out.add("qdevice: \(self.scalar(host))", indent: 1) }
            out.add("algorithm: \(self.scalar(quorum.algorithm))", indent: 1)
            if !quorum.pingTargets.isEmpty { out.add("ping: \(self.list(quorum.pingTargets))", indent: 1) }
            if let timeout = quorum.timeout { out.add("timeout: \(self.duration(timeout))", indent: 1) }
            if let timeout = quorum.syncTimeout { out.add("sync-timeout: \(self.duration(timeout))", indent: 1) }
        }

        if !config.resources.isEmpty {
            out.add("resources:")
            for resource in config.resources { self.render(resource, into: &out) }
        }

        if !config.groups.isEmpty {
            out.add("groups:")
            for group in config.groups {
                out.item("id: \(self.scalar(group.id))")
                out.add("members: \(self.list(group.members))", indent: 2)
                self.render(group.meta, into: &out)
            }
        }

        if !config.constraints.isEmpty {
            out.add("constraints:")
            for constraint in config.constraints { self.render(constraint, into: &out) }
        }
        return out.text
    }

    // MARK: Resources

    private static func render(_ resource: ResourceConfig, into out: inout Lines) {
        out.item("id: \(self.scalar(resource.id))")
        out.add("type: \(resource.kind.typeName)", indent: 2)
        switch resource.kind {
        case .volume(let spec):
            out.add("size: \(self.size(spec.size))", indent: 2)
            out.add("backing: \(self.scalar(spec.backing))", indent: 2)
            out.add("protocol: \(spec.protocolMode.rawValue)", indent: 2)
            out.add("port: \(spec.port)", indent: 2)
            if let secret = spec.secretFile { out.add("secret-file: \(self.scalar(secret))", indent: 2) }
            out.add("after-sb-0pri: \(spec.afterSplitBrain0.rawValue)", indent: 2)
            out.add("after-sb-1pri: \(spec.afterSplitBrain1.rawValue)", indent: 2)
            out.add("after-sb-2pri: \(spec.afterSplitBrain2.rawValue)", indent: 2)
            if spec.resync != VolumeSpec.ResyncControl() {
                let resync = spec.resync
                out.add("resync-rate: \(self.size(resync.resyncRate))", indent: 2)
                out.add("c-plan-ahead: \(self.duration(resync.planAhead))", indent: 2)
                out.add("c-fill-target: \(self.size(resync.fillTarget))", indent: 2)
                out.add("c-max-rate: \(self.size(resync.maxRate))", indent: 2)
                out.add("c-min-rate: \(self.size(resync.minRate))", indent: 2)
            }
        case .vm(let spec):
            out.add("cpus: \(spec.cpus)", indent: 2)
            out.add("memory: \(spec.memoryMiB % 1024 == 0 ? "\(spec.memoryMiB / 1024)GiB" : "\(spec.memoryMiB)MiB")", indent: 2)
            if !spec.volumes.isEmpty { out.add("volumes: \(self.list(spec.volumes))", indent: 2) }
            if let state = spec.stateVolume { out.add("state-volume: \(self.scalar(state))", indent: 2) }
            out.add("boot: \(self.scalar(spec.boot))", indent: 2)
            out.add("stop-mode: \(spec.stopMode.rawValue)", indent: 2)
            out.add("migration: \(spec.migration.rawValue)", indent: 2)
            if !spec.addresses.isEmpty { out.add("addresses: \(self.list(spec.addresses))", indent: 2) }
            if let bridge = spec.bridge { out.add("bridge: \(self.scalar(bridge))", indent: 2) }
            if let mac = spec.mac { out.add("mac: \(self.scalar(mac))", indent: 2) }
            if let arguments = spec.kernelArguments { out.add("kernel-args: \(self.scalar(arguments))", indent: 2) }
            if let firmware = spec.firmware { out.add("firmware: \(firmware.rawValue)", indent: 2) }
            if let nvram = spec.nvramVolume { out.add("nvram: \(self.scalar(nvram))", indent: 2) }
            if let cdrom = spec.cdrom { out.add("cdrom: \(self.scalar(cdrom))", indent: 2) }
            if let bus = spec.diskBus { out.add("disk-bus: \(bus.rawValue)", indent: 2) }
            if let nics = spec.extraNICs, !nics.isEmpty {
                out.add("nics:", indent: 2)
                for nic in nics {
                    out.add("- bridge: \(self.scalar(nic.bridge))", indent: 4)
                    if let mac = nic.mac { out.add("  mac: \(self.scalar(mac))", indent: 4) }
                }
            }
            if let model = spec.cpuModel { out.add("cpu-model: \(self.scalar(model))", indent: 2) }
            if let machine = spec.machine { out.add("machine: \(self.scalar(machine))", indent: 2) }
            if let agent = spec.guestAgent { out.add("guest-agent: \(agent)", indent: 2) }
            if let display = spec.display { out.add("display: \(display.rawValue)", indent: 2) }
        case .ip(let spec):
            out.add("address: \(self.scalar("\(spec.address)/\(spec.prefixLength)"))", indent: 2)
            if let interface = spec.interface { out.add("interface: \(self.scalar(interface))", indent: 2) }
            if let target = spec.forwardTo { out.add("forward-to: \(self.scalar(target))", indent: 2) }
        case .ping(let spec):
            out.add("hosts: \(self.list(spec.hosts))", indent: 2)
            out.add("multiplier: \(spec.multiplier)", indent: 2)
            out.add("dampen: \(self.duration(spec.dampen))", indent: 2)
            out.add("attribute: \(self.scalar(spec.attribute))", indent: 2)
        case .process(let spec):
            out.add("command: \(self.list(spec.command))", indent: 2)
        case .ocf(let spec):
            out.add("agent: \(self.scalar("\(spec.provider):\(spec.type)"))", indent: 2)
            out.map("params", spec.parameters, indent: 2)
        case .lsb(let spec):
            out.add("script: \(self.scalar(spec.script))", indent: 2)
        }
        self.render(resource.meta, into: &out)
        if resource.monitorInterval != Seconds(10) {
            out.add("monitor: \(resource.monitorInterval.map(self.duration) ?? "none")", indent: 2)
        }
        if resource.operationTimeout != Seconds(20) {
            out.add("timeout: \(self.duration(resource.operationTimeout))", indent: 2)
        }
        if resource.cloning != resource.kind.defaultCloning {
            switch resource.cloning {
            case .single: out.add("clone: false", indent: 2)
            case .clone(let max): out.add("clone: \(max.map { "{max: \($0)}" } ?? "true")", indent: 2)
            case .promotable(let max, let promotedMax):
                let maxPart = max.map { "max: \($0), " } ?? ""
                out.add("promotable: {\(maxPart)promoted-max: \(promotedMax)}", indent: 2)
            }
        }
    }

    private static func render(_ meta: ResourceMeta, into out: inout Lines) {
        var pairs: [String] = []
        if let stickiness = meta.stickiness { pairs.append("stickiness: \(self.score(stickiness))") }
        if let threshold = meta.migrationThreshold { pairs.append("migration-threshold: \(threshold)") }
        if let timeout = meta.failureTimeout {
            pairs.append("failure-timeout: \(timeout.value == 0 ? "never" : self.duration(timeout))")
        }
        if let role = meta.targetRole { pairs.append("target-role: \(role.rawValue)") }
        if let allow = meta.allowMigrate { pairs.append("allow-migrate: \(allow)") }
        if meta.priority != 0 { pairs.append("priority: \(meta.priority)") }
        guard !pairs.isEmpty else { return }
        out.add("meta: {\(pairs.joined(separator: ", "))}", indent: 2)
    }

    // MARK: Constraints

    private static func render(_ constraint: Constraint, into out: inout Lines) {
        var pairs: [(String, String)] = [("id", self.scalar(constraint.id))]
        let kind: String
        switch constraint {
        case .location(let location):
            kind = "location"
            pairs.append(("resource", self.scalar(location.resource)))
            switch location.placement {
            case .node(let node, let value):
                pairs.append(("node", self.scalar(node)))
                pairs.append(("score", self.score(value)))
            case .rule(let rule):
                if let attribute = rule.scoreAttribute {
                    pairs.append(("score-attribute", self.scalar(attribute)))
                } else {
                    pairs.append(("score", self.score(rule.score)))
                }
                pairs.append(("rule", self.scalar(RuleSyntax.render(rule.expression))))
            }
            if let role = location.role { pairs.append(("role", role.rawValue)) }
        case .colocation(let colocation):
            kind = "colocation"
            pairs.append(("resource", self.scalar(colocation.dependent)))
            pairs.append(("with", self.scalar(colocation.primary)))
            pairs.append(("score", self.score(colocation.score)))
            if let role = colocation.dependentRole { pairs.append(("role", role.rawValue)) }
            if let role = colocation.primaryRole { pairs.append(("with-role", role.rawValue)) }
        case .order(let order):
            kind = "order"
            pairs.append(("first", self.scalar(order.first)))
            if order.firstAction != .start { pairs.append(("first-action", order.firstAction.rawValue)) }
            pairs.append(("then", self.scalar(order.then)))
            if order.thenAction != .start { pairs.append(("then-action", order.thenAction.rawValue)) }
            if order.kind != .mandatory { pairs.append(("kind", order.kind.rawValue)) }
            if !order.symmetrical { pairs.append(("symmetrical", "false")) }
        }
        out.item("\(kind):")
        for (key, value) in pairs { out.add("\(key): \(value)", indent: 3) }
    }

    // MARK: Scalars

    static func score(_ score: Score) -> String {
        if score.isInfinite { return "INFINITY" }
        if score.isMinusInfinite { return "-INFINITY" }
        return String(score.value)
    }

    /// The shortest spelling that reads back as the same number of seconds.
    static func duration(_ seconds: Seconds) -> String {
        let text = seconds.description
        if Seconds(parsing: text) == seconds { return text }
        return "\(seconds.value)"
    }

    static func size(_ bytes: UInt64) -> String {
        for (unit, factor) in [("TiB", UInt64(1) << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes >= factor && bytes % factor == 0 {
            return "\(bytes / factor)\(unit)"
        }
        return String(bytes)
    }

    static func list(_ items: [String]) -> String {
        "[\(items.map(self.scalar).joined(separator: ", "))]"
    }

    /// Plain when YAML reads the text back as the same string in block and flow context, else
    /// double-quoted.
    static func scalar(_ text: String) -> String {
        let safeFirst = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/.")
        let safeRest = safeFirst.union("-+@=:")
        let nullWords: Set<String> = ["null", "Null", "NULL", "~"]
        if let first = text.first, safeFirst.contains(first) || (first == "-" && text.count > 1),
            text.dropFirst().allSatisfy(safeRest.contains), !text.hasSuffix(":"), !nullWords.contains(text)
        {
            return text
        }
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    quoted += "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }

    /// Indented output lines; `item` starts a list entry (`  - key: value`).
    struct Lines {
        private var lines: [String] = []

        var text: String { self.lines.joined(separator: "\n") + "\n" }

        mutating func add(_ line: String, indent: Int = 0) {
            self.lines.append(String(repeating: "  ", count: indent) + line)
        }

        mutating func item(_ line: String) {
            self.lines.append("  - " + line)
        }

        mutating func map(_ key: String, _ values: [String: String], indent: Int) {
            guard !values.isEmpty else { return }
            self.add("\(key):", indent: indent)
            for (name, value) in values.sorted(by: { $0.key < $1.key }) {
                self.add("\(ConfigRenderer.scalar(name)): \(value.isEmpty ? "\"\"" : ConfigRenderer.scalar(value))", indent: indent + 1)
            }
        }
    }
}

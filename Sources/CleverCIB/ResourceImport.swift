import CleverModel

extension CIBImporter {
    mutating func importResources(_ section: XMLNode, path: String) throws(CIBError) {
        for element in section.children {
            let elementPath = "\(path)/\(element.pathStep)"
            switch element.name {
            case "primitive":
                if let resource = try self.primitive(element, path: elementPath) {
                    self.add(resource, pacemakerIDs: [resource.id])
                }
            case "group":
                try self.importGroup(element, path: elementPath)
            case "clone", "master":
                try self.importClone(element, path: elementPath)
            case "bundle":
                self.skip(element, path: elementPath, "bundles (containers) are not supported; resource skipped")
            case "template":
                self.skip(element, path: elementPath, "resource templates are not supported")
            default:
                self.skip(element, path: elementPath, "unknown resource element; skipped")
            }
        }
    }

    private mutating func skip(_ element: XMLNode, path: String, _ reason: String) {
        self.report(path, reason)
        self.skipAll(element)
    }

    /// Remembers every id inside a skipped element, so constraints on them are reported too.
    private mutating func skipAll(_ element: XMLNode) {
        if ["primitive", "group", "clone", "master", "bundle", "template"].contains(element.name), let id = element["id"] {
            self.skippedResources.insert(id)
        }
        for child in element.children { self.skipAll(child) }
    }

    private mutating func add(_ resource: ResourceConfig, pacemakerIDs: [String]) {
        self.config.resources.append(resource)
        if resource.isPromotable { self.promotableIDs.insert(resource.id) }
        for id in pacemakerIDs { self.resourceIDs[id] = resource.id }
    }

    // MARK: - primitive

    /// The primitive as a resource, or nil when its class is not supported (reported).
    private mutating func primitive(_ element: XMLNode, path: String) throws(CIBError) -> ResourceConfig? {
        let id = try self.required("id", of: element, path: path)
        if element["template"] != nil {
            self.skip(element, path: path, "primitives based on a template are not supported; resource skipped")
            return nil
        }
        let resourceClass = try self.required("class", of: element, path: path)
        let type = try self.required("type", of: element, path: path)
        var parameters: [String: String] = [:]
        for pair in self.nvpairs(of: element, sets: ["instance_attributes"], path: path) {
            parameters[pair.name] = pair.value
        }

        let kind: ResourceKind
        switch resourceClass {
        case "ocf":
            let provider = try self.required("provider", of: element, path: path)
            kind = self.ocfKind(provider: provider, type: type, parameters: parameters, path: path)
        case "lsb":
            kind = .lsb(LSBSpec(script: type))
            if !parameters.isEmpty { self.report(path, "LSB scripts take no parameters; instance_attributes ignored") }
        case "stonith":
            // Pacemaker places a fence device like any primitive, and what is colocated with it follows; so does
            // the simulation. CleverVM never runs it (it fences by quorum and self-fencing): no OCF agent of
            // provider "stonith" exists, so an attempt to start it fails visibly.
            kind = .ocf(OCFSpec(provider: "stonith", type: type, parameters: parameters))
        default:
            self.skip(element, path: path, "resource class \(resourceClass) is not supported (ocf, lsb); resource skipped")
            return nil
        }

        var resource = ResourceConfig(id: id, kind: kind, cloning: .single, monitorInterval: nil)
        resource.meta = try self.meta(of: element, path: path, allowed: [])
        try self.importOperations(of: element, path: path, into: &resource)
        for child in element.children
        where !["instance_attributes", "meta_attributes", "operations"].contains(child.name) {
            let reason = child.name == "utilization" ? "utilization is not supported" : "unexpected element in a primitive"
            self.report("\(path)/\(child.pathStep)", reason)
        }
        return resource
    }

    private mutating func ocfKind(provider: String, type: String, parameters: [String: String], path: String) -> ResourceKind {
        let generic = ResourceKind.ocf(OCFSpec(provider: provider, type: type, parameters: parameters))
        switch (provider, type) {
        case ("pacemaker", "ping"):
            let hosts = (parameters["host_list"] ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            guard !hosts.isEmpty else {
                self.report(path, "ocf:pacemaker:ping without host_list; kept as a generic OCF resource")
                return generic
            }
            var spec = PingSpec(hosts: hosts)
            if let text = parameters["multiplier"] {
                if let value = Int(text) { spec.multiplier = value } else {
                    self.report(path, "ping multiplier \"\(text)\" is not an integer; using 1")
                }
            }
            if let text = parameters["dampen"] {
                if let value = PacemakerValues.duration(text) { spec.dampen = value } else {
                    self.report(path, "ping dampen \"\(text)\" is not a duration; using 5s")
                }
            }
            if let name = parameters["name"] { spec.attribute = name }
            let known: Set<String> = ["host_list", "multiplier", "dampen", "name"]
            for name in parameters.keys.sorted() where !known.contains(name) {
                self.report("\(path)/instance_attributes/nvpair[@name=\(name)]", "ping parameter \(name) is not supported; ignored")
            }
            return .ping(spec)
        case ("heartbeat", "IPaddr2"):
            guard let address = parameters["ip"] else {
                self.report(path, "IPaddr2 without ip; kept as a generic OCF resource")
                return generic
            }
            var prefix = address.contains(":") ? 128 : 32
            if let text = parameters["cidr_netmask"] {
                if let value = Int(text) { prefix = value } else {
                    self.report(path, "cidr_netmask \"\(text)\" is not a prefix length; kept as a generic OCF resource")
                    return generic
                }
            }
            let known: Set<String> = ["ip", "cidr_netmask", "nic"]
            for name in parameters.keys.sorted() where !known.contains(name) {
                self.report("\(path)/instance_attributes/nvpair[@name=\(name)]", "IPaddr2 parameter \(name) is not supported; ignored")
            }
            return .ip(IPSpec(address: address, prefixLength: prefix, interface: parameters["nic"]))
        default:
            // ocf:linbit:drbd and ocf:heartbeat:VirtualDomain stay OCF agents: their CleverVM
            // counterparts (volume, vm) need sizes, disks and boot settings the CIB does not hold.
            return generic
        }
    }

    /// Monitor interval from `op name=monitor`; start/stop timeouts as the operation timeout.
    private mutating func importOperations(of element: XMLNode, path: String, into resource: inout ResourceConfig) throws(CIBError) {
        guard let operations = element.child(named: "operations") else { return }
        let opsPath = "\(path)/operations"
        var timeout: Seconds?
        for op in operations.children {
            let opPath = "\(opsPath)/\(op.pathStep)"
            guard op.name == "op", let name = op["name"] else {
                self.report(opPath, "unexpected element in operations")
                continue
            }
            let interval = op["interval"].flatMap(PacemakerValues.duration) ?? Seconds(0)
            var handled: Set<String> = ["id", "name", "interval", "timeout"]
            switch name {
            case "monitor" where interval.value > 0:
                if resource.monitorInterval == nil {
                    resource.monitorInterval = interval
                    handled.insert("role")
                    if let role = op["role"] {
                        self.report(opPath, "role-specific monitor (role \(role)); its interval is used for every role")
                    }
                } else {
                    self.report(opPath, "a second recurring monitor is not supported; the first one's interval is used")
                    continue
                }
            case "start", "stop", "promote", "demote", "migrate_to", "migrate_from":
                if let text = op["timeout"] {
                    guard let value = PacemakerValues.duration(text) else {
                        throw self.error(at: opPath, op, "timeout \"\(text)\" is not a duration")
                    }
                    timeout = max(timeout ?? value, value)
                }
            default:
                self.report(opPath, "operation \(name) is not supported; ignored")
                continue
            }
            for attribute in op.attributes.keys.sorted() where !handled.contains(attribute) {
                self.report(opPath, "operation attribute \(attribute) is not supported; ignored")
            }
            if !op.children.isEmpty {
                self.report(opPath, "operation meta or instance attributes are not supported; ignored")
            }
        }
        if let timeout { resource.operationTimeout = timeout }
    }

    // MARK: - meta attributes

    /// Parses a resource's meta attributes; `allowed` names extra ones the caller handles itself.
    mutating func meta(of element: XMLNode, path: String, allowed: Set<String>) throws(CIBError) -> ResourceMeta {
        var meta = ResourceMeta()
        for pair in self.nvpairs(of: element, sets: ["meta_attributes"], path: path) {
            switch pair.name {
            case "resource-stickiness":
                guard let score = Score(parsing: pair.value) else {
                    throw CIBError(file: self.file, element: pair.path, message: "resource-stickiness \"\(pair.value)\" is not a score")
                }
                meta.stickiness = score
            case "migration-threshold":
                meta.migrationThreshold = try self.migrationThreshold(pair.value, path: pair.path)
            case "failure-timeout":
                // Pacemaker: 0 disables expiry; the model's nil means "inherit", so keep a huge timeout.
                let value = try self.failureTimeout(pair.value, path: pair.path)
                meta.failureTimeout = value ?? Seconds(Double(Int32.max))
            case "target-role" where pair.value.trimmingWhitespace().lowercased() == "#default":
                break  // Pacemaker: the default role, as if unset
            case "target-role":
                guard let role = PacemakerValues.targetRole(pair.value) else {
                    throw CIBError(file: self.file, element: pair.path, message: "target-role \"\(pair.value)\" is not a role (Stopped, Started, Unpromoted/Slave, Promoted/Master)")
                }
                meta.targetRole = role
            case "allow-migrate":
                guard let value = PacemakerValues.boolean(pair.value) else {
                    throw CIBError(file: self.file, element: pair.path, message: "allow-migrate \"\(pair.value)\" is not a boolean")
                }
                meta.allowMigrate = value
            case "priority":
                // Pacemaker reads a priority as a score, by its leading integer ("2.0" is 2).
                guard let value = PacemakerValues.integer(pair.value) ?? PacemakerValues.leadingInteger(pair.value) else {
                    throw CIBError(file: self.file, element: pair.path, message: "priority \"\(pair.value)\" is not an integer")
                }
                meta.priority = value
            case let name where allowed.contains(name):
                break
            default:
                self.report(pair.path, "meta attribute \(pair.name) is not supported; ignored")
            }
        }
        return meta
    }

    /// Merges a container's meta into a child's: the child's own values win (Pacemaker inherits
    /// only what the child does not set), but a stopped container stops its children.
    private func merged(child: ResourceMeta, container: ResourceMeta) -> ResourceMeta {
        var result = child
        result.stickiness = child.stickiness ?? container.stickiness
        result.migrationThreshold = child.migrationThreshold ?? container.migrationThreshold
        result.failureTimeout = child.failureTimeout ?? container.failureTimeout
        result.allowMigrate = child.allowMigrate ?? container.allowMigrate
        result.priority = child.priority != 0 ? child.priority : container.priority
        switch (child.targetRole, container.targetRole) {
        case (.stopped, _), (_, .stopped): result.targetRole = .stopped
        case (nil, let role): result.targetRole = role
        case (let role, _): result.targetRole = role
        }
        return result
    }

    // MARK: - group

    private mutating func importGroup(_ element: XMLNode, path: String) throws(CIBError) {
        let id = try self.required("id", of: element, path: path)
        let meta = try self.meta(of: element, path: path, allowed: [])
        var members: [String] = []
        for child in element.children {
            let childPath = "\(path)/\(child.pathStep)"
            switch child.name {
            case "primitive":
                if let resource = try self.primitive(child, path: childPath) {
                    self.add(resource, pacemakerIDs: [resource.id])
                    members.append(resource.id)
                }
            case "meta_attributes": break
            default:
                self.report(childPath, "unexpected element in a group; skipped")
                self.skipAll(child)
            }
        }
        guard !members.isEmpty else {
            self.report(path, "group without supported members; skipped")
            self.skippedResources.insert(id)
            return
        }
        self.config.groups.append(GroupConfig(id: id, members: members, meta: meta))
        self.resourceIDs[id] = id
    }

    // MARK: - clone

    private mutating func importClone(_ element: XMLNode, path: String) throws(CIBError) {
        let id = try self.required("id", of: element, path: path)
        let cloneKeys: Set<String> = [
            "clone-max", "clone-node-max", "promotable", "promoted-max", "master-max", "promoted-node-max",
            "master-node-max", "globally-unique",
        ]
        let containerMeta = try self.meta(of: element, path: path, allowed: cloneKeys)
        var settings: [String: (value: String, path: String)] = [:]
        for pair in self.nvpairs(of: element, sets: ["meta_attributes"], path: path) where cloneKeys.contains(pair.name) {
            settings[pair.name] = (pair.value, pair.path)
        }
        let children = element.children.filter { $0.name != "meta_attributes" && $0.name != "instance_attributes" }
        guard children.count == 1, let child = children.first else {
            throw self.error(at: path, element, "a clone must hold exactly one primitive or group")
        }
        let childPath = "\(path)/\(child.pathStep)"
        guard child.name == "primitive" else {
            self.report(childPath, "clones of \(child.name)s are not supported; clone skipped")
            self.skippedResources.insert(id)
            self.skipAll(child)
            return
        }
        if element.child(named: "instance_attributes") != nil {
            self.report("\(path)/instance_attributes", "instance attributes on a clone are not supported; ignored")
        }
        guard var resource = try self.primitive(child, path: childPath) else {
            self.skippedResources.insert(id)
            return
        }
        let primitiveID = resource.id

        func integer(_ key: String) throws(CIBError) -> Int? {
            guard let setting = settings[key] else { return nil }
            guard let value = Int(setting.value), value >= 0 else {
                throw CIBError(file: self.file, element: setting.path, message: "\(key) \"\(setting.value)\" is not a non-negative integer")
            }
            return value
        }
        if let setting = settings["globally-unique"], PacemakerValues.boolean(setting.value) == true {
            self.report(setting.path, "globally unique clones are not supported; imported as an anonymous clone")
        }
        for key in ["clone-node-max", "promoted-node-max", "master-node-max"] {
            if let value = try integer(key), value != 1 {
                self.report(settings[key]!.path, "\(key) other than 1 is not supported; using 1")
            }
        }
        let promotable = element.name == "master"
            || settings["promotable"].flatMap { PacemakerValues.boolean($0.value) } == true
        let max = try integer("clone-max")
        if promotable {
            let promotedMax: Int
            if let value = try integer("promoted-max") {
                promotedMax = value
            } else {
                promotedMax = try integer("master-max") ?? 1
            }
            resource.cloning = .promotable(max: max, promotedMax: promotedMax)
        } else {
            for key in ["promoted-max", "master-max"] where settings[key] != nil {
                self.report(settings[key]!.path, "\(key) on a clone that is not promotable; ignored")
            }
            resource.cloning = .clone(max: max)
        }
        resource.meta = self.merged(child: resource.meta, container: containerMeta)
        // Pacemaker gives clone instances a stickiness of 1 unless one is configured.
        if resource.meta.stickiness == nil, !self.defaultStickinessConfigured {
            resource.meta.stickiness = 1
        }
        resource.id = id
        self.add(resource, pacemakerIDs: [id, primitiveID])
    }
}

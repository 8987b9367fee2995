import CleverModel

extension CIBImporter {
    mutating func importStatus(_ status: XMLNode, into state: inout ClusterState) throws(CIBError) {
        // Configured nodes without a node_state are offline, as in Pacemaker.
        for node in self.config.nodes {
            state.nodes[node.name] = NodeState(status: .offline, standby: Self.standby(node.attributes), attributes: node.attributes)
        }
        for element in status.children {
            let path = "status/\(element.pathStep)"
            guard element.name == "node_state" else {
                self.report(path, "unexpected element in status")
                continue
            }
            try self.importNodeState(element, path: path, into: &state)
        }
    }

    private mutating func importNodeState(_ element: XMLNode, path: String, into state: inout ClusterState) throws(CIBError) {
        let uname = try self.required("uname", of: element, path: path)
        var node = state.nodes[uname] ?? NodeState(status: .offline)
        if self.config.node(named: uname) == nil {
            self.report(path, "status of a node that is not configured; imported as its state only")
        }
        // Pacemaker without fencing: online = member of the membership (in_ccm), controller up
        // (crmd online) and joined. In 2.1.7+ in_ccm/crmd may be timestamps of the change.
        let inMembership = element["in_ccm"].map { PacemakerValues.boolean($0) ?? ((Int($0) ?? 0) > 0) } ?? false
        let controller = element["crmd"].map { $0 == "online" || (Int($0) ?? 0) > 0 } ?? false
        let joined = (element["join"] ?? "member") == "member"
        node.status = inMembership && controller && joined ? .online : .offline

        // Fail counts and last failures per resource, from transient attributes.
        var failCounts: [String: Int] = [:]
        var lastFailures: [String: Timestamp] = [:]
        if let transient = element.child(named: "transient_attributes") {
            let transientPath = "\(path)/\(transient.pathStep)"
            for pair in self.nvpairs(of: transient, sets: ["instance_attributes"], path: transientPath) {
                node.attributes[pair.name] = pair.value
                if let (resource, _) = self.resourceOfFailureAttribute(pair.name, prefix: "fail-count-", path: pair.path) {
                    guard let count = PacemakerValues.integer(pair.value), count >= 0 else {
                        throw CIBError(file: self.file, element: pair.path, message: "fail count \"\(pair.value)\" is not a non-negative integer")
                    }
                    failCounts[resource] = min((failCounts[resource] ?? 0) + count, Score.infinityValue)
                } else if let (resource, _) = self.resourceOfFailureAttribute(pair.name, prefix: "last-failure-", path: pair.path) {
                    guard let seconds = Double(pair.value), seconds.isFinite else {
                        throw CIBError(file: self.file, element: pair.path, message: "last failure \"\(pair.value)\" is not a time in seconds")
                    }
                    let time = Timestamp(seconds: seconds)
                    lastFailures[resource] = max(lastFailures[resource] ?? time, time)
                }
            }
            for child in transient.children where child.name != "instance_attributes" {
                self.report("\(transientPath)/\(child.pathStep)", "unexpected element in transient attributes")
            }
        }
        self.aliasPromotionScores(&node.attributes)
        // A node shutting down (transient `shutdown` set to its request time) runs nothing, as one in standby.
        let shuttingDown = node.attributes["shutdown"].map { $0 != "0" && !$0.isEmpty } ?? false
        node.standby = Self.standby(node.attributes) || shuttingDown
        state.nodes[uname] = node

        if let lrm = element.child(named: "lrm") {
            let resources = lrm.child(named: "lrm_resources")?.children(named: "lrm_resource") ?? []
            for history in resources {
                let historyPath = "\(path)/lrm/lrm_resources/\(history.pathStep)"
                let historyID = try self.required("id", of: history, path: historyPath)
                guard let resource = self.modelID(ofInstance: historyID) else {
                    if !self.skippedResources.contains(Self.stripInstance(historyID)) {
                        self.report(historyPath, "history of a resource that is not configured (Pacemaker would stop it); ignored")
                    }
                    continue
                }
                let promotable = self.promotableIDs.contains(resource)
                let (role, operations) = try self.role(from: history, path: historyPath, promotable: promotable)
                state.update(resource, on: uname) { entry in
                    // Two instances of one clone on a node cannot happen with clone-node-max 1; keep the active one.
                    if !entry.role.isActive || role == .failed || role == .promoted { entry.role = role }
                    entry.lastOperations = (entry.lastOperations + operations).sorted { $0.at < $1.at }
                }
            }
        }
        for (resource, count) in failCounts {
            state.update(resource, on: uname) { $0.failCount = count }
        }
        for (resource, time) in lastFailures {
            state.update(resource, on: uname) { $0.lastFailure = time }
        }
    }

    /// Pacemaker keeps promotion scores in `master-PRIMITIVE` (older versions: `master-PRIMITIVE:N`),
    /// named after the primitive inside the clone; the model names the clone, so the score is also
    /// stored as `master-CLONE`. The original attribute stays for rules that name it.
    private func aliasPromotionScores(_ attributes: inout [String: String]) {
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) where name.hasPrefix("master-") {
            let primitive = String(name.dropFirst("master-".count))
            guard let clone = self.modelID(ofInstance: primitive), "master-\(clone)" != name,
                self.promotableIDs.contains(clone), attributes["master-\(clone)"] == nil
            else { continue }
            attributes["master-\(clone)"] = value
        }
    }

    /// `fail-count-RSC#op_interval` or `fail-count-RSC` (older) -> the model's resource id.
    private func resourceOfFailureAttribute(_ name: String, prefix: String, path: String) -> (String, String?)? {
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        let parts = rest.split(separator: "#", maxSplits: 1)
        guard let first = parts.first, let resource = self.modelID(ofInstance: String(first)) else { return nil }
        return (resource, parts.count > 1 ? String(parts[1]) : nil)
    }

    static func stripInstance(_ id: String) -> String {
        guard let colon = id.lastIndex(of: ":"), id[id.index(after: colon)...].allSatisfy(\.isNumber),
            id.index(after: colon) < id.endIndex
        else { return id }
        return String(id[..<colon])
    }

    /// `drbd:1` or `drbd` (a clone's primitive) -> the clone's id; a primitive's own id otherwise.
    func modelID(ofInstance id: String) -> String? {
        self.resourceIDs[id] ?? self.resourceIDs[Self.stripInstance(id)]
    }

    /// The current role on one node from the operation history, replayed in call order: the last
    /// successful start/promote/demote/stop or probe decides (and, as in Pacemaker, clears an
    /// earlier failure); a failed operation leaves it Failed until one of those succeeds. A
    /// recurring monitor reporting "promoted" (8) or "running" (0) confirms the role it expects.
    private mutating func role(
        from history: XMLNode, path: String, promotable: Bool
    ) throws(CIBError) -> (ResourceRole, [OperationRecord]) {
        struct Op {
            var action: String
            var callID: Int
            var rc: Int
            var status: Int
            var interval: Double
            var at: Timestamp
            /// The result the controller expected, from the transition key `action:transition:rc:uuid`.
            var expectedRC: Int?
        }
        var ops: [Op] = []
        for element in history.children {
            let opPath = "\(path)/\(element.pathStep)"
            guard element.name == "lrm_rsc_op" else {
                self.report(opPath, "unexpected element in resource history")
                continue
            }
            let action = try self.required("operation", of: element, path: opPath)
            guard let rc = Int(element["rc-code"] ?? "") else {
                throw self.error(at: opPath, element, "rc-code \"\(element["rc-code"] ?? "")\" is not an integer")
            }
            let callID = Int(element["call-id"] ?? "") ?? -1
            let status = Int(element["op-status"] ?? "0") ?? 0
            let interval = (element["interval"].flatMap { Double($0) }.flatMap { $0.isFinite ? $0 : nil } ?? 0) / 1000
            let time = (element["last-rc-change"] ?? element["last-run"]).flatMap { Double($0) }.flatMap { $0.isFinite ? $0 : nil }
            ops.append(
                Op(action: action, callID: callID, rc: rc, status: status, interval: interval,
                   at: Timestamp(seconds: time ?? self.now?.seconds ?? 0),
                   expectedRC: element["transition-key"].flatMap { key in
                       let parts = key.split(separator: ":")
                       return parts.count == 4 ? Int(parts[2]) : nil
                   }))
        }
        // Pending operations (call-id -1) come last, as in Pacemaker's sort.
        ops.sort { ($0.callID < 0 ? Int.max : $0.callID) < ($1.callID < 0 ? Int.max : $1.callID) }

        var role: ResourceRole = ops.isEmpty ? .unknown : .stopped
        var records: [OperationRecord] = []
        let runningRole: ResourceRole = promotable ? .unpromoted : .started
        for op in ops {
            if let action = ResourceAction(rawValue: op.action) {
                records.append(OperationRecord(action: action, exitCode: op.rc, at: op.at))
            }
            // Pending (-1): Pacemaker counts a start in flight as active and a promote as promoted.
            if op.status == -1 {
                if op.action == "start" { role = runningRole }
                if op.action == "promote" { role = .promoted }
                continue
            }
            // 1 cancelled, 3 not supported: no result to apply.
            if op.status == 1 || op.status == 3 { continue }
            let failedExecution = op.status != 0
            switch op.action {
            case "start", "migrate_from":
                role = !failedExecution && op.rc == 0 ? runningRole : .failed
            case "stop":
                role = !failedExecution && op.rc == 0 ? .stopped : .failed
            case "promote":
                role = !failedExecution && op.rc == 0 ? .promoted : .failed
            case "demote":
                role = !failedExecution && op.rc == 0 ? .unpromoted : .failed
            case "migrate_to":
                if failedExecution || op.rc != 0 { role = .failed }
            case "monitor":
                if failedExecution {
                    role = .failed
                    continue
                }
                if op.interval == 0 {
                    // A probe: every answer is a finding, not a failure.
                    switch op.rc {
                    case 0: role = runningRole
                    case 7: role = .stopped
                    case 8: role = .promoted
                    default: role = .failed
                    }
                } else if let expected = op.expectedRC, expected != op.rc {
                    role = .failed
                } else if role != .failed {
                    switch op.rc {
                    case 0: role = role.isActive && role != .promoted ? role : runningRole
                    case 8: role = .promoted
                    case 7 where op.expectedRC == 7: role = .stopped
                    default: role = .failed
                    }
                }
            default:
                break  // notify, meta-data, reload: no effect on the role
            }
        }
        return (role, records)
    }
}

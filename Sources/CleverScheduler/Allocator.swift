import CleverModel

/// Assigns every unit to nodes, in dependency order (a colocation's primary before its dependent),
/// recording each node's score and why.
struct Allocator {
    let config: ClusterConfig
    let state: ClusterState
    let now: Timestamp
    let constraints: [Constraint]
    let units: [Unit]
    let nodeNames: [String]
    private let unitOfResource: [String: String]
    let index: ConfigIndex
    let unitsByID: [String: Unit]
    let colocations: [ColocationConstraint]
    /// Constraints by the unit they name (a group member's constraints under its group).
    let locationsByUnit: [String: [LocationConstraint]]
    let colocationsByPrimaryUnit: [String: [ColocationConstraint]]
    let colocationsByDependentUnit: [String: [ColocationConstraint]]
    /// Each node's attributes as rules see them.
    let ruleAttributes: [String: [String: String]]
    /// Every node at zero: each resource's sheet starts as a copy (building one hashes every node name).
    let emptySheet: ScoreSheet
    let nodeSet: Set<String>

    var targets: [String: Target] = [:]
    private(set) var sheets: [String: ScoreSheet] = [:]
    private(set) var promotionSheets: [String: ScoreSheet] = [:]
    var blocked: [String: String] = [:]
    private var assignedCount: [String: Int] = [:]
    private var allocated: Set<String> = []

    init(config: ClusterConfig, state: ClusterState, now: Timestamp) {
        self.config = config
        self.state = state
        self.now = now
        self.constraints = config.effectiveConstraints
        self.index = ConfigIndex(config)
        self.units = Unit.units(of: config, index: self.index)
        self.nodeNames = config.nodes.map(\.name).sorted()
        var unitOfResource: [String: String] = [:]
        var unitsByID: [String: Unit] = [:]
        for unit in self.units {
            for name in unit.names { unitOfResource[name] = unit.id }
            if unitsByID[unit.id] == nil { unitsByID[unit.id] = unit }
        }
        self.unitOfResource = unitOfResource
        self.unitsByID = unitsByID
        var colocations: [ColocationConstraint] = []
        var locationsByUnit: [String: [LocationConstraint]] = [:]
        var byPrimary: [String: [ColocationConstraint]] = [:]
        var byDependent: [String: [ColocationConstraint]] = [:]
        for constraint in self.constraints {
            switch constraint {
            case .location(let location):
                if let unit = unitOfResource[location.resource] { locationsByUnit[unit, default: []].append(location) }
            case .colocation(let colocation):
                colocations.append(colocation)
                if let unit = unitOfResource[colocation.primary] { byPrimary[unit, default: []].append(colocation) }
                if let unit = unitOfResource[colocation.dependent] { byDependent[unit, default: []].append(colocation) }
            case .order:
                break
            }
        }
        self.colocations = colocations
        self.locationsByUnit = locationsByUnit
        self.colocationsByPrimaryUnit = byPrimary
        self.colocationsByDependentUnit = byDependent
        var ruleAttributes: [String: [String: String]] = [:]
        for node in self.nodeNames { ruleAttributes[node] = state.ruleAttributes(of: node) }
        self.ruleAttributes = ruleAttributes
        self.emptySheet = ScoreSheet(nodes: self.nodeNames)
        self.nodeSet = Set(self.nodeNames)
    }

    func meta(of id: String) -> EffectiveMeta { self.index.meta(of: id, in: self.config) }

    func unitID(of resource: String) -> String? { self.unitOfResource[resource] }

    // MARK: - Order of allocation

    /// Primaries before dependents; otherwise higher priority first, then config order.
    func allocationOrder() -> [Unit] {
        var dependsOn: [String: Set<String>] = [:]
        for colocation in self.colocations {
            guard let dependent = self.unitID(of: colocation.dependent), let primary = self.unitID(of: colocation.primary),
                dependent != primary
            else { continue }
            dependsOn[dependent, default: []].insert(primary)
        }
        var rank: [String: Int] = [:]
        for (position, unit) in self.units.enumerated() where rank[unit.id] == nil { rank[unit.id] = position }
        func priority(_ unit: Unit) -> Int { self.meta(of: unit.id).priority }
        let sorted = self.units.sorted {
            priority($0) != priority($1) ? priority($0) > priority($1) : rank[$0.id]! < rank[$1.id]!
        }
        // The first unit (in that order) whose primaries are all placed; on a colocation cycle, the first unit
        // left. Kahn's algorithm with the ready units in a heap by position: linear but for the heap.
        var position: [String: Int] = [:]
        for (index, unit) in sorted.enumerated() where position[unit.id] == nil { position[unit.id] = index }
        var waitingOn: [Int: Int] = [:]
        var dependentsOf: [Int: [Int]] = [:]
        for (dependent, primaries) in dependsOn {
            guard let d = position[dependent] else { continue }
            let known = primaries.compactMap { position[$0] }
            waitingOn[d] = known.count
            for p in known { dependentsOf[p, default: []].append(d) }
        }
        var ready = MinHeap<Int>()
        for index in sorted.indices where (waitingOn[index] ?? 0) == 0 { ready.push(index) }
        var done = [Bool](repeating: false, count: sorted.count)
        var ordered: [Unit] = []
        var nextLeft = 0
        while ordered.count < sorted.count {
            var next: Int
            if let candidate = ready.pop() {
                next = candidate
                if done[next] { continue }
            } else {
                while done[nextLeft] { nextLeft += 1 }
                next = nextLeft
            }
            done[next] = true
            ordered.append(sorted[next])
            for dependent in dependentsOf[next] ?? [] where !done[dependent] {
                waitingOn[dependent, default: 0] -= 1
                if waitingOn[dependent] == 0 { ready.push(dependent) }
            }
        }
        return ordered
    }

    mutating func allocateAll() {
        for unit in self.allocationOrder() {
            switch unit {
            case .primitive, .group: self.allocateSingle(unit)
            case .clone(let resource): self.allocateClone(resource)
            }
            self.allocated.insert(unit.id)
        }
    }

    // MARK: - Node scores

    func roleIsActive(_ role: ResourceRole) -> Bool { role.isRunningCleanly }

    /// A unit's own preferences: availability, location constraints and rules, operator marks,
    /// failures, stickiness; and, when `withDependents`, the advisory preferences of resources that
    /// want to run with it and are not placed yet.
    func ownScores(
        of unit: Unit, withDependents: Bool, visited: Set<String> = [], withStickiness: Bool = true, member only: String? = nil
    ) -> ScoreSheet {
        var sheet = self.emptySheet
        var mentioned: Set<String> = []
        let isClone = if case .clone = unit { true } else { false }
        // `only` a group member: Pacemaker gives the group's own locations (and marks) their score on the first
        // member only; later members get those nodes at 0 (pcmk__group_apply_location resets the copy).
        let isFirstMember = only == nil || only == unit.members.first?.id
        func counts(_ resource: String) -> Bool {
            guard let only else { return true }
            return resource == only || (resource == unit.id && isFirstMember)
        }

        for node in self.nodeNames {
            guard let nodeState = self.state.nodes[node], nodeState.status == .online else {
                sheet.add(.minusInfinity, on: node, because: "node \(node) is offline")
                continue
            }
            if nodeState.standby {
                sheet.add(.minusInfinity, on: node, because: "node \(node) is in standby")
            }
        }

        for location in self.locationsByUnit[unit.id] ?? [] {
            // A Promoted location counts for the promotion only; an Unpromoted one for every role (Pacemaker:
            // an instance is unpromoted before it can be promoted).
            if location.role == .promoted { continue }
            switch location.placement {
            case .node(let node, let score):
                guard self.nodeSet.contains(node) else { continue }
                mentioned.insert(node)
                guard counts(location.resource) else { continue }
                sheet.add(score, on: node, because: "location constraint \(location.id)")
            case .rule(let rule):
                for node in self.nodeNames {
                    guard let score = rule.score(on: self.ruleAttributes[node] ?? [:]) else { continue }
                    mentioned.insert(node)
                    guard counts(location.resource) else { continue }
                    sheet.add(score, on: node, because: "location rule \(location.id) (\(rule.expression))")
                }
            }
        }
        for mark in self.state.marks where mark.isActive(at: self.now) {
            let applies: Bool
            if let resource = mark.resource {
                applies = unit.names.contains(resource)
            } else {
                // A whole-host mark (migrate) moves what runs once; clones keep their instances so
                // replication and ping continue, and lose only the promoted role.
                applies = !isClone
            }
            guard applies, self.nodeSet.contains(mark.node) else { continue }
            mentioned.insert(mark.node)
            guard counts(mark.resource ?? unit.id) else { continue }
            switch mark.kind {
            case .ban:
                sheet.add(.minusInfinity, on: mark.node, because: "operator mark \(mark.pacemakerID) (\(mark.createdBy))")
            case .prefer:
                sheet.add(.infinity, on: mark.node, because: "operator mark \(mark.pacemakerID) (\(mark.createdBy))")
            }
            // In Pacemaker a mark is a location constraint (cli-ban-*, cli-prefer-*), so it allows its node in an
            // opt-in cluster as any other (`mentioned` above).
        }
        if !self.config.properties.symmetric {
            for node in self.nodeNames where !mentioned.contains(node) {
                sheet.add(.minusInfinity, on: node, because: "opt-in cluster and no location constraint allows \(node)")
            }
        }

        for member in unit.members where only == nil || member.id == only {
            let meta = self.meta(of: member.id)
            for node in self.nodeNames {
                let resourceState = self.state.state(of: member.id, on: node)
                let failures = self.activeFailCount(resourceState, meta: meta)
                if meta.migrationThreshold > 0, failures >= meta.migrationThreshold {
                    sheet.add(.minusInfinity, on: node,
                              because: "\(member.id) failed \(failures) time(s) on \(node) (migration-threshold \(meta.migrationThreshold))")
                }
                // Pacemaker: only a positive stickiness counts (apply_stickiness ignores less than 1).
                if withStickiness, self.roleIsActive(resourceState.role), meta.stickiness.value > 0 {
                    sheet.add(meta.stickiness, on: node, because: "stickiness of \(member.id), running on \(node)")
                }
            }
        }

        if withDependents {
            self.mergeDependents(of: unit, into: &sheet, negated: false, nonNegative: isClone, visited: visited.union([unit.id]))
        }
        return sheet
    }

    /// A unit's own scores without its dependents: they do not change while the schedule runs (nothing in them
    /// depends on what is placed), so each is computed once however many primaries merge it.
    final class OwnScoreCache {
        var sheets: [String: ScoreSheet] = [:]
    }
    let ownScoreCache = OwnScoreCache()

    /// One group member's own scores (see `ownScores(member:)`), cached as `dependentScores`.
    func memberScores(of unit: Unit, member: String) -> ScoreSheet {
        let key = "\(unit.id)\u{0}\(member)"
        if let cached = self.ownScoreCache.sheets[key] { return cached }
        let sheet = self.ownScores(of: unit, withDependents: false, member: member)
        self.ownScoreCache.sheets[key] = sheet
        return sheet
    }

    func dependentScores(of unit: Unit) -> ScoreSheet {
        if let cached = self.ownScoreCache.sheets[unit.id] { return cached }
        // A clone's own node table holds no stickiness: in Pacemaker that belongs to each instance on its node.
        let isClone = if case .clone = unit { true } else { false }
        let sheet = self.ownScores(of: unit, withDependents: false, withStickiness: !isClone)
        self.ownScoreCache.sheets[unit.id] = sheet
        return sheet
    }

    /// Adds the preferences of resources that want to run with this unit and are not placed yet, as
    /// Pacemaker's pcmk__add_colocated_node_scores: each dependent's own scores scaled by its colocation's
    /// score, rolled back if they would leave no node allowed; then, if kept, the dependents of that
    /// dependent at their own colocation's score (negated below an anti-colocation).
    func mergeDependents(
        of unit: Unit, into sheet: inout ScoreSheet, negated: Bool, nonNegative: Bool, visited: Set<String>,
        onlyNegative: Bool = false
    ) {
        for colocation in self.colocationsByPrimaryUnit[unit.id] ?? [] {
            if onlyNegative, colocation.score.value >= 0 { continue }
            guard let dependentID = self.unitID(of: colocation.dependent), dependentID != unit.id,
                !self.allocated.contains(dependentID), !visited.contains(dependentID),
                let dependent = self.unitsByID[dependentID]
            else { continue }
            let factor = negated ? Score(-colocation.score.value) : colocation.score
            var work = sheet
            let reason = "\(colocation.dependent) wants to run with it (\(colocation.id))"
            if case .group(_, let members) = dependent, let first = members.first {
                // Pacemaker (init_group_colocated_nodes) merges a dependent group through its first member at the
                // colocation's factor; the later members come in through the group's internal colocations, each
                // at full strength (its "@TODO ... at full strength"), each rolled back alone if it would leave
                // no node allowed, and the rest of the chain with it.
                let kept = work.merge(self.memberScores(of: dependent, member: first.id), factor: factor, because: reason,
                                      rollbackIfNoneAllowed: true, nonNegative: nonNegative)
                guard kept else { continue }
                let full = factor.value < 0 ? Score.minusInfinity : Score.infinity
                for later in members.dropFirst() {
                    let laterKept = work.merge(
                        self.memberScores(of: dependent, member: later.id), factor: full,
                        because: "\(later.id) follows \(colocation.dependent)'s first member at full strength (\(colocation.id))",
                        rollbackIfNoneAllowed: true, nonNegative: nonNegative)
                    if !laterKept { break }
                }
            } else {
                let theirs = self.dependentScores(of: dependent)
                let kept = work.merge(theirs, factor: factor, because: reason, rollbackIfNoneAllowed: true, nonNegative: nonNegative)
                guard kept else { continue }
            }
            self.mergeDependents(of: dependent, into: &work, negated: factor.value < 0, nonNegative: nonNegative,
                                 visited: visited.union([dependentID]))
            sheet = work
        }
    }

    func isAvailable(_ node: String) -> Bool {
        guard let nodeState = self.state.nodes[node] else { return false }
        return nodeState.status == .online && !nodeState.standby
    }

    /// The node's promotion score for a promotable resource (`master-ID`), if set.
    func promotionAttribute(of resource: ResourceConfig, on node: String) -> Score? {
        self.state.nodes[node]?.attributes["master-\(resource.id)"].flatMap { Score(parsing: $0) }
    }

    func activeFailCount(_ resourceState: ResourceNodeState, meta: EffectiveMeta) -> Int {
        guard resourceState.failCount > 0 else { return 0 }
        if let timeout = meta.failureTimeout, timeout.value > 0, let last = resourceState.lastFailure,
            self.now.seconds(since: last) >= timeout.value
        {
            return 0
        }
        return resourceState.failCount
    }

    /// Applies colocations in which this unit is the dependent and the primary is already placed.
    /// Which colocations `applyPrimaries` applies: all, all but the finite ones that roll back (a clone applies
    /// those per instance), or only those.
    enum FiniteColocations { case apply, skip, only }

    func applyPrimaries(to sheet: inout ScoreSheet, of unit: Unit, dependentRole: ConstraintRole?, finite: FiniteColocations = .apply) {
        for colocation in self.colocationsByDependentUnit[unit.id] ?? [] {
            if dependentRole == nil {
                guard self.affectsPlacement(colocation, of: unit) else { continue }
            } else {
                guard colocation.dependentRole == dependentRole else { continue }
            }
            guard let primaryUnit = self.unitID(of: colocation.primary), primaryUnit != unit.id,
                self.allocated.contains(primaryUnit)
            else { continue }
            // Pacemaker (update_dependent_allowed_nodes): with a promotable primary in a given role, a finite
            // score is added where the primary has that role, with no rollback and nothing where it has none.
            let withPromotableRole = colocation.primaryRole != nil && (self.index.resources[colocation.primary]?.isPromotable ?? false)
            let rollsBack = !colocation.score.isInfinite && !colocation.score.isMinusInfinite && !withPromotableRole
            if finite == .skip, rollsBack { continue }
            if finite == .only, !rollsBack { continue }
            let nodes = self.targets[self.colocationTarget(of: colocation)]?.nodes(in: colocation.primaryRole) ?? []
            let roleText = colocation.primaryRole.map { " (\($0.rawValue))" } ?? ""
            let what = "\(colocation.primary)\(roleText)"
            if colocation.score.isInfinite {
                for node in self.nodeNames where !nodes.contains(node) {
                    sheet.add(.minusInfinity, on: node,
                              because: nodes.isEmpty ? "must run with \(what), which runs nowhere (\(colocation.id))"
                                  : "must run with \(what), which is not on \(node) (\(colocation.id))")
                }
            } else if colocation.score.isMinusInfinite {
                for node in nodes {
                    sheet.add(.minusInfinity, on: node, because: "must not run with \(what) (\(colocation.id))")
                }
            } else {
                // Pacemaker (pcmk__apply_coloc_to_weights): a finite colocation with a primary that runs nowhere
                // lowers every node by its score; and a finite colocation that would leave no node allowed is
                // rolled back, as if it were not there.
                var applied = sheet
                if withPromotableRole {
                    for node in nodes.sorted() {
                        sheet.add(colocation.score, on: node, because: "prefers to run with \(what) (\(colocation.id))")
                    }
                    continue
                }
                if nodes.isEmpty {
                    guard colocation.score.value > 0 else { continue }
                    for node in self.nodeNames {
                        applied.add(Score(-colocation.score.value), on: node,
                                    because: "prefers to run with \(what), which runs nowhere (\(colocation.id))")
                    }
                } else {
                    for node in nodes.sorted() {
                        applied.add(colocation.score, on: node, because: "prefers to run with \(what) (\(colocation.id))")
                    }
                }
                if applied.anyAllowed || !sheet.anyAllowed { sheet = applied }
            }
        }
    }

    /// Whether a colocation in which the unit is the dependent weighs on where it is placed (as opposed to
    /// only on which instance is promoted). Pacemaker 2.1.5, as crm_simulate shows it: a colocation of the
    /// dependent's Promoted role weighs on promotion only; one of its Unpromoted role on placement only when
    /// negative; and a clone passes a finite positive colocation on to its instances only when fewer instances
    /// than available nodes run (append_parent_colocation), so otherwise it does not weigh at all.
    func affectsPlacement(_ colocation: ColocationConstraint, of unit: Unit) -> Bool {
        switch colocation.dependentRole {
        case .promoted: return false
        case .unpromoted where colocation.score.value >= 0: return false
        default: break
        }
        if case .clone(let resource) = unit, colocation.score.value > 0, !colocation.score.isInfinite {
            let available = self.nodeNames.filter(self.isAvailable).count
            let instances: Int
            switch resource.cloning {
            case .single: instances = 1
            case .clone(let max), .promotable(let max, _): instances = max ?? available
            }
            return instances < available
        }
        return true
    }

    /// Whose placement a colocation with this primary follows. With a group, Pacemaker (colocate_with_group)
    /// looks at the last member for an INFINITY colocation (the whole group must be up) and at the first
    /// member for any other score (the group being partly up is enough).
    func colocationTarget(of colocation: ColocationConstraint) -> String {
        guard let group = self.index.groups[colocation.primary], !group.members.isEmpty else { return colocation.primary }
        return (colocation.score.isInfinite ? group.members.last : group.members.first) ?? colocation.primary
    }

    func quorumRestriction(on sheet: inout ScoreSheet, activeNodes: Set<String>) -> String? {
        guard !self.state.hasQuorum else { return nil }
        switch self.config.properties.noQuorumPolicy {
        case .ignore:
            return nil
        case .stop:
            for node in self.nodeNames { sheet.add(.minusInfinity, on: node, because: "no quorum (no-quorum-policy stop)") }
            return "the partition has no quorum (no-quorum-policy stop)"
        case .freeze:
            // Pacemaker: nothing is elevated from its role (a stopped resource stays stopped), but what runs
            // may still move within the partition.
            guard activeNodes.isEmpty else { return nil }
            for node in self.nodeNames {
                sheet.add(.minusInfinity, on: node, because: "no quorum (no-quorum-policy freeze): nothing new starts")
            }
            return "the partition has no quorum (no-quorum-policy freeze): nothing new starts"
        }
    }

    // MARK: - Choosing

    /// Highest score first; then the node with fewer resources so far; then where it runs now; then name.
    /// As Pacemaker's assign_best_node: when the best score is above zero and a node it runs on now has
    /// that score too, that node comes first.
    func best(_ sheet: ScoreSheet, current: Set<String>, among candidates: [String]? = nil) -> [String] {
        // Each node's keys looked up once, not in every comparison.
        var keyed = (candidates ?? self.nodeNames).compactMap { node -> (node: String, score: Score, count: Int, current: Bool)? in
            let score = sheet.total(on: node)
            guard score.allowsPlacement else { return nil }
            return (node, score, self.assignedCount[node, default: 0], current.contains(node))
        }
        keyed.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.count != b.count { return a.count < b.count }
            if a.current != b.current { return a.current }
            return a.node < b.node
        }
        if let top = keyed.first, top.score.value > 0, !top.current,
            let index = keyed.firstIndex(where: { $0.current && $0.score == top.score })
        {
            keyed.insert(keyed.remove(at: index), at: 0)
        }
        return keyed.map(\.node)
    }

    func currentNodes(of resources: [ResourceConfig]) -> Set<String> {
        Set(resources.flatMap { self.state.activeNodes(of: $0.id) })
    }

    mutating func allocateSingle(_ unit: Unit) {
        var sheet = self.ownScores(of: unit, withDependents: true)
        self.applyPrimaries(to: &sheet, of: unit, dependentRole: nil)
        let current = self.currentNodes(of: unit.members)
        let quorumReason = self.quorumRestriction(on: &sheet, activeNodes: current)
        self.sheets[unit.id] = sheet

        let meta = self.meta(of: unit.id)
        let stoppedByRole = self.state.targetRoles[unit.id] == .stopped || (self.state.targetRoles[unit.id] == nil && meta.targetRole == .stopped)
        guard !stoppedByRole else {
            self.blocked[unit.id] = "target-role is Stopped"
            return
        }
        guard let node = self.best(sheet, current: current).first else {
            self.blocked[unit.id] = quorumReason ?? "no node can run it (see `clevervm explain \(unit.id)`)"
            return
        }
        if case .group = unit {
            self.targets[unit.id] = Target(roles: [node: .started])
        }
        for member in unit.members {
            let memberMeta = self.meta(of: member.id)
            let memberTarget = self.state.targetRoles[member.id] ?? memberMeta.targetRole
            let failures = self.activeFailCount(self.state.state(of: member.id, on: node), meta: memberMeta)
            if memberTarget == .stopped {
                self.blocked[member.id] = "target-role is Stopped"
                break  // later group members run only with the ones before them
            }
            if memberMeta.migrationThreshold > 0, failures >= memberMeta.migrationThreshold {
                self.blocked[member.id] = "failed too often on \(node)"
                break
            }
            // Pacemaker (pcmk__primitive_assign) freezes each primitive in its role: a group member that runs
            // nowhere stays stopped even when the members before it run (and may move).
            if !self.state.hasQuorum, self.config.properties.noQuorumPolicy == .freeze,
                self.state.activeNodes(of: member.id).isEmpty
            {
                self.blocked[member.id] = "the partition has no quorum (no-quorum-policy freeze): nothing new starts"
                continue
            }
            self.targets[member.id] = Target(roles: [node: .started])
            // Pacemaker counts every primitive it assigns to a node, so a group weighs as its members.
            self.assignedCount[node, default: 0] += 1
        }
    }

    mutating func allocateClone(_ resource: ResourceConfig) {
        let unit = Unit.clone(resource)
        // The clone's own scores, without stickiness: in Pacemaker an instance's stickiness counts for that
        // instance on its node only (see distributeInstances).
        let own = self.ownScores(of: unit, withDependents: true, withStickiness: false)
        var sheet = own
        self.applyPrimaries(to: &sheet, of: unit, dependentRole: nil)
        // What each instance is assigned with (Pacemaker's instance node tables): the clone's own scores; the
        // preferences of what runs with the clone only as append_parent_colocation hands them to instances (all
        // when fewer instances than nodes run, else only the negative ones), merged as for a primitive (not kept
        // non-negative as in the clone's own table, which only bans nodes: can_run_instance); and the colocations
        // with primaries but the finite ones that roll back, which distributeInstances applies per instance.
        let available = self.nodeNames.filter(self.isAvailable).count
        let instanceCount: Int
        switch resource.cloning {
        case .single: instanceCount = 1
        case .clone(let max), .promotable(let max, _): instanceCount = max ?? self.nodeNames.count
        }
        var base = self.ownScores(of: unit, withDependents: false, withStickiness: false)
        self.applyPrimaries(to: &base, of: unit, dependentRole: nil, finite: .skip)
        let current = Set(self.state.activeNodes(of: resource.id))
        func restrict(_ sheet: inout ScoreSheet, withPromotion: Bool) -> String? {
            // Pacemaker (can_run_instance): no instance runs where the clone's own score is negative.
            // Checked on the clone's own score alone, so a promotion score added to the instance does not lift it.
            for node in self.nodeNames where !own.total(on: node).allowsPlacement && !sheet.total(on: node).isMinusInfinite {
                sheet.add(.minusInfinity, on: node, because: "\(resource.id)'s own score on \(node) is \(own.total(on: node)): no instance runs there")
            }
            if resource.isPromotable, withPromotion {
                // Pacemaker (pcmk__add_promotion_scores) adds a positive promotion score to where instances go: here the
                // clone-wide view (what explain shows, and how active instances rank); each instance gets it only where
                // it counts for that instance (`promotionApplies`), in distributeInstances.
                for node in self.nodeNames where self.isAvailable(node) {
                    if let score = self.promotionAttribute(of: resource, on: node), score.value > 0 {
                        sheet.add(score, on: node, because: "promotion score master-\(resource.id) draws an instance to \(node)")
                    }
                }
            }
            return self.quorumRestriction(on: &sheet, activeNodes: current)
        }
        let quorumReason = restrict(&sheet, withPromotion: true)
        _ = restrict(&base, withPromotion: false)
        let rollingBack = (self.colocationsByDependentUnit[unit.id] ?? []).contains {
            !$0.score.isInfinite && !$0.score.isMinusInfinite
        }
        let meta = self.meta(of: resource.id)
        // Where an instance runs cleanly, its stickiness (Pacemaker: only a positive one).
        let sticky = meta.stickiness.value > 0
            ? Set(self.nodeNames.filter { self.roleIsActive(self.state.state(of: resource.id, on: $0).role) }) : []
        var shown = sheet
        for node in self.nodeNames where sticky.contains(node) {
            shown.add(meta.stickiness, on: node, because: "stickiness of \(resource.id)'s instance running on \(node)")
        }
        self.sheets[resource.id] = shown

        let targetRole = self.state.targetRoles[resource.id] ?? meta.targetRole
        guard targetRole != .stopped else {
            self.blocked[resource.id] = "target-role is Stopped"
            return
        }
        let maxInstances: Int
        let promotedMax: Int
        switch resource.cloning {
        case .single: return
        case .clone(let max): (maxInstances, promotedMax) = (max ?? self.nodeNames.count, 0)
        case .promotable(let max, let promoted): (maxInstances, promotedMax) = (max ?? self.nodeNames.count, promoted)
        }
        let frozen = !self.state.hasQuorum && self.config.properties.noQuorumPolicy == .freeze
        // Frozen without quorum: no new instance starts, and no instance is newly promoted.
        let instanceLimit = frozen ? min(maxInstances, current.filter(self.isAvailable).count) : maxInstances
        let allocator = self
        let table = self.instanceTable(of: resource, count: maxInstances)
        let promotable = resource.isPromotable
        let distributed = self.distributeInstances(
            sheet: base, stickiness: meta.stickiness, sticky: sticky, table: table, limit: instanceLimit, ranking: sheet,
            bonus: promotable ? { instance, own in
                for node in allocator.nodeNames where allocator.isAvailable(node) {
                    if let score = allocator.promotionAttribute(of: resource, instance: instance, on: node), score.value > 0 {
                        own.add(score, on: node, because: "promotion score master-\(resource.id) draws instance \(instance.number) to \(node)")
                    }
                }
            } : nil,
            priority: promotable ? { instance in
                // pcmk__add_promotion_scores: an instance's priority rises to its best promotion score where it counts
                // and the instance is allowed; higher priority instances are assigned first (pcmk__cmp_instance).
                var best = meta.priority
                for node in allocator.nodeNames where allocator.isAvailable(node) && base.total(on: node).allowsPlacement {
                    if let score = allocator.promotionAttribute(of: resource, instance: instance, on: node) {
                        best = max(best, score.value)
                    }
                }
                return best
            } : nil,
            refine: rollingBack || !(self.colocationsByPrimaryUnit[unit.id] ?? []).isEmpty ? { instance in
                // As pcmk__primitive_assign for the instance: its colocations with primaries, then what runs with
                // it; each rolled back if it would leave this instance no node.
                allocator.applyPrimaries(to: &instance, of: unit, dependentRole: nil, finite: .only)
                allocator.mergeDependents(of: unit, into: &instance, negated: false, nonNegative: false, visited: [unit.id],
                                          onlyNegative: instanceCount >= available)
            } : nil)
        let chosen = distributed.nodes
        // So `clevervm explain` shows the score that decided: where an instance was assigned with another score
        // than the clone-wide one (a finite colocation rolled back for it, or preferences of dependents that
        // Pacemaker keeps out of its instances), the difference is listed on that node.
        for (node, decided) in distributed.scores {
            let wide = sheet.total(on: node)
            guard decided != wide, !decided.isInfinite, !decided.isMinusInfinite, !wide.isInfinite, !wide.isMinusInfinite
            else { continue }
            let why = decided.value > wide.value
                ? "the instance placed on \(node) set aside a finite colocation that would have left it no node"
                : "the instance placed on \(node) was assigned with \(decided) (preferences of what runs with \(resource.id) count per instance)"
            self.sheets[resource.id]?.add(Score(decided.value - wide.value), on: node, because: why)
        }
        guard !chosen.isEmpty else {
            self.blocked[resource.id] = quorumReason ?? "no node can run it (see `clevervm explain \(resource.id)`)"
            return
        }
        var target = Target()
        for node in chosen {
            target.roles[node] = resource.isPromotable ? .unpromoted : .started
            self.assignedCount[node, default: 0] += 1
        }
        if resource.isPromotable {
            let promotion = self.promotionScores(of: resource, on: chosen, instances: distributed.instances)
            self.promotionSheets[resource.id] = promotion
            if targetRole != .unpromoted, promotedMax > 0 {
                let currentlyPromoted = Set(self.nodeNames.filter { self.state.state(of: resource.id, on: $0).role == .promoted })
                let promotable = frozen ? distributed.order.filter(currentlyPromoted.contains) : distributed.order
                let promoted = self.promotionOrder(promotion, among: promotable, of: resource, instances: distributed.instances)
                    .prefix(promotedMax)
                for node in promoted { target.roles[node] = .promoted }
                let outdated = self.state.outdatedDisks.filter { $0.volume == resource.id && chosen.contains($0.node) }
                if promoted.isEmpty, let mark = outdated.first {
                    self.blocked[resource.id] = "not promoted: \(mark.refusal)"
                }
            }
        }
        self.targets[resource.id] = target
    }

    /// The nodes holding an instance, best to promote first, as Pacemaker's cmp_promotable_instance: the promotion
    /// score; then the current role there (promoted, then running, then stopped); then the instances' own order
    /// (pcmk__cmp_instance): running ones by their instance number, which follows the nodes they run on, and new
    /// ones in the order they were assigned (`candidates` is that order). Simplified: an instance that moves is
    /// ranked by the role on its new node.
    func promotionOrder(
        _ sheet: ScoreSheet, among candidates: [String], of resource: ResourceConfig, instances: [String: CloneInstance] = [:]
    ) -> [String] {
        let keyed = candidates.enumerated().compactMap { position, node -> (node: String, score: Score, rank: Int, position: Int)? in
            let score = sheet.total(on: node)
            guard score.allowsPlacement else { return nil }
            let rank: Int
            // The instance's current role (where it is active now), not the role on the node it goes to.
            let current = instances[node].map { $0.node } ?? node
            switch current.map({ self.state.state(of: resource.id, on: $0).role }) ?? .stopped {
            case .promoted: rank = 2
            case let role where self.roleIsActive(role): rank = 1
            default: rank = 0
            }
            // pcmk__cmp_instance: an instance that failed after one that did not. Pacemaker's failed flag stays until
            // the instance is stopped; here: a failure on record and no successful stop in the history since.
            let record = current.map { self.state.state(of: resource.id, on: $0) } ?? ResourceNodeState()
            let failed = (record.failCount > 0 || record.lastFailure != nil)
                && !record.lastOperations.contains { $0.action == .stop && $0.exitCode == 0 }
            return (node, score, rank * 2 + (failed ? 0 : 1), position)
        }
        return keyed.sorted { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.rank != b.rank { return a.rank > b.rank }
            if a.rank > 1 { return a.node < b.node }
            return a.position < b.position
        }.map(\.node)
    }

    /// Where a clone's instances go, as Pacemaker's distribute_children (at most one instance per node).
    /// The instances are taken in Pacemaker's order (pcmk__cmp_instance): an instance active where it may not stay
    /// last; higher priority (its best promotion score) first; active ones before the others, by the clone's score
    /// on their node, then by node; the others by number. First each active instance, in that order, stays on its
    /// node if that node is at least as good for it as any free node (its stickiness counts there only); then every
    /// instance left takes the best free node — highest score, then fewer resources, then (above zero) where it
    /// runs, then name (assign_best_node). `bonus` adds what counts for one instance only (its promotion scores).
    /// Returns the chosen nodes in the order assigned, the score that decided on each, the instance on each, and
    /// the chosen nodes in instance order.
    func distributeInstances(
        sheet: ScoreSheet, stickiness: Score, sticky: Set<String>, table: [CloneInstance], limit: Int,
        ranking: ScoreSheet? = nil, bonus: ((CloneInstance, inout ScoreSheet) -> Void)? = nil,
        priority: ((CloneInstance) -> Int)? = nil, refine: ((inout ScoreSheet) -> Void)? = nil
    ) -> (nodes: [String], scores: [String: Score], instances: [String: CloneInstance], order: [String]) {
        var chosen: [String] = []
        var taken: Set<String> = []
        var deciding: [String: Score] = [:]
        var instanceOn: [String: CloneInstance] = [:]
        let ranking = ranking ?? sheet
        // Pacemaker applies a clone's finite colocations to each instance as it is assigned (append_parent_colocation),
        // so one that would leave that instance no node is rolled back for it alone: each instance's own sheet has the
        // nodes already taken at -INFINITY before they are applied.
        func instanceSheet(_ instance: CloneInstance) -> ScoreSheet {
            var own = sheet
            bonus?(instance, &own)
            guard let refine else { return own }
            for node in taken { own.add(.minusInfinity, on: node, because: "another instance runs on \(node)") }
            refine(&own)
            return own
        }
        func weight(_ node: String, runningOn instanceNode: String?, in own: ScoreSheet) -> Score {
            node == instanceNode && sticky.contains(node) ? own.total(on: node) + stickiness : own.total(on: node)
        }
        // Allowed for this instance: its stickiness is in its own node table, so it may lift its own node.
        func free(_ node: String, for instanceNode: String?, in own: ScoreSheet) -> Bool {
            !taken.contains(node) && weight(node, runningOn: instanceNode, in: own).allowsPlacement
        }
        // Instance numbers go to the nodes where the clone runs, in order; an instance numbered clone-max or above
        // is an orphan that Pacemaker only stops, so where it runs gets no preference (the table holds clone-max).
        let priorities = Dictionary(uniqueKeysWithValues: table.map { ($0.number, priority?($0) ?? 0) })
        func allowedWhereActive(_ instance: CloneInstance) -> Bool {
            guard let node = instance.node else { return true }
            return self.isAvailable(node) && weight(node, runningOn: node, in: ranking).allowsPlacement
        }
        let order = table.sorted { a, b in
            let (aa, ab) = (allowedWhereActive(a), allowedWhereActive(b))
            if aa != ab { return aa }
            let (pa, pb) = (priorities[a.number]!, priorities[b.number]!)
            if pa != pb { return pa > pb }
            switch (a.node, b.node) {
            case (.some, nil): return true
            case (nil, .some): return false
            case (.some(let na), .some(let nb)):
                if ranking.total(on: na) != ranking.total(on: nb) { return ranking.total(on: na) > ranking.total(on: nb) }
                return na < nb
            case (nil, nil): return a.number < b.number
            }
        }
        var placed: Set<Int> = []
        for instance in order {
            guard chosen.count < limit else { break }
            guard let node = instance.node, self.isAvailable(node) else { continue }
            let own = instanceSheet(instance)
            let mine = weight(node, runningOn: node, in: own)
            let best = self.nodeNames.filter { free($0, for: node, in: own) }.map { weight($0, runningOn: node, in: own) }.max()
            if free(node, for: node, in: own), let best, mine >= best {
                chosen.append(node)
                taken.insert(node)
                deciding[node] = own.total(on: node)
                instanceOn[node] = instance
                placed.insert(instance.number)
            }
        }
        for instance in order where !placed.contains(instance.number) {
            guard chosen.count < limit else { break }
            let instanceNode = instance.node.flatMap { self.isAvailable($0) ? $0 : nil }
            let own = instanceSheet(instance)
            var ranked = self.nodeNames.filter { free($0, for: instanceNode, in: own) }.sorted { a, b in
                let (wa, wb) = (weight(a, runningOn: instanceNode, in: own), weight(b, runningOn: instanceNode, in: own))
                if wa != wb { return wa > wb }
                let (ca, cb) = (self.assignedCount[a, default: 0], self.assignedCount[b, default: 0])
                if ca != cb { return ca < cb }
                return a < b
            }
            guard let top = ranked.first else { continue }
            if let instanceNode, weight(top, runningOn: instanceNode, in: own).value > 0, top != instanceNode,
                let index = ranked.firstIndex(of: instanceNode),
                weight(instanceNode, runningOn: instanceNode, in: own) == weight(top, runningOn: instanceNode, in: own)
            {
                ranked.insert(ranked.remove(at: index), at: 0)
            }
            chosen.append(ranked[0])
            taken.insert(ranked[0])
            deciding[ranked[0]] = own.total(on: ranked[0])
            instanceOn[ranked[0]] = instance
        }
        let numberOn = instanceOn.mapValues(\.number)
        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1.number, $0) })
        let inOrder = chosen.sorted { position[numberOn[$0]!]! < position[numberOn[$1]!]! }
        return (chosen, deciding, instanceOn, inOrder)
    }

    /// One instance of an anonymous clone as Pacemaker numbers them when it reads the status (find_anonymous_clone):
    /// the nodes' histories are read in order, each given to the instance already active there or else to the
    /// first instance not active anywhere; so an instance holds the histories of the nodes where the clone was
    /// found stopped before the node where it runs. `known`: the nodes whose history it holds; `node`: where
    /// it is active.
    struct CloneInstance: Hashable {
        let number: Int
        var node: String?
        var known: Set<String>
    }

    /// The first `count` instances of a clone, numbered as Pacemaker numbers them from the status (online nodes
    /// only: without fencing an offline node's history is not read).
    func instanceTable(of resource: ResourceConfig, count: Int) -> [CloneInstance] {
        var table = (0..<max(0, count)).map { CloneInstance(number: $0, node: nil, known: []) }
        for node in self.nodeNames where self.state.nodes[node]?.status == .online {
            let record = self.state.state(of: resource.id, on: node)
            guard self.hasHistory(record), let index = table.firstIndex(where: { $0.node == nil }) else { continue }
            table[index].known.insert(node)
            if record.role.isActive { table[index].node = node }
        }
        return table
    }

    /// A history of the resource on the node: active there, or operations on record (an entry made only by a fail
    /// count or a promotion score is none).
    func hasHistory(_ record: ResourceNodeState) -> Bool {
        record.role.isActive || (record.role != .unknown && !record.lastOperations.isEmpty)
    }

    /// Whether an instance's promotion score counts on a node (Pacemaker's promotion_score_applies): where it is
    /// active; where no instance is active and some instance has been probed; everywhere for an instance with no
    /// history at all; otherwise only where its own history is.
    func promotionApplies(_ instance: CloneInstance, of resource: ResourceConfig, on node: String) -> Bool {
        if instance.node == node { return true }
        // Whichever instance holds the node's history (one numbered clone-max or above too, an orphan).
        let record = self.state.state(of: resource.id, on: node)
        if !record.role.isActive, self.hasHistory(record) { return true }
        if instance.node == nil, instance.known.isEmpty { return true }
        return instance.known.contains(node)
    }

    /// The promotion score an instance brings to a node: the `master-ID` attribute where it counts for that instance.
    /// A CleverVM volume's score counts everywhere (its agent writes it only where the data is known).
    func promotionAttribute(of resource: ResourceConfig, instance: CloneInstance?, on node: String) -> Score? {
        if case .volume = resource.kind {} else if let instance, !self.promotionApplies(instance, of: resource, on: node) { return nil }
        return self.promotionAttribute(of: resource, on: node)
    }

    /// The promotion score of each node holding an instance: the resource's own promotion score
    /// (`master-ID` node attribute, as Pacemaker), role-specific constraints, and the preferences of
    /// resources that must run with the promoted instance (so a VM's ping rule moves its volume's
    /// promotion with it).
    func promotionScores(
        of resource: ResourceConfig, on candidates: [String], instances: [String: CloneInstance] = [:]
    ) -> ScoreSheet {
        var sheet = self.emptySheet
        let unit = Unit.clone(resource)
        for node in self.nodeNames where !candidates.contains(node) {
            sheet.add(.minusInfinity, on: node, because: "no instance of \(resource.id) will run on \(node)")
        }
        // Replication fencing: a disk that missed writes is never promoted, whatever its own score says.
        for mark in self.state.outdatedDisks where mark.volume == resource.id && candidates.contains(mark.node) {
            sheet.add(.minusInfinity, on: mark.node, because: mark.refusal)
        }
        for node in candidates {
            if let score = self.promotionAttribute(of: resource, instance: instances[node], on: node) {
                sheet.add(score, on: node, because: "promotion score master-\(resource.id)=\(score)")
            } else if let instance = instances[node], self.promotionAttribute(of: resource, on: node) != nil {
                // Pacemaker (promotion_score_applies): the attribute does not count for this instance here.
                sheet.add(-1, on: node, because: "master-\(resource.id) on \(node) does not count for instance \(instance.number) (not probed there, another instance's history)")
            } else if case .volume = resource.kind {
                sheet.add(1, on: node, because: "volume data on \(node) assumed UpToDate (no master-\(resource.id) attribute)")
            } else {
                // Pacemaker: -1, so a Promoted location alone can still promote.
                sheet.add(-1, on: node, because: "no promotion score (master-\(resource.id) not set on \(node))")
            }
        }
        for location in self.locationsByUnit[resource.id] ?? [] where location.resource == resource.id && location.role == .promoted {
            switch location.placement {
            case .node(let node, let score):
                sheet.add(score, on: node, because: "location constraint \(location.id) (Promoted)")
            case .rule(let rule):
                for node in self.nodeNames {
                    guard let score = rule.score(on: self.ruleAttributes[node] ?? [:]) else { continue }
                    sheet.add(score, on: node, because: "location rule \(location.id) (Promoted)")
                }
            }
        }
        for mark in self.state.marks where mark.isActive(at: self.now) && mark.kind == .ban && mark.resource == nil {
            sheet.add(.minusInfinity, on: mark.node, because: "host \(mark.node) marked unfit (\(mark.createdBy))")
        }
        self.applyPrimaries(to: &sheet, of: unit, dependentRole: .promoted)
        // Pacemaker (pcmk__apply_coloc_to_priority): a colocation of the clone's Unpromoted role counts against
        // promotion where the instance is with its primary (an anti-colocation for it); an instance has it when
        // append_parent_colocation handed it over (negative or INFINITY, or any when fewer instances than nodes).
        let available = self.nodeNames.filter(self.isAvailable).count
        let instanceCount: Int
        switch resource.cloning {
        case .single: instanceCount = 1
        case .clone(let max), .promotable(let max, _): instanceCount = max ?? self.nodeNames.count
        }
        for colocation in self.colocationsByDependentUnit[unit.id] ?? [] where colocation.dependentRole == .unpromoted {
            guard colocation.dependent == resource.id, let primaryUnit = self.unitID(of: colocation.primary),
                primaryUnit != unit.id, self.allocated.contains(primaryUnit),
                colocation.score.value < 0 || colocation.score.isInfinite || instanceCount < available
            else { continue }
            // With a clone as primary an INFINITY colocation only limits the nodes (pcmk__clone_apply_coloc_score).
            if colocation.score.isInfinite, case .clone = self.unitsByID[primaryUnit] { continue }
            let with = self.targets[self.colocationTarget(of: colocation)]?.nodes(in: colocation.primaryRole) ?? []
            for node in candidates where with.contains(node) {
                sheet.add(Score(-colocation.score.value), on: node,
                          because: "\(colocation.id): \(resource.id) Unpromoted with \(colocation.primary) at \(colocation.score) weighs for promotion on \(node)")
            }
        }
        // Pacemaker (sort_promotable_instances): an instance whose priority is not negative adds the clone's
        // own score for its node (locations, colocations; not stickiness) before the instances are ranked.
        var placement = self.ownScores(of: unit, withDependents: true, withStickiness: false)
        // (the clone's node table: its own scores and its dependents'; its colocations with primaries reach only its instances)
        // Pacemaker (set_sort_index_to_node_weight): an instance whose priority is negative keeps it as its sort
        // index; what the clone's node table gains (its placement score, what must run with the promoted instance)
        // counts only for the others.
        let rising = Set(candidates.filter { sheet.total(on: $0).allowsPlacement })
        for node in candidates where rising.contains(node) {
            let weight = placement.total(on: node)
            if weight != .zero { sheet.add(weight, on: node, because: "placement score of \(resource.id) on \(node)") }
        }
        for colocation in self.colocationsByPrimaryUnit[resource.id] ?? []
        where colocation.primary == resource.id && colocation.primaryRole == .promoted {
            guard let dependentID = self.unitID(of: colocation.dependent), dependentID != resource.id,
                !self.allocated.contains(dependentID),
                let dependent = self.unitsByID[dependentID]
            else { continue }
            let theirs = self.ownScores(of: dependent, withDependents: true, visited: [resource.id])
            sheet.merge(theirs, factor: colocation.score,
                        because: "\(colocation.dependent) must run with the promoted \(resource.id) (\(colocation.id))",
                        rollbackIfNoneAllowed: true, only: rising)
        }
        return sheet
    }

    // MARK: - Result

    func placements() -> [Placement] {
        var result: [Placement] = []
        for unit in self.units {
            for member in unit.members {
                guard let target = self.targets[member.id] else { continue }
                if member.isClone {
                    for (index, node) in target.nodes.enumerated() {
                        result.append(Placement(resource: "\(member.id):\(index)", node: node, role: target.roles[node]!))
                    }
                } else {
                    for node in target.nodes {
                        result.append(Placement(resource: member.id, node: node, role: target.roles[node]!))
                    }
                }
            }
        }
        return result
    }
}

extension ClusterConfig {
    /// The constraints the scheduler obeys: the configured ones plus those implied by groups and by the
    /// VM convenience (a VM runs with its volumes promoted, after the promotion, and its floating
    /// addresses follow it), so the two-host installation needs no hand-written constraints.
    public var effectiveConstraints: [Constraint] {
        var result = self.constraints
        for group in self.groups {
            for (previous, member) in zip(group.members, group.members.dropFirst()) {
                result.append(.colocation(ColocationConstraint(
                    id: "group-\(group.id)-colocation-\(member)", dependent: member, primary: previous, score: .infinity)))
                result.append(.order(OrderConstraint(
                    id: "group-\(group.id)-order-\(member)", first: previous, then: member)))
            }
        }
        for resource in self.resources {
            guard case .vm(let vm) = resource.kind else { continue }
            let volumes = vm.allVolumes.filter { self.resource(named: $0) != nil }
            // A VM's volumes are promoted together, where its first one is: otherwise one that must move (its
            // data is not UpToDate here) and one that stays (stickiness) would leave the VM nowhere to run.
            if let first = volumes.first {
                for volume in volumes.dropFirst() {
                    result.append(.colocation(ColocationConstraint(
                        id: "vm-\(resource.id)-\(volume)-with-\(first)", dependent: volume, primary: first, score: .infinity,
                        dependentRole: .promoted, primaryRole: .promoted)))
                }
            }
            for volume in volumes {
                result.append(.colocation(ColocationConstraint(
                    id: "vm-\(resource.id)-with-\(volume)", dependent: resource.id, primary: volume,
                    score: .infinity, primaryRole: .promoted)))
                result.append(.order(OrderConstraint(
                    id: "vm-\(resource.id)-after-\(volume)", first: volume, firstAction: .promote,
                    then: resource.id, thenAction: .start)))
            }
            for address in vm.addresses where self.resource(named: address) != nil {
                result.append(.colocation(ColocationConstraint(
                    id: "ip-\(address)-with-\(resource.id)", dependent: address, primary: resource.id, score: .infinity)))
                result.append(.order(OrderConstraint(
                    id: "ip-\(address)-after-\(resource.id)", first: resource.id, then: address)))
            }
        }
        return result
    }

    /// Meta values with the cluster defaults filled in; a group's meta applies to its members.
    public func effectiveMeta(of resourceID: String) -> EffectiveMeta {
        let own = self.resource(named: resourceID)?.meta ?? self.group(named: resourceID)?.meta ?? ResourceMeta()
        return self.effectiveMeta(own: own, group: self.group(containing: resourceID)?.meta)
    }

    /// Meta values of a resource (or group) whose own meta and group's meta the caller has looked up.
    public func effectiveMeta(own: ResourceMeta, group: ResourceMeta?) -> EffectiveMeta {
        EffectiveMeta(
            stickiness: own.stickiness ?? group?.stickiness ?? self.properties.defaultStickiness,
            migrationThreshold: own.migrationThreshold ?? group?.migrationThreshold ?? self.properties.migrationThreshold,
            failureTimeout: own.failureTimeout ?? group?.failureTimeout ?? self.properties.failureTimeout,
            targetRole: own.targetRole ?? group?.targetRole ?? .started,
            allowMigrate: own.allowMigrate ?? group?.allowMigrate,
            priority: own.priority != 0 ? own.priority : (group?.priority ?? 0)
        )
    }
}

public struct EffectiveMeta: Hashable, Sendable {
    public var stickiness: Score
    public var migrationThreshold: Int
    public var failureTimeout: Seconds?
    public var targetRole: ResourceMeta.TargetRole
    public var allowMigrate: Bool?
    public var priority: Int
}

import CleverModel

/// The config's lookups by id, built once per schedule, so nothing scans the resource or constraint lists
/// per resource placed (ClusterConfig's own lookups are linear).
struct ConfigIndex: Sendable {
    let resources: [String: ResourceConfig]
    let groups: [String: GroupConfig]
    let groupOfMember: [String: GroupConfig]
    let metas: [String: EffectiveMeta]

    init(_ config: ClusterConfig) {
        // First wins, as ClusterConfig's `first { }` lookups.
        var resources: [String: ResourceConfig] = [:]
        for resource in config.resources where resources[resource.id] == nil { resources[resource.id] = resource }
        var groups: [String: GroupConfig] = [:]
        var groupOfMember: [String: GroupConfig] = [:]
        for group in config.groups {
            if groups[group.id] == nil { groups[group.id] = group }
            for member in group.members where groupOfMember[member] == nil { groupOfMember[member] = group }
        }
        var metas: [String: EffectiveMeta] = [:]
        for id in Set(resources.keys).union(groups.keys) {
            let own = resources[id]?.meta ?? groups[id]?.meta ?? ResourceMeta()
            metas[id] = config.effectiveMeta(own: own, group: groupOfMember[id]?.meta)
        }
        self.resources = resources
        self.groups = groups
        self.groupOfMember = groupOfMember
        self.metas = metas
    }

    func meta(of id: String, in config: ClusterConfig) -> EffectiveMeta {
        self.metas[id] ?? config.effectiveMeta(own: ResourceMeta(), group: nil)
    }
}

import CleverModel

/// What the scheduler places as one: a primitive, a group (its members go together), or a clone.
enum Unit: Hashable, Sendable {
    case primitive(ResourceConfig)
    case group(GroupConfig, [ResourceConfig])
    case clone(ResourceConfig)

    var id: String {
        switch self {
        case .primitive(let resource), .clone(let resource): resource.id
        case .group(let group, _): group.id
        }
    }

    var members: [ResourceConfig] {
        switch self {
        case .primitive(let resource), .clone(let resource): [resource]
        case .group(_, let members): members
        }
    }

    /// Ids a constraint may name to mean this unit or a part of it.
    var names: Set<String> { Set([self.id] + self.members.map(\.id)) }

    static func units(of config: ClusterConfig, index: ConfigIndex) -> [Unit] {
        var units: [Unit] = []
        var seenGroups: Set<String> = []
        for resource in config.resources {
            if let group = index.groupOfMember[resource.id] {
                guard seenGroups.insert(group.id).inserted else { continue }
                let members = group.members.compactMap { index.resources[$0] }
                units.append(.group(group, members))
            } else if resource.isClone {
                units.append(.clone(resource))
            } else {
                units.append(.primitive(resource))
            }
        }
        for group in config.groups where !seenGroups.contains(group.id) {
            units.append(.group(group, []))
        }
        return units
    }
}

import CleverModel

/// The order graph: "step A happens before step B" for every order constraint, every group's
/// member order and every VM's implied orders (volumes promoted before the VM starts, the VM
/// started before its addresses), each with its symmetrical stop half. A cycle can never be
/// satisfied: the resources in it would wait for each other forever.
struct OrderGraph {
    struct Step: Hashable, Comparable, CustomStringConvertible {
        var resource: String
        var action: ResourceAction

        var description: String { "\(self.resource) \(self.action.rawValue)" }

        var inverse: Step? { self.action.inverse.map { Step(resource: self.resource, action: $0) } }

        static func < (lhs: Step, rhs: Step) -> Bool {
            (lhs.resource, lhs.action) < (rhs.resource, rhs.action)
        }
    }

    /// What put an edge in the graph, for the diagnostic.
    struct Origin: Hashable {
        enum Kind: Hashable { case constraint, group, vm }
        var kind: Kind
        var id: String
        /// Key path of the entry that created the edge.
        var path: String

        var description: String {
            switch self.kind {
            case .constraint: "order \(self.id)"
            case .group: "group \(self.id)"
            case .vm: "vm \(self.id)"
            }
        }
    }

    struct Edge: Hashable {
        var from: Step
        var to: Step
        var origin: Origin
        /// The stop/demote half added for a symmetrical order.
        var isInverse: Bool
    }

    struct Cycle {
        /// The steps in order; the first step follows the last.
        var steps: [Step]
        var origins: [Origin]

        var description: String {
            (self.steps + [self.steps[0]]).map(\.description).joined(separator: " -> ")
        }
    }

    private(set) var edges: [Step: [Edge]] = [:]
    /// Every edge in the order it was added, for deterministic reports.
    private var edgeList: [Edge] = []

    mutating func add(_ from: Step, before to: Step, origin: Origin, symmetrical: Bool) {
        guard from != to else { return }
        self.insert(Edge(from: from, to: to, origin: origin, isInverse: false))
        if symmetrical, let inverseFrom = to.inverse, let inverseTo = from.inverse {
            self.insert(Edge(from: inverseFrom, to: inverseTo, origin: origin, isInverse: true))
        }
    }

    private mutating func insert(_ edge: Edge) {
        self.edges[edge.from, default: []].append(edge)
        self.edgeList.append(edge)
    }

    /// The cycles to report: for each order constraint that closes a cycle, the shortest cycle
    /// through it (so every offending constraint is named at its own place); then one cycle for
    /// each remaining strongly connected component (made only of group and VM orders), leaving out
    /// the stop-side mirror of a cycle already reported.
    func cycles() -> [Cycle] {
        let components = self.stronglyConnectedComponents().map { Set($0) }
        var componentOf: [Step: Int] = [:]
        for (index, component) in components.enumerated() {
            for step in component { componentOf[step] = index }
        }
        var reported: [Set<Step>] = []
        var cycles: [Cycle] = []

        var constraintOrigins: [Origin] = []
        for edge in self.edgeList where edge.origin.kind == .constraint && !constraintOrigins.contains(edge.origin) {
            constraintOrigins.append(edge.origin)
        }
        for origin in constraintOrigins {
            let candidates = self.edgeList.filter { $0.origin == origin }.sorted { !$0.isInverse && $1.isInverse }
            for edge in candidates {
                guard let index = componentOf[edge.from], componentOf[edge.to] == index,
                    let cycle = self.cycle(through: edge, within: components[index])
                else { continue }
                cycles.append(cycle)
                reported.append(components[index])
                break
            }
        }

        for component in components {
            let mirror = Set(component.compactMap(\.inverse))
            if reported.contains(component) { continue }
            if mirror.count == component.count, reported.contains(mirror) { continue }
            guard let start = component.min(),
                let edge = self.sortedEdges(from: start).first(where: { component.contains($0.to) }),
                let cycle = self.cycle(through: edge, within: component)
            else { continue }
            reported.append(component)
            cycles.append(cycle)
        }
        return cycles
    }

    /// `edge` followed by the shortest path back to its start inside its component (breadth first).
    private func cycle(through edge: Edge, within component: Set<Step>) -> Cycle? {
        let target = edge.from
        if edge.to == target { return Cycle(steps: [target], origins: [edge.origin]) }
        var previous: [Step: Edge] = [:]
        var queue = [edge.to]
        var head = 0
        while head < queue.count {
            let step = queue[head]
            head += 1
            for next in self.sortedEdges(from: step) where component.contains(next.to) {
                if next.to == target {
                    var path = [next]
                    var cursor = step
                    while cursor != edge.to, let before = previous[cursor] {
                        path.append(before)
                        cursor = before.from
                    }
                    path.reverse()
                    return Cycle(steps: [target] + path.map(\.from), origins: [edge.origin] + path.map(\.origin))
                }
                if previous[next.to] == nil, next.to != edge.to {
                    previous[next.to] = next
                    queue.append(next.to)
                }
            }
        }
        return nil
    }

    private func sortedEdges(from step: Step) -> [Edge] {
        (self.edges[step] ?? []).sorted { $0.to < $1.to }
    }

    /// Tarjan's algorithm; only components that contain a cycle, in a stable order.
    private func stronglyConnectedComponents() -> [[Step]] {
        var index = 0
        var indices: [Step: Int] = [:]
        var lowLinks: [Step: Int] = [:]
        var stack: [Step] = []
        var onStack: Set<Step> = []
        var components: [[Step]] = []

        func visit(_ step: Step) {
            indices[step] = index
            lowLinks[step] = index
            index += 1
            stack.append(step)
            onStack.insert(step)
            for edge in self.sortedEdges(from: step) {
                if indices[edge.to] == nil {
                    visit(edge.to)
                    lowLinks[step] = min(lowLinks[step]!, lowLinks[edge.to]!)
                } else if onStack.contains(edge.to) {
                    lowLinks[step] = min(lowLinks[step]!, indices[edge.to]!)
                }
            }
            if lowLinks[step] == indices[step] {
                var component: [Step] = []
                while let top = stack.popLast() {
                    onStack.remove(top)
                    component.append(top)
                    if top == step { break }
                }
                if component.count > 1 { components.append(component) }
            }
        }

        for step in self.edges.keys.sorted() where indices[step] == nil {
            visit(step)
        }
        return components.sorted { $0.min()! < $1.min()! }
    }
}

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
        var to: Step
        var origin: Origin
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

    mutating func add(_ from: Step, before to: Step, origin: Origin, symmetrical: Bool) {
        guard from != to else { return }
        self.edges[from, default: []].append(Edge(to: to, origin: origin))
        if symmetrical, let inverseFrom = to.inverse, let inverseTo = from.inverse {
            self.edges[inverseFrom, default: []].append(Edge(to: inverseTo, origin: origin))
        }
    }

    /// One cycle per strongly connected component, deterministic, leaving out the stop-side mirror
    /// of a cycle already reported on the start side.
    func cycles() -> [Cycle] {
        var reported: [Set<Step>] = []
        var cycles: [Cycle] = []
        for component in self.stronglyConnectedComponents() {
            let steps = Set(component)
            let mirror = Set(component.compactMap(\.inverse))
            if mirror.count == steps.count, reported.contains(mirror) { continue }
            guard let start = component.min(), let cycle = self.cycle(from: start, within: steps) else { continue }
            reported.append(steps)
            cycles.append(cycle)
        }
        return cycles
    }

    /// Shortest path from `start` back to itself inside its component (breadth first).
    private func cycle(from start: Step, within component: Set<Step>) -> Cycle? {
        var previous: [Step: (Step, Origin)] = [:]
        var queue = [start]
        var head = 0
        while head < queue.count {
            let step = queue[head]
            head += 1
            for edge in self.sortedEdges(from: step) where component.contains(edge.to) {
                if edge.to == start {
                    var steps = [step]
                    var origins = [edge.origin]
                    var cursor = step
                    while cursor != start, let (before, origin) = previous[cursor] {
                        steps.append(before)
                        origins.append(origin)
                        cursor = before
                    }
                    return Cycle(steps: steps.reversed(), origins: origins.reversed())
                }
                if previous[edge.to] == nil {
                    previous[edge.to] = (step, edge.origin)
                    queue.append(edge.to)
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

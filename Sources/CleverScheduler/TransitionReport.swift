import CleverModel

extension Transition {
    /// The transition and placement as a person reads them; stable, so scenario files can hold it.
    public func render() -> String {
        (self.renderActions() + self.renderPlacement()).joined(separator: "\n")
    }

    public func renderActions() -> [String] {
        var lines: [String] = []
        if self.actions.isEmpty {
            lines.append("transition: nothing to do")
        } else {
            lines.append("transition (\(self.actions.count) action\(self.actions.count == 1 ? "" : "s")):")
            let resourceWidth = self.actions.map(\.resource.count).max() ?? 0
            let nodeWidth = self.actions.map(\.node.count).max() ?? 0
            for action in self.actions {
                let verb = action.action.rawValue.padded(to: 12)
                let resource = action.resource.padded(to: resourceWidth)
                let node = action.node.padded(to: nodeWidth)
                let after = action.after.isEmpty ? "" : "  after " + action.after.map { "#\($0 + 1)" }.joined(separator: ",")
                lines.append("  #\(action.id + 1) \(verb) \(resource) on \(node)  (\(action.reason))\(after)")
            }
        }
        return lines
    }

    public func renderPlacement() -> [String] {
        var lines: [String] = []
        lines.append("placement:")
        if self.placement.isEmpty { lines.append("  (nothing runs)") }
        let width = max(self.placement.map(\.resource.count).max() ?? 0, self.blocked.keys.map(\.count).max() ?? 0)
        let nodeWidth = self.placement.map(\.node.count).max() ?? 0
        for placed in self.placement {
            lines.append("  \(placed.resource.padded(to: width))  \(placed.node.padded(to: nodeWidth))  \(placed.role.rawValue)")
        }
        for (resource, reason) in self.blocked.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(resource.padded(to: width))  stopped: \(reason)")
        }
        return lines
    }
}

extension Simulator.Round {
    /// Each transition of the round, then where the round leaves everything.
    public func render() -> String {
        var lines: [String] = []
        for (index, transition) in self.transitions.enumerated() where !transition.actions.isEmpty || index == 0 {
            if index > 0 { lines.append("(node attributes changed: the scheduler runs again)") }
            lines += transition.renderActions()
        }
        lines += self.transition.renderPlacement()
        return lines.joined(separator: "\n")
    }
}

import CleverModel
import Testing

@testable import CleverConfig

@Suite struct OrderCycleTests {
    private let resources = twoNodes + """
        resources:
          - {id: a, type: process, command: /bin/true}
          - {id: b, type: process, command: /bin/true}
          - {id: c, type: process, command: /bin/true}
          - {id: disk0, type: volume, size: 1GiB, backing: /dev/sdb}
          - {id: vip, type: ip, address: 198.51.100.50/24}
          - {id: vm1, type: vm, boot: /boot/k, volumes: [disk0], addresses: [vip]}

        """

    private func cycleMessages(_ yaml: String) -> [String] {
        diagnostics(of: self.resources + yaml).map { "\($0.line):\($0.column) \($0.keyPath): \($0.message)" }
    }

    @Test func twoOrdersInOppositeDirections() {
        #expect(
            self.cycleMessages(
                """
                constraints:
                  - order: {id: o1, first: a, then: b}
                  - order: {id: o2, first: b, then: a}
                """) == [
                    "14:12 constraints[0].order: order cycle: a start -> b start -> a start",
                    "15:12 constraints[1].order: order cycle: b start -> a start -> b start",
                ])
    }

    @Test func theHintNamesWhereTheCycleComesFrom() {
        let found = diagnostics(
            of: self.resources + """
                constraints:
                  - order: {id: o1, first: a, then: b}
                  - order: {id: o2, first: b, then: a}
                """)
        #expect(found.first?.hint == "it comes from order o1, order o2; remove or reverse one order")
    }

    @Test func threeOrdersCloseACycle() {
        let messages = self.cycleMessages(
            """
            constraints:
              - order: {first: a, then: b}
              - order: {first: b, then: c}
              - order: {first: c, then: a}
            """)
        #expect(messages.count == 3)
        #expect(messages[0] == "14:12 constraints[0].order: order cycle: a start -> b start -> c start -> a start")
    }

    @Test func groupOrderCountsToo() {
        let found = diagnostics(
            of: self.resources + """
                groups:
                  - {id: g, members: [a, b]}
                constraints:
                  - order: {first: b, then: a}
                """)
        #expect(found.map(\.message) == ["order cycle: b start -> a start -> b start"])
        #expect(found.first?.keyPath == "constraints[0].order")
        #expect(found.first?.hint == "it comes from order order-b-a, group g; remove or reverse one order")
    }

    @Test func groupsInOrdersStandForTheirEnds() {
        // "then: g" waits for g's first member, "first: g" for its last.
        let found = diagnostics(
            of: self.resources + """
                groups:
                  - {id: g, members: [a, b]}
                constraints:
                  - order: {first: g, then: c}
                  - order: {first: c, then: g}
                """)
        #expect(found.map(\.message) == [
            "order cycle: b start -> c start -> a start -> b start",
            "order cycle: c start -> a start -> b start -> c start",
        ])
    }

    @Test func theVMsImpliedVolumeOrderCounts() {
        #expect(
            self.cycleMessages(
                """
                constraints:
                  - order: {first: vm1, then: disk0, then-action: promote}
                """) == [
                    "14:12 constraints[0].order: order cycle: vm1 start -> disk0 promote -> vm1 start"
                ])
    }

    @Test func theVMsImpliedAddressOrderCounts() {
        #expect(
            self.cycleMessages(
                """
                constraints:
                  - order: {first: vip, then: disk0, then-action: promote}
                """) == [
                    "14:12 constraints[0].order: order cycle: vip start -> disk0 promote -> vm1 start -> vip start"
                ])
    }

    @Test func stopSideCyclesAreFound() {
        // Not symmetrical, so only the stop steps are ordered, both ways.
        let messages = self.cycleMessages(
            """
            constraints:
              - order: {first: a, first-action: stop, then: b, then-action: stop, symmetrical: false}
              - order: {first: a, then: b}
            """)
        #expect(messages == [
            "14:12 constraints[0].order: order cycle: a stop -> b stop -> a stop",
            "15:12 constraints[1].order: order cycle: b stop -> a stop -> b stop",
        ])
    }

    @Test func consistentOrdersAreAccepted() throws {
        let config = try #require(
            parse(
                self.resources + """
                    groups:
                      - {id: g, members: [a, b]}
                    constraints:
                      - order: {first: disk0, first-action: promote, then: vm1}
                      - order: {first: vip, then: g}
                      - order: {first: a, then: b}
                      - order: {first: g, then: c, kind: optional}
                      - order: {first: c, first-action: stop, then: vm1, then-action: stop, symmetrical: false}
                    """))
        #expect(config.constraints.count == 5)
    }

    @Test func graphReportsTheShortestCycleThroughAnEdge() {
        var graph = OrderGraph()
        let origin = OrderGraph.Origin(kind: .constraint, id: "x", path: "constraints[0]")
        func step(_ name: String) -> OrderGraph.Step { OrderGraph.Step(resource: name, action: .start) }
        graph.add(step("a"), before: step("b"), origin: origin, symmetrical: false)
        graph.add(step("b"), before: step("c"), origin: origin, symmetrical: false)
        graph.add(step("c"), before: step("a"), origin: origin, symmetrical: false)
        graph.add(step("b"), before: step("a"), origin: OrderGraph.Origin(kind: .group, id: "g", path: "groups[0]"), symmetrical: false)
        let cycles = graph.cycles()
        #expect(cycles.map(\.description) == ["a start -> b start -> a start"])
    }

    @Test func symmetricalMirrorIsNotReportedTwice() {
        var graph = OrderGraph()
        func step(_ name: String) -> OrderGraph.Step { OrderGraph.Step(resource: name, action: .start) }
        let group = OrderGraph.Origin(kind: .group, id: "g", path: "groups[0]")
        let vm = OrderGraph.Origin(kind: .vm, id: "v", path: "resources[0]")
        graph.add(step("a"), before: step("b"), origin: group, symmetrical: true)
        graph.add(step("b"), before: step("a"), origin: vm, symmetrical: true)
        #expect(graph.cycles().map(\.description) == ["a start -> b start -> a start"])
    }
}

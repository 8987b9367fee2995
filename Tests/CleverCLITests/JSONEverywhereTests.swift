import ArgumentParser
@testable import CleverCLI
import Testing

/// Every verb an operator or a script runs has `--json`. Not the daemon (`agent`) and not `lab exec`, whose
/// output is the command's own (`lab exec alpha -- clevervm status --json`).
struct JSONEverywhereTests {
    static func leaves(_ command: any ParsableCommand.Type, path: [String] = []) -> [(path: String, command: any ParsableCommand.Type)] {
        let name = command.configuration.commandName ?? command._commandName
        let here = path + [name]
        let subcommands = command.configuration.subcommands
        if subcommands.isEmpty { return [(here.dropFirst().joined(separator: " "), command)] }
        return subcommands.flatMap { self.leaves($0, path: here) }
    }

    @Test func everyVerbHasJSON() {
        let exempt: Set<String> = ["agent", "lab exec"]
        let leaves = Self.leaves(CleverVMCommand.self)
        #expect(leaves.count > 25)
        for (path, command) in leaves where !exempt.contains(path) {
            #expect(CleverVMCommand.helpMessage(for: command).contains("--json"), "`clevervm \(path)` has no --json")
        }
    }
}

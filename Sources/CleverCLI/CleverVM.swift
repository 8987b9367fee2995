import ArgumentParser

@main
struct CleverVM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clevervm",
        abstract: "High availability for virtual machines on small Linux clusters.",
        discussion: """
            Cluster verbs talk to the local agent over /run/clevervm/agent.sock (root only).
            Offline verbs (simulate, explain, config check) work on files and need no cluster.
            """,
        subcommands: [Simulate.self, Explain.self, Config.self]
    )
}

import ArgumentParser

@main
struct CleverVMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clevervm",
        abstract: "High availability for virtual machines on small Linux clusters.",
        discussion: """
            Cluster verbs talk to the local agent over /run/clevervm/agent.sock (root only).
            Offline verbs (simulate, explain, config check) work on files and need no cluster.
            """,
        version: Release.version,
        subcommands: [
            Status.self, Start.self, Stop.self, ForceStart.self, ForceStop.self, Cleanup.self, Migrate.self, Unmigrate.self,
            Standby.self, Unstandby.self, Explain.self, Simulate.self, Config.self, Events.self, VolumeVerbs.self, Agent.self, LabCommand.self,
            Init.self, Join.self, JoinServe.self, Qdevice.self, Remove.self,
            Console.self, Screenshot.self,
        ]
    )
}

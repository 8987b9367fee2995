import ArgumentParser
import CleverCluster

/// `clevervm volume accept NAME --node N`: the operator accepts a replica that replication fencing recorded
/// Outdated as current, so it may be promoted (the writes it missed are lost). For when the host with the current
/// data is gone for good; otherwise bring that host back and let the replica resync.
struct VolumeAccept: IntentVerb {
    static let configuration = CommandConfiguration(
        commandName: "accept",
        abstract: "Accept an Outdated replica as current (the writes it missed are lost), so it may be promoted.")
    @Argument(help: "The volume (its resource id).") var name: String
    @Option(name: .long, help: "The host whose replica is recorded Outdated.") var node: String
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func intent() -> OperatorIntent { .clearOutdated(volume: self.name, node: self.node) }
}

import CleverAgentCore
import CleverControl
import Foundation

/// `clevervm volume resolve` on a host that holds no replica of the volume: the local agent forwards it through
/// the group to the host that runs the volume, which resolves and waits for the resync, then answers.
enum VolumeResolveRemote {
    static func run(agent: AgentOptions, volume: String, discard: String, dryRun: Bool, json: Bool) throws {
        let response: ControlResponse
        do {
            response = try ControlSocket.call(.resolveVolume(volume: volume, discard: discard, dryRun: dryRun), path: agent.socket,
                                              timeout: AgentCore.resolvePatience.value + 30)
        } catch {
            throw CLIError("volume \(volume) does not run on this host, and the agent does not answer (\(agent.socket)): \(error)")
        }
        switch response {
        case .done(let text):
            if json { try Output.printJSON(RemoteResult(volume: volume, forwarded: true, resyncFinished: dryRun ? nil : true, text: text)) }
            else { print(text) }
        case .failure(let message):
            throw CLIError(message)
        default:
            throw CLIError("unexpected answer from the agent")
        }
    }

    /// What `volume resolve --json` prints when the resolve went through the cluster: one document.
    struct RemoteResult: Encodable {
        var volume: String
        var forwarded: Bool
        var resyncFinished: Bool?
        var text: String
    }
}

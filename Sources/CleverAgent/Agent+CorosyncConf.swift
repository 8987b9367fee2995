import CleverModel
import CleverSystem
import CorosyncConfig
import Foundation

extension Agent {
    /// Set-up hosts only (`--corosync-conf`, as clevervm.service runs the agent; never the lab): corosync.conf follows
    /// every config this agent persists, so the nodelist a join or a removal changed on one member reaches all of them
    /// (`CorosyncConfigFile.follow`). `corosync-cfgtool -R` makes every member's Corosync reload its file.
    func followCorosyncConf(_ config: ClusterConfig) {
        guard let path = self.options.corosyncConfPath else { return }
        switch CorosyncConfigFile.follow(config, current: try? String(contentsOfFile: path, encoding: .utf8)) {
        case .unchanged:
            return
        case .cannotRender(let problems):
            self.log(.warning, "\(path) left as it is: config epoch \(config.epoch) makes no corosync.conf (\(problems.joined(separator: "; ")))")
        case .rewrite(let text):
            do {
                try AtomicFile.write(Data(text.utf8), to: path, mode: 0o644)
            } catch {
                self.log(.error, "cannot write \(path) for config epoch \(config.epoch): \(error)")
                return
            }
            let reload = Subprocess.run(["corosync-cfgtool", "-R"], timeout: .seconds(30))
            let nodes = config.nodes.map(\.name).joined(separator: ", ")
            if reload.succeeded {
                self.log(.notice, "\(path) rewritten for config epoch \(config.epoch) (nodes \(nodes)); corosync reloaded it")
            } else {
                self.log(.error, "\(path) rewritten for config epoch \(config.epoch) (nodes \(nodes)), but `corosync-cfgtool -R` failed: "
                    + reload.output.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
    }
}

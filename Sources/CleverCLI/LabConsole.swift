import CleverLab
import Foundation

/// `lab up` starts the web console (`clevervm-web serve`, built beside this executable) on every lab host, with
/// one operator account whose random password is printed once and kept, root-only, in the lab's state
/// directory (`console-login`) for the lab's browser tests.
enum LabConsole {
    struct Login: Codable {
        var user: String
        var password: String
        var urls: [String: String]
    }

    static var webExecutable: String {
        ((LabCommand.executablePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("clevervm-web")
    }

    static func start(_ lab: Lab, layout: LabLayout, progress: (String) -> Void) throws -> Login {
        guard FileManager.default.isExecutableFile(atPath: self.webExecutable) else {
            throw CLIError("\(self.webExecutable) is missing: build it (`swift build --product clevervm-web`) or use `lab up --no-console`")
        }
        var bytes = [UInt8](repeating: 0, count: 12)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        let password = bytes.map { String(format: "%02x", $0) }.joined()
        var urls: [String: String] = [:]
        for host in layout.hosts {
            progress("web console on \(host.name)")
            for verb in ["add", "passwd"] {
                let result = try LabCommand.lab { () throws(LabError) in
                    try lab.run(host: host.name, [self.webExecutable, "user", verb, "admin", "--role", "operator", "--password-stdin"],
                                input: password + "\n", timeout: .seconds(30))
                }
                if result.succeeded { break }
                guard verb == "add", result.output.contains("exists already") else { throw CLIError("creating the console account on \(host.name): \(result.output)") }
            }
            try LabCommand.lab { () throws(LabError) in
                _ = try lab.startService(host: host.name, name: "clevervm-web", command: [self.webExecutable, "serve"])
            }
            urls[host.name] = "https://\(host.address):7443/"
        }
        let login = Login(user: "admin", password: password, urls: urls)
        let path = "\(layout.stateDirectory)/console-login.json"
        _ = FileManager.default.createFile(atPath: path, contents: try JSONEncoder().encode(login), attributes: [.posixPermissions: 0o600])
        return login
    }

    static func render(_ login: Login, layout: LabLayout) -> String {
        var lines = ["", "Web console (self-signed certificate; from inside the lab, e.g. `clevervm lab exec gw -- curl -k URL`):"]
        for host in layout.hosts { lines.append("  \(host.name): \(login.urls[host.name] ?? "")   metrics: http://\(host.address):9664/metrics") }
        lines.append("  first login: user \(login.user), password \(login.password) (also in \(layout.stateDirectory)/console-login.json)")
        return lines.joined(separator: "\n")
    }
}

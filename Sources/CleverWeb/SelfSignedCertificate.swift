import Foundation

/// Until `clevervm init` makes the host certificate, the console makes a self-signed one at first start
/// (openssl, P-256, ten years), so HTTPS is on from the first minute. Browsers warn until it is replaced.
public enum SelfSignedCertificate {
    public static let defaultDirectory = "/var/lib/clevervm/web"

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The certificate and key paths in `directory`, made if missing.
    public static func ensure(directory: String, hostName: String, addresses: [String]) throws -> WebConsole.TLSFiles {
        let files = WebConsole.TLSFiles(certificate: directory + "/self-signed.crt", key: directory + "/self-signed.key")
        if FileManager.default.fileExists(atPath: files.certificate), FileManager.default.fileExists(atPath: files.key) { return files }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let names = (["DNS:\(hostName)", "DNS:localhost", "IP:127.0.0.1"] + addresses.map { "IP:\($0)" }).joined(separator: ",")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
            "-subj", "/CN=\(hostName)/O=CleverVM console (self-signed)", "-addext", "subjectAltName=\(names)",
            "-keyout", files.key, "-out", files.certificate,
        ]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw Failure(description: "cannot run /usr/bin/openssl to make a self-signed certificate: \(error) (apt-get install openssl, or give --certificate and --key)")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw Failure(description: "openssl could not make a self-signed certificate in \(directory): \(text)")
        }
        chmod(files.key, 0o600)
        return files
    }
}

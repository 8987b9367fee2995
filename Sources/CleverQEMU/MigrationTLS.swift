import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Live migration over TLS with a pre-shared key (QEMU's `tls-creds-psk`): both QEMUs prove they hold the key
/// derived from the cluster key (Corosync's authkey, which every host of the cluster has, root only), and the
/// stream is encrypted. The target listens only after its TLS credentials are set (`-incoming defer`, then
/// `migrate-set-parameters tls-creds`, then `migrate-incoming`), so there is never an unauthenticated listener:
/// a host without the key cannot feed a guest state or read guest RAM.
///
/// The key is per VM: HKDF-SHA256(cluster key, info = "clevervm-live-migration-v1" ‖ VM name), 32 bytes, in the
/// `keys.psk` file QEMU reads (`USERNAME:HEX`), mode 0600 in a 0700 directory under the run directory.
public enum MigrationTLS {
    public static let objectID = "clevervm-migration-tls"
    public static let username = "clevervm"
    public static let defaultKeyFile = "/etc/corosync/authkey"

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The pre-shared key of `vm`'s migrations.
    public static func psk(clusterKey: [UInt8], vm: String) -> [UInt8] {
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: clusterKey), info: Array("clevervm-live-migration-v1".utf8) + Array(vm.utf8),
            outputByteCount: 32)
        return key.withUnsafeBytes { Array($0) }
    }

    /// The `keys.psk` line QEMU reads.
    public static func keyFileLine(clusterKey: [UInt8], vm: String) -> String {
        Self.username + ":" + Self.psk(clusterKey: clusterKey, vm: vm).map { String(format: "%02x", $0) }.joined() + "\n"
    }

    /// Reads the cluster key and writes `directory/keys.psk` for `vm` (directory 0700, file 0600).
    public static func writeCredentials(directory: String, keyFile: String, vm: String) throws(Failure) {
        guard let data = FileManager.default.contents(atPath: keyFile), data.count >= 16 else {
            throw Failure(description: "live migration needs the cluster key \(keyFile) (root only, at least 16 bytes): "
                          + "without it the migration stream could not be authenticated")
        }
        let line = Self.keyFileLine(clusterKey: Array(data), vm: vm)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, 0o700)
            let path = "\(directory)/keys.psk"
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            fchmod(fd, 0o600)
            let bytes = Array(line.utf8)
            guard write(fd, bytes, bytes.count) == bytes.count else {
                throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "cannot write the migration credentials in \(directory): \(error)")
        }
    }

    /// `-object` for the target's command line (the server end).
    public static func serverObject(directory: String) -> String {
        "tls-creds-psk,id=\(Self.objectID),endpoint=server,dir=\(directory)"
    }

    /// `object-add` arguments for the source (the client end).
    public static func clientObject(directory: String) -> JSONValue {
        ["qom-type": .string("tls-creds-psk"), "id": .string(Self.objectID), "endpoint": .string("client"),
         "dir": .string(directory), "username": .string(Self.username)]
    }
}

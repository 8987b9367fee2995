import CleverSystem
import Foundation

/// The VM's UEFI variables (OVMF's vars flash) on a volume of its own, so boot entries and settings follow the VM
/// through a failover or a move. A fresh volume is all zeros: before the first boot it gets OVMF's template.
public struct UEFIVariables: Sendable {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var volume: String
        public var reason: String
        public var description: String { "UEFI variables volume \(self.volume): \(self.reason)" }
    }

    public var socket: String
    public var volume: String
    /// OVMF's variables template (Debian `ovmf`: /usr/share/OVMF/OVMF_VARS_4M.fd).
    public var template: String

    public init(socket: String, volume: String, template: String) {
        self.socket = socket
        self.volume = volume
        self.template = template
    }

    /// A firmware volume header has its signature `_FVH` at byte 40.
    static let signatureOffset = 40
    static let signature = Array("_FVH".utf8)

    var uri: String { nbdURI(socket: self.socket, export: self.volume) }

    /// The template's size: the pflash device's size.
    public func templateSize() throws(Failure) -> Int {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: self.template))?[.size] as? Int, size > 0 else {
            throw Failure(volume: self.volume, reason: "OVMF variables template \(self.template) is missing (apt-get install ovmf)")
        }
        return size
    }

    /// Writes the template when the volume holds no variables yet; true when it did.
    @discardableResult
    public func initializeIfBlank() async throws(Failure) -> Bool {
        let size = try self.templateSize()
        let read = await Subprocess.run(["qemu-io", "-r", "-f", "raw", self.uri, "-c", "read -v 0 64"], timeout: .seconds(30))
        guard read.succeeded else { throw Failure(volume: self.volume, reason: "reading its header: \(read.output)") }
        let header = HibernateImage.bytes(fromHexDump: read.output)
        if Self.holdsVariables(header) { return false }
        let info = await Subprocess.run(["nbdinfo", "--size", self.uri], timeout: .seconds(15))
        guard let volumeSize = Int(info.output.trimmingCharacters(in: .whitespacesAndNewlines)), info.succeeded else {
            throw Failure(volume: self.volume, reason: "nbdinfo --size: \(info.output)")
        }
        guard volumeSize >= size else {
            throw Failure(volume: self.volume, reason: "\(volumeSize) bytes is smaller than the \(size)-byte variables store; give it at least 1MiB")
        }
        let write = await Subprocess.run(
            ["qemu-io", "-f", "raw", self.uri, "-c", "write -s \(self.template) 0 \(size)", "-c", "flush"], timeout: .seconds(30))
        guard write.succeeded else { throw Failure(volume: self.volume, reason: "writing OVMF's template: \(write.output)") }
        return true
    }

    static func holdsVariables(_ header: [UInt8]) -> Bool {
        header.count >= Self.signatureOffset + 4
            && Array(header[Self.signatureOffset..<Self.signatureOffset + 4]) == Self.signature
    }
}

/// An NBD URI for a unix socket export, as qemu-io, nbdcopy and nbdinfo take it.
func nbdURI(socket: String, export: String) -> String {
    let encodedExport = export.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? export
    let encodedSocket = socket.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? socket
    return "nbd+unix:///\(encodedExport)?socket=\(encodedSocket)"
}

import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a hibernated VM's RAM and device state (a QEMU migration stream) is kept between stop and start.
///
/// * `.volume`: the VM's `stateVolume` (a replicated volume of its own, not a guest disk), over its NBD socket.
///   The stream starts at offset 0; after it is complete and flushed, a 4 KiB trailer in the volume's last
///   4 KiB says `CLEVERVM-STATE 1 <bytes> <vm>`. No trailer, no image: a stop that died half-way leaves nothing
///   to resume from. The trailer is zeroed once the VM runs again. It moves with the volume to another host.
/// * `.file`: `<stateDirectory>/<vm>.vmstate`, written as `.partial`, fsynced, renamed. Local to this host.
public enum HibernateImage: Hashable, Sendable {
    case file(path: String)
    case volume(socket: String, export: String, vm: String)

    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var image: String
        public var reason: String
        public var description: String { "hibernate image \(self.image): \(self.reason)" }
    }

    static let trailerSize = 4096
    static let magic = "CLEVERVM-STATE"

    var name: String {
        switch self {
        case .file(let path): path
        case .volume(let socket, let export, _): "volume \(export) (\(socket))"
        }
    }

    var uri: String {
        guard case .volume(let socket, let export, _) = self else { return "" }
        return nbdURI(socket: socket, export: export)
    }

    /// The migration URI QEMU saves into.
    var saveURI: String {
        switch self {
        case .file(let path): "exec:cat > \(shellQuoted(path + ".partial"))"
        case .volume: "exec:nbdcopy --flush - \(shellQuoted(self.uri))"
        }
    }

    /// Where QEMU loads from on start.
    var incoming: IncomingSource {
        switch self {
        case .file(let path): .stateFile(path)
        case .volume: .command("nbdcopy \(shellQuoted(self.uri)) -")
        }
    }

    func prepare() throws(Failure) {
        guard case .file(let path) = self else { return }
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {
            throw Failure(image: path, reason: "cannot create its directory: \(error)")
        }
        unlink(path + ".partial")
    }

    /// Makes a completely written stream of `bytes` the image.
    func commit(bytes: Int) async throws(Failure) {
        switch self {
        case .file(let path):
            try Self.fsync(path + ".partial")
            guard rename(path + ".partial", path) == 0 else { throw Failure(image: path, reason: "rename: \(String(cString: strerror(errno)))") }
            Self.fsyncDirectory(of: path)
        case .volume(_, _, let vm):
            let size = try await self.volumeSize()
            guard bytes > 0, bytes <= size - Self.trailerSize else {
                throw Failure(image: self.name, reason: "a \(bytes)-byte image does not fit in \(size) bytes")
            }
            let trailer = "\(Self.magic) 1 \(bytes) \(vm)\n"
            let file = NSTemporaryDirectory() + "clevervm-trailer-\(getpid())-\(UUID().uuidString.prefix(8))"
            defer { unlink(file) }
            var data = Data(trailer.utf8)
            data.append(Data(count: Self.trailerSize - data.count))
            guard FileManager.default.createFile(atPath: file, contents: data) else { throw Failure(image: self.name, reason: "cannot write \(file)") }
            let result = await Subprocess.run(["qemu-io", "-f", "raw", self.uri, "-c", "write -s \(file) \(size - Self.trailerSize) \(Self.trailerSize)", "-c", "flush"],
                                        timeout: .seconds(30))
            guard result.succeeded else { throw Failure(image: self.name, reason: "writing the trailer: \(result.output)") }
        }
    }

    /// The image's size when a complete image for `vm` is present.
    func present() async throws(Failure) -> Int? {
        switch self {
        case .file(let path):
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
            return (attributes[.size] as? Int) ?? 0
        case .volume(_, _, let vm):
            let size = try await self.volumeSize()
            let result = await Subprocess.run(["qemu-io", "-r", "-f", "raw", self.uri, "-c", "read -v \(size - Self.trailerSize) 128"], timeout: .seconds(30))
            guard result.succeeded else { throw Failure(image: self.name, reason: "reading the trailer: \(result.output)") }
            let text = Self.bytes(fromHexDump: result.output)
            let words = String(decoding: text.prefix { $0 != 0 && $0 != 10 }, as: UTF8.self).split(separator: " ")
            guard words.count == 4, words[0] == Self.magic, words[1] == "1", let bytes = Int(words[2]), words[3] == vm else { return nil }
            return bytes
        }
    }

    /// Removes the image once the VM it held runs again (so a later crash boots cold, never into old RAM).
    func discard() async throws(Failure) {
        switch self {
        case .file(let path):
            unlink(path)
            unlink(path + ".partial")
        case .volume:
            let size = try await self.volumeSize()
            let result = await Subprocess.run(["qemu-io", "-f", "raw", self.uri, "-c", "write -z \(size - Self.trailerSize) \(Self.trailerSize)", "-c", "flush"],
                                        timeout: .seconds(30))
            guard result.succeeded else { throw Failure(image: self.name, reason: "zeroing the trailer: \(result.output)") }
        }
    }

    /// Bytes of the stream just written (before commit).
    func writtenBytes(reported: Int?) -> Int? {
        switch self {
        case .file(let path): (try? FileManager.default.attributesOfItem(atPath: path + ".partial"))?[.size] as? Int
        case .volume: reported
        }
    }

    func volumeSize() async throws(Failure) -> Int {
        let result = await Subprocess.run(["nbdinfo", "--size", self.uri], timeout: .seconds(15))
        guard result.succeeded, let size = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Failure(image: self.name, reason: "nbdinfo --size: \(result.output)")
        }
        return size
    }

    /// qemu-io's `read -v` lines: `03f00000:  43 4c 45 …  CLEVERVM`.
    static func bytes(fromHexDump text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].allSatisfy(\.isHexDigit) else { continue }
            let fields = line[line.index(after: colon)...].split(separator: " ", omittingEmptySubsequences: true)
            for field in fields.prefix(16) {
                guard field.count == 2, let byte = UInt8(field, radix: 16) else { break }
                bytes.append(byte)
            }
        }
        return bytes
    }

    static func fsync(_ path: String) throws(Failure) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Failure(image: path, reason: "open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard Glibc.fsync(fd) == 0 else { throw Failure(image: path, reason: "fsync: \(String(cString: strerror(errno)))") }
    }

    static func fsyncDirectory(of path: String) {
        let fd = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY)
        if fd >= 0 {
            _ = Glibc.fsync(fd)
            close(fd)
        }
    }
}

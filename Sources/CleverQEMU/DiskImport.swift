import Foundation

/// Bringing an existing disk image (raw, qcow2, vmdk…) into a replicated volume: `qemu-img convert` into the
/// volume's NBD export on its primary. Pure: what to run, given what `qemu-img info` and the volume say.
public enum DiskImport {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// What `qemu-img info --output=json IMAGE` says about the image.
    public struct ImageInfo: Hashable, Sendable {
        public var format: String
        public var virtualSize: UInt64

        public init(format: String, virtualSize: UInt64) {
            self.format = format
            self.virtualSize = virtualSize
        }

        public static func parse(json: String, image: String) throws(Failure) -> ImageInfo {
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let format = object["format"] as? String, let size = (object["virtual-size"] as? NSNumber)?.uint64Value
            else {
                throw Failure("qemu-img info \(image) did not say its format and virtual size: \(json.prefix(200))")
            }
            return ImageInfo(format: format, virtualSize: size)
        }
    }

    /// Formats taken: what libvirt and VMware installations hold.
    public static let formats: Set<String> = ["raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed"]

    /// The `qemu-img convert` command. The volume must be at least the image's virtual size. When the volume
    /// reads as all zeros (`volumeIsZero`), nothing is written where the image is zero (`--target-is-zero`), so
    /// those blocks are neither stored nor replicated; a volume holding data is refused unless `overwrite`.
    public static func convertCommand(image: String, info: ImageInfo, volume: String, volumeSize: UInt64, uri: String,
                                      volumeIsZero: Bool, overwrite: Bool) throws(Failure) -> [String] {
        guard Self.formats.contains(info.format) else {
            throw Failure("\(image) is a \(info.format) image; import takes \(Self.formats.sorted().joined(separator: ", "))")
        }
        guard info.virtualSize <= volumeSize else {
            throw Failure("\(image) is \(info.virtualSize) bytes (\(Self.gib(info.virtualSize))) but volume \(volume) has \(volumeSize) (\(Self.gib(volumeSize))); "
                + "give the volume size: \((info.virtualSize + (1 << 20) - 1) >> 20)MiB or more")
        }
        guard volumeIsZero || overwrite else {
            throw Failure("volume \(volume) already holds data; --overwrite replaces it (zeros are then written where the image has them)")
        }
        var command = ["qemu-img", "convert", "-p", "-n", "-f", info.format, "-O", "raw"]
        if volumeIsZero { command.append("--target-is-zero") }
        return command + [image, uri]
    }

    /// The command that tells whether the volume's first `size` bytes are all zero (exit 0: identical to zeros).
    public static func zeroCheckCommand(uri: String, size: UInt64) -> [String] {
        ["qemu-img", "compare", "-q", "-f", "raw", uri,
         "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"null-co\",\"size\":\(size),\"read-zeroes\":true}}"]
    }

    static func gib(_ bytes: UInt64) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }
}

extension VMAgent {
    /// The NBD URI of a volume's export on this host.
    public static func volumeURI(socket: String, volume: String) -> String { nbdURI(socket: socket, export: volume) }
}

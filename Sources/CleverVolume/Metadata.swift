import CleverBytes
import CleverReplication
import CleverSystem
import Foundation

/// The volume's persistent state (meta.json in the metadata directory), replaced atomically on every change.
public struct VolumeMetadata: Codable, Hashable, Sendable {
    public static let formatVersion = 1

    public var format: Int
    public var volume: String
    public var size: UInt64
    public var generations: Replication.GenerationIDs
    public var disk: Replication.DiskState
    /// Last role; a restart always comes up Secondary, but `crashedPrimary` remembers an unclean end.
    public var role: Replication.Role
    public var crashedPrimary: Bool
    /// The peer was outdated (fenced) by us or for us: we may promote and go on without it.
    public var peerOutdated: Bool

    public init(volume: String, size: UInt64) {
        self.format = Self.formatVersion
        self.volume = volume
        self.size = size
        self.generations = Replication.GenerationIDs()
        self.disk = .inconsistent
        self.role = .secondary
        self.crashedPrimary = false
        self.peerOutdated = false
    }
}

/// The files in a volume's metadata directory: meta.json, bitmap, al.
public final class MetadataStore: @unchecked Sendable {
    public let directory: String
    public var metaPath: String { self.directory + "/meta.json" }
    public var bitmapPath: String { self.directory + "/bitmap" }
    public var activityLogPath: String { self.directory + "/al" }

    public init(directory: String) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw VolumeError("metadata directory \(directory): \(error)")
        }
    }

    public func loadMetadata(volume: String, size: UInt64) throws -> VolumeMetadata {
        guard let bytes = AtomicFile.read(self.metaPath) else {
            let fresh = VolumeMetadata(volume: volume, size: size)
            try self.save(fresh)
            return fresh
        }
        let metadata: VolumeMetadata
        do {
            metadata = try JSONDecoder().decode(VolumeMetadata.self, from: Data(bytes))
        } catch {
            throw VolumeError("metadata \(self.metaPath) is not valid: \(error)")
        }
        guard metadata.format == VolumeMetadata.formatVersion else {
            throw VolumeError("metadata \(self.metaPath) has format \(metadata.format), expected \(VolumeMetadata.formatVersion)")
        }
        guard metadata.volume == volume, metadata.size == size else {
            throw VolumeError("metadata \(self.metaPath) is for volume \(metadata.volume) of \(metadata.size) bytes, "
                + "config says \(volume) of \(size) bytes")
        }
        return metadata
    }

    public func save(_ metadata: VolumeMetadata) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(metadata)
        try AtomicFile.write([UInt8](data), to: self.metaPath)
    }

    // MARK: Bitmap file: magic "CVBM", u32 version, u64 block count, u32 crc32c of the words, words (LE).

    static let bitmapMagic: UInt32 = 0x4356_424D

    public func loadBitmap(volumeSize: UInt64) -> Replication.DirtyBitmap? {
        guard let bytes = AtomicFile.read(self.bitmapPath) else { return nil }
        var reader = ByteReader(bytes)
        let empty = Replication.DirtyBitmap(volumeSize: volumeSize)
        guard reader.readUInt32() == Self.bitmapMagic, reader.readUInt32() == 1,
            reader.readUInt64() == empty.blockCount, let crc = reader.readUInt32()
        else { return nil }
        let words = reader.readRest()
        guard CRC32C.checksum(words) == crc else { return nil }
        return Replication.DirtyBitmap.decode(blockCount: empty.blockCount, bytes: words)
    }

    public func saveBitmap(_ bitmap: Replication.DirtyBitmap) throws {
        let words = bitmap.encoded
        var writer = ByteWriter(capacity: 20 + words.count)
        writer.write(Self.bitmapMagic)
        writer.write(UInt32(1))
        writer.write(bitmap.blockCount)
        writer.write(CRC32C.checksum(words))
        writer.write(bytes: words)
        try AtomicFile.write(writer.bytes, to: self.bitmapPath)
    }
}

import CCorosync

#if canImport(Glibc)
import Glibc
#endif

/// Corosync's configuration and runtime map (cmap), read-only: the local node id and the configured nodes
/// with their ring (link) addresses.
public final class ClusterMap: @unchecked Sendable {
    // Safety: libcmap handles are thread-safe; `handle` is immutable after init.
    private let handle: cmap_handle_t

    public init() throws(CorosyncError) {
        var handle = cmap_handle_t()
        let status = retryingTryAgain { cmap_initialize(&handle) }
        guard status == CS_OK else { throw CorosyncError.connect("cmap_initialize", status) }
        self.handle = handle
    }

    deinit { cmap_finalize(self.handle) }

    /// A string key, nil when absent.
    public func string(_ key: String) throws(CorosyncError) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        let status = cmap_get_string(self.handle, key, &value)
        if status == CS_ERR_NOT_EXIST { return nil }
        guard status == CS_OK, let value else { throw Self.failure("cmap_get_string", key, status) }
        defer { free(value) }
        return String(cString: value)
    }

    /// An unsigned key of any width up to 32 bits, nil when absent.
    public func uint32(_ key: String) throws(CorosyncError) -> UInt32? {
        var value: UInt32 = 0
        let status = cmap_get_uint32(self.handle, key, &value)
        if status == CS_ERR_NOT_EXIST { return nil }
        if status == CS_OK { return value }
        // Stored with another type (e.g. a string in an older config): read it as text.
        if status == CS_ERR_INVALID_PARAM, let text = try self.string(key), let parsed = UInt32(text) { return parsed }
        throw Self.failure("cmap_get_uint32", key, status)
    }

    /// This node's corosync node id.
    public func localNodeID() throws(CorosyncError) -> UInt32 {
        if let id = try self.uint32("runtime.votequorum.this_node_id"), id != 0 { return id }
        if let position = try self.uint32("nodelist.local_node_pos"),
            let id = try self.uint32("nodelist.node.\(position).nodeid")
        {
            return id
        }
        throw CorosyncError(
            code: .notConfigured, operation: "cmap_get", status: 0,
            message: "corosync does not know this node's id (no runtime.votequorum.this_node_id, no nodelist.local_node_pos)")
    }

    /// The configured node list (`nodelist.node.N.*`), in config order.
    public func nodes() throws(CorosyncError) -> [ConfiguredNode] {
        var result: [ConfiguredNode] = []
        var position: UInt32 = 0
        while let id = try self.uint32("nodelist.node.\(position).nodeid") {
            var addresses: [String] = []
            for link in 0..<8 {
                if let address = try self.string("nodelist.node.\(position).ring\(link)_addr") { addresses.append(address) }
            }
            let name = try self.string("nodelist.node.\(position).name")
            result.append(ConfiguredNode(id: id, name: name, ringAddresses: addresses))
            position += 1
        }
        return result
    }

    /// The local node's entry in the node list.
    public func localNode() throws(CorosyncError) -> ConfiguredNode? {
        let id = try self.localNodeID()
        return try self.nodes().first { $0.id == id }
    }

    private static func failure(_ operation: String, _ key: String, _ status: cs_error_t) -> CorosyncError {
        var error = CorosyncError.call(operation, status)
        error.message = "could not read cmap key \(key): \(error.message)"
        return error
    }
}

/// One entry of corosync's node list.
public struct ConfiguredNode: Hashable, Sendable, Codable {
    public var id: UInt32
    public var name: String?
    /// ring0_addr, ring1_addr, … (knet links).
    public var ringAddresses: [String]
    public init(id: UInt32, name: String?, ringAddresses: [String]) {
        self.id = id
        self.name = name
        self.ringAddresses = ringAddresses
    }
}

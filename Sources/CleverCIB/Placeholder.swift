// Temporary stand-in until the CIB importer lands (branch `cib`); deleted at merge.
import CleverModel

public enum CIBImport {
    public static func load(path: String) throws(CIBError) -> CIBImportResult {
        throw CIBError(description: "\(path): the CIB importer is not built yet")
    }
}

public struct CIBImportResult: Sendable {
    public var config: ClusterConfig
    public var state: ClusterState
    public var unsupported: [UnsupportedElement]
    public var now: Timestamp?
}

public struct UnsupportedElement: Sendable, Hashable, CustomStringConvertible {
    public var description: String
}

public struct CIBError: Error, CustomStringConvertible {
    public var description: String
}

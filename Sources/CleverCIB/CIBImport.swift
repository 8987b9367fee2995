import CleverModel
import Foundation

/// Imports a Pacemaker CIB (the XML that `cibadmin --query` prints, configuration and status) into
/// CleverVM's model. Everything outside the supported subset is reported in `unsupported`, never
/// dropped silently; input that cannot be read at all is a `CIBError`.
public enum CIBImport {
    /// Reads and imports the CIB in the file at `path`.
    public static func load(path: String) throws(CIBError) -> CIBImportResult {
        try self.parse(try self.readText(path), file: path)
    }

    /// An XML file's text; unreadable or non-UTF-8 files are a `CIBError` naming the file.
    static func readText(_ path: String) throws(CIBError) -> String {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CIBError(file: path, element: nil, message: "cannot read the file: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CIBError(file: path, element: nil, message: "the file is not UTF-8 text")
        }
        return text
    }

    /// Imports the CIB in `xml`; `file` names it in errors and in the default cluster name.
    public static func parse(_ xml: String, file: String) throws(CIBError) -> CIBImportResult {
        let root = try XMLTree.parse(xml, file: file)
        guard root.name == "cib" else {
            throw CIBError(
                file: file, element: root.name, line: root.line,
                message: "the root element is <\(root.name)>, expected <cib> (a Pacemaker CIB, as `cibadmin --query` prints it)")
        }
        var importer = CIBImporter(file: file, root: root)
        return try importer.run()
    }
}

/// The imported cluster: its configuration, the state recorded in the CIB's status section, and
/// everything the import could not express.
public struct CIBImportResult: Sendable {
    public var config: ClusterConfig
    public var state: ClusterState
    public var unsupported: [UnsupportedElement]
    /// The CIB's `execution-date` (what `crm_simulate` uses as "now"), else its `cib-last-written`.
    public var now: Timestamp?

    public init(config: ClusterConfig, state: ClusterState, unsupported: [UnsupportedElement], now: Timestamp?) {
        self.config = config
        self.state = state
        self.unsupported = unsupported
        self.now = now
    }
}

/// A part of the CIB the import left out or changed, and why.
public struct UnsupportedElement: Sendable, Hashable, CustomStringConvertible {
    /// Where it is, e.g. `configuration/resources/bundle[@id=web]`.
    public var elementPath: String
    public var reason: String

    public init(elementPath: String, reason: String) {
        self.elementPath = elementPath
        self.reason = reason
    }

    public var description: String { "\(self.elementPath): \(self.reason)" }
}

/// A CIB that cannot be imported: unreadable, not XML, not a CIB, or an element missing what it needs.
public struct CIBError: Error, CustomStringConvertible, Sendable, Hashable {
    public var file: String
    /// Path of the offending element (e.g. `configuration/constraints/rsc_location[@id=l1]`), if known.
    public var element: String?
    /// Line in the file, if known.
    public var line: Int?
    public var message: String

    public init(file: String, element: String?, line: Int? = nil, message: String) {
        self.file = file
        self.element = element
        self.line = line
        self.message = message
    }

    public var description: String {
        var place = self.file
        if let line = self.line { place += ":\(line)" }
        if let element = self.element { place += ": \(element)" }
        return "\(place): \(self.message)"
    }
}

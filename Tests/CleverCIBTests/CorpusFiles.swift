import CleverCIB
import CleverModel
import Foundation

/// The Pacemaker agreement corpus (Tests/Corpus/pacemaker), found relative to this source file.
enum CorpusFiles {
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Corpus/pacemaker")

    /// Every corpus CIB's name (without `.xml`), sorted.
    static var names: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: self.directory.path)) ?? []
        return files.filter { $0.hasSuffix(".xml") }.map { String($0.dropLast(4)) }.sorted()
    }

    static func path(_ name: String, _ ext: String = "xml") -> String {
        self.directory.appendingPathComponent("\(name).\(ext)").path
    }

    static func load(_ name: String) throws -> CIBImportResult {
        try CIBImport.load(path: self.path(name))
    }

    /// NAME.expected: crm_simulate's placement as sorted `resource node role` lines.
    static func expected(_ name: String) throws -> [String] {
        let text = try String(contentsOfFile: self.path(name, "expected"), encoding: .utf8)
        return text.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// The corpus' "now" (every CIB's execution-date).
    static let now = Timestamp(seconds: 1_790_000_000)
}

/// A CIB around the given configuration sections and status, for small focused tests.
func cib(
    _ configuration: String, status: String = "", rootAttributes: String = #"have-quorum="1""#,
    resources: String? = nil
) -> String {
    """
    <cib validate-with="pacemaker-3.9" epoch="7" \(rootAttributes)>
      <configuration>
        <crm_config/>
        <nodes>
          <node id="1" uname="node1"/>
          <node id="2" uname="node2"/>
        </nodes>
        \(configuration)
      </configuration>
      <status>\(status)</status>
    </cib>
    """
}

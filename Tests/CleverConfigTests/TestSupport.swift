import CleverModel
import Foundation
import Testing

@testable import CleverConfig

enum TestFiles {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let repository = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()

    static func fixture(_ name: String) -> String {
        self.testsDirectory.appendingPathComponent("Fixtures").appendingPathComponent(name).path
    }

    static let mba7Example = repository.appendingPathComponent("examples/mba7.yaml").path
}

/// The diagnostics `yaml` produces; records an issue if it parses.
func diagnostics(of yaml: String, file: String = "test.yaml", sourceLocation: SourceLocation = #_sourceLocation)
    -> [ConfigDiagnostic]
{
    do {
        let config = try ConfigFile.parse(yaml, file: file)
        Issue.record("expected errors, parsed \(config.name)", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.diagnostics
    }
}

/// The only diagnostic of `yaml`, checked for place and path; nil (with an issue) otherwise.
@discardableResult
func expectSingleError(
    _ yaml: String, line: Int, column: Int, path: String, containing text: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigDiagnostic? {
    let found = diagnostics(of: yaml, sourceLocation: sourceLocation)
    guard found.count == 1, let diagnostic = found.first else {
        Issue.record("expected one diagnostic, got:\n\(found.map(\.description).joined(separator: "\n"))", sourceLocation: sourceLocation)
        return nil
    }
    #expect(diagnostic.line == line, "\(diagnostic)", sourceLocation: sourceLocation)
    #expect(diagnostic.column == column, "\(diagnostic)", sourceLocation: sourceLocation)
    #expect(diagnostic.keyPath == path, "\(diagnostic)", sourceLocation: sourceLocation)
    #expect(diagnostic.message.contains(text), "\(diagnostic)", sourceLocation: sourceLocation)
    return diagnostic
}

func parse(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> ClusterConfig? {
    do {
        return try ConfigFile.parse(yaml, file: "test.yaml")
    } catch {
        Issue.record("unexpected errors:\n\(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Two nodes, five lines: documents in tests append their entries from line 6 on.
let twoNodes = """
    cluster:
      name: lab
    nodes:
      - {name: alpha, id: 1, addresses: [198.51.100.11]}
      - {name: beta, id: 2, addresses: [198.51.100.12]}

    """

import Foundation
import Testing

@testable import CleverConfig

/// Damaged versions of the example must give a config or located diagnostics, never a crash.
@Suite struct RobustnessTests {
    /// The example file, or a failed test: a missing example must not turn every check below into a no-op.
    private func example(sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let text = try String(contentsOfFile: TestFiles.mba7Example, encoding: .utf8)
        try #require(text.count > 1000, "the example \(TestFiles.mba7Example) is missing or truncated", sourceLocation: sourceLocation)
        return text
    }

    private func check(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ConfigFile.parse(text, file: "damaged.yaml")
        } catch {
            #expect(!error.diagnostics.isEmpty, sourceLocation: sourceLocation)
            for diagnostic in error.diagnostics {
                #expect(diagnostic.line >= 0 && diagnostic.column >= 0, "\(diagnostic)", sourceLocation: sourceLocation)
                #expect(!diagnostic.message.isEmpty, sourceLocation: sourceLocation)
            }
        }
    }

    @Test func everyLineLeftOut() throws {
        let lines = try self.example().split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count > 40)
        for index in lines.indices {
            var damaged = lines
            damaged.remove(at: index)
            self.check(damaged.joined(separator: "\n"))
        }
    }

    @Test func everyPrefix() throws {
        let scalars = Array(try self.example().unicodeScalars)
        for length in stride(from: 0, to: scalars.count, by: 7) {
            var prefix = String.UnicodeScalarView()
            prefix.append(contentsOf: scalars[..<length])
            self.check(String(prefix))
        }
    }

    @Test func everyValueReplacedByOddValues() throws {
        let lines = try self.example().split(separator: "\n", omittingEmptySubsequences: false)
        let oddValues = ["", "~", "[]", "{}", "[a, [b]]", "-1", "99999999999999999999999", "\"\"", "'x'", "!!binary AA==", "&a x", "*a"]
        for index in lines.indices {
            guard let colon = lines[index].firstIndex(of: ":") else { continue }
            for value in oddValues {
                var damaged = lines
                damaged[index] = lines[index][...colon] + " " + value
                self.check(damaged.joined(separator: "\n"))
            }
        }
    }
}

import Foundation
import Testing

@testable import CleverConfig

/// Damaged versions of the example must give a config or located diagnostics, never a crash.
@Suite struct RobustnessTests {
    private let example: String = {
        (try? String(contentsOfFile: TestFiles.mba7Example, encoding: .utf8)) ?? ""
    }()

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

    @Test func everyLineLeftOut() {
        let lines = self.example.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count > 40)
        for index in lines.indices {
            var damaged = lines
            damaged.remove(at: index)
            self.check(damaged.joined(separator: "\n"))
        }
    }

    @Test func everyPrefix() {
        let scalars = Array(self.example.unicodeScalars)
        for length in stride(from: 0, to: scalars.count, by: 7) {
            var prefix = String.UnicodeScalarView()
            prefix.append(contentsOf: scalars[..<length])
            self.check(String(prefix))
        }
    }

    @Test func everyValueReplacedByOddValues() {
        let lines = self.example.split(separator: "\n", omittingEmptySubsequences: false)
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

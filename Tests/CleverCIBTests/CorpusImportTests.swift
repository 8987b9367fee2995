import CleverCIB
import CleverModel
import Foundation
import Testing

@Suite("The Pacemaker corpus imports")
struct CorpusImportTests {
    @Test func corpusIsPresent() {
        #expect(CorpusFiles.names.count >= 30)
    }

    @Test("imports with nothing unsupported", arguments: CorpusFiles.names)
    func importsCleanly(name: String) throws {
        let result = try CorpusFiles.load(name)
        #expect(result.unsupported.isEmpty, "\(name): \(result.unsupported)")
        #expect(result.now == CorpusFiles.now)
        #expect(!result.config.nodes.isEmpty)
        #expect(result.state.nodes.count == result.config.nodes.count)
    }

    @Test("every expected placement names imported resources and nodes", arguments: CorpusFiles.names)
    func expectedPlacementIsConsistent(name: String) throws {
        let result = try CorpusFiles.load(name)
        for line in try CorpusFiles.expected(name) {
            let fields = line.split(separator: " ").map(String.init)
            try #require(fields.count == 3, "\(name).expected: \(line)")
            let resource = result.config.resource(named: fields[0])
            #expect(resource != nil, "\(name): \(fields[0]) is not an imported resource")
            #expect(result.config.node(named: fields[1]) != nil, "\(name): \(fields[1]) is not a node")
            #expect(["Started", "Promoted", "Unpromoted"].contains(fields[2]))
            if fields[2] != "Started" { #expect(resource?.isPromotable == true) }
        }
    }

    @Test func expectedFilesAndKnownDifferencesMatchTheCorpus() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: CorpusFiles.directory.path)
        let expected = files.filter { $0.hasSuffix(".expected") }.map { String($0.dropLast(".expected".count)) }.sorted()
        #expect(expected == CorpusFiles.names, "one NAME.expected per NAME.xml (scripts/compare-pacemaker.sh --regenerate-expected)")
        let known = try String(contentsOfFile: CorpusFiles.path("KNOWN-DIFFERENCES", "md"), encoding: .utf8)
        for line in known.split(separator: "\n") where line.hasPrefix("- `") {
            let name = line.dropFirst(3).prefix { $0 != "`" }
            #expect(CorpusFiles.names.contains(String(name)), "KNOWN-DIFFERENCES.md names \(name), which is not in the corpus")
        }
    }

    @Test func everyCorpusFileHasAComment() throws {
        for name in CorpusFiles.names {
            let text = try String(contentsOfFile: CorpusFiles.path(name), encoding: .utf8)
            #expect(text.contains("<!-- \(name): "), "\(name).xml must say what it tests")
        }
    }
}

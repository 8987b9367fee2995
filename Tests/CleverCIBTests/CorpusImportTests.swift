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

    @Test func everyCorpusFileHasAComment() throws {
        for name in CorpusFiles.names {
            let text = try String(contentsOfFile: CorpusFiles.path(name), encoding: .utf8)
            #expect(text.contains("<!-- \(name): "), "\(name).xml must say what it tests")
        }
    }
}

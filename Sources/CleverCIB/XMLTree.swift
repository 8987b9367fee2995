import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML element with the line it starts on, so errors can point into the file.
struct XMLNode: Sendable {
    var name: String
    var attributes: [String: String]
    var children: [XMLNode]
    var line: Int

    subscript(attribute: String) -> String? { self.attributes[attribute] }

    func children(named name: String) -> [XMLNode] { self.children.filter { $0.name == name } }
    func child(named name: String) -> XMLNode? { self.children.first { $0.name == name } }

    /// `name[@id=…]`, the step of an element path.
    var pathStep: String {
        if let id = self.attributes["id"] { return "\(self.name)[@id=\(id)]" }
        if let name = self.attributes["name"] { return "\(self.name)[@name=\(name)]" }
        if let uname = self.attributes["uname"] { return "\(self.name)[@uname=\(uname)]" }
        return self.name
    }
}

enum XMLTree {
    static func parse(_ xml: String, file: String) throws(CIBError) -> XMLNode {
        let parser = XMLParser(data: Data(xml.utf8))
        let builder = TreeBuilder(parser: parser)
        parser.delegate = builder
        parser.shouldProcessNamespaces = false
        parser.shouldResolveExternalEntities = false
        let parsed = parser.parse()
        if !parsed || builder.root == nil {
            let line = builder.errorLine ?? parser.lineNumber
            let reason = builder.errorMessage ?? parser.parserError.map { "\($0.localizedDescription)" } ?? "no root element"
            throw CIBError(file: file, element: nil, line: line > 0 ? line : nil, message: "not well-formed XML: \(reason)")
        }
        return builder.root!
    }
}

/// Builds an `XMLNode` tree from XMLParser's events. Used on one thread, for one parse.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    private unowned let parser: XMLParser
    private var stack: [XMLNode] = []
    var root: XMLNode?
    var errorLine: Int?
    var errorMessage: String?

    init(parser: XMLParser) {
        self.parser = parser
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]
    ) {
        self.stack.append(XMLNode(name: elementName, attributes: attributeDict, children: [], line: parser.lineNumber))
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard let finished = self.stack.popLast() else { return }
        if self.stack.isEmpty {
            self.root = finished
        } else {
            self.stack[self.stack.count - 1].children.append(finished)
        }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        if self.errorMessage == nil {
            self.errorLine = parser.lineNumber
            let nsError = parseError as NSError
            self.errorMessage = "\(nsError.localizedDescription) (libxml2 code \(nsError.code))"
        }
    }
}

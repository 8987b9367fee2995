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
    /// The element's own character data (libvirt writes values as text: `<memory unit='KiB'>4194304</memory>`).
    var text: String = ""

    subscript(attribute: String) -> String? { self.attributes[attribute] }

    func children(named name: String) -> [XMLNode] { self.children.filter { $0.name == name } }
    func child(named name: String) -> XMLNode? { self.children.first { $0.name == name } }

    /// `name[@id=…]`, the step of an element path.
    var pathStep: String {
        // nvpair ids are usually generated; their names say what they are.
        if self.name == "nvpair", let name = self.attributes["name"] { return "nvpair[@name=\(name)]" }
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
    /// Bounds the recursion of everything that walks the tree (nested rules); real CIBs are shallow.
    static let maximumDepth = 100

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
        guard self.stack.count < Self.maximumDepth else {
            if self.errorMessage == nil {
                self.errorLine = parser.lineNumber
                self.errorMessage = "elements nested deeper than \(Self.maximumDepth) levels (a CIB needs about 10)"
            }
            parser.abortParsing()
            return
        }
        self.stack.append(XMLNode(name: elementName, attributes: attributeDict, children: [], line: parser.lineNumber))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !self.stack.isEmpty else { return }
        self.stack[self.stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard self.errorMessage == nil, let finished = self.stack.popLast() else { return }
        if self.stack.isEmpty {
            self.root = finished
        } else {
            self.stack[self.stack.count - 1].children.append(finished)
        }
    }

    /// Foundation's messages for parse errors are generic; name the common libxml2 ones.
    private static func explain(_ code: Int) -> String {
        switch code {
        case 4: "the document is empty"
        case 5: "extra content after the root element"
        case 9: "invalid character"
        case 26: "undeclared entity"
        case 38: "'<' in an attribute value"
        case 39, 40: "malformed attribute value (quotes missing or not closed)"
        case 41: "attribute without a value"
        case 42: "attribute given twice"
        case 45: "comment not terminated"
        case 68: "a name is required here"
        case 73: "'>' expected"
        case 76: "closing tag does not match the open element"
        case 77: "element not closed before the end of the document"
        case 80: "double hyphen (--) inside a comment"
        default: "malformed XML"
        }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        if self.errorMessage == nil {
            self.errorLine = parser.lineNumber
            let code = (parseError as NSError).code
            self.errorMessage = "\(Self.explain(code)) (libxml2 error \(code))"
        }
    }
}

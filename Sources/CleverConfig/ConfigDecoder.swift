import Yams

/// A place in the YAML text: line and column from 1, columns in Unicode scalars (as libyaml counts).
struct SourcePosition: Hashable, Sendable {
    var line: Int
    var column: Int

    static let wholeFile = SourcePosition(line: 0, column: 0)

    init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    init(_ mark: Mark?) {
        self.init(line: mark?.line ?? 0, column: mark?.column ?? 0)
    }
}

/// Why a scalar could not be turned into a value; becomes a diagnostic at the scalar's position.
struct ValueProblem: Error {
    var message: String
    var hint: String?

    init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
}

/// Walks the composed YAML nodes: collects every diagnostic (decoding goes on after an error, so
/// one pass reports them all) and remembers the position of every key path for the checks that run
/// after decoding (references, duplicates, cycles).
struct ConfigDecoder {
    let file: String
    private(set) var diagnostics: [ConfigDiagnostic] = []
    /// Key path → position of its value (for a missing key: of the mapping that lacks it).
    private(set) var positions: [String: SourcePosition] = [:]

    init(file: String) {
        self.file = file
    }

    // MARK: Reporting

    mutating func report(_ message: String, at position: SourcePosition, path: String, hint: String? = nil) {
        self.diagnostics.append(
            ConfigDiagnostic(
                file: self.file, line: position.line, column: position.column, keyPath: path,
                message: message, hint: hint
            )
        )
    }

    /// Reports at the remembered position of `path`, or of its nearest ancestor.
    mutating func report(_ message: String, path: String, hint: String? = nil) {
        self.report(message, at: self.position(of: path), path: path, hint: hint)
    }

    func position(of path: String) -> SourcePosition {
        var candidate = path
        while true {
            if let position = self.positions[candidate] { return position }
            guard let parent = KeyPath.parent(of: candidate) else { return .wholeFile }
            candidate = parent
        }
    }

    mutating func remember(_ path: String, at node: Node) {
        self.positions[path] = SourcePosition(node.mark)
    }

    // MARK: Mappings

    /// Reads `node` as a mapping whose keys must be among `known`; reports unknown keys with the
    /// nearest known one as a hint. nil (after a diagnostic) when `node` is not a mapping.
    mutating func fields(_ node: Node, path: String, known: [String]?) -> Fields? {
        self.remember(path, at: node)
        guard case .mapping(let mapping) = node else {
            self.report(
                "expected a mapping (key: value), found \(node.kindDescription)", at: SourcePosition(node.mark),
                path: path)
            return nil
        }
        var entries: [Fields.Entry] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode else {
                self.report(
                    "keys must be plain words, found \(keyNode.kindDescription)", at: SourcePosition(keyNode.mark),
                    path: path)
                continue
            }
            let childPath = KeyPath.child(path, key.string)
            if let known, !known.contains(key.string) {
                self.report(
                    "unknown key '\(key.string)'", at: SourcePosition(keyNode.mark), path: childPath,
                    hint: Self.unknownKeyHint(key.string, known: known))
                continue
            }
            self.remember(childPath, at: value)
            entries.append(Fields.Entry(key: key.string, keyPosition: SourcePosition(keyNode.mark), value: value))
        }
        return Fields(path: path, position: SourcePosition(node.mark), entries: entries)
    }

    static func unknownKeyHint(_ key: String, known: [String]) -> String {
        if let nearest = EditDistance.nearest(to: key, among: known) {
            return "did you mean '\(nearest)'?"
        }
        return "known keys: \(known.joined(separator: ", "))"
    }

    /// The value of `key`, or nil when absent or null; reports a missing required key.
    mutating func node(_ fields: Fields, _ key: String, required: Bool) -> Node? {
        guard let node = fields[key], !node.isNull else {
            if required {
                let present = fields[key] != nil
                self.report(
                    present ? "'\(key)' has no value" : "missing required key '\(key)'",
                    at: present ? self.position(of: KeyPath.child(fields.path, key)) : fields.position,
                    path: present ? KeyPath.child(fields.path, key) : fields.path)
            }
            return nil
        }
        return node
    }

    // MARK: Scalars

    /// Converts the scalar at `key`; reports a missing required key, a non-scalar, or the
    /// conversion's problem at the scalar's position.
    mutating func value<Value>(
        _ fields: Fields, _ key: String, required: Bool = false, expected: String,
        _ convert: (String) -> Result<Value, ValueProblem>
    ) -> Value? {
        guard let node = self.node(fields, key, required: required) else { return nil }
        return self.convert(node, path: KeyPath.child(fields.path, key), expected: expected, convert)
    }

    mutating func convert<Value>(
        _ node: Node, path: String, expected: String, _ convert: (String) -> Result<Value, ValueProblem>
    ) -> Value? {
        guard case .scalar(let scalar) = node else {
            self.report("expected \(expected), found \(node.kindDescription)", at: SourcePosition(node.mark), path: path)
            return nil
        }
        switch convert(scalar.string) {
        case .success(let value):
            return value
        case .failure(let problem):
            self.report(problem.message, at: SourcePosition(node.mark), path: path, hint: problem.hint)
            return nil
        }
    }

    mutating func string(_ fields: Fields, _ key: String, required: Bool = false) -> String? {
        self.value(fields, key, required: required, expected: "a string") { text in
            text.isEmpty ? .failure(ValueProblem("must not be empty")) : .success(text)
        }
    }

    // MARK: Lists and maps

    /// The elements of the list at `key` with their key paths. A single scalar counts as a
    /// one-element list (`ping: 198.51.100.1`).
    mutating func list(_ fields: Fields, _ key: String, required: Bool = false) -> [(node: Node, path: String)]? {
        guard let node = self.node(fields, key, required: required) else { return nil }
        let path = KeyPath.child(fields.path, key)
        switch node {
        case .sequence(let sequence):
            return sequence.enumerated().map { index, element in
                let elementPath = KeyPath.index(path, index)
                self.remember(elementPath, at: element)
                return (element, elementPath)
            }
        case .scalar:
            let elementPath = KeyPath.index(path, 0)
            self.remember(elementPath, at: node)
            return [(node, elementPath)]
        default:
            self.report("expected a list, found \(node.kindDescription)", at: SourcePosition(node.mark), path: path)
            return nil
        }
    }

    /// A list of scalars, each converted; elements that fail are reported and left out.
    mutating func scalarList<Value>(
        _ fields: Fields, _ key: String, required: Bool = false, expected: String,
        _ convert: (String) -> Result<Value, ValueProblem>
    ) -> [Value]? {
        guard let elements = self.list(fields, key, required: required) else { return nil }
        return elements.compactMap { element in
            self.convert(element.node, path: element.path, expected: expected, convert)
        }
    }

    mutating func stringList(_ fields: Fields, _ key: String, required: Bool = false) -> [String]? {
        self.scalarList(fields, key, required: required, expected: "a string") { text in
            text.isEmpty ? .failure(ValueProblem("must not be empty")) : .success(text)
        }
    }

    /// A mapping of strings to strings (node attributes, agent parameters).
    mutating func stringMap(_ fields: Fields, _ key: String) -> [String: String]? {
        guard let node = self.node(fields, key, required: false) else { return nil }
        guard let map = self.fields(node, path: KeyPath.child(fields.path, key), known: nil) else { return nil }
        var result: [String: String] = [:]
        for entry in map.entries {
            let path = KeyPath.child(map.path, entry.key)
            guard case .scalar(let scalar) = entry.value else {
                self.report(
                    "expected a string, found \(entry.value.kindDescription)", at: SourcePosition(entry.value.mark),
                    path: path)
                continue
            }
            result[entry.key] = entry.value.isNull ? "" : scalar.string
        }
        return result
    }
}

/// A decoded YAML mapping whose keys were checked against the known ones.
struct Fields {
    struct Entry {
        var key: String
        var keyPosition: SourcePosition
        var value: Node
    }

    var path: String
    /// Position of the mapping itself (its first key for a block mapping).
    var position: SourcePosition
    var entries: [Entry]

    subscript(key: String) -> Node? {
        self.entries.first { $0.key == key }?.value
    }

    func has(_ key: String) -> Bool { self[key] != nil }
}

/// Key paths as diagnostics print them: `resources[2].memory`.
enum KeyPath {
    static func child(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    static func index(_ path: String, _ index: Int) -> String {
        "\(path)[\(index)]"
    }

    static func parent(of path: String) -> String? {
        guard !path.isEmpty else { return nil }
        if path.hasSuffix("]"), let open = path.lastIndex(of: "[") {
            return String(path[..<open])
        }
        if let dot = path.lastIndex(of: ".") {
            return String(path[..<dot])
        }
        return ""
    }
}

extension Node {
    /// "a mapping", "a list", "'text'": for "expected X, found Y" messages.
    var kindDescription: String {
        switch self {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        case .scalar(let scalar): self.isNull ? "no value" : "'\(scalar.string)'"
        }
    }

    /// `key:` with nothing after it, `~` or `null` (but not the quoted string "null").
    var isNull: Bool {
        guard case .scalar(let scalar) = self else { return false }
        return scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }
}

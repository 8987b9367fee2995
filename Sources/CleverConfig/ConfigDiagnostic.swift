/// One problem found in a config file, located by file, line, column and key path.
///
/// `line` and `column` start at 1 (columns count Unicode scalars, as libyaml does); 0 means the
/// problem concerns the whole file (it is missing, unreadable or empty).
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    /// Where in the document, e.g. `resources[2].memory`; empty for the document itself.
    public var keyPath: String
    public var message: String
    public var hint: String?

    public init(file: String, line: Int, column: Int, keyPath: String, message: String, hint: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
        self.hint = hint
    }

    /// `mba7.yaml:14:13: error: resources[2].memory: ... (hint: ...)`, the shape compilers use so
    /// editors can jump to the place.
    public var description: String {
        var text = self.file
        if self.line > 0 {
            text += ":\(self.line):\(self.column)"
        }
        text += ": error: "
        if !self.keyPath.isEmpty {
            text += "\(self.keyPath): "
        }
        text += self.message
        if let hint = self.hint {
            text += " (hint: \(hint))"
        }
        return text
    }
}

/// A config file that cannot be used, with every problem found in one pass, in file order.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public init(diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// One diagnostic per line.
    public var description: String {
        self.diagnostics.map(\.description).joined(separator: "\n")
    }
}

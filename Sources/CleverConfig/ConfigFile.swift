import CleverModel
import Foundation
import Yams

/// The CleverVM config file: YAML in, `ClusterConfig` out, every problem with file:line:column.
/// The format is documented in docs/config.md.
public enum ConfigFile {
    /// Reads and parses the file at `path`; diagnostics name `path` as given.
    public static func load(path: String) throws(ConfigError) -> ClusterConfig {
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw ConfigError.whole(file: path, "the file is not UTF-8 text", hint: "save it as UTF-8")
            }
            text = decoded
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError.whole(file: path, Self.readProblem(path: path, error: error), hint: nil)
        }
        return try self.parse(text, file: path)
    }

    /// Parses config text; `file` is the name diagnostics print.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> ClusterConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(diagnostics: [YAMLSyntax.diagnostic(for: error, file: file, text: text)])
        } catch {
            throw ConfigError.whole(file: file, "not a YAML document: \(error)", hint: nil)
        }
        guard let root else {
            throw ConfigError.whole(file: file, "the file is empty", hint: "start with 'cluster:' (see docs/config.md)")
        }
        var decoder = ConfigDecoder(file: file)
        if var decoded = decoder.decodeDocument(root) {
            decoder.validate(&decoded)
            if decoder.diagnostics.isEmpty { return decoded.config }
        }
        throw ConfigError(diagnostics: Self.inFileOrder(decoder.diagnostics))
    }

    /// The config as YAML in this format; `parse(render(c))` gives `c` back.
    public static func render(_ config: ClusterConfig) -> String {
        ConfigRenderer.render(config)
    }

    static func inFileOrder(_ diagnostics: [ConfigDiagnostic]) -> [ConfigDiagnostic] {
        diagnostics.enumerated()
            .sorted { ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset) }
            .map(\.element)
    }

    private static func readProblem(path: String, error: any Error) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            return "cannot read the config file: it does not exist"
        }
        if isDirectory.boolValue {
            return "cannot read the config file: it is a directory"
        }
        if !FileManager.default.isReadableFile(atPath: path) {
            return "cannot read the config file: permission denied"
        }
        return "cannot read the config file: \(error.localizedDescription)"
    }
}

extension ConfigError {
    /// A problem with the file as a whole (no line or column).
    static func whole(file: String, _ message: String, hint: String?) -> ConfigError {
        ConfigError(diagnostics: [
            ConfigDiagnostic(file: file, line: 0, column: 0, keyPath: "", message: message, hint: hint)
        ])
    }
}

/// libyaml's errors as diagnostics.
enum YAMLSyntax {
    static func diagnostic(for error: YamlError, file: String, text: String) -> ConfigDiagnostic {
        func located(_ mark: Mark, _ message: String, hint: String? = nil) -> ConfigDiagnostic {
            ConfigDiagnostic(file: file, line: mark.line, column: mark.column, keyPath: "", message: message, hint: hint)
        }
        func located(_ position: SourcePosition, _ message: String, hint: String? = nil) -> ConfigDiagnostic {
            ConfigDiagnostic(file: file, line: position.line, column: position.column, keyPath: "", message: message, hint: hint)
        }
        func withContext(_ problem: String, _ context: YamlError.Context?) -> String {
            guard let context else { return "invalid YAML: \(problem)" }
            return "invalid YAML: \(problem) (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
        }
        switch error {
        case .scanner(let context, let problem, let mark, _):
            let hint = text.contains("\t") ? "YAML indents with spaces, not tabs" : nil
            return located(mark, withContext(problem, context), hint: hint)
        case .parser(let context, let problem, let mark, _), .composer(let context, let problem, let mark, _):
            return located(mark, withContext(problem, context), hint: "check the indentation around this line")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            // Yams marks the first occurrence; the mistake is the repeat below it.
            guard duplicates.count == 1, let repeated = Self.repeatedKey(duplicates[0], after: context.mark, in: text)
            else {
                return located(context.mark, "duplicate key \(keys) in one mapping", hint: "each key may appear only once")
            }
            return located(
                repeated, "duplicate key \(keys) in one mapping",
                hint: "first given at line \(context.mark.line); each key may appear only once")
        case .reader(let problem, let offset, _, _):
            let position = offset.map { Self.position(ofUTF8Offset: $0, in: text) } ?? .wholeFile
            return ConfigDiagnostic(
                file: file, line: position.line, column: position.column, keyPath: "",
                message: "cannot read the text: \(problem)")
        default:
            return ConfigDiagnostic(file: file, line: 0, column: 0, keyPath: "", message: "invalid YAML: \(error)")
        }
    }

    /// The next block-mapping line that repeats `key` at the first one's column, before the
    /// mapping ends (a line indented less). nil for flow mappings and other shapes.
    static func repeatedKey(_ key: String, after first: Mark, in text: String) -> SourcePosition? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard first.line >= 1, first.line < lines.count else { return nil }
        let indent = first.column - 1
        for index in first.line..<lines.count {
            let line = Array(lines[index].unicodeScalars)
            let leading = line.prefix { $0 == " " }.count
            if leading == line.count || line[leading] == "#" { continue }
            if leading < indent { return nil }
            guard leading == indent else { continue }
            let rest = String(String.UnicodeScalarView(line[leading...]))
            for spelling in [key, "\"\(key)\"", "'\(key)'"] where rest.hasPrefix(spelling + ":") {
                return SourcePosition(line: index + 1, column: first.column)
            }
        }
        return nil
    }

    static func position(ofUTF8Offset offset: Int, in text: String) -> SourcePosition {
        var line = 1
        var column = 1
        var consumed = 0
        for scalar in text.unicodeScalars {
            if consumed >= offset { break }
            consumed += String(scalar).utf8.count
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return SourcePosition(line: line, column: column)
    }
}

// Temporary stand-in until the YAML loader lands (branch `config`); deleted at merge.
import CleverModel

public enum ConfigFile {
    public static func load(path: String) throws(ConfigError) -> ClusterConfig {
        throw ConfigError(diagnostics: [ConfigDiagnostic(description: "\(path): the YAML loader is not built yet")])
    }
    public static func parse(_ text: String, file: String) throws(ConfigError) -> ClusterConfig {
        throw ConfigError(diagnostics: [ConfigDiagnostic(description: "\(file): the YAML loader is not built yet")])
    }
    public static func render(_ config: ClusterConfig) -> String { "" }
}

public struct ConfigError: Error, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]
    public var description: String { self.diagnostics.map(\.description).joined(separator: "\n") }
}

public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var description: String
}

import ArgumentParser
import CleverCIB
import CleverConfig
import CleverModel

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check, import and show cluster configs.",
        subcommands: [Check.self, Show.self, Apply.self, ImportCIB.self, ImportLibvirt.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a config file; every error names file, line, column and key.")

        @Argument(help: "The config file (YAML).")
        var file: String

        @OptionGroup var output: OutputOptions

        struct Summary: Encodable {
            var valid: Bool
            var cluster: String
            var nodes: [String]
            var resources: [String]
            var groups: [String]
            var constraints: Int
        }

        func run() throws {
            let config: ClusterConfig
            do {
                config = try ConfigFile.load(path: self.file)
            } catch {
                if self.output.json {
                    try Output.printJSON(["valid": false])
                    Output.printError(error.description, json: true)
                } else {
                    Output.printError("\(self.file) is not valid:\n" + error.description, json: false)
                }
                throw ExitCode(1)
            }
            let summary = Summary(
                valid: true, cluster: config.name, nodes: config.nodes.map(\.name), resources: config.resources.map(\.id),
                groups: config.groups.map(\.id), constraints: config.effectiveConstraints.count)
            if self.output.json {
                try Output.printJSON(summary)
            } else {
                print("\(self.file): valid. Cluster '\(config.name)': \(config.nodes.count) nodes, "
                      + "\(config.resources.count) resources, \(config.groups.count) groups, "
                      + "\(config.effectiveConstraints.count) constraints (including implied ones).")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the config the cluster runs with (YAML).")
        @OptionGroup var agent: AgentOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try Output.run(json: self.output.json) {
                guard case .config(let config) = try self.agent.call(.showConfig) else { throw CLIError("unexpected answer") }
                if self.output.json { try Output.printJSON(config) } else { print(ConfigFile.render(config)) }
            }
        }
    }

    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a config file, then apply it cluster-wide, or refuse it as a whole.")
        @Argument(help: "The new config (YAML).") var file: String
        @OptionGroup var agent: AgentOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let config: ClusterConfig
            do {
                config = try ConfigFile.load(path: self.file)
            } catch {
                Output.printError("\(self.file) is not valid; nothing was applied:\n\(error.description)", json: self.output.json)
                throw ExitCode(1)
            }
            try Output.run(json: self.output.json) {
                guard case .done(let message) = try self.agent.call(.applyConfig(config)) else { throw CLIError("unexpected answer") }
                if self.output.json { try Output.printJSON(["result": message]) } else { print("\(self.file): \(message)") }
            }
        }
    }

    struct ImportCIB: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-cib",
            abstract: "Translate a Pacemaker CIB into a CleverVM config; report what cannot be translated."
        )

        @Argument(help: "The CIB (XML), e.g. from `cibadmin --query`.")
        var file: String

        @OptionGroup var output: OutputOptions

        struct Report: Encodable {
            var config: ClusterConfig
            var notImported: [String]
        }

        func run() throws {
            try Output.run(json: self.output.json) {
                let result = try CIBImport.load(path: self.file)
                if self.output.json {
                    try Output.printJSON(Report(config: result.config, notImported: result.unsupported.map(\.description)))
                    return
                }
                print(ConfigFile.render(result.config))
                for element in result.unsupported { Output.warn("not imported: \(element)") }
            }
        }
    }
}

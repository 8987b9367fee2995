import ArgumentParser
import Foundation

/// Flags every verb has.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false
}

/// An error the CLI reports: what went wrong, naming the thing and the place. Goes to stderr,
/// exit code 1 (2 for usage mistakes, from ArgumentParser).
struct CLIError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { self.message }
}

enum Output {
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        print(try self.json(value))
    }

    static func printError(_ message: String, json: Bool) {
        let text: String
        if json {
            text = (try? self.json(["error": message])) ?? "{\"error\": \"unprintable\"}"
        } else {
            text = "clevervm: error: " + message
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func warn(_ message: String) {
        FileHandle.standardError.write(Data(("clevervm: warning: " + message + "\n").utf8))
    }

    /// Runs a verb body; a CLIError or load error is printed to stderr and turned into exit 1.
    static func run(json: Bool, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as ExitCode {
            throw error
        } catch {
            self.printError(String(describing: error), json: json)
            throw ExitCode(1)
        }
    }
}

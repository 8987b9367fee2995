import ArgumentParser
import CleverLab
import Foundation

extension LabCommand {
    /// The watcher behind a lab host's watchdog FIFO (started by `lab up` and `lab power on`, not by hand).
    struct WatchdogWatch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watchdog-watch",
            abstract: "Watch a lab host's watchdog FIFO; power the host off when it is not petted within the timeout.",
            shouldDisplay: false)
        @OptionGroup var options: Options
        @OptionGroup var output: OutputOptions
        @Argument(help: "The lab host.") var host: String
        @Option(name: .long, help: "The FIFO, as seen from outside the host.") var fifo: String
        @Option(name: .long, help: "W, in seconds.") var timeout: Double

        func run() throws {
            let lab = try self.options.lab()
            try LabCommand.lab { () throws(LabError) in
                try LabWatchdog.watch(lab: lab, host: self.host, fifo: self.fifo, timeout: self.timeout) { line in
                    let stamp = String(format: "%.3f", Date().timeIntervalSince1970)
                    // --json: one object per line ({"at": …, "host": …, "event": …}) for tools that follow the log.
                    let text = self.output.json
                        ? (try? String(decoding: JSONEncoder().encode(["at": stamp, "host": self.host, "event": line]), as: UTF8.self)) ?? line
                        : "\(stamp) \(line)"
                    FileHandle.standardError.write(Data("\(text)\n".utf8))
                }
            }
        }
    }
}

import CleverModel
import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The lab's watchdog for a host: a FIFO at the path the node config names inside the host's /run (e.g.
/// `watchdog: /run/clevervm-lab-watchdog`), read by a small watcher process outside the host. The agent pets it
/// as it would /dev/watchdog (the FIFO refuses the ioctls with ENOTTY, so W comes from the config); once petted,
/// a silence of W powers the lab host off (`Lab.powerOff`, the pulled plug: the same outcome as a reset). The magic
/// 'V' disarms it until the next pet; a close without it (a crash) leaves it counting, as the kernel does.
public enum LabWatchdog {
    struct Record: Codable {
        var host: String
        /// The FIFO seen from outside the host.
        var fifo: String
        var timeoutSeconds: Double
        var pid: Int32?
    }

    static func directory(_ lab: Lab) -> String { "\(lab.stateDirectory)/watchdogs" }
    static func recordPath(_ lab: Lab, _ host: String) -> String { "\(self.directory(lab))/\(host).json" }

    /// The watchers a config asks for: every node whose watchdog device lies inside its /run.
    static func records(config: ClusterConfig, layout: LabLayout) -> [Record] {
        let timing = FencingTiming(config: config)
        return layout.hosts.compactMap { host in
            guard let node = config.node(named: host.name), let path = node.watchdog?.devicePath, path.hasPrefix("/run/") else { return nil }
            return Record(host: host.name, fifo: "\(layout.directory(of: host))/run/\(path.dropFirst("/run/".count))",
                          timeoutSeconds: timing.watchdogTimeout(of: node).value)
        }
    }

    /// Makes each host's FIFO and starts its watcher (at `lab up`).
    static func startAll(_ lab: Lab, config: ClusterConfig, layout: LabLayout, progress: (String) -> Void) throws(LabError) {
        let records = self.records(config: config, layout: layout)
        guard !records.isEmpty else { return }
        try Lab.makeDirectory(self.directory(lab))
        for record in records {
            progress("watchdog of \(record.host): \(record.fifo) (W \(Seconds(record.timeoutSeconds)); unpetted, it powers the host off)")
            try self.start(lab, record)
        }
    }

    /// Starts the watcher of one host again (at power on: /run was wiped, the last watcher has exited).
    static func restart(_ lab: Lab, host: String) throws(LabError) {
        guard let data = FileManager.default.contents(atPath: self.recordPath(lab, host)),
            let record = try? JSONDecoder().decode(Record.self, from: data)
        else { return }
        if let pid = record.pid, pid > 0, Subprocess.isAlive(pid) { Lab.terminate(pid) }
        try self.start(lab, record)
    }

    private static func start(_ lab: Lab, _ record: Record) throws(LabError) {
        var record = record
        unlink(record.fifo)
        guard mkfifo(record.fifo, 0o600) == 0 else {
            throw LabError("lab \(lab.name), host \(record.host)", "mkfifo \(record.fifo): \(String(cString: strerror(errno)))")
        }
        let binary = ProcessInfo.processInfo.environment["CLEVERVM_BINARY"]
            ?? (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        record.pid = try Lab.spawnDaemon(
            [binary, "lab", "watchdog-watch", "--name", lab.name, record.host, "--fifo", record.fifo,
             "--timeout", String(record.timeoutSeconds)],
            log: "\(lab.stateDirectory)/hosts/\(record.host)/logs/watchdog.log")
        do {
            try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: self.recordPath(lab, record.host)))
        } catch {
            throw LabError("lab \(lab.name), host \(record.host)", "cannot record its watchdog watcher: \(error)")
        }
    }

    /// Ends every watcher (at `lab down`, before the state directory goes).
    static func stopAll(_ lab: Lab) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: self.directory(lab))) ?? [] where name.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: "\(self.directory(lab))/\(name)"),
                let record = try? JSONDecoder().decode(Record.self, from: data), let pid = record.pid, pid > 0
            else { continue }
            if Subprocess.isAlive(pid) { Lab.terminate(pid) }
        }
    }

    /// The watcher's loop (`clevervm lab watchdog-watch`): returns after it powered the host off.
    public static func watch(lab: Lab, host: String, fifo: String, timeout: Double, log: (String) -> Void) throws(LabError) {
        let reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard reader >= 0 else { throw LabError("lab \(lab.name), host \(host)", "open \(fifo): \(String(cString: strerror(errno)))") }
        // Our own writer keeps the FIFO open between agents, so reads wait instead of returning end-of-file.
        let keeper = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        defer {
            close(reader)
            if keeper >= 0 { close(keeper) }
        }
        log("watching \(fifo) for \(host), W \(timeout) s")
        var armed = false
        var lastPet = Self.monotonic()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var descriptor = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 50)
            let count = read(reader, &buffer, buffer.count)
            if count > 0 {
                for byte in buffer[0..<count] {
                    if byte == UInt8(ascii: "V") {
                        if armed { log("disarmed (magic close)") }
                        armed = false
                    } else {
                        if !armed { log("armed") }
                        armed = true
                        lastPet = Self.monotonic()
                    }
                }
            }
            let silence = Self.monotonic() - lastPet
            if armed, silence > timeout {
                log(String(format: "not petted for %.2f s (W %.0f s): powering %@ off", silence, timeout, host))
                try lab.powerOff(host)
                log("\(host) powered off")
                return
            }
        }
    }

    static func monotonic() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

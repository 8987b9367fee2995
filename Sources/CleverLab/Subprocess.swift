import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Running commands for the lab: short commands whose output we read, and long-lived daemons started in their
/// own session (so a Ctrl-C in the terminal that ran `lab up` does not reach them) that outlive the caller.
enum Subprocess {
    struct Result: Sendable {
        var status: Int32
        var output: String
        var succeeded: Bool { self.status == 0 }
    }

    /// Runs `arguments` (argv[0] looked up in PATH), feeding `input` on stdin, and returns the exit status and
    /// the combined stdout and stderr. Kills it after `timeout`.
    static func run(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(30)) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let inputPipe = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : inputPipe
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        do {
            try process.run()
        } catch {
            return Result(status: 127, output: "cannot run \(arguments.first ?? ""): \(error)")
        }
        if let input {
            inputPipe.fileHandleForWriting.write(Data(input.utf8))
            try? inputPipe.fileHandleForWriting.close()
        }
        let collected = CollectedOutput()
        let reader = Thread {
            collected.data = output.fileHandleForReading.readDataToEndOfFile()
            collected.done.signal()
        }
        reader.start()
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        if finished.wait(timeout: .now() + seconds) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
            collected.done.wait()
            return Result(status: 124, output: String(decoding: collected.data, as: UTF8.self) + "\n(timed out after \(timeout))")
        }
        collected.done.wait()
        return Result(status: process.terminationStatus, output: String(decoding: collected.data, as: UTF8.self))
    }

    private final class CollectedOutput: @unchecked Sendable {
        // Safety: written by the reader thread before `done` is signalled, read after waiting on it.
        var data = Data()
        let done = DispatchSemaphore(value: 0)
    }

    /// Starts `arguments` as a daemon in a new session with stdin from /dev/null and stdout+stderr appended to
    /// `log`; returns its pid (the daemon itself: nsenter, ip netns exec, unshare and setsid all exec in place).
    static func spawnDaemon(_ arguments: [String], log: String) throws(LabError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        // POSIX_SPAWN_SETSID (glibc, 0x80; not exported to Swift): the daemon gets its own session.
        let setSID: Int32 = 0x80
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWNP_FLAGS | setSID))

        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let status = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw LabError("spawn \(arguments.joined(separator: " "))", String(cString: strerror(status)))
        }
        return pid
    }

    private static let POSIX_SPAWNP_FLAGS = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)

    /// True while `pid` runs (a zombie counts as gone). Reaps it when it is our child.
    static func isAlive(_ pid: pid_t) -> Bool {
        guard pid > 0 else { return false }
        var status: Int32 = 0
        _ = waitpid(pid, &status, WNOHANG)
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    /// The inode of a namespace file (`/run/netns/NAME`, `/proc/PID/ns/net`), nil when absent.
    static func namespaceInode(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// Every live process whose network namespace is the named one.
    static func processes(inNetworkNamespace namespace: String) -> [pid_t] {
        guard let target = Self.namespaceInode("/run/netns/\(namespace)") else { return [] }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry), pid != getpid() else { return nil }
            guard Self.namespaceInode("/proc/\(pid)/ns/net") == target else { return nil }
            return pid
        }
    }

    /// SIGKILLs every process in the named network namespace and waits (up to 5 s) until none is left.
    /// Returns how many were killed.
    @discardableResult
    static func killAll(inNetworkNamespace namespace: String) -> Int {
        var killed = Set<pid_t>()
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while ContinuousClock.now < deadline {
            let pids = Self.processes(inNetworkNamespace: namespace).filter { Self.isAlive($0) }
            if pids.isEmpty { break }
            for pid in pids {
                kill(pid, SIGKILL)
                killed.insert(pid)
            }
            usleep(20_000)
            for pid in killed { _ = Self.isAlive(pid) }
        }
        return killed.count
    }

    /// The last `lines` lines of a log file, for error messages.
    static func tail(_ path: String, lines: Int = 15) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no log at \(path))" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

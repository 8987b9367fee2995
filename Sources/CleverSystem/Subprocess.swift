import CSpawn
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Running commands: short commands whose output we read, and long-lived daemons started in their
/// own session (so a Ctrl-C in the terminal that ran `lab up` does not reach them) that outlive the caller.
public enum Subprocess {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var succeeded: Bool { self.status == 0 }
    }

    /// Runs `arguments` (argv[0] looked up in PATH), feeding `input` on stdin, and returns the exit status
    /// (128 + signal when killed) and the combined stdout and stderr. Kills it after `timeout`. Spawns and reaps
    /// the child itself (posix_spawn + waitpid), so it does not depend on anyone else's SIGCHLD handling.
    public static func run(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(30),
                           environment: [String: String]? = nil) -> Result {
        var output: [Int32] = [-1, -1]
        var stdin: [Int32] = [-1, -1]
        guard cspawn_pipe_cloexec(&output) == 0, input == nil || cspawn_pipe_cloexec(&stdin) == 0 else {
            return Result(status: 127, output: "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, stdin[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, output[1], 2)
        cspawn_addclosefrom(&actions, 3)
        var attributes = Self.defaultSignalAttributes()
        defer { posix_spawnattr_destroy(&attributes) }

        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { envp?.forEach { free($0) } }
        let spawned = envp.map { envp in posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp) }
            ?? posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        close(output[1])
        if input != nil { close(stdin[0]) }
        guard spawned == 0 else {
            close(output[0])
            if input != nil { close(stdin[1]) }
            return Result(status: 127, output: "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))")
        }
        if let input {
            let writeEnd = stdin[1]
            let bytes = Array(input.utf8)
            Thread {
                bytes.withUnsafeBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let written = write(writeEnd, buffer.baseAddress! + offset, buffer.count - offset)
                        if written <= 0 { break }
                        offset += written
                    }
                }
                close(writeEnd)
            }.start()
        }
        let collected = CollectedOutput()
        let readEnd = output[0]
        Thread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(readEnd, &buffer, buffer.count)
                if count > 0 {
                    collected.data.append(contentsOf: buffer[0..<count])
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            collected.done.signal()
        }.start()

        var status: Int32 = 0
        let timedOut = !Self.reap(pid, status: &status, until: ContinuousClock.now.advanced(by: timeout))
        if timedOut {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
        // The output ends when every holder of the pipe is gone; a child's own children may keep it open a while.
        _ = collected.done.wait(timeout: .now() + 2)
        close(readEnd)
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        var text = String(decoding: collected.data, as: UTF8.self)
        if timedOut { text += "\n(timed out after \(timeout))" }
        return Result(status: timedOut ? 124 : code, output: text)
    }

    /// Waits for our child `pid` to end, at most until `deadline`: true when it ended (and was reaped into `status`).
    /// One poll(2) on a pidfd; only a kernel without pidfd_open (before 5.3) falls back to checking every 5 ms.
    private static func reap(_ pid: pid_t, status: inout Int32, until deadline: ContinuousClock.Instant) -> Bool {
        let pidfd = cspawn_pidfd_open(pid)
        guard pidfd >= 0 else {
            while waitpid(pid, &status, WNOHANG) == 0 {
                if ContinuousClock.now >= deadline { return false }
                usleep(5_000)
            }
            return true
        }
        defer { close(pidfd) }
        while true {
            let left = ContinuousClock.now.duration(to: deadline).components
            let milliseconds = max(0, left.seconds * 1000 + left.attoseconds / 1_000_000_000_000_000 + 1)
            var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(clamping: milliseconds))
            if ready < 0, errno == EINTR { continue }
            // Readable: it ended. A poll that timed out a little early (rounding) waits again.
            if ready != 0 || ContinuousClock.now >= deadline { break }
        }
        return waitpid(pid, &status, WNOHANG) == pid
    }

    private final class CollectedOutput: @unchecked Sendable {
        // Safety: written by the reader thread before `done` is signalled, read after waiting on it.
        var data = Data()
        let done = DispatchSemaphore(value: 0)
    }

    /// Children start with no blocked signals and default dispositions (we may ignore SIGPIPE ourselves).
    private static func defaultSignalAttributes() -> posix_spawnattr_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        return attributes
    }

    /// Starts `arguments` as a daemon in a new session with stdin from /dev/null and stdout+stderr appended to
    /// `log`; returns its pid (the daemon itself: nsenter, ip netns exec, unshare and setsid all exec in place).
    public static func spawnDaemon(_ arguments: [String], log: String) throws(SpawnError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        // No descriptor of ours leaks into a daemon (it would keep pipes open, e.g. a caller's output pipe).
        cspawn_addclosefrom(&actions, 3)

        var attributes = Self.defaultSignalAttributes()
        defer { posix_spawnattr_destroy(&attributes) }
        // The daemon gets its own session.
        var flags: Int16 = 0
        posix_spawnattr_getflags(&attributes, &flags)
        posix_spawnattr_setflags(&attributes, flags | cspawn_setsid_flag())

        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let status = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw SpawnError(command: arguments, reason: String(cString: strerror(status)))
        }
        return pid
    }

    /// True while `pid` runs (a zombie counts as gone). Reaps it when it is our child.
    public static func isAlive(_ pid: pid_t) -> Bool {
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
    public static func namespaceInode(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// Every live process whose network namespace is the named one.
    public static func processes(inNetworkNamespace namespace: String) -> [pid_t] {
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
    public static func killAll(inNetworkNamespace namespace: String) -> Int {
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
    public static func tail(_ path: String, lines: Int = 15) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no log at \(path))" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

public struct SpawnError: Error, Hashable, Sendable, CustomStringConvertible {
    public var command: [String]
    public var reason: String
    public var description: String { "cannot start \(self.command.first ?? "?"): \(self.reason)" }
}

extension Subprocess {
    /// `run` on a thread of its own, for async callers: the cooperative pool never blocks on a child.
    public static func run(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(30),
                           environment: [String: String]? = nil) async -> Result {
        await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: Self.run(arguments, input: input, timeout: timeout, environment: environment))
            }.start()
        }
    }
}

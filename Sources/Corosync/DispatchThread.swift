import CCorosync
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a Corosync library's blocking dispatch on a dedicated thread, away from the cooperative pool:
/// polls the library's fd together with a wake-up pipe, calls `dispatch` (CS_DISPATCH_ALL) when the fd is
/// readable, and calls `finish` exactly once, on that thread, when stopped or when the connection ends.
/// `finish` is where the handle is finalized, so no dispatch ever races a finalize.
final class DispatchThread: @unchecked Sendable {
    // Safety: `wakeWrite` is written once in init; `done` is a semaphore; `thread` is only read.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stopped = false
    private var thread: Thread?

    init(
        name: String,
        fd: Int32,
        dispatch: @escaping @Sendable () -> cs_error_t,
        finish: @escaping @Sendable (CorosyncError?) -> Void
    ) {
        var fds: [Int32] = [0, 0]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        // Not inherited by processes the caller spawns.
        for fd in fds where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        self.wakeRead = fds[0]
        self.wakeWrite = fds[1]
        let wakeRead = self.wakeRead
        let done = self.done
        let thread = Thread {
            let failure = Self.run(fd: fd, wake: wakeRead, dispatch: dispatch)
            finish(failure)
            done.signal()
        }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    /// The poll loop. Returns nil when woken to stop, an error when the connection ended.
    private static func run(fd: Int32, wake: Int32, dispatch: () -> cs_error_t) -> CorosyncError? {
        var pollfds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            pollfds[0].revents = 0
            pollfds[1].revents = 0
            let ready = poll(&pollfds, nfds_t(pollfds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return CorosyncError(code: .failed, operation: "poll", status: 0, message: "poll failed: \(String(cString: strerror(errno)))")
            }
            if pollfds[1].revents != 0 { return nil }
            if pollfds[0].revents & Int16(POLLIN) != 0 {
                let status = dispatch()
                if status != CS_OK && status != CS_ERR_TRY_AGAIN {
                    return CorosyncError.call("dispatch", status)
                }
            } else if pollfds[0].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
                return CorosyncError(code: .connectionLost, operation: "poll", status: 0, message: "the connection to corosync was lost")
            }
        }
    }

    /// Stops the loop and waits until `finish` ran. Idempotent. Must not be called from the dispatch thread.
    func stop() {
        self.lock.lock()
        let first = !self.stopped
        self.stopped = true
        self.lock.unlock()
        guard first else { return }
        var byte: UInt8 = 1
        _ = write(self.wakeWrite, &byte, 1)
        // From a callback on the dispatch thread: the loop ends when the callback returns; waiting would deadlock.
        if self.isCurrent { return }
        self.done.wait()
        close(self.wakeRead)
        close(self.wakeWrite)
    }

    /// True when called on the dispatch thread itself (from inside a callback).
    var isCurrent: Bool { Thread.current === self.thread }
}

import CCorosync

#if canImport(Glibc)
import Glibc
#endif

/// A failed call into a Corosync client library, with the call and Corosync's status code.
public struct CorosyncError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        /// No corosync daemon answers on this host (its IPC socket is absent).
        case notRunning
        /// corosync.conf is missing, so corosync cannot run here.
        case notConfigured
        /// Corosync refused us (not root, and no uidgid entry for our user).
        case accessDenied
        /// Corosync is busy (flow control, or a membership change in progress) for longer than we waited.
        case busy
        /// The connection to corosync ended (the daemon stopped or was killed).
        case connectionLost
        /// A bad argument (group name too long, message too big).
        case invalidArgument
        /// Anything else; `status` says what.
        case failed
    }

    public var code: Code
    /// The library call that failed, e.g. `cpg_initialize`.
    public var operation: String
    /// Corosync's `cs_error_t` value (0 when the failure was not a library status).
    public var status: UInt32
    public var message: String

    public init(code: Code, operation: String, status: UInt32, message: String) {
        self.code = code
        self.operation = operation
        self.status = status
        self.message = message
    }

    public var description: String { "\(self.message) (\(self.operation): \(Self.statusName(self.status)))" }

    /// The error for a failed connect (`*_initialize`): tells "not configured" from "not running".
    static func connect(_ operation: String, _ status: cs_error_t, configPath: String = "/etc/corosync/corosync.conf") -> CorosyncError {
        switch status {
        case CS_ERR_LIBRARY, CS_ERR_BAD_HANDLE, CS_ERR_NOT_EXIST, CS_ERR_NO_RESOURCES:
            if access(configPath, F_OK) != 0 {
                return CorosyncError(
                    code: .notConfigured, operation: operation, status: status.rawValue,
                    message: "corosync is not configured on this host: \(configPath) does not exist")
            }
            return CorosyncError(
                code: .notRunning, operation: operation, status: status.rawValue,
                message: "corosync is not running on this host")
        case CS_ERR_ACCESS, CS_ERR_SECURITY:
            return CorosyncError(
                code: .accessDenied, operation: operation, status: status.rawValue,
                message: "corosync refused the connection: run as root or add a uidgid entry for this user")
        default:
            return CorosyncError.call(operation, status)
        }
    }

    /// The error for any other failed call.
    static func call(_ operation: String, _ status: cs_error_t) -> CorosyncError {
        let code: Code
        let message: String
        switch status {
        case CS_ERR_TRY_AGAIN, CS_ERR_BUSY, CS_ERR_QUEUE_FULL, CS_ERR_TIMEOUT:
            code = .busy
            message = "corosync stayed busy"
        case CS_ERR_LIBRARY, CS_ERR_BAD_HANDLE:
            code = .connectionLost
            message = "the connection to corosync was lost"
        case CS_ERR_ACCESS, CS_ERR_SECURITY:
            code = .accessDenied
            message = "corosync denied access"
        case CS_ERR_INVALID_PARAM, CS_ERR_NAME_TOO_LONG, CS_ERR_TOO_BIG:
            code = .invalidArgument
            message = "corosync rejected an argument"
        default:
            code = .failed
            message = "corosync call failed"
        }
        return CorosyncError(code: code, operation: operation, status: status.rawValue, message: message)
    }

    static func statusName(_ status: UInt32) -> String {
        let names: [UInt32: String] = [
            0: "no status", 1: "CS_OK", 2: "CS_ERR_LIBRARY", 3: "CS_ERR_VERSION", 4: "CS_ERR_INIT",
            5: "CS_ERR_TIMEOUT", 6: "CS_ERR_TRY_AGAIN", 7: "CS_ERR_INVALID_PARAM", 8: "CS_ERR_NO_MEMORY",
            9: "CS_ERR_BAD_HANDLE", 10: "CS_ERR_BUSY", 11: "CS_ERR_ACCESS", 12: "CS_ERR_NOT_EXIST",
            13: "CS_ERR_NAME_TOO_LONG", 14: "CS_ERR_EXIST", 15: "CS_ERR_NO_SPACE", 16: "CS_ERR_INTERRUPT",
            17: "CS_ERR_NAME_NOT_FOUND", 18: "CS_ERR_NO_RESOURCES", 19: "CS_ERR_NOT_SUPPORTED",
            20: "CS_ERR_BAD_OPERATION", 21: "CS_ERR_FAILED_OPERATION", 22: "CS_ERR_MESSAGE_ERROR",
            23: "CS_ERR_QUEUE_FULL", 24: "CS_ERR_QUEUE_NOT_AVAILABLE", 25: "CS_ERR_BAD_FLAGS",
            26: "CS_ERR_TOO_BIG", 27: "CS_ERR_NO_SECTIONS", 28: "CS_ERR_CONTEXT_NOT_FOUND",
            30: "CS_ERR_TOO_MANY_GROUPS", 100: "CS_ERR_SECURITY",
        ]
        return names[status] ?? "cs_error_t \(status)"
    }
}

/// Retries a call while corosync answers "try again" (it does during membership changes), up to `attempts`
/// times 10 ms apart. Blocking: use it only in set-up paths, never on the cooperative pool in a loop.
func retryingTryAgain(attempts: Int = 500, _ call: () -> cs_error_t) -> cs_error_t {
    var status = call()
    var attempt = 1
    while status == CS_ERR_TRY_AGAIN, attempt < attempts {
        usleep(10_000)
        status = call()
        attempt += 1
    }
    return status
}

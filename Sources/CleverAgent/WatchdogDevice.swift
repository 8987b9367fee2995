import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The Linux watchdog device API (Documentation/watchdog/watchdog-api.rst): opening arms it, every write is a
/// keepalive, the timeout is set with WDIOC_SETTIMEOUT, and closing disarms it only after the magic character
/// 'V' was written (else the timer runs on and the host is reset). The lab's stand-in is a FIFO: it takes the
/// writes but no ioctl (ENOTTY), so W then comes from the config alone.
final class WatchdogDevice: @unchecked Sendable {
    // Safety: used only from the petting thread once opened (and from `stop`, after that thread ended).
    struct DeviceError: Error, CustomStringConvertible {
        var description: String
    }

    let path: String
    /// The timeout the device runs with (the driver may round it), in seconds.
    private(set) var timeout: Int
    private var fd: Int32

    // _IOR('W', 5, int), _IOWR('W', 6, int), _IOR('W', 7, int) from <linux/watchdog.h>.
    static let keepAliveRequest: UInt = 0x8004_5705
    static let setTimeoutRequest: UInt = 0xC004_5706
    static let getTimeoutRequest: UInt = 0x8004_5707

    /// Opens (arms) the device and sets its timeout to `seconds`.
    init(path: String, timeout seconds: Int) throws(DeviceError) {
        self.path = path
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw DeviceError(description: "watchdog \(path): \(String(cString: strerror(errno))); load a driver "
                              + "(modprobe softdog) or set `watchdog: none` for this node to run without fencing")
        }
        let isFIFO = (status.st_mode & S_IFMT) == S_IFIFO
        // A FIFO without its reader would block the open; the lab's watcher is its reader.
        let fd = open(path, O_WRONLY | O_CLOEXEC | (isFIFO ? O_NONBLOCK : 0))
        guard fd >= 0 else {
            throw DeviceError(description: "watchdog \(path): cannot open: \(String(cString: strerror(errno)))"
                              + (errno == ENXIO ? " (nothing watches it)" : errno == EBUSY ? " (another process holds it)" : ""))
        }
        self.fd = fd
        self.timeout = seconds
        var wanted = Int32(seconds)
        if withUnsafeMutablePointer(to: &wanted, { ioctl(fd, Self.setTimeoutRequest, $0) }) == 0 {
            var actual: Int32 = 0
            if withUnsafeMutablePointer(to: &actual, { ioctl(fd, Self.getTimeoutRequest, $0) }) == 0, actual > 0 {
                self.timeout = Int(actual)
            }
        } else if errno != ENOTTY && errno != EINVAL {
            let reason = String(cString: strerror(errno))
            self.magicClose()
            throw DeviceError(description: "watchdog \(path): cannot set the timeout to \(seconds) s: \(reason)")
        } else if errno == EINVAL {
            // The driver refuses that timeout; running with another W than the survivors assume is not safe.
            self.magicClose()
            throw DeviceError(description: "watchdog \(path): the driver refuses a timeout of \(seconds) s; set watchdog-timeout to one it supports")
        }
        // ENOTTY: not a watchdog driver (the lab's FIFO); its watcher uses the configured W.
        if self.timeout > seconds {
            self.magicClose()
            throw DeviceError(description: "watchdog \(path): the driver set \(self.timeout) s, longer than watchdog-timeout \(seconds) s")
        }
    }

    /// One keepalive. Returns the error text when the write failed (the device is gone or its watcher is stuck).
    func pet() -> String? {
        var byte: UInt8 = 0x2E  // any byte but 'V' is a keepalive
        let written = write(self.fd, &byte, 1)
        return written == 1 ? nil : "watchdog \(self.path): keepalive failed: \(String(cString: strerror(errno)))"
    }

    /// Disarms: writes the magic 'V', then closes. Only on a clean stop with nothing running.
    func magicClose() {
        guard self.fd >= 0 else { return }
        var magic: UInt8 = 0x56
        _ = write(self.fd, &magic, 1)
        close(self.fd)
        self.fd = -1
    }

    /// Closes without the magic character: the timer runs on and resets the host (what a crash does).
    func abandon() {
        guard self.fd >= 0 else { return }
        close(self.fd)
        self.fd = -1
    }
}

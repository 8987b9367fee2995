import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Whether KVM really runs guests on this host. `/dev/kvm` existing is not enough (nested or broken set-ups accept
/// the VM and then never run a Linux kernel), so the probe boots a Linux kernel under KVM and waits for its first
/// console line. Run it once at agent start-up and pass the answer in `VMAgent.Settings.accelerator`.
public enum AcceleratorProbe {
    public struct Result: Hashable, Sendable {
        public var accelerator: Accelerator
        public var reason: String
    }

    /// Boots `kernel` (any x86-64 Linux kernel with a serial console, e.g. a VM's own `vmlinuz` or the host's) with
    /// accel=kvm for at most `timeout`; `.kvm` when "Linux version" appears on ttyS0, `.tcg` otherwise.
    public static func run(kernel: String, timeout: Duration = .seconds(10),
                           qemuExecutable: String = "qemu-system-x86_64") async -> Result {
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { return Result(accelerator: .tcg, reason: "no usable /dev/kvm") }
        guard FileManager.default.fileExists(atPath: kernel) else {
            return Result(accelerator: .tcg, reason: "probe kernel \(kernel) does not exist")
        }
        let directory = NSTemporaryDirectory() + "clevervm-kvm-probe-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            return Result(accelerator: .tcg, reason: "cannot create \(directory): \(error)")
        }
        let console = "\(directory)/console.log"
        let arguments = [
            qemuExecutable, "-machine", "q35,accel=kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-serial", "file:\(console)", "-kernel", kernel,
            "-append", "console=ttyS0 panic=-1 earlyprintk=ttyS0",
        ]
        let pid: pid_t
        do {
            pid = try Subprocess.spawnDaemon(arguments, log: "\(directory)/qemu.log")
        } catch {
            return Result(accelerator: .tcg, reason: error.description)
        }
        defer {
            kill(pid, SIGKILL)
            while Subprocess.isAlive(pid) { usleep(5_000) }
        }
        let started = ContinuousClock.now
        while ContinuousClock.now - started < timeout {
            if let text = try? String(decoding: Data(contentsOf: URL(fileURLWithPath: console)), as: UTF8.self),
                text.contains("Linux version")
            {
                return Result(accelerator: .kvm, reason: "a Linux kernel printed to its console under KVM after \(ContinuousClock.now - started)")
            }
            guard Subprocess.isAlive(pid) else {
                return Result(accelerator: .tcg, reason: "QEMU with KVM exited: \(Subprocess.tail("\(directory)/qemu.log", lines: 3))")
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return Result(accelerator: .tcg, reason: "no console output from a Linux kernel under KVM within \(timeout)")
    }
}

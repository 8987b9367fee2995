import CleverCluster
import CleverModel
import Corosync
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The shell around `WatchdogCore`: a dedicated thread (not a task: it must keep its pace when the agent's actor
/// or the cooperative pool is stuck, and stop when the agent loop is) that pets the device every
/// `FencingTiming.petInterval` when the core says so, and a second thread asking Corosync a cheap question
/// (cmap's local node id) so that a frozen Corosync shows as silence. The agent feeds beats, quorum and what
/// runs here.
final class WatchdogPetter: @unchecked Sendable {
    // Safety: `core`, `lastReason` and `stopping` are guarded by `lock`; `device` is used by the petting thread and,
    // after it ended, by `stop`.
    private let lock = NSLock()
    private var core: WatchdogCore
    private var lastReason: String?
    private var stopping = false
    private var finished = false
    private let device: WatchdogDevice
    private let log: @Sendable (String) -> Void
    private let petThreadDone = DispatchSemaphore(value: 0)

    /// Monotonic seconds (CLOCK_MONOTONIC): what every decision here is stamped with.
    static func monotonicNow() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Timestamp(seconds: Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9)
    }

    /// Opens the device (arming it) and starts petting as the core allows.
    init(path: String, timing: FencingTiming, node: NodeConfig, log: @escaping @Sendable (String) -> Void) throws(WatchdogDevice.DeviceError) {
        let seconds = Int(timing.watchdogTimeout(of: node).value)
        self.device = try WatchdogDevice(path: path, timeout: seconds)
        self.core = WatchdogCore(livenessBound: timing.livenessBound)
        self.log = log
        log("watchdog \(path) armed, timeout \(self.device.timeout) s; petted while this host is quorate (or runs nothing), "
            + "its agent loop beats and corosync answers within \(timing.livenessBound)")
        let petter = Thread { [self] in self.petLoop() }
        petter.name = "watchdog-pet"
        petter.start()
        let prober = Thread { [self] in self.probeLoop() }
        prober.name = "watchdog-corosync-probe"
        prober.start()
    }

    private func update(_ change: (inout WatchdogCore) -> Void) {
        self.lock.lock()
        change(&self.core)
        self.lock.unlock()
    }

    func agentBeat() { let now = Self.monotonicNow(); self.update { $0.agentBeat(at: now) } }
    func quorumChanged(_ quorate: Bool) { self.update { $0.quorumChanged(quorate) } }
    func localResourcesChanged(runsSomething: Bool) { self.update { $0.localResourcesChanged(runsSomething: runsSomething) } }

    private func petLoop() {
        let interval = useconds_t(FencingTiming.petInterval.value * 1_000_000)
        while true {
            self.lock.lock()
            let stop = self.stopping
            let directive = self.core.decide(now: Self.monotonicNow())
            var changed: String?
            switch directive {
            case .pet:
                if self.lastReason != nil { changed = "watchdog: petting again" }
                self.lastReason = nil
            case .withhold(let reason):
                // Log the condition, not every tick.
                if self.lastReason.map({ $0.prefix(20) != reason.prefix(20) }) ?? true {
                    changed = "watchdog: not petting (\(reason)); this host is reset \(self.device.timeout) s after the last pet unless that changes"
                }
                self.lastReason = reason
            }
            self.lock.unlock()
            if stop { break }
            if let changed { self.log(changed) }
            if directive == .pet, let failure = self.device.pet() { self.log(failure) }
            usleep(interval)
        }
        self.petThreadDone.signal()
    }

    private func probeLoop() {
        var map: ClusterMap?
        let interval = useconds_t(FencingTiming.petInterval.value * 1_000_000)
        while true {
            self.lock.lock()
            let stop = self.stopping
            self.lock.unlock()
            if stop { return }
            do {
                if map == nil { map = try ClusterMap() }
                // Blocks while corosync is stopped (SIGSTOP): then no answer is recorded and the petting stops.
                _ = try map!.localNodeID()
                let now = Self.monotonicNow()
                self.update { $0.corosyncAnswered(at: now) }
            } catch {
                map = nil
            }
            usleep(interval)
        }
    }

    /// Ends the petting. Disarms the watchdog (magic close) only when nothing runs here; otherwise the device is
    /// closed without it and resets the host W after the last pet, as a crash would.
    func stop() {
        self.lock.lock()
        guard !self.finished else {
            self.lock.unlock()
            return
        }
        self.finished = true
        self.stopping = true
        let disarm = self.core.mayDisarm
        self.lock.unlock()
        self.petThreadDone.wait()
        if disarm {
            self.device.magicClose()
            self.log("watchdog \(self.device.path) disarmed (clean stop, nothing running)")
        } else {
            self.device.abandon()
            // sbd's rule: the watchdog is never disarmed while something it guards runs (sbd refuses a manual stop).
            self.log("watchdog \(self.device.path) left armed: resources run here, so this host is reset \(self.device.timeout) s "
                + "after the last pet unless an agent starts again and pets it; to stop the agent without a reset, move "
                + "everything away first (`clevervm migrate`)")
        }
    }
}

extension Replication {
    /// DRBD's dynamic resync-rate controller (drbd_rs_controller plus the c-min-rate throttle), as a value type
    /// with no clock of its own: the shell calls `onStep` every `stepSeconds` with what happened since the last
    /// step and sends as many resync bytes as the decision allows.
    ///
    /// * **Plan ahead / fill target**: the controller wants `fillTarget` bytes in flight (sent, not yet
    ///   acknowledged by the peer). Each step it computes how far off that is, spreads the correction evenly
    ///   over the next `planAhead` seconds of steps (the "plan", a FIFO of per-step corrections), and allows
    ///   what the peer acknowledged in the last step plus this step's share of the correction. So the resync
    ///   keeps the link full but not flooded, and reacts smoothly rather than in bursts.
    /// * **Max rate**: never more than `maxRate` bytes per second.
    /// * **Min rate**: when the application did I/O in the last step and the resync is running faster than
    ///   `minRate`, this step is throttled to `minRate`: the resync yields to the application but never
    ///   stops. `minRate` 0 turns the throttle off.
    /// * `planAhead` 0 turns the controller off: a fixed `fixedRate` (DRBD's `resync-rate`).
    public struct ResyncController: Sendable, Equatable {
        public struct Settings: Sendable, Equatable {
            /// c-plan-ahead, seconds (0: fixed rate).
            public var planAhead: Double
            /// c-fill-target, bytes in flight.
            public var fillTarget: UInt64
            /// c-max-rate, bytes per second.
            public var maxRate: UInt64
            /// c-min-rate, bytes per second (0: never throttled for application I/O).
            public var minRate: UInt64
            /// resync-rate, bytes per second, used when `planAhead` is 0.
            public var fixedRate: UInt64

            public init(planAhead: Double, fillTarget: UInt64, maxRate: UInt64, minRate: UInt64, fixedRate: UInt64) {
                self.planAhead = planAhead
                self.fillTarget = fillTarget
                self.maxRate = maxRate
                self.minRate = minRate
                self.fixedRate = fixedRate
            }
        }

        /// What happened since the previous step, as the shell measured it.
        public struct Observation: Sendable, Equatable {
            /// Resync bytes the peer acknowledged since the last step.
            public var acknowledged: UInt64
            /// Resync bytes sent and not yet acknowledged now.
            public var inFlight: UInt64
            /// Application bytes read or written on this volume since the last step.
            public var applicationIO: UInt64

            public init(acknowledged: UInt64, inFlight: UInt64, applicationIO: UInt64) {
                self.acknowledged = acknowledged
                self.inFlight = inFlight
                self.applicationIO = applicationIO
            }
        }

        public enum Reason: String, Sendable, Equatable {
            /// Fixed rate (`planAhead` 0).
            case fixedRate
            /// The plan-ahead controller's amount, below `maxRate`.
            case plan
            /// Capped at `maxRate`.
            case maxRate
            /// Application I/O was active: held at `minRate`.
            case applicationIO
        }

        public struct Decision: Sendable, Equatable {
            /// Resync bytes the shell may send during this step.
            public var bytes: UInt64
            public var reason: Reason

            public init(bytes: UInt64, reason: Reason) {
                self.bytes = bytes
                self.reason = reason
            }
        }

        /// Application I/O below this per step is noise (metadata, a stray read), as DRBD ignores < 64 sectors.
        public static let applicationIOThreshold: UInt64 = 32 << 10

        public let settings: Settings
        /// Seconds between steps (DRBD: 100 ms).
        public let stepSeconds: Double
        private var plan: [Double]
        private var planHead = 0
        private var planTotal: Double = 0
        private var lastStepAt: Double?
        public private(set) var lastDecision: Decision?

        public init(settings: Settings, stepSeconds: Double = 0.1) {
            precondition(stepSeconds > 0, "resync controller step must be positive, got \(stepSeconds)")
            self.settings = settings
            self.stepSeconds = stepSeconds
            let steps = max(1, Int((settings.planAhead / stepSeconds).rounded()))
            self.plan = Array(repeating: 0, count: steps)
        }

        /// One step at `now` (seconds on any monotonic clock). Returns how many bytes to send until the next.
        /// Rates apply to the time actually elapsed since the previous step (a late step may send more, up to
        /// five steps' worth), so a shell that oversleeps doesn't fall below the configured rates.
        public mutating func onStep(now: Double, _ observed: Observation) -> Decision {
            let elapsed = self.lastStepAt.map { min(max(now - $0, 0), 5 * self.stepSeconds) } ?? self.stepSeconds
            self.lastStepAt = now
            var decision: Decision
            if self.settings.planAhead <= 0 {
                decision = Decision(bytes: UInt64(Double(self.settings.fixedRate) * elapsed), reason: .fixedRate)
            } else {
                decision = self.planned(observed, maxBytes: Double(self.settings.maxRate) * elapsed)
            }
            if self.settings.minRate > 0 && observed.applicationIO >= Self.applicationIOThreshold {
                // DRBD throttles the resync while the application's I/O is active and the resync runs faster
                // than c-min-rate: here it is held at c-min-rate for the step.
                let floor = UInt64(Double(self.settings.minRate) * elapsed)
                if decision.bytes > floor { decision = Decision(bytes: floor, reason: .applicationIO) }
            }
            self.lastDecision = decision
            return decision
        }

        /// drbd_rs_controller with a fill target.
        private mutating func planned(_ observed: Observation, maxBytes: Double) -> Decision {
            let steps = Double(self.plan.count)
            let want: Double
            if observed.inFlight == 0 && observed.acknowledged == 0 && self.planTotal <= 0 {
                // Starting (or everything drained): plan to fill the link at full rate.
                want = Double(self.settings.maxRate) * self.stepSeconds * steps
            } else {
                want = Double(self.settings.fillTarget)
            }
            let correction = want - Double(observed.inFlight) - self.planTotal
            let perStep = correction / steps
            for index in self.plan.indices { self.plan[index] += perStep }
            self.planTotal += perStep * steps
            let current = self.plan[self.planHead]
            self.plan[self.planHead] = 0
            self.planHead = (self.planHead + 1) % self.plan.count
            self.planTotal -= current
            let request = max(0, Double(observed.acknowledged) + current)
            if request >= maxBytes { return Decision(bytes: UInt64(maxBytes), reason: .maxRate) }
            return Decision(bytes: UInt64(request), reason: .plan)
        }
    }
}

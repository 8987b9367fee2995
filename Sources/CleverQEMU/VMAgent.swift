import CleverCluster
import CleverExecutor
import CleverModel
import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The resource agent for `kind: vm`: one QEMU process per VM, detached from the agent (its own session, a pid
/// file and a QMP socket in the run directory), so an agent restart re-attaches and never starts a second QEMU.
public struct VMAgent: ResourceAgent {
    public struct Settings: Sendable {
        public var accelerator: Accelerator
        /// The unix socket of a volume's NBD export on this host.
        public var volumeSocket: @Sendable (String) -> String
        /// Where hibernate images live: `<stateDirectory>/<vm>.vmstate`.
        public var stateDirectory: String
        /// This host's address that incoming live migrations listen on.
        public var migrationAddress: String
        /// QEMU's downtime limit for live migration, milliseconds.
        public var downtimeLimitMs: Int
        public var qemuExecutable: String
        /// The VM's NIC (none when nil): a tap that QEMU creates, then attached to a bridge.
        public var network: NetworkAttachment?
        /// OVMF (Debian `ovmf`) for `firmware: uefi`: the code flash and the variables template.
        public var ovmfCode: String = "/usr/share/OVMF/OVMF_CODE_4M.fd"
        public var ovmfVarsTemplate: String = "/usr/share/OVMF/OVMF_VARS_4M.fd"
        /// The cluster key live migrations derive their TLS pre-shared key from (`MigrationTLS`).
        public var migrationKeyFile: String = MigrationTLS.defaultKeyFile

        public init(accelerator: Accelerator = .tcg,
                    volumeSocket: @escaping @Sendable (String) -> String = { "/run/clevervm/volumes/\($0).sock" },
                    stateDirectory: String = "/var/lib/clevervm/vm-state", migrationAddress: String = "127.0.0.1",
                    downtimeLimitMs: Int = 300, qemuExecutable: String = "qemu-system-x86_64",
                    network: NetworkAttachment? = nil) {
            self.network = network
            self.accelerator = accelerator
            self.volumeSocket = volumeSocket
            self.stateDirectory = stateDirectory
            self.migrationAddress = migrationAddress
            self.downtimeLimitMs = downtimeLimitMs
            self.qemuExecutable = qemuExecutable
        }
    }

    /// One NIC per VM: QEMU creates the tap `tapName(vm)`; the agent moves it into `namespace` (when set; QEMU's
    /// file descriptor keeps working) and enslaves it to `bridge` there.
    public struct NetworkAttachment: Sendable {
        public var bridge: String
        public var namespace: String?
        public var tapName: @Sendable (String) -> String

        public init(bridge: String, namespace: String? = nil, tapName: @escaping @Sendable (String) -> String) {
            self.bridge = bridge
            self.namespace = namespace
            self.tapName = tapName
        }
    }

    /// Runs `migrate_from` for this VM on the target host (`context.migrationTarget`) and returns its outcome; the
    /// outcome's output is the target's `VMReport` with the `incoming` URI. The agent daemon implements it by
    /// sending the request to the target's executor; tests call a second VMAgent directly.
    public typealias PrepareTarget = @Sendable (ActionContext) async -> AgentOutcome

    public let settings: Settings
    /// QEMU's max-bandwidth for migrations (bytes/s; its default of 128 MiB/s would make a 256 MiB guest take 2 s).
    static let unlimitedBandwidth = 100 << 30
    public let prepareTarget: PrepareTarget?

    public init(settings: Settings = Settings(), prepareTarget: PrepareTarget? = nil) {
        self.settings = settings
        self.prepareTarget = prepareTarget
    }

    // MARK: - Files of one VM on this host

    public struct Paths: Sendable {
        public var pidFile: String
        public var qmpSocket: String
        public var consoleLog: String
        public var qemuLog: String
        public var stateFile: String
        /// The serial console's socket (one client at a time; `ConsoleSession` attaches to it).
        public var consoleSocket: String
        /// The qemu-guest-agent channel (`guest-agent: true`).
        public var guestAgentSocket: String
        /// The VNC display (`display: vnc`), root-only.
        public var vncSocket: String
        /// The live migration's TLS credentials (`keys.psk`, `MigrationTLS`), root-only.
        public var migrationTLSDirectory: String

        public init(vm: String, runDirectory: String, stateDirectory: String) {
            self.migrationTLSDirectory = "\(runDirectory)/\(vm).migration-tls"
            self.consoleSocket = "\(runDirectory)/\(vm).console"
            self.guestAgentSocket = "\(runDirectory)/\(vm).qga"
            self.vncSocket = "\(runDirectory)/\(vm).vnc"
            self.pidFile = "\(runDirectory)/\(vm).qemu.pid"
            self.qmpSocket = "\(runDirectory)/\(vm).qmp"
            self.consoleLog = "\(runDirectory)/\(vm).console.log"
            self.qemuLog = "\(runDirectory)/\(vm).qemu.log"
            self.stateFile = "\(stateDirectory)/\(vm).vmstate"
        }
    }

    public func paths(_ context: ActionContext) -> Paths {
        Paths(vm: context.resource.id, runDirectory: context.runDirectory, stateDirectory: self.settings.stateDirectory)
    }

    // MARK: - Actions

    public func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome {
        guard case .vm(let spec) = context.resource.kind else {
            return AgentOutcome(OCFExit.notConfigured, "\(context.resource.id) is not a vm resource")
        }
        let started = ContinuousClock.now
        var outcome: AgentOutcome
        switch action {
        case .start: outcome = await self.start(spec, context)
        case .stop: outcome = await self.stop(spec, context)
        case .monitor: outcome = await self.monitor(context)
        case .migrateTo: outcome = await self.migrateTo(spec, context)
        case .migrateFrom: outcome = await self.migrateFrom(spec, context)
        case .promote, .demote: return AgentOutcome(OCFExit.unimplemented, "a vm has no promoted role")
        }
        if outcome.report != nil, outcome.report?.elapsedMs == nil {
            outcome.report?.elapsedMs = milliseconds(ContinuousClock.now - started)
        }
        return outcome
    }

    func start(_ spec: VMSpec, _ context: ActionContext) async -> AgentOutcome {
        let paths = self.paths(context)
        if let pid = self.runningQEMU(paths) {
            switch await self.discardIfGuestless(pid, paths) {
            case .holdsNoGuest: break
            case .survived(let message): return AgentOutcome(OCFExit.generic, "\(context.resource.id): \(message)")
            case .mayHoldTheGuest:
                var report = VMReport(action: .start, mode: .attached)
                report.pid = Int(pid)
                return AgentOutcome(OCFExit.success, report: report)
            }
        }
        let image: HibernateImage
        switch self.image(spec, context) {
        case .success(let found): image = found
        case .failure(let outcome): return outcome
        }
        let resume: Bool
        do {
            resume = try await image.present() != nil
        } catch {
            return AgentOutcome(OCFExit.generic, "\(context.resource.id): \(error.description)")
        }
        let launched = await self.launch(spec, context, incoming: resume ? image.incoming : nil)
        guard case .success(let pid, let qmp) = launched else {
            if case .failure(let outcome) = launched { return outcome }
            return AgentOutcome(OCFExit.generic)
        }
        defer { Task { await qmp.close() } }
        var report = VMReport(action: .start, mode: resume ? .resume : .cold)
        report.pid = Int(pid)
        do {
            if resume {
                let deadline = ContinuousClock.now + Duration(context.timeout)
                var status = try await self.status(qmp)
                while status == .inmigrate, ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(10))
                    status = try await self.status(qmp)
                }
                if status == .paused || status == .prelaunch { try await qmp.execute("cont") }
            }
            let status = try await self.status(qmp)
            report.status = status
            guard status == .running else {
                return AgentOutcome(OCFExit.generic, "\(context.resource.id): QEMU is \(status) after start; \(Subprocess.tail(paths.qemuLog, lines: 5))")
            }
            // The guest's file systems were frozen just before its RAM was saved. A guest left frozen blocks every
            // write: say so (its agent may thaw it on a retry: `guest-fsfreeze-thaw`).
            if resume, spec.guestAgent == true {
                let agent = GuestAgent(socket: paths.guestAgentSocket)
                await agent.thaw()
                if await agent.freezeStatus() == "frozen" { report.message = "the guest agent did not thaw the guest's file systems" }
            }
            // A resumed image is used up: a later crash must cold boot from the disk, never rewind to old RAM.
            if resume {
                do {
                    try await image.discard()
                } catch {
                    report.message = "resumed, but the image is still there: \(error.description)"
                }
            }
            return AgentOutcome(OCFExit.success, report: report)
        } catch {
            return AgentOutcome(OCFExit.generic, "\(context.resource.id): \(error.description); \(Subprocess.tail(paths.qemuLog, lines: 5))")
        }
    }

    func stop(_ spec: VMSpec, _ context: ActionContext) async -> AgentOutcome {
        let paths = self.paths(context)
        guard let pid = self.runningQEMU(paths) else {
            unlink(paths.pidFile)
            return AgentOutcome(OCFExit.success, report: VMReport(action: .stop, mode: .absent))
        }
        if context.immediate {
            kill(pid, SIGKILL)
            await self.waitForExit(pid, until: ContinuousClock.now + .seconds(2))
            unlink(paths.pidFile)
            if Subprocess.isAlive(pid) { return AgentOutcome(OCFExit.generic, "QEMU pid \(pid) survived SIGKILL") }
            return AgentOutcome(OCFExit.success, report: VMReport(action: .stop, mode: .killed))
        }
        let deadline = ContinuousClock.now + Duration(context.timeout) - .milliseconds(500)
        // A QEMU that holds no guest of its own is ended, never hibernated: its RAM is not the guest's current state.
        switch await self.discardIfGuestless(pid, paths) {
        case .holdsNoGuest(let status):
            var report = VMReport(action: .stop, mode: .discarded)
            report.status = status
            return AgentOutcome(OCFExit.success, report: report)
        case .survived(let message): return AgentOutcome(OCFExit.generic, "\(context.resource.id): \(message)")
        case .mayHoldTheGuest: break
        }
        switch spec.stopMode {
        case .hibernate:
            let image: HibernateImage
            switch self.image(spec, context) {
            case .success(let found): image = found
            case .failure(let outcome): return outcome
            }
            do {
                var report = try await self.hibernate(spec, paths, image: image, deadline: deadline)
                await self.waitForExit(pid, until: deadline)
                unlink(paths.pidFile)
                report.pid = Int(pid)
                return AgentOutcome(OCFExit.success, report: report)
            } catch {
                if case .file(let path) = image { unlink(path + ".partial") }
                // A guest whose disk is gone here (its volume process died or is no longer primary) cannot be saved
                // consistently and cannot go on: end it, so the cluster can recover the volume and the VM.
                if let lost = spec.volumes.first(where: { !Self.answers(self.settings.volumeSocket($0)) }) {
                    kill(pid, SIGKILL)
                    await self.waitForExit(pid, until: ContinuousClock.now + .seconds(2))
                    unlink(paths.pidFile)
                    var report = VMReport(action: .stop, mode: .killed)
                    report.message = "hibernate failed (\(error)) and disk \(lost) is gone here: QEMU killed"
                    return AgentOutcome(OCFExit.success, report: report)
                }
                // Otherwise the image is incomplete: the VM keeps running here and the stop fails (the cluster leaves it
                // alone until `cleanup`), so nothing starts it elsewhere from a partial image.
                return AgentOutcome(OCFExit.generic, "\(context.resource.id): hibernate failed: \(error)")
            }
        case .shutdown:
            // The guest agent shuts down even a guest that ignores ACPI (no acpid, a locked screen on Windows).
            var byAgent = false
            if spec.guestAgent == true { byAgent = await GuestAgent(socket: paths.guestAgentSocket).shutdown() }
            if !byAgent, let qmp = try? await QMPClient.connect(paths.qmpSocket, timeout: .seconds(2)) {
                _ = try? await qmp.execute("system_powerdown")
                await qmp.close()
            }
            await self.waitForExit(pid, until: deadline)
            var report = VMReport(action: .stop, mode: .shutdown)
            if byAgent { report.message = "shut down by the guest agent" }
            if Subprocess.isAlive(pid) {
                kill(pid, SIGKILL)
                await self.waitForExit(pid, until: ContinuousClock.now + .seconds(2))
                report.mode = .killed
            }
            unlink(paths.pidFile)
            if Subprocess.isAlive(pid) { return AgentOutcome(OCFExit.generic, "QEMU pid \(pid) survived SIGKILL") }
            return AgentOutcome(OCFExit.success, report: report)
        }
    }

    /// Whether a unix socket accepts a connection (a volume's NBD export is served).
    static func answers(_ socket: String) -> Bool {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard let address = try? UnixSocketAddress(path: socket) else { return false }
        return address.connect(fd) == 0
    }

    /// Saves RAM and device state into the hibernate image with QEMU's migration stream, commits the image and
    /// quits QEMU. On any failure the guest runs on here.
    func hibernate(_ spec: VMSpec, _ paths: Paths, image: HibernateImage, deadline: ContinuousClock.Instant) async throws -> VMReport {
        try image.prepare()
        let qmp = try await QMPClient.connect(paths.qmpSocket)
        defer { Task { await qmp.close() } }
        // A VM that arrived by live migration still has the TLS credentials set; a save to a local image is not a
        // network endpoint ("Expected TLS credentials for a client endpoint"): TLS off for it.
        try await qmp.execute("migrate-set-parameters", [
            "max-bandwidth": .number(Double(VMAgent.unlimitedBandwidth)), "tls-creds": .string(""),
        ])
        // With a guest agent, file systems are frozen first: the disk is then consistent on its own, should the
        // image be lost and the VM cold boot. Thawed after the resume (or here, if saving fails).
        let agent = GuestAgent(socket: paths.guestAgentSocket)
        var frozen: Int?
        if spec.guestAgent == true { frozen = await agent.freeze() }
        // Stopped first: the image is written in one pass and the guest cannot dirty pages meanwhile.
        do {
            try await qmp.execute("stop")
        } catch {
            if frozen != nil { await agent.thaw() }
            throw error
        }
        let result: JSONValue
        let bytes: Int?
        do {
            try await qmp.execute("migrate", ["uri": .string(image.saveURI)])
            result = try await self.waitForMigration(qmp, until: deadline)
            guard MigrationStatus(result) == .completed else {
                throw QMPClient.Failure(socket: paths.qmpSocket, command: "migrate", reason: "migration ended \(result)")
            }
            bytes = image.writtenBytes(reported: result["ram"]?["transferred"]?.number.map { Int($0) })
            try await image.commit(bytes: bytes ?? 1)
        } catch {
            _ = try? await qmp.execute("cont")
            if frozen != nil { await agent.thaw() }
            throw error
        }
        _ = try? await qmp.execute("quit")
        var report = VMReport(action: .stop, mode: .hibernate)
        if let frozen { report.message = "\(frozen) file systems frozen by the guest agent" }
        report.transferredBytes = bytes
        report.totalMs = result["total-time"]?.number.map { Int($0) }
        return report
    }

    enum ImageChoice {
        case success(HibernateImage)
        case failure(AgentOutcome)
    }

    /// The VM's `stateVolume` when it has one (it must not also be a guest disk), else a file in `stateDirectory`.
    func image(_ spec: VMSpec, _ context: ActionContext) -> ImageChoice {
        guard let volume = spec.stateVolume else {
            return .success(.file(path: self.paths(context).stateFile))
        }
        guard !spec.volumes.contains(volume) else {
            return .failure(AgentOutcome(OCFExit.notConfigured,
                "\(context.resource.id): state volume \(volume) is also a guest disk; hibernating into it would overwrite the guest's data"))
        }
        return .success(.volume(socket: self.settings.volumeSocket(volume), export: volume, vm: context.resource.id))
    }

    /// QEMU's run state over QMP, nil when it does not answer.
    func qemuStatus(_ paths: Paths) async -> RunState? {
        guard let qmp = try? await QMPClient.connect(paths.qmpSocket, timeout: .seconds(2)) else { return nil }
        defer { Task { await qmp.close() } }
        return try? await self.status(qmp)
    }

    enum LeftoverQEMU {
        /// It was in this state and is gone now.
        case holdsNoGuest(RunState)
        case mayHoldTheGuest
        case survived(String)
    }

    /// A QEMU found where a VM is to start or arrive. One that holds no guest of its own is ended: still waiting
    /// for an incoming state (the move that started it was interrupted, the guest is still on its source), or the
    /// source a completed move left behind (its agent died before quitting it; the guest runs on the other host).
    /// Any other QEMU may hold the guest and is left alone.
    func discardIfGuestless(_ pid: pid_t, _ paths: Paths, status known: RunState? = nil) async -> LeftoverQEMU {
        let status = if let known { known } else { await self.qemuStatus(paths) }
        guard let status, status.holdsNoGuest else { return .mayHoldTheGuest }
        kill(pid, SIGKILL)
        await self.waitForExit(pid, until: ContinuousClock.now + .seconds(2))
        if Subprocess.isAlive(pid) { return .survived("a QEMU left \(status) (pid \(pid)) survived SIGKILL") }
        unlink(paths.pidFile)
        return .holdsNoGuest(status)
    }

    func monitor(_ context: ActionContext) async -> AgentOutcome {
        let paths = self.paths(context)
        guard let pid = self.runningQEMU(paths) else { return .notRunning }
        do {
            let qmp = try await QMPClient.connect(paths.qmpSocket, timeout: .seconds(3))
            defer { Task { await qmp.close() } }
            let status = try await self.status(qmp)
            switch status {
            case .running: return .success
            case .postmigrate:
                // The source of a completed move whose agent died before quitting it (monitors do not run during
                // this agent's own moves): the guest runs on the other host, and this QEMU still holds the disk
                // open, which would keep the volume from being demoted here.
                await qmp.close()
                _ = await self.discardIfGuestless(pid, paths, status: status)
                return AgentOutcome(OCFExit.notRunning, "QEMU was left postmigrate by an interrupted move; ended")
            case .inmigrate, .shutdown: return AgentOutcome(OCFExit.notRunning, "QEMU is \(status)")
            default: return AgentOutcome(OCFExit.generic, "\(context.resource.id): QEMU is \(status)")
            }
        } catch {
            return AgentOutcome(OCFExit.generic, "\(context.resource.id): QEMU runs but \(error.description)")
        }
    }

    /// Source side of a move. Live: the target QEMU listens (migrate_from via `prepareTarget`), this QEMU sends its
    /// state with `migrate`, the target runs on, this QEMU quits. Hibernate: stop (hibernate) here, then start there.
    func migrateTo(_ spec: VMSpec, _ context: ActionContext) async -> AgentOutcome {
        guard let target = context.migrationTarget else {
            return AgentOutcome(OCFExit.invalidArgument, "\(context.resource.id): migrate_to without a target host")
        }
        guard let prepareTarget = self.prepareTarget else {
            return AgentOutcome(OCFExit.unimplemented, "\(context.resource.id): this agent cannot reach other hosts")
        }
        let paths = self.paths(context)
        guard let pid = self.runningQEMU(paths) else {
            return AgentOutcome(OCFExit.notRunning, "\(context.resource.id) does not run here")
        }
        let deadline = ContinuousClock.now + Duration(context.timeout) - .milliseconds(500)
        if spec.migration == .hibernate {
            let stopped = await self.stop(spec, context)
            guard stopped.exitCode == OCFExit.success else { return stopped }
            let resumed = await prepareTarget(context)
            guard resumed.exitCode == OCFExit.success else { return resumed }
            var report = VMReport(action: .migrateTo, mode: .hibernate)
            report.target = target
            report.transferredBytes = stopped.report?.transferredBytes
            return AgentOutcome(OCFExit.success, report: report)
        }
        let prepared = await prepareTarget(context)
        guard prepared.exitCode == OCFExit.success, let incoming = prepared.report?.incoming else {
            return AgentOutcome(OCFExit.generic, "\(context.resource.id): target \(target) not ready: \(prepared.wireOutput ?? "exit \(prepared.exitCode)")")
        }
        do {
            try MigrationTLS.writeCredentials(directory: paths.migrationTLSDirectory, keyFile: self.settings.migrationKeyFile,
                                              vm: context.resource.id)
        } catch {
            return AgentOutcome(OCFExit.generic, "\(context.resource.id): live migration to \(target) refused: \(error)")
        }
        do {
            let qmp = try await QMPClient.connect(paths.qmpSocket)
            defer { Task { await qmp.close() } }
            // TLS with the cluster's pre-shared key: the target accepts only a source that holds it, and the stream
            // (guest RAM) is encrypted. A failed earlier move may have left the object: replaced.
            _ = try? await qmp.execute("object-del", ["id": .string(MigrationTLS.objectID)])
            try await qmp.execute("object-add", MigrationTLS.clientObject(directory: paths.migrationTLSDirectory))
            try await qmp.execute("migrate-set-parameters", [
                "downtime-limit": .number(Double(self.settings.downtimeLimitMs)),
                "max-bandwidth": .number(Double(VMAgent.unlimitedBandwidth)),
                "tls-creds": .string(MigrationTLS.objectID),
            ])
            try await qmp.execute("migrate", ["uri": .string(incoming)])
            let result = try await self.waitForMigration(qmp, until: deadline)
            var report = VMReport(action: .migrateTo, mode: .live)
            report.target = target
            report.migration = MigrationStatus(result)
            report.downtimeMs = result["downtime"]?.number.map { Int($0) }
            report.totalMs = result["total-time"]?.number.map { Int($0) }
            report.setupMs = result["setup-time"]?.number.map { Int($0) }
            report.transferredBytes = result["ram"]?["transferred"]?.number.map { Int($0) }
            guard report.migration == .completed else {
                _ = try? await qmp.execute("migrate_cancel")
                report.message = result["error-desc"]?.string
                // The source still runs (it resumes after a failed migration); the target QEMU exits on its own.
                if try await self.status(qmp) != .running { _ = try? await qmp.execute("cont") }
                return AgentOutcome(OCFExit.generic, report: report)
            }
            _ = try? await qmp.execute("quit")
            await self.waitForExit(pid, until: ContinuousClock.now + .seconds(5))
            if Subprocess.isAlive(pid) { kill(pid, SIGKILL) }
            unlink(paths.pidFile)
            return AgentOutcome(OCFExit.success, report: report)
        } catch {
            return AgentOutcome(OCFExit.generic, "\(context.resource.id): live migration to \(target) failed: \(error)")
        }
    }

    /// Target side of a move. Live: start QEMU waiting for the state on `tcp:` and report the URI. Hibernate: start
    /// (resume from the image).
    func migrateFrom(_ spec: VMSpec, _ context: ActionContext) async -> AgentOutcome {
        if spec.migration == .hibernate { return await self.start(spec, context) }
        let paths = self.paths(context)
        if let pid = self.runningQEMU(paths) {
            switch await self.discardIfGuestless(pid, paths) {
            case .holdsNoGuest: break
            case .survived(let message): return AgentOutcome(OCFExit.generic, "\(context.resource.id): \(message)")
            case .mayHoldTheGuest:
                return AgentOutcome(OCFExit.generic, "\(context.resource.id): a QEMU already runs here; refusing a second one")
            }
        }
        guard let port = freeTCPPort(self.settings.migrationAddress) else {
            return AgentOutcome(OCFExit.generic, "no free TCP port on \(self.settings.migrationAddress)")
        }
        let incoming = IncomingSource.tcp(address: self.settings.migrationAddress, port: port)
        do {
            try MigrationTLS.writeCredentials(directory: paths.migrationTLSDirectory, keyFile: self.settings.migrationKeyFile,
                                              vm: context.resource.id)
        } catch {
            return AgentOutcome(OCFExit.generic, "\(context.resource.id): not listening for a live migration: \(error)")
        }
        let launched = await self.launch(spec, context, incoming: incoming, migrationTLS: true)
        switch launched {
        case .failure(let outcome): return outcome
        case .success(let pid, let qmp):
            // Listen only now that the TLS credentials are in force: never an unauthenticated listener.
            do {
                try await qmp.execute("migrate-set-parameters", ["tls-creds": .string(MigrationTLS.objectID)])
                try await qmp.execute("migrate-incoming", ["uri": .string(incoming.argument)])
            } catch {
                await qmp.close()
                kill(pid, SIGKILL)
                unlink(paths.pidFile)
                return AgentOutcome(OCFExit.generic, "\(context.resource.id): cannot listen for the live migration: \(error)")
            }
            await qmp.close()
            self.closeIfAbandoned(pid: pid, paths: paths, after: Duration(context.timeout) + .seconds(5))
            var report = VMReport(action: .migrateFrom, mode: .live)
            report.incoming = incoming.argument
            report.pid = Int(pid)
            return AgentOutcome(OCFExit.success, report: report)
        }
    }

    // MARK: - QEMU process

    enum Launch {
        case success(pid: pid_t, qmp: QMPClient)
        case failure(AgentOutcome)
    }

    /// The VM's NICs: the agent-wide attachment when set (tests), else `bridge` and then `nics` from the config.
    func networks(of spec: VMSpec, vm: String) -> [(nic: NIC, attachment: NetworkAttachment)] {
        if let network = self.settings.network {
            return [(NIC(tap: network.tapName(vm), mac: spec.mac ?? NIC.mac(for: vm)), network)]
        }
        guard let bridge = spec.bridge else { return [] }
        let all = [VMSpec.NICSpec(bridge: bridge, mac: spec.mac)] + (spec.extraNICs ?? [])
        return all.enumerated().map { index, nic in
            let tap = NIC.tapName(for: vm, index: index)
            return (NIC(tap: tap, mac: nic.mac ?? NIC.mac(for: vm, index: index)), NetworkAttachment(bridge: nic.bridge, tapName: { _ in tap }))
        }
    }

    /// An incoming QEMU whose source never sent its state (the move failed or was given up, the source host died)
    /// would go on listening: once the move's time is over, one still waiting for its state is ended.
    func closeIfAbandoned(pid: pid_t, paths: Paths, after wait: Duration) {
        Task.detached {
            try? await Task.sleep(for: wait)
            guard Subprocess.isAlive(pid), (try? String(contentsOfFile: paths.pidFile, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) == "\(pid)"
            else { return }
            guard let qmp = try? await QMPClient.connect(paths.qmpSocket) else { return }
            let status = try? await qmp.execute("query-status")["status"]?.string
            guard status == "inmigrate" else {
                await qmp.close()
                return
            }
            _ = try? await qmp.execute("quit")
            await qmp.close()
            try? await Task.sleep(for: .seconds(2))
            if Subprocess.isAlive(pid) { kill(pid, SIGKILL) }
            unlink(paths.pidFile)
        }
    }

    func launch(_ spec: VMSpec, _ context: ActionContext, incoming: IncomingSource?, migrationTLS: Bool = false) async -> Launch {
        let paths = self.paths(context)
        var boot: BootSource
        switch resolveBoot(spec) {
        case .success(let source): boot = source
        case .failure(let message): return .failure(AgentOutcome(OCFExit.notConfigured, "\(context.resource.id): \(message)"))
        }
        if case .kernel(let kernel, let initrd, let arguments) = boot, let extra = spec.kernelArguments {
            boot = .kernel(kernel: kernel, initrd: initrd, commandLine: arguments.isEmpty ? extra : "\(arguments) \(extra)")
        }
        var commandLine = QEMUCommandLine(
            vm: context.resource.id, spec: spec, boot: boot, accelerator: self.settings.accelerator,
            volumeSockets: spec.volumes.map(self.settings.volumeSocket), qmpSocket: paths.qmpSocket,
            consoleLog: paths.consoleLog, incoming: incoming)
        commandLine.executable = self.settings.qemuExecutable
        if migrationTLS { commandLine.migrationTLSDirectory = paths.migrationTLSDirectory }
        commandLine.consoleSocket = paths.consoleSocket
        if spec.guestAgent == true { commandLine.guestAgentSocket = paths.guestAgentSocket }
        if spec.display == .vnc { commandLine.vncSocket = paths.vncSocket }
        if spec.firmware == .uefi {
            guard let volume = spec.nvramVolume else {
                return .failure(AgentOutcome(OCFExit.notConfigured, "\(context.resource.id): firmware uefi needs an nvram volume"))
            }
            let variables = UEFIVariables(socket: self.settings.volumeSocket(volume), volume: volume, template: self.settings.ovmfVarsTemplate)
            do {
                // Only a cold boot may find a blank store; an incoming QEMU takes the source's variables as they are.
                if incoming == nil { try await variables.initializeIfBlank() }
                commandLine.uefi = UEFIFlash(code: self.settings.ovmfCode, varsSocket: variables.socket, varsExport: volume,
                                             varsSize: try variables.templateSize())
            } catch {
                return .failure(AgentOutcome(OCFExit.notConfigured, "\(context.resource.id): \(error.description)"))
            }
        }
        let networks = self.networks(of: spec, vm: context.resource.id)
        commandLine.nics = networks.map(\.nic)
        unlink(paths.qmpSocket)
        let pid: pid_t
        do {
            pid = try Subprocess.spawnDaemon(commandLine.arguments, log: paths.qemuLog)
        } catch {
            return .failure(AgentOutcome(OCFExit.notInstalled, error.description))
        }
        try? "\(pid)\n".write(toFile: paths.pidFile, atomically: true, encoding: .utf8)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            guard Subprocess.isAlive(pid) else {
                unlink(paths.pidFile)
                return .failure(AgentOutcome(OCFExit.generic, "\(context.resource.id): QEMU exited at once: \(Subprocess.tail(paths.qemuLog, lines: 5))"))
            }
            if let qmp = try? await QMPClient.connect(paths.qmpSocket, timeout: .seconds(2)) {
                for (nic, attachment) in networks {
                    if let failure = await attach(tap: nic.tap, attachment) {
                        kill(pid, SIGKILL)
                        unlink(paths.pidFile)
                        return .failure(AgentOutcome(OCFExit.generic, "\(context.resource.id): \(failure)"))
                    }
                }
                // The console and the display give control of the guest: root only, whatever the umask was.
                for socket in [paths.consoleSocket, paths.vncSocket, paths.guestAgentSocket] { chmod(socket, 0o600) }
                return .success(pid: pid, qmp: qmp)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        kill(pid, SIGKILL)
        unlink(paths.pidFile)
        return .failure(AgentOutcome(OCFExit.generic, "\(context.resource.id): QEMU's QMP socket never answered"))
    }

    /// The QEMU of this VM on this host: the pid file's process if it is alive and is that QEMU (its command line
    /// names our QMP socket, so a reused pid is not mistaken for it), else any process with that command line.
    public func runningQEMU(_ paths: Paths) -> pid_t? {
        let marker = "unix:\(paths.qmpSocket),server"
        // Hosts of the lab share one pid namespace but each has its own mount namespace (its own /run):
        // another host's QEMU of the same VM has the same command line and must not count as ours.
        let ourMounts = Subprocess.namespaceInode("/proc/self/ns/mnt")
        func isOurs(_ pid: pid_t) -> Bool {
            guard Subprocess.isAlive(pid), Subprocess.namespaceInode("/proc/\(pid)/ns/mnt") == ourMounts,
                let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
            else { return false }
            return raw.split(separator: 0).contains { String(decoding: $0, as: UTF8.self).hasPrefix(marker) }
        }
        if let text = try? String(contentsOfFile: paths.pidFile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), isOurs(pid)
        {
            return pid
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = pid_t(entry), isOurs(pid) else { continue }
            try? "\(pid)\n".write(toFile: paths.pidFile, atomically: true, encoding: .utf8)
            return pid
        }
        return nil
    }

    func status(_ qmp: QMPClient) async throws(QMPClient.Failure) -> RunState {
        let answer = try await qmp.execute("query-status")
        return RunState(qmp: answer["status"]?.string ?? "unknown")
    }

    func waitForMigration(_ qmp: QMPClient, until deadline: ContinuousClock.Instant) async throws -> JSONValue {
        while true {
            let info = try await qmp.execute("query-migrate")
            if MigrationStatus(info).isFinal { return info }
            guard ContinuousClock.now < deadline else {
                _ = try? await qmp.execute("migrate_cancel")
                return ["status": "failed", "error-desc": "timed out"]
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func waitForExit(_ pid: pid_t, until deadline: ContinuousClock.Instant) async {
        while Subprocess.isAlive(pid), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

extension MigrationStatus {
    /// The `status` of a `query-migrate` answer.
    init(_ info: JSONValue) {
        self.init(qmp: info["status"]?.string ?? "none")
    }
}

/// Moves the tap into the namespace (if any) and enslaves it to the bridge; nil on success, else the error text.
func attach(tap: String, _ network: VMAgent.NetworkAttachment) async -> String? {
    var ip = ["ip"]
    if let namespace = network.namespace {
        let moved = await Subprocess.run(["ip", "link", "set", tap, "netns", namespace], timeout: .seconds(10))
        guard moved.succeeded else { return "cannot move tap \(tap) into \(namespace): \(moved.output)" }
        ip += ["-n", namespace]
    }
    let enslaved = await Subprocess.run(ip + ["link", "set", tap, "master", network.bridge, "up"], timeout: .seconds(10))
    return enslaved.succeeded ? nil : "cannot attach tap \(tap) to bridge \(network.bridge): \(enslaved.output)"
}

enum BootResolution {
    case success(BootSource)
    case failure(String)
}

/// `boot` names one of the VM's volumes or its CD-ROM (the firmware boots it), else it is a path.
func resolveBoot(_ spec: VMSpec) -> BootResolution {
    if spec.bootVolume != nil { return .success(.firmware) }
    if spec.boot == VMSpec.cdromBoot {
        guard let iso = spec.cdrom else { return .failure("boot: cdrom, but the VM has no cdrom") }
        guard FileManager.default.isReadableFile(atPath: iso) else { return .failure("cdrom \(iso) is not readable here") }
        return .success(.firmware)
    }
    if !spec.boot.hasPrefix("/"), !spec.boot.isEmpty {
        return .failure("boot \"\(spec.boot)\" is neither one of the VM's volumes (\(spec.volumes.joined(separator: ", "))) nor a path")
    }
    return resolveBoot(spec.boot)
}

/// `boot` is a directory with `vmlinuz` and optionally `initrd` and `cmdline`, or a disk image file.
func resolveBoot(_ boot: String) -> BootResolution {
    var isDirectory: ObjCBool = false
    guard !boot.isEmpty, FileManager.default.fileExists(atPath: boot, isDirectory: &isDirectory) else {
        return .failure("boot \"\(boot)\" does not exist")
    }
    guard isDirectory.boolValue else { return .success(.disk(boot)) }
    let kernel = "\(boot)/vmlinuz"
    guard FileManager.default.fileExists(atPath: kernel) else { return .failure("boot directory \(boot) has no vmlinuz") }
    let initrd = "\(boot)/initrd"
    let extra = (try? String(contentsOfFile: "\(boot)/cmdline", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    let commandLine = (["console=ttyS0", "panic=-1"] + (extra.isEmpty ? [] : [extra])).joined(separator: " ")
    return .success(.kernel(kernel: kernel, initrd: FileManager.default.fileExists(atPath: initrd) ? initrd : nil,
                            commandLine: commandLine))
}

func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
}

/// A port the kernel just handed out on `address` (bound, read, closed: QEMU binds it a moment later).
func freeTCPPort(_ address: String) -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var socketAddress = sockaddr_in()
    socketAddress.sin_family = sa_family_t(AF_INET)
    socketAddress.sin_port = 0
    guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else { return nil }
    let bound = withUnsafePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { return nil }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { return nil }
    return Int(UInt16(bigEndian: socketAddress.sin_port))
}

import CleverControl
import CleverSystem
import Foundation
import Testing

/// Issue 12's acceptance on the whole installation: a VM the way a plant runs one (examples/lab-real-vm.yaml),
/// its OS installed on a replicated volume and booted by firmware (SeaBIOS, and OVMF with its variables on a
/// volume of their own), driven only through `clevervm` on the lab's hosts. The OS volume is filled by
/// `clevervm volume import` (a qcow2 of the test guest's boot disk) while the VM
/// is Stopped; then `forcestart`, the serial console from the host that does not run the VM, a screenshot, a live
/// move, a hibernate move and a power-off failover with a fresh boot through the firmware on the survivor. The
/// guest's writer on its data disk prints `ACK n` after each durable record and `RESUME n` after a boot.
@Suite(.serialized, .enabled(if: AgentLab.requirementsMet && FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64"),
                             "needs root, corosync, corosync-qnetd, corosync-qdevice, nft and qemu"))
struct RealVMLabTests {
    static let guestDirectory = "/var/cache/clevervm-guest"

    /// The test guest's boot disk for the firmware (a partition table; syslinux for SeaBIOS, systemd-boot for OVMF;
    /// the kernel and initramfs), with a shell on its serial console and the writer on /dev/vdb, converted to qcow2 as
    /// an administrator's image would be.
    static func bootImage(_ firmware: String) throws -> String {
        let root = AgentLab.root.path
        let guest = Subprocess.run(["\(root)/scripts/build-test-guest.sh", Self.guestDirectory], timeout: .seconds(300))
        guard guest.succeeded else { throw AgentLab.LabFailure("build-test-guest.sh: \(guest.output)") }
        let raw = "\(Self.guestDirectory)/boot-\(firmware)-realvm-lab.img"
        let disk = Subprocess.run(["\(root)/scripts/build-boot-disk.sh", Self.guestDirectory, firmware, raw,
                                   "quiet writer.interval=20 writer.disk=/dev/vdb guest.shell=1"], timeout: .seconds(300))
        guard disk.succeeded else { throw AgentLab.LabFailure("build-boot-disk.sh: \(disk.output)") }
        let qcow2 = "\(Self.guestDirectory)/boot-\(firmware)-realvm-lab.qcow2"
        let convert = Subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2], timeout: .seconds(120))
        guard convert.succeeded else { throw AgentLab.LabFailure("qemu-img convert: \(convert.output)") }
        return qcow2
    }

    /// examples/lab-real-vm.yaml as it is (SeaBIOS), or booted by OVMF with its UEFI variables on volume `nvram0`.
    static func config(_ firmware: String) throws -> String {
        let example = AgentLab.root.appendingPathComponent("examples/lab-real-vm.yaml").path
        guard firmware == "uefi" else { return example }
        var text = try String(contentsOfFile: example, encoding: .utf8)
        guard text.contains("    firmware: bios\n") else { throw AgentLab.LabFailure("\(example) has no `firmware: bios` line") }
        text = text.replacingOccurrences(of: "    firmware: bios\n", with: "    firmware: uefi\n    nvram: nvram0\n")
        text = text.replacingOccurrences(of: "resources:\n", with: """
            resources:
              - id: nvram0
                type: volume
                size: 1MiB
                backing: /var/lib/clevervm/nvram0.img
                protocol: C
                port: 7792
                secret-file: /etc/clevervm/volumes.secret

            """)
        let path = "/tmp/clevervm-lab-real-vm-uefi-\(getpid()).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func console(_ lab: AgentLab, _ host: String) -> [String] {
        let text = (try? String(contentsOfFile: "\(lab.hostsDirectory)/\(host)/run/clevervm/mba7.console.log", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    /// The numbers of the writer's `PREFIX n` lines, in order. The guest's shell shares the console, so a line may
    /// start with its prompt (`/ # RESUME 5215`).
    func numbers(_ lines: [String], _ prefix: String) -> [Int] {
        lines.compactMap { line in
            line.range(of: prefix, options: .backwards).flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) }
        }
    }

    func lastNumber(_ lines: [String], _ prefix: String) -> Int? { self.numbers(lines, prefix).last }

    func resource(_ lab: AgentLab, _ id: String, from host: String) -> StatusReport.Resource? {
        lab.status(host)?.resources.first { $0.id == id }
    }

    func replicasInSync(_ lab: AgentLab, from host: String) -> Bool {
        lab.status(host)?.resources.allSatisfy { $0.replication == nil || $0.replication!.contains("UpToDate/UpToDate") } == true
    }

    @Test(arguments: ["bios", "uefi"])
    func anImportedOSBootsByFirmwareFromItsReplicatedDiskAnswersOnItsConsoleMovesAndFailsOver(_ firmware: String) throws {
        let image = try Self.bootImage(firmware)
        let config = try Self.config(firmware)
        let lab = try AgentLab(name: "cvr", config: config, console: false)
        defer {
            lab.down()
            if config.hasPrefix("/tmp/") { unlink(config) }
        }
        do {
            // Stopped VM: its volumes are promoted together on one host, where the import goes.
            var primary: String?
            #expect(lab.waitUntil(90) {
                primary = self.resource(lab, "os0", from: "alpha")?.roles.first { $0.value == "Promoted" }?.key
                return primary != nil && self.replicasInSync(lab, from: primary!)
            }, "os0 was not promoted and in sync: \(String(describing: lab.status("alpha")?.resources.map { "\($0.id) \($0.roles) \($0.replication ?? "")" }))")
            let a = try #require(primary)
            let b = a == "alpha" ? "beta" : "alpha"
            #expect(self.resource(lab, "mba7", from: a)?.roles.isEmpty == true, "the VM must wait, Stopped, for its OS")

            // The secondary refuses the import and names the primary; the primary takes it.
            let refused = lab.clevervm(b, ["volume", "import", "os0", image])
            #expect(refused.status != 0 && refused.output.contains(a), "\(refused.output)")
            let imported = lab.clevervm(a, ["volume", "import", "os0", image, "--json"], timeout: 180)
            #expect(imported.status == 0, "\(imported.output)")
            #expect(lab.waitUntil(60) { self.replicasInSync(lab, from: a) && self.replicasInSync(lab, from: b) })

            // forcestart from the other host: SeaBIOS boots the imported disk on the volumes' primary.
            #expect(lab.clevervm(b, ["forcestart", "mba7"]).status == 0)
            #expect(lab.waitUntil(150) { self.lastNumber(self.console(lab, a), "ACK ") ?? 0 > 5 },
                    "no records from the guest on \(a): \(self.console(lab, a).suffix(8))")
            #expect(lab.placement("mba7", from: b) == [a])

            // The serial console from the host that does not run the VM, relayed (encrypted) by the agents: a
            // command typed into the guest's shell, its answer read back.
            let typed = AgentLab.runCommand(["sh", "-c", "(sleep 1; printf '\\necho $((6*7))XY\\n'; sleep 4) | \"$0\" lab exec --name cvr \"$1\" -- clevervm console mba7 --reconnect 0",
                                                AgentLab.binary, b], timeout: 30)
            #expect(typed.output.contains("42XY"), "the guest's shell did not answer on the console from \(b): \(typed.output.suffix(400))")

            // The screen, from the VM's host: a PNG.
            let png = "\(lab.hostsDirectory)/\(a)/screen.png"
            let shot = lab.clevervm(a, ["screenshot", "mba7", png])
            #expect(shot.status == 0, "\(shot.output)")
            let header = (FileManager.default.contents(atPath: png) ?? Data()).prefix(8)
            #expect(Array(header) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "screenshot is not a PNG")

            // A live move to b: the guest goes on writing, no reboot.
            #expect(lab.clevervm(a, ["migrate", "--to", b]).status == 0)
            #expect(lab.waitUntil(90) { lab.placement("mba7", from: b) == [b] && lab.settled(b) })
            #expect(lab.clevervm(a, ["unmigrate"]).status == 0)
            let live = self.resource(lab, "mba7", from: b)?.lastMove
            #expect(live?.mode == .live && live?.from == a && live?.to == b, "\(String(describing: live))")
            let afterLive = self.lastNumber(self.console(lab, b), "ACK ") ?? 0
            #expect(lab.waitUntil(30) { self.lastNumber(self.console(lab, b), "ACK ") ?? 0 > afterLive + 5 })
            #expect(self.numbers(self.console(lab, b), "RESUME ").isEmpty, "the live move rebooted the guest")
            print("real VM (\(firmware)) live move \(a) -> \(b): downtime \(live?.downtimeMilliseconds.map(String.init) ?? "?") ms")

            // A hibernate move back to a: forcestop saves the guest's RAM on b; `migrate` empties b; forcestart resumes
            // the guest on a where it was.
            #expect(lab.waitUntil(60) { self.replicasInSync(lab, from: b) })
            #expect(lab.clevervm(b, ["forcestop", "mba7"]).status == 0)
            #expect(lab.waitUntil(120) { lab.placement("mba7", from: b).isEmpty && lab.settled(b) })
            let beforeHibernate = self.lastNumber(self.console(lab, b), "ACK ") ?? 0
            let bootsOnA = self.numbers(self.console(lab, a), "RESUME ").count
            #expect(lab.clevervm(b, ["migrate", "--to", a]).status == 0)
            #expect(lab.clevervm(b, ["forcestart", "mba7"]).status == 0)
            #expect(lab.waitUntil(150) { self.lastNumber(self.console(lab, a), "ACK ") ?? 0 > beforeHibernate + 5 },
                    "the guest did not resume on \(a): \(self.console(lab, a).suffix(8))")
            let resumesOnA = self.numbers(self.console(lab, a), "RESUME ").count
            #expect(resumesOnA == bootsOnA, "the hibernated guest must resume where it was, not boot again (\(resumesOnA - bootsOnA) boots on \(a))")
            let hibernated = self.resource(lab, "mba7", from: a)?.lastMove
            #expect(hibernated?.mode == .hibernate && hibernated?.to == a, "\(String(describing: hibernated))")
            #expect(lab.clevervm(b, ["unmigrate"]).status == 0)

            // a loses power: b boots the guest through SeaBIOS from its copy of the disk, every acknowledged record there.
            #expect(lab.waitUntil(60) { self.replicasInSync(lab, from: a) && lab.settled(a) })
            let acknowledged = try #require(self.lastNumber(self.console(lab, a), "ACK "))
            try lab.lab(["power", "off", a])
            #expect(lab.waitUntil(150) { self.numbers(self.console(lab, b), "RESUME ").contains { $0 > 0 } },
                    "the guest did not boot on \(b): \(self.console(lab, b).suffix(8))")
            let resumed = try #require(self.lastNumber(self.console(lab, b), "RESUME "))
            #expect(resumed >= acknowledged, "acknowledged record \(acknowledged) is lost: the disk ends at \(resumed)")
            let failover = self.resource(lab, "mba7", from: b)?.lastMove
            #expect(failover?.mode == .coldBoot && failover?.from == a && failover?.to == b, "\(String(describing: failover))")
            if firmware == "uefi" {
                // The guest counts its boots in a UEFI variable of its own: written on a at the first boot, read
                // back (and counted again) on b after the failover, so the variables followed the VM.
                #expect(self.numbers(self.console(lab, b), "EFIVAR boots=") == [2], "\(self.console(lab, b).prefix(12))")
            }
            print("real VM (\(firmware)) power-off failover: last acknowledged record \(acknowledged) on \(a), the guest on \(b) booted and resumed after \(resumed)")
        } catch {
            lab.dumpLogs()
            throw error
        }
    }
}

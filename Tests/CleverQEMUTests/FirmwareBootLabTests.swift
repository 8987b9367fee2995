import CleverCluster
import CleverExecutor
import CleverModel
import CleverSystem
import Foundation
import Testing

@testable import CleverQEMU

#if canImport(Glibc)
import Glibc
#endif

/// A VM booting an installed OS from its (NBD-served) disk through SeaBIOS or OVMF under TCG: a cold boot on host
/// a, a live move to b, a hibernate on b and resume on a, then a power-off failover (QEMU killed) and a fresh boot
/// through the firmware on b. The writer on the second disk proves the guest's state at every step.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct FirmwareBootLabTests {
    @Test func biosBootFromAVolumeMovesHibernatesAndFailsOver() async throws {
        try await self.lifecycle(.bios)
    }

    @Test func uefiBootKeepsItsVariablesThroughAFailover() async throws {
        let lab = try await self.lifecycle(.uefi)
        defer { lab.tearDown() }
        // The variable the running guest wrote at its first boot (on a) came back at its second (on b): the
        // variables live on the nvram volume, not on either host.
        #expect(lab.efiBoots("a") == [1], "\(lab.console("a").suffix(5))")
        #expect(lab.efiBoots("b") == [2], "\(lab.console("b").suffix(5))")
    }

    /// `volume import`'s core: a qcow2 image converted into a blank volume's NBD export, zeros skipped; the VM then
    /// boots from it through SeaBIOS.
    @Test func aQcow2ImageImportedIntoABlankVolumeBoots() async throws {
        let lab = try GuestLab(firmware: .bios)
        defer { lab.tearDown() }
        let volumeFile = "\(lab.directory)/os0.img"
        let qcow2 = "\(lab.directory)/installed.qcow2"
        let converted = await Subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", volumeFile, qcow2], timeout: .seconds(60))
        #expect(converted.succeeded, "\(converted.output)")
        // The volume becomes blank (nbdkit serves the same file).
        let emptied = await Subprocess.run(["truncate", "-s", "0", volumeFile])
        let sized = await Subprocess.run(["truncate", "-s", "64M", volumeFile])
        #expect(emptied.succeeded && sized.succeeded)
        let uri = VMAgent.volumeURI(socket: "\(lab.directory)/os0.sock", volume: "os0")
        let infoOutput = await Subprocess.run(["qemu-img", "info", "--output=json", qcow2]).output
        let info = try DiskImport.ImageInfo.parse(json: infoOutput, image: qcow2)
        #expect(info.format == "qcow2" && info.virtualSize == 64 << 20)
        let blank = await Subprocess.run(DiskImport.zeroCheckCommand(uri: uri, size: 64 << 20), timeout: .seconds(60))
        #expect(blank.status == 0, "blank: \(blank.output)")
        let command = try DiskImport.convertCommand(image: qcow2, info: info, volume: "os0", volumeSize: 64 << 20, uri: uri,
                                                    volumeIsZero: true, overwrite: false)
        let imported = await Subprocess.run(command, timeout: .seconds(120))
        #expect(imported.succeeded, "\(imported.output)")
        // Zeros were not written: the volume's file stays sparse (the image holds ~16 MiB of kernel and initramfs).
        var status = stat()
        #expect(stat(volumeFile, &status) == 0)
        #expect(Int(status.st_blocks) * 512 < 40 << 20, "\(Int(status.st_blocks) * 512) bytes allocated")
        // Now it holds data: a second import is refused unless asked to overwrite.
        let holdsData = await Subprocess.run(DiskImport.zeroCheckCommand(uri: uri, size: 64 << 20), timeout: .seconds(60))
        #expect(holdsData.status != 0)
        #expect(throws: DiskImport.Failure.self) {
            try DiskImport.convertCommand(image: qcow2, info: info, volume: "os0", volumeSize: 64 << 20, uri: uri, volumeIsZero: false, overwrite: false)
        }
        let agent = lab.agent()
        let started = await agent.perform(.start, lab.context("a"))
        #expect(started.exitCode == OCFExit.success, "\(started)")
        try await lab.waitForAck("a", above: 2, timeout: .seconds(120))
    }

    @discardableResult
    func lifecycle(_ firmware: VMSpec.Firmware) async throws -> GuestLab {
        let lab = try GuestLab(withStateVolume: true, firmware: firmware)
        var keep = false
        defer { if !keep { lab.tearDown() } }
        let onA = lab.agent(on: "a", prepareTarget: "b")
        let onB = lab.agent(on: "b", prepareTarget: "a")

        let clock = ContinuousClock()
        let began = clock.now
        let started = await onA.perform(.start, lab.context("a"))
        #expect(started.exitCode == OCFExit.success, "\(started)")
        #expect(started.report?.mode == .cold)
        try await lab.waitForAck("a", above: 3, timeout: .seconds(120))
        print("\(firmware) boot to the writer's ACK 3: \(clock.now - began)")
        #expect(lab.resumes("a") == [0], "a fresh disk: the writer starts at 0")
        let qemu = try #require(onA.runningQEMU(lab.paths("a")))
        let arguments = try String(contentsOfFile: "/proc/\(qemu)/cmdline", encoding: .utf8).split(separator: "\0").map(String.init)
        #expect(!arguments.contains("-kernel"), "booted by firmware, not by QEMU's kernel loader")
        #expect(arguments.contains { $0.contains("export=os0") && $0.contains("driver=nbd") })
        #expect(arguments.contains { $0.hasPrefix("virtio-blk-pci,drive=vol0,id=disk0,serial=os0") && $0.hasSuffix("bootindex=1") })

        // Live move a → b: the writer goes on at exactly the next record.
        let moved = await onA.perform(.migrateTo, lab.context("a", migrationTarget: "b"))
        #expect(moved.exitCode == OCFExit.success, "\(moved)")
        let lastOnA = lab.acks("a").max() ?? 0
        try await lab.waitForAck("b", above: lastOnA + 2)
        #expect(lab.acks("b").first == lastOnA + 1)
        #expect(lab.resumes("b").isEmpty)
        print("\(firmware) live move: \(moved.output ?? "")")

        // Hibernate on b, resume on a from the state volume.
        let hibernated = await onB.perform(.stop, lab.context("b"))
        #expect(hibernated.exitCode == OCFExit.success, "\(hibernated)")
        let lastOnB = lab.acks("b").max() ?? 0
        let resumed = await onA.perform(.start, lab.context("a"))
        #expect(resumed.exitCode == OCFExit.success, "\(resumed)")
        #expect(resumed.report?.mode == .resume)
        try await lab.waitForAck("a", above: lastOnB + 2)
        #expect(lab.acks("a").filter { $0 > lastOnA }.first == lastOnB + 1, "resumed where b stopped")
        #expect(lab.resumes("a") == [0], "resumed, not rebooted")

        // Power-off failover: a's QEMU dies; b boots the VM afresh through the firmware from the same disks.
        let pid = try #require(onA.runningQEMU(lab.paths("a")))
        kill(pid, SIGKILL)
        try await Task.sleep(for: .milliseconds(300))
        let lastBeforeFailure = lab.acks("a").max() ?? 0
        #expect(await onA.perform(.monitor, lab.context("a")) == .notRunning)
        let failedOver = await onB.perform(.start, lab.context("b"))
        #expect(failedOver.exitCode == OCFExit.success, "\(failedOver)")
        #expect(failedOver.report?.mode == .cold, "no image to resume: a fresh boot")
        try await lab.waitForAck("b", above: lastBeforeFailure + 2, timeout: .seconds(120))
        // Every acknowledged write survived: the fresh boot found the last record the dead guest acknowledged.
        let found = try #require(lab.resumes("b").last)
        #expect(found >= lastBeforeFailure, "RESUME \(found) after ACK \(lastBeforeFailure)")
        keep = firmware == .uefi
        return lab
    }
}

extension GuestLab {
    /// The `EFIVAR boots=N` lines of `host`'s console (a UEFI guest counts its boots in a variable of its own).
    func efiBoots(_ host: String) -> [Int] {
        self.console(host).compactMap { line in
            guard let range = line.range(of: "EFIVAR boots=") else { return nil }
            return Int(line[range.upperBound...])
        }
    }
}

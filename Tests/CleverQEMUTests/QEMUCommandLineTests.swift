import CleverModel
import Foundation
import Testing

@testable import CleverQEMU

@Suite struct QEMUCommandLineTests {
    let spec = VMSpec(cpus: 2, memoryMiB: 256, volumes: ["web-disk", "web,data"], boot: "/srv/boot")

    func commandLine(incoming: IncomingSource? = nil) -> QEMUCommandLine {
        QEMUCommandLine(
            vm: "web", spec: self.spec, boot: .kernel(kernel: "/srv/boot/vmlinuz", initrd: "/srv/boot/initrd", commandLine: "console=ttyS0"),
            accelerator: .tcg, volumeSockets: ["/run/clevervm/volumes/web-disk.sock", "/run/clevervm/volumes/web,data.sock"],
            qmpSocket: "/run/clevervm/web.qmp", consoleLog: "/run/clevervm/web.console.log", incoming: incoming)
    }

    func value(after option: String, in arguments: [String]) -> [String] {
        arguments.indices.filter { arguments[$0] == option && $0 + 1 < arguments.count }.map { arguments[$0 + 1] }
    }

    @Test func machineMemoryCPUs() {
        let arguments = self.commandLine().arguments
        #expect(self.value(after: "-machine", in: arguments) == ["q35,accel=tcg"])
        #expect(self.value(after: "-m", in: arguments) == ["256"])
        #expect(self.value(after: "-smp", in: arguments) == ["2"])
        #expect(self.value(after: "-qmp", in: arguments) == ["unix:/run/clevervm/web.qmp,server=on,wait=off"])
        #expect(self.value(after: "-kernel", in: arguments) == ["/srv/boot/vmlinuz"])
        #expect(self.value(after: "-initrd", in: arguments) == ["/srv/boot/initrd"])
        #expect(!arguments.contains("-incoming"))
    }

    @Test func volumesAreNBDOverUnixSocketsWithCommasEscaped() {
        let blockdevs = self.value(after: "-blockdev", in: self.commandLine().arguments)
        #expect(blockdevs == [
            "driver=nbd,node-name=vol0,server.type=unix,server.path=/run/clevervm/volumes/web-disk.sock,export=web-disk,reconnect-delay=5",
            "driver=nbd,node-name=vol1,server.type=unix,server.path=/run/clevervm/volumes/web,,data.sock,export=web,,data,reconnect-delay=5",
        ])
        #expect(self.value(after: "-device", in: self.commandLine().arguments).first == "virtio-blk-pci,drive=vol0,id=disk0,serial=web-disk")
    }

    @Test func incoming() {
        #expect(self.value(after: "-incoming", in: self.commandLine(incoming: .tcp(address: "198.51.100.232", port: 49200)).arguments)
            == ["tcp:198.51.100.232:49200"])
        #expect(self.value(after: "-incoming", in: self.commandLine(incoming: .stateFile("/var/lib/clevervm/vm-state/it's.vmstate")).arguments)
            == ["exec:cat '/var/lib/clevervm/vm-state/it'\\''s.vmstate'"])
    }

    @Test func kvmUsesHostCPU() {
        var commandLine = self.commandLine()
        commandLine.accelerator = .kvm
        #expect(self.value(after: "-machine", in: commandLine.arguments) == ["q35,accel=kvm"])
        #expect(self.value(after: "-cpu", in: commandLine.arguments) == ["host"])
    }

    @Test func bootResolution() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cvq-boot-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard case .failure(let missing) = resolveBoot(directory) else { Issue.record("empty dir accepted"); return }
        #expect(missing.contains("no vmlinuz"))
        _ = FileManager.default.createFile(atPath: "\(directory)/vmlinuz", contents: Data())
        try "quiet writer.interval=20\n".write(toFile: "\(directory)/cmdline", atomically: true, encoding: .utf8)
        guard case .success(let source) = resolveBoot(directory) else { Issue.record("kernel dir refused"); return }
        #expect(source == .kernel(kernel: "\(directory)/vmlinuz", initrd: nil, commandLine: "console=ttyS0 panic=-1 quiet writer.interval=20"))
        guard case .success(.disk("\(directory)/vmlinuz")) = resolveBoot("\(directory)/vmlinuz") else { Issue.record("disk refused"); return }
        guard case .failure = resolveBoot("") else { Issue.record("empty boot accepted"); return }
    }
}

@Suite struct HibernateImageTests {
    @Test func hexDumpOfQemuIO() {
        let dump = """
            03f00000:  43 4c 45 56 45 52 56 4d 2d 53 54 41 54 45 20 31  CLEVERVM.STATE.1
            03f00010:  20 35 0a 00 00 00 00 00 00 00 00 00 00 00 00 00  .5..............
            read 32/32 bytes at offset 66060288
            """
        #expect(String(decoding: HibernateImage.bytes(fromHexDump: dump).prefix(18), as: UTF8.self) == "CLEVERVM-STATE 1 5")
        #expect(HibernateImage.bytes(fromHexDump: "qemu-io: can't open device").isEmpty)
    }

    @Test func uris() {
        let image = HibernateImage.volume(socket: "/run/clevervm/volumes/web state.sock", export: "web-state", vm: "web")
        #expect(image.uri == "nbd+unix:///web-state?socket=/run/clevervm/volumes/web%20state.sock")
        #expect(image.saveURI == "exec:nbdcopy --flush - 'nbd+unix:///web-state?socket=/run/clevervm/volumes/web%20state.sock'")
        #expect(image.incoming == .command("nbdcopy 'nbd+unix:///web-state?socket=/run/clevervm/volumes/web%20state.sock' -"))
        #expect(HibernateImage.file(path: "/var/lib/clevervm/vm-state/web.vmstate").saveURI == "exec:cat > '/var/lib/clevervm/vm-state/web.vmstate.partial'")
    }

    @Test func tapNamesFitLinuxAndStayDistinct() {
        #expect(NIC.tapName(for: "mba7") == "cv-mba7")
        let long = NIC.tapName(for: "plant-controller-primary")
        let other = NIC.tapName(for: "plant-controller-backup")
        #expect(long.utf8.count <= 15 && other.utf8.count <= 15)
        #expect(long.hasPrefix("cv-plant-c") && long != other)
    }
}

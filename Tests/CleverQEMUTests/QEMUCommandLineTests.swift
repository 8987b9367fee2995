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
            "driver=nbd,node-name=vol0,server.type=unix,server.path=/run/clevervm/volumes/web-disk.sock,export=web-disk,reconnect-delay=5,discard=unmap",
            "driver=nbd,node-name=vol1,server.type=unix,server.path=/run/clevervm/volumes/web,,data.sock,export=web,,data,reconnect-delay=5,discard=unmap",
        ])
        #expect(self.value(after: "-device", in: self.commandLine().arguments).first == "virtio-blk-pci,drive=vol0,id=disk0,serial=web-disk")
    }

    @Test func aLiveMigrationTargetListensOnlyOnceItsTLSCredentialsAreSet() {
        var line = self.commandLine(incoming: .tcp(address: "198.51.100.232", port: 49200))
        line.migrationTLSDirectory = "/run/clevervm/web.migration-tls"
        let arguments = line.arguments
        #expect(self.value(after: "-incoming", in: arguments) == ["defer"], "no listener before the credentials are set")
        #expect(self.value(after: "-object", in: arguments).contains(
            "tls-creds-psk,id=clevervm-migration-tls,endpoint=server,dir=/run/clevervm/web.migration-tls"))
        #expect(!arguments.joined(separator: " ").contains("tcp:"), "the address is given later, with migrate-incoming")
    }

    @Test func theMigrationKeyIsPerVMAndNeedsTheClusterKey() throws {
        let clusterKey = Array("0123456789abcdef0123456789abcdef".utf8)
        let web = MigrationTLS.keyFileLine(clusterKey: clusterKey, vm: "web")
        #expect(web.hasPrefix("clevervm:") && web.count == "clevervm:".count + 64 + 1)
        #expect(web != MigrationTLS.keyFileLine(clusterKey: clusterKey, vm: "db"))
        #expect(web != MigrationTLS.keyFileLine(clusterKey: Array("another cluster's key, 32 bytes!".utf8), vm: "web"))
        #expect(web.contains(clusterKey.map { String(format: "%02x", $0) }.joined()) == false, "the cluster key itself never goes to QEMU")
        let directory = NSTemporaryDirectory() + "cvq-tls-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: MigrationTLS.Failure.self) {
            try MigrationTLS.writeCredentials(directory: directory, keyFile: directory + "/missing", vm: "web")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(clusterKey).write(to: URL(fileURLWithPath: directory + "/authkey"))
        try MigrationTLS.writeCredentials(directory: directory + "/tls", keyFile: directory + "/authkey", vm: "web")
        #expect(try String(contentsOfFile: directory + "/tls/keys.psk", encoding: .utf8) == web)
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/tls/keys.psk")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func incoming() {
        #expect(self.value(after: "-incoming", in: self.commandLine(incoming: .tcp(address: "198.51.100.232", port: 49200)).arguments)
            == ["tcp:198.51.100.232:49200"])
        #expect(self.value(after: "-incoming", in: self.commandLine(incoming: .stateFile("/var/lib/clevervm/vm-state/it's.vmstate")).arguments)
            == ["exec:cat '/var/lib/clevervm/vm-state/it'\\''s.vmstate'"])
    }

    @Test func kvmUsesANamedCPUModelAndHostOnlyWhenAsked() {
        var commandLine = self.commandLine()
        #expect(self.value(after: "-cpu", in: commandLine.arguments).isEmpty, "TCG: QEMU's migratable default")
        commandLine.accelerator = .kvm
        #expect(self.value(after: "-machine", in: commandLine.arguments) == ["q35,accel=kvm"])
        #expect(self.value(after: "-cpu", in: commandLine.arguments) == ["Nehalem"])
        commandLine.spec.cpuModel = "host"
        #expect(self.value(after: "-cpu", in: commandLine.arguments) == ["host"])
        commandLine.spec.machine = "pc-q35-7.2"
        #expect(self.value(after: "-machine", in: commandLine.arguments) == ["pc-q35-7.2,accel=kvm"])
    }

    /// A Windows-style VM: OS disk and data disk on virtio-scsi, an installer CD, UEFI, two NICs, the guest agent,
    /// a VNC display.
    func realVM() -> QEMUCommandLine {
        var spec = VMSpec(cpus: 2, memoryMiB: 4096, volumes: ["win-os", "win-data"], boot: "win-os")
        spec.firmware = .uefi
        spec.nvramVolume = "win-vars"
        spec.cdrom = "/srv/iso/virtio-win.iso"
        spec.diskBus = .virtioSCSI
        spec.guestAgent = true
        spec.display = .vnc
        var commandLine = QEMUCommandLine(
            vm: "win", spec: spec, boot: .firmware, accelerator: .tcg,
            volumeSockets: ["/run/v/win-os.sock", "/run/v/win-data.sock"], qmpSocket: "/run/c/win.qmp",
            consoleLog: "/run/c/win.console.log")
        commandLine.uefi = UEFIFlash(code: "/usr/share/OVMF/OVMF_CODE_4M.fd", varsSocket: "/run/v/win-vars.sock", varsExport: "win-vars",
                                     varsSize: 540672)
        commandLine.consoleSocket = "/run/c/win.console"
        commandLine.guestAgentSocket = "/run/c/win.qga"
        commandLine.vncSocket = "/run/c/win.vnc"
        commandLine.nics = [NIC(tap: "cv-win", mac: "52:54:00:00:00:01"), NIC(tap: "cv-win-abcd1", mac: "52:54:00:00:00:02")]
        return commandLine
    }

    @Test func uefiFlashIsOVMFCodeAndTheVariablesVolumeCutToTheTemplateSize() {
        let arguments = self.realVM().arguments
        #expect(self.value(after: "-machine", in: arguments) == ["q35,accel=tcg,pflash0=fw-code,pflash1=fw-vars"])
        let blockdevs = self.value(after: "-blockdev", in: arguments)
        #expect(blockdevs.contains("driver=file,node-name=fw-code-file,filename=/usr/share/OVMF/OVMF_CODE_4M.fd,read-only=on"))
        #expect(blockdevs.contains("driver=nbd,node-name=fw-vars-nbd,server.type=unix,server.path=/run/v/win-vars.sock,export=win-vars,reconnect-delay=5"))
        #expect(blockdevs.contains("driver=raw,node-name=fw-vars,file=fw-vars-nbd,size=540672"))
        #expect(!arguments.contains("-kernel"))
    }

    @Test func bootOrderDisksOnSCSIWithDiscardAndACDROM() {
        var commandLine = self.realVM()
        var devices = self.value(after: "-device", in: commandLine.arguments)
        #expect(devices.contains("virtio-scsi-pci,id=scsi0"))
        #expect(devices.contains("scsi-hd,bus=scsi0.0,channel=0,scsi-id=0,lun=0,drive=vol0,id=disk0,serial=win-os,bootindex=1"))
        #expect(devices.contains("scsi-hd,bus=scsi0.0,channel=0,scsi-id=0,lun=1,drive=vol1,id=disk1,serial=win-data,bootindex=2"))
        #expect(devices.contains("ide-cd,drive=cdrom,id=cdrom0,bus=ide.1,bootindex=3"))
        #expect(self.value(after: "-blockdev", in: commandLine.arguments).contains(
            "driver=file,node-name=cdrom-file,filename=/srv/iso/virtio-win.iso,read-only=on"))
        #expect(self.value(after: "-blockdev", in: commandLine.arguments).filter { $0.hasPrefix("driver=nbd,node-name=vol") }
            .allSatisfy { $0.hasSuffix(",discard=unmap") })
        // Installing: the CD first, then the disks in order.
        commandLine.spec.boot = VMSpec.cdromBoot
        devices = self.value(after: "-device", in: commandLine.arguments)
        #expect(devices.contains("ide-cd,drive=cdrom,id=cdrom0,bus=ide.1,bootindex=1"))
        #expect(devices.contains { $0.hasPrefix("scsi-hd") && $0.contains("drive=vol0") && $0.hasSuffix("bootindex=2") })
        // Booting the second disk: it first, then the first disk.
        commandLine.spec.boot = "win-data"
        devices = self.value(after: "-device", in: commandLine.arguments)
        #expect(devices.contains { $0.contains("drive=vol1") && $0.hasSuffix("bootindex=1") })
        #expect(devices.contains { $0.contains("drive=vol0") && $0.hasSuffix("bootindex=2") })
    }

    @Test func nicsConsoleDisplayGuestAgentAndEntropy() {
        let arguments = self.realVM().arguments
        let devices = self.value(after: "-device", in: arguments)
        #expect(self.value(after: "-netdev", in: arguments) == [
            "tap,id=net0,ifname=cv-win,script=no,downscript=no", "tap,id=net1,ifname=cv-win-abcd1,script=no,downscript=no",
        ])
        #expect(devices.contains("virtio-net-pci,netdev=net1,mac=52:54:00:00:00:02,id=nic1"))
        #expect(self.value(after: "-chardev", in: arguments) == [
            "socket,id=console,path=/run/c/win.console,server=on,wait=off,logfile=/run/c/win.console.log,logappend=on",
            "socket,id=qga0,path=/run/c/win.qga,server=on,wait=off",
        ])
        #expect(devices.contains("virtserialport,bus=vserial0.0,chardev=qga0,name=org.qemu.guest_agent.0"))
        #expect(self.value(after: "-vnc", in: arguments) == ["unix:/run/c/win.vnc"])
        #expect(!arguments.contains("-display"))
        #expect(devices.contains("VGA,id=video0"))
        #expect(devices.contains("virtio-rng-pci,rng=rng0,id=rng0dev"))
        // The kernel-directory test guest: no graphics, no display.
        #expect(self.value(after: "-display", in: self.commandLine().arguments) == ["none"])
        #expect(!self.value(after: "-device", in: self.commandLine().arguments).contains("VGA,id=video0"))
    }

    @Test func tapAndMACOfEveryNICAreDistinctAndStable() {
        let taps = (0..<4).map { NIC.tapName(for: "plant-controller-primary", index: $0) }
        #expect(Set(taps).count == 4 && taps.allSatisfy { $0.utf8.count <= 15 })
        #expect(taps[0] == NIC.tapName(for: "plant-controller-primary"))
        #expect(NIC.mac(for: "web", index: 0) == NIC.mac(for: "web"))
        #expect(NIC.mac(for: "web", index: 1) != NIC.mac(for: "web") && NIC.mac(for: "web", index: 1) == NIC.mac(for: "web", index: 1))
    }

    @Test func firmwareBootResolution() {
        var spec = VMSpec(volumes: ["os", "data"], boot: "os")
        guard case .success(.firmware) = resolveBoot(spec) else { Issue.record("volume boot refused"); return }
        spec.boot = "oss"
        guard case .failure(let message) = resolveBoot(spec) else { Issue.record("unknown volume accepted"); return }
        #expect(message.contains("oss") && message.contains("os, data"))
        spec.boot = VMSpec.cdromBoot
        guard case .failure(let noCD) = resolveBoot(spec) else { Issue.record("cdrom boot without cdrom accepted"); return }
        #expect(noCD.contains("no cdrom"))
    }

    @Test func uefiVariablesHeader() {
        var header = [UInt8](repeating: 0, count: 64)
        #expect(!UEFIVariables.holdsVariables(header))
        header.replaceSubrange(40..<44, with: Array("_FVH".utf8))
        #expect(UEFIVariables.holdsVariables(header))
        #expect(!UEFIVariables.holdsVariables(Array(header.prefix(42))))
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

@Suite struct DiskImportTests {
    let info = DiskImport.ImageInfo(format: "qcow2", virtualSize: 10 << 30)

    @Test func convertsIntoTheExportWithoutWritingZerosOnABlankVolume() throws {
        let command = try DiskImport.convertCommand(image: "/srv/vm.qcow2", info: self.info, volume: "vm-vda", volumeSize: 10 << 30,
                                                    uri: "nbd+unix:///vm-vda?socket=/run/clevervm/vm-vda.nbd", volumeIsZero: true, overwrite: false)
        #expect(command == ["qemu-img", "convert", "-p", "-n", "-f", "qcow2", "-O", "raw", "--target-is-zero", "/srv/vm.qcow2",
                            "nbd+unix:///vm-vda?socket=/run/clevervm/vm-vda.nbd"])
        let overwriting = try DiskImport.convertCommand(image: "/srv/vm.qcow2", info: self.info, volume: "vm-vda", volumeSize: 20 << 30,
                                                        uri: "u", volumeIsZero: false, overwrite: true)
        #expect(!overwriting.contains("--target-is-zero"))
    }

    @Test func refusesASmallVolumeAnUnknownFormatAndOldDataWithoutOverwrite() throws {
        do {
            _ = try DiskImport.convertCommand(image: "/srv/vm.qcow2", info: self.info, volume: "vm-vda", volumeSize: 8 << 30, uri: "u",
                                              volumeIsZero: true, overwrite: false)
            Issue.record("a small volume was accepted")
        } catch {
            #expect(error.description.contains("vm-vda") && error.description.contains("10240MiB"))
        }
        #expect(throws: DiskImport.Failure.self) {
            try DiskImport.convertCommand(image: "/srv/x.iso", info: DiskImport.ImageInfo(format: "dmg", virtualSize: 1), volume: "v",
                                          volumeSize: 1 << 20, uri: "u", volumeIsZero: true, overwrite: false)
        }
        #expect(throws: DiskImport.Failure.self) {
            try DiskImport.convertCommand(image: "/srv/vm.qcow2", info: self.info, volume: "v", volumeSize: 10 << 30, uri: "u",
                                          volumeIsZero: false, overwrite: false)
        }
        #expect(throws: DiskImport.Failure.self) { try DiskImport.ImageInfo.parse(json: "qemu-img: Could not open", image: "x") }
        #expect(try DiskImport.ImageInfo.parse(json: #"{"format": "vmdk", "virtual-size": 1048576}"#, image: "x")
            == DiskImport.ImageInfo(format: "vmdk", virtualSize: 1 << 20))
    }
}

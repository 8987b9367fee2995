@testable import CleverCIB
import CleverConfig
import CleverModel
import CleverTesting
import Foundation
import Testing

/// `virsh dumpxml`-style domains (Tests/Corpus/libvirt) imported into a two-host config that must validate, with
/// every element that is not carried over reported.
@Suite struct LibvirtImportTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Corpus/libvirt")
    static let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
        .filter { $0.hasSuffix(".xml") }.map { String($0.dropLast(4)) }.sorted()

    func load(_ name: String, sizes: [String: UInt64] = [:]) throws -> LibvirtImport.Result {
        let options = LibvirtImport.Options(sourceSize: { sizes[$0] }, address: nil)
        return try LibvirtImport.load(path: Self.directory.appendingPathComponent("\(name).xml").path, options: options)
    }

    /// The import added to the two-host installation (without its own VM), rendered and read back: what
    /// `clevervm config import-libvirt DOMAIN.xml --config CLUSTER.yaml` prints must pass `config check`.
    func validated(_ result: LibvirtImport.Result) throws -> ClusterConfig {
        var config = Fixtures.twoHost()
        config.resources = []
        config.constraints = []
        config.resources += result.resources
        let text = ConfigFile.render(config)
        do {
            return try ConfigFile.parse(text, file: "imported.yaml")
        } catch {
            Issue.record("\(error)\n\(text)")
            throw error
        }
    }

    func vm(_ config: ClusterConfig) throws -> VMSpec {
        guard case .vm(let spec) = try #require(config.resources.first { $0.kind.typeName == "vm" }).kind else { throw LabError() }
        return spec
    }

    struct LabError: Error {}

    @Test func thereAreAtLeastSixShapes() {
        #expect(Self.names.count >= 6, "\(Self.names)")
    }

    @Test(arguments: Self.names) func everyDomainGivesAConfigThatValidates(_ name: String) throws {
        let result = try self.load(name)
        let config = try self.validated(result)
        let spec = try self.vm(config)
        #expect(!spec.volumes.isEmpty || spec.cdrom != nil)
        #expect(spec.stateVolume != nil, "a VM that can move has a state volume")
        // Nothing silently dropped: every domain here has something that is not carried over.
        #expect(!result.unsupported.isEmpty)
        #expect(result.unsupported.allSatisfy { $0.elementPath.hasPrefix("domain") && !$0.reason.isEmpty })
    }

    @Test func debianBIOSOnVirtio() throws {
        let result = try self.load("debian12-bios-virtio", sizes: ["/var/lib/libvirt/images/mba7.qcow2": 10 << 30])
        let config = try self.validated(result)
        let spec = try self.vm(config)
        #expect(spec.cpus == 2 && spec.memoryMiB == 2048)
        #expect(spec.volumes == ["mba7-vda"] && spec.boot == "mba7-vda")
        #expect(spec.firmware == nil && spec.nvramVolume == nil)
        #expect(spec.machine == "pc-q35-7.2" && spec.cpuModel == nil)
        #expect(spec.bridge == "br0" && spec.mac == "52:54:00:3b:7c:11")
        #expect(spec.guestAgent == true && spec.display == .vnc)
        guard case .volume(let disk) = try #require(config.resource(named: "mba7-vda")).kind else { Issue.record("no volume"); return }
        #expect(disk.size == 10 << 30)
        #expect(result.disks == [LibvirtImport.DiskSource(volume: "mba7-vda", source: "/var/lib/libvirt/images/mba7.qcow2", format: "qcow2")])
        let reported = result.unsupported.map(\.elementPath)
        #expect(reported.contains("domain/uuid"))
        #expect(reported.contains("domain/cpu/@mode"), "host-model becomes a named model")
        #expect(reported.contains("domain/devices/memballoon"))
        #expect(reported.contains("domain/devices/graphics/listen"), "a network VNC listener becomes a unix socket")
        #expect(reported.contains("domain/seclabel") && reported.contains("domain/pm") && reported.contains("domain/resource"))
        #expect(!reported.contains { $0.contains("devices/rng") || $0.contains("channel") || $0.contains("serial") })
    }

    @Test func windowsUEFIOnSATAWithSpice() throws {
        let result = try self.load("win2019-uefi-sata")
        let spec = try self.vm(try self.validated(result))
        #expect(spec.memoryMiB == 8192 && spec.cpus == 4)
        #expect(spec.firmware == .uefi && spec.nvramVolume == "scada-hmi-nvram")
        #expect(spec.cpuModel == "Haswell-noTSX-IBRS")
        #expect(spec.cdrom == "/var/lib/libvirt/images/virtio-win-0.1.240.iso")
        #expect(spec.bridge == "virbr0" && spec.display == .vnc && spec.guestAgent == nil)
        #expect(result.disks.contains(LibvirtImport.DiskSource(volume: "scada-hmi-nvram", source: "/var/lib/libvirt/qemu/nvram/scada-hmi_VARS.fd", format: "raw")))
        let byPath = Dictionary(result.unsupported.map { ($0.elementPath, $0.reason) }, uniquingKeysWith: { $0 + "; " + $1 })
        #expect(byPath["domain/devices/disk[@target=sda]/target/@bus"]?.contains("virtio drivers") == true)
        #expect(byPath["domain/os/loader/@secure"]?.contains("Secure Boot") == true)
        #expect(byPath["domain/devices/tpm"]?.contains("TPM") == true)
        #expect(byPath["domain/clock/@offset"] == nil && byPath.keys.contains("domain/clock"))
        #expect(byPath["domain/devices/interface[@mac=52:54:00:a1:b2:c3]/model"]?.contains("e1000e") == true)
        #expect(byPath.keys.contains("domain/features/hyperv") && byPath.keys.contains("domain/cpu/topology"))
        #expect(byPath.keys.contains { $0.hasPrefix("domain/devices/graphics") && byPath[$0]!.contains("SPICE") })
        #expect(result.unsupported.filter { $0.elementPath == "domain/devices/redirdev" }.count == 2, "each element reported")
        // Not readable here: the default size, said so.
        #expect(byPath["domain/devices/disk[@target=sda]"]?.contains("20 GiB") == true)
    }

    @Test func blockDisksOnSCSIBootOrderTwoBridgesAndHostCPU() throws {
        let result = try self.load("plantctl-block-scsi")
        let spec = try self.vm(try self.validated(result))
        #expect(spec.volumes == ["plantctl-sda", "plantctl-sdb"] && spec.boot == "plantctl-sda")
        #expect(spec.diskBus == .virtioSCSI && spec.cpuModel == "host")
        #expect(spec.bridge == "br-plant" && spec.extraNICs == [VMSpec.NICSpec(bridge: "br-office", mac: "52:54:00:10:20:02")])
        #expect(result.disks.map(\.source) == ["/dev/vg0/plantctl-os", "/dev/vg0/plantctl-historian"])
        let reported = result.unsupported.map(\.elementPath)
        #expect(reported.contains("domain/vcpu/@cpuset") && reported.contains("domain/devices/watchdog"))
        #expect(reported.contains("domain/devices/interface[@mac=52:54:00:10:20:02]/bandwidth"))
        #expect(!reported.contains("domain/devices/memballoon"), "model none is what CleverVM does")
    }

    @Test func legacyIDEOnI440FXInBytesWithAnEmptyCDROM() throws {
        let result = try self.load("legacy-ide-i440fx")
        let config = try self.validated(result)
        let spec = try self.vm(config)
        #expect(config.resources.first?.id == "opc-gateway", "the name made an id")
        #expect(spec.memoryMiB == 1024 && spec.cpus == 1 && spec.machine == "pc-i440fx-2.11")
        #expect(spec.cdrom == nil && spec.boot == "opc-gateway-hda")
        #expect(spec.bridge == "plantnet")
        let reported = result.unsupported.map(\.elementPath)
        #expect(reported.contains("domain/devices/disk[@target=hdc]"), "the empty CD-ROM")
        #expect(reported.contains("domain/devices/disk[@target=fda]"), "the floppy")
        #expect(reported.contains("domain/os/bootmenu"))
        #expect(reported.contains("domain/devices/interface[@mac=52:54:00:de:ad:01]/filterref"))
        #expect(reported.contains("domain/devices/video"))
    }

    @Test func firmwareEFIAutoSelectionTwoVirtioDisksAndBootOrder() throws {
        let result = try self.load("debian11-firmware-efi")
        let spec = try self.vm(try self.validated(result))
        #expect(spec.firmware == .uefi && spec.nvramVolume == "historian-nvram")
        #expect(spec.memoryMiB == 4096 && spec.cpus == 2 && spec.cpuModel == "Nehalem")
        #expect(spec.volumes == ["historian-vdb", "historian-vda"] && spec.boot == "historian-vda", "the disk with boot order 1")
        let reported = result.unsupported.map(\.elementPath)
        #expect(reported.contains("domain/currentMemory") && reported.contains("domain/vcpu/@current"))
        #expect(!reported.contains { $0.hasPrefix("domain/os/firmware") }, "no Secure Boot asked for")
    }

    @Test func windowsBIOSWithVMDKNetworkDiskDirectNICAndPassthrough() throws {
        let result = try self.load("win10-bios-mixed")
        let spec = try self.vm(try self.validated(result))
        #expect(spec.memoryMiB == 5723, "6000 MB in MiB, rounded up")
        #expect(spec.volumes == ["eng-station-sda"] && spec.boot == "eng-station-sda")
        #expect(spec.cdrom == "/srv/iso/Win10_22H2_English_x64.iso")
        #expect(spec.bridge == "virbr0" && spec.extraNICs == nil, "the macvtap NIC is not carried")
        #expect(spec.guestAgent == true && spec.display == .vnc)
        #expect(result.disks == [LibvirtImport.DiskSource(volume: "eng-station-sda", source: "/srv/vm/eng-station.vmdk", format: "vmdk")])
        let reported = result.unsupported.map(\.elementPath)
        #expect(reported.contains("domain/devices/disk[@target=sdc]"), "the rbd disk")
        #expect(reported.contains("domain/devices/interface[@mac=52:54:00:77:88:9a]"), "the direct NIC")
        #expect(reported.contains("domain/devices/hostdev") && reported.contains("domain/devices/sound"))
        #expect(reported.contains("domain/devices/channel"), "the spice agent channel")
    }

    @Test func unitsAndBadInput() throws {
        #expect(LibvirtImport.bytes("4", unit: "G") == 4 << 30)
        #expect(LibvirtImport.bytes("4194304", unit: nil) == 4 << 30)
        #expect(LibvirtImport.bytes("1", unit: "TB") == 1_000_000_000_000)
        #expect(LibvirtImport.bytes("1", unit: "parsec") == nil)
        #expect(LibvirtImport.bytes("x", unit: "KiB") == nil)
        #expect(throws: CIBError.self) { try LibvirtImport.parse("<cib/>", file: "x.xml") }
        do {
            _ = try LibvirtImport.parse("<domain><name>a</name><memory unit='furlong'>1</memory></domain>", file: "x.xml")
            Issue.record("a bad unit was accepted")
        } catch {
            #expect(error.description.contains("furlong") && error.description.contains("memory"))
        }
    }
}

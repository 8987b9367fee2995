import CleverModel
import Testing

@testable import CleverConfig

/// The keys of a VM that boots an installed OS from its volumes (issue 12): read, checked, rendered back.
@Suite struct RealVMConfigTests {
    static func document(_ vmLines: [String]) -> String {
        twoNodes + """
            resources:
              - {id: os, type: volume, size: 1GiB, backing: /dev/vg/os, port: 7800}
              - {id: data, type: volume, size: 1GiB, backing: /dev/vg/data, port: 7801}
              - {id: vars, type: volume, size: 1MiB, backing: /dev/vg/vars, port: 7802}
              - id: web
                type: vm

            """ + vmLines.map { "    \($0)\n" }.joined()
    }

    static func vm(_ config: ClusterConfig?) -> VMSpec? {
        guard case .vm(let spec)? = config?.resource(named: "web")?.kind else { return nil }
        return spec
    }

    @Test func theRealVMExampleValidates() throws {
        let config = try ConfigFile.load(path: TestFiles.repository.appendingPathComponent("examples/mba7-real-vm.yaml").path)
        guard case .vm(let spec)? = config.resource(named: "mba7")?.kind else {
            Issue.record("no vm mba7")
            return
        }
        #expect(spec.bootVolume == "mba7-vda" && spec.machine == "pc-q35-7.2" && spec.guestAgent == true && spec.display == .vnc)
    }

    @Test func everyKeyIsReadAndRenderedBack() throws {
        let config = parse(Self.document([
            "volumes: [os, data]", "boot: os", "firmware: uefi", "nvram: vars", "cdrom: /srv/iso/debian.iso",
            "disk-bus: virtio-scsi", "bridge: br0", "nics: [{bridge: br1}, {bridge: br2, mac: 52:54:00:00:00:02}]",
            "cpu-model: Haswell-v4", "machine: pc-q35-7.2", "guest-agent: true", "display: vnc",
        ]))
        let spec = try #require(Self.vm(config))
        #expect(spec.bootVolume == "os" && spec.firmware == .uefi && spec.nvramVolume == "vars")
        #expect(spec.cdrom == "/srv/iso/debian.iso" && spec.diskBus == .virtioSCSI)
        #expect(spec.extraNICs == [VMSpec.NICSpec(bridge: "br1"), VMSpec.NICSpec(bridge: "br2", mac: "52:54:00:00:00:02")])
        #expect(spec.cpuModel == "Haswell-v4" && spec.machine == "pc-q35-7.2" && spec.guestAgent == true && spec.display == .vnc)
        #expect(spec.allVolumes == ["os", "data", "vars"])
        let again = try ConfigFile.parse(ConfigFile.render(try #require(config)), file: "rendered.yaml")
        #expect(again == config)
        // The variables volume is promoted before the VM starts, like its disks.
        #expect(config?.effectiveConstraints.contains { constraint in
            if case .order(let order) = constraint { return order.first == "vars" && order.then == "web" }
            return false
        } == true)
    }

    @Test func bootMustNameOneOfTheVolumes() {
        expectSingleError(Self.document(["volumes: [os, data]", "boot: oss"]), line: 13, column: 11, path: "resources[3].boot",
                          containing: "'oss' is not one of the VM's volumes")
    }

    @Test func uefiNeedsItsOwnVariablesVolume() {
        expectSingleError(Self.document(["volumes: [os]", "boot: os", "firmware: uefi"]), line: 14, column: 15,
                          path: "resources[3].firmware", containing: "needs an nvram volume")
        expectSingleError(Self.document(["volumes: [os, data]", "boot: os", "firmware: uefi", "nvram: data"]), line: 15, column: 12,
                          path: "resources[3].nvram", containing: "also a disk")
        expectSingleError(Self.document(["volumes: [os]", "boot: os", "firmware: uefi", "nvram: varz"]), line: 15, column: 12,
                          path: "resources[3].nvram", containing: "'varz' is not a defined resource")
    }

    @Test func cdromBootNeedsACDROMAndBadValuesAreNamed() {
        expectSingleError(Self.document(["volumes: [os]", "boot: cdrom"]), line: 13, column: 11, path: "resources[3].boot",
                          containing: "needs a cdrom")
        expectSingleError(Self.document(["volumes: [os]", "boot: os", "disk-bus: ide"]), line: 14, column: 15,
                          path: "resources[3].disk-bus", containing: "ide")
        expectSingleError(Self.document(["volumes: [os]", "boot: os", "nics: [{bridge: br1}]"]), line: 14, column: 11,
                          path: "resources[3].nics", containing: "the first is 'bridge'")
        expectSingleError(Self.document(["volumes: [os]", "boot: os", "cpu-model: 'host; rm'"]), line: 14, column: 16,
                          path: "resources[3].cpu-model", containing: "not a CPU model")
    }
}

import CleverModel
import Foundation

/// Imports a libvirt domain (the XML that `virsh dumpxml` prints) as a CleverVM `vm` resource with one
/// replicated `volume` per disk, a volume for its UEFI variables, and optionally a floating address. As for the
/// CIB, everything that is not carried over is reported by element and reason, never dropped silently.
public enum LibvirtImport {
    public struct Options: Sendable {
        /// The size of a disk's source (a file or block device), when it can be read here; nil: unknown.
        public var sourceSize: @Sendable (String) -> UInt64?
        /// Where each host keeps a volume's backing file: `<backingDirectory>/<volume>.img`.
        public var backingDirectory: String
        /// The replication port of the first volume; the next ones count up.
        public var firstPort: Int
        public var secretFile: String?
        /// A libvirt network's bridge on the CleverVM hosts (libvirt's own `default` network is `virbr0`).
        public var networkBridges: [String: String]
        /// A floating address (`ADDRESS/PREFIX`) that follows the VM, as an `ip` resource.
        public var address: (address: String, prefixLength: Int)?

        public init(sourceSize: @escaping @Sendable (String) -> UInt64? = { _ in nil },
                    backingDirectory: String = "/var/lib/clevervm/volumes", firstPort: Int = 7800,
                    secretFile: String? = "/etc/clevervm/volumes.secret", networkBridges: [String: String] = [:],
                    address: (address: String, prefixLength: Int)? = nil) {
            self.sourceSize = sourceSize
            self.backingDirectory = backingDirectory
            self.firstPort = firstPort
            self.secretFile = secretFile
            self.networkBridges = networkBridges
            self.address = address
        }
    }

    /// A disk's contents to bring into its volume (`clevervm volume import VOLUME SOURCE`).
    public struct DiskSource: Sendable, Hashable {
        public var volume: String
        public var source: String
        /// libvirt's driver type: raw, qcow2, vmdk…; nil when not given.
        public var format: String?
    }

    public struct Result: Sendable {
        /// The VM, its volumes and its address, in that order (volumes first), ready to add to a config.
        public var resources: [ResourceConfig]
        public var disks: [DiskSource]
        public var unsupported: [UnsupportedElement]
    }

    /// Used when a disk's size cannot be read here (its file is on the old host).
    public static let unknownDiskSize: UInt64 = 20 << 30
    /// OVMF's 4 MiB variables store fits with room; libvirt's 128 KiB one too.
    public static let nvramVolumeSize: UInt64 = 1 << 20

    public static func load(path: String, options: Options = Options()) throws(CIBError) -> Result {
        try self.parse(try CIBImport.readText(path), file: path, options: options)
    }

    public static func parse(_ xml: String, file: String, options: Options = Options()) throws(CIBError) -> Result {
        let root = try XMLTree.parse(xml, file: file)
        guard root.name == "domain" else {
            throw CIBError(file: file, element: root.name, line: root.line,
                           message: "the root element is <\(root.name)>, expected <domain> (what `virsh dumpxml` prints)")
        }
        var importer = LibvirtImporter(file: file, root: root, options: options)
        return try importer.run()
    }

    /// libvirt's memory units (`unit` attribute, default KiB) in bytes.
    static func bytes(_ value: String, unit: String?) -> UInt64? {
        guard let number = UInt64(value.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        let multiplier: UInt64? = switch (unit ?? "KiB").lowercased() {
        case "b", "bytes": 1
        case "kb": 1000
        case "k", "kib": 1 << 10
        case "mb": 1_000_000
        case "m", "mib": 1 << 20
        case "gb": 1_000_000_000
        case "g", "gib": 1 << 30
        case "tb": 1_000_000_000_000
        case "t", "tib": 1 << 40
        default: nil
        }
        guard let multiplier else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// A CleverVM id from a libvirt name: letters, digits, `_`, `-`, `.`, starting with a letter.
    static func identifier(_ name: String) -> String {
        var id = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) ? $0 : "-" })
        if let first = id.first, !first.isLetter, first != "_" { id = "vm-" + id }
        return id.isEmpty ? "vm" : id
    }
}

/// One import: walks the domain, builds the resources and collects what it leaves behind.
struct LibvirtImporter {
    let file: String
    let root: XMLNode
    let options: LibvirtImport.Options
    var unsupported: [UnsupportedElement] = []

    init(file: String, root: XMLNode, options: LibvirtImport.Options) {
        self.file = file
        self.root = root
        self.options = options
    }

    mutating func report(_ path: String, _ reason: String) {
        self.unsupported.append(UnsupportedElement(elementPath: path, reason: reason))
    }

    func error(_ element: XMLNode, _ path: String, _ message: String) -> CIBError {
        CIBError(file: self.file, element: path, line: element.line, message: message)
    }

    struct Disk {
        var target: String
        var bus: String
        var source: String?
        var format: String?
        var bootOrder: Int?
    }

    mutating func run() throws(CIBError) -> LibvirtImport.Result {
        let domain = self.root
        if let type = domain["type"], type != "kvm", type != "qemu" {
            self.report("domain", "domain type \(type): CleverVM runs QEMU (KVM or TCG)")
        }
        guard let nameNode = domain.child(named: "name"), !nameNode.text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw self.error(domain, "domain", "the domain has no <name>")
        }
        let name = nameNode.text.trimmingCharacters(in: .whitespacesAndNewlines)
        let vm = LibvirtImport.identifier(name)
        var spec = VMSpec(boot: "")
        spec.stopMode = .hibernate

        guard let memoryNode = domain.child(named: "memory") else { throw self.error(domain, "domain", "the domain has no <memory>") }
        guard let memory = LibvirtImport.bytes(memoryNode.text, unit: memoryNode["unit"]) else {
            throw self.error(memoryNode, "domain/memory", "memory '\(memoryNode.text)' \(memoryNode["unit"] ?? "KiB") is not a size libvirt writes")
        }
        spec.memoryMiB = Int((memory + (1 << 20) - 1) >> 20)
        if let current = domain.child(named: "currentMemory"), let bytes = LibvirtImport.bytes(current.text, unit: current["unit"]), bytes != memory {
            self.report("domain/currentMemory", "ballooned to \(bytes >> 20) MiB: CleverVM gives the guest all of <memory> (\(spec.memoryMiB) MiB)")
        }
        if let vcpu = domain.child(named: "vcpu") {
            guard let count = Int(vcpu.text.trimmingCharacters(in: .whitespacesAndNewlines)), count >= 1 else {
                throw self.error(vcpu, "domain/vcpu", "vcpu '\(vcpu.text)' is not a count")
            }
            spec.cpus = count
            if let current = vcpu["current"], current != vcpu.text.trimmingCharacters(in: .whitespaces) {
                self.report("domain/vcpu/@current", "\(current) of \(count) vCPUs online: CleverVM starts all \(count)")
            }
            if vcpu["cpuset"] != nil { self.report("domain/vcpu/@cpuset", "host CPU pinning ties the VM to one host's CPUs") }
        }

        var disks: [Disk] = []
        var diskSources: [LibvirtImport.DiskSource] = []
        var osBootDevices: [String] = []
        var uefiVariablesSource: String?
        for child in domain.children {
            let path = "domain/\(child.pathStep)"
            switch child.name {
            case "name", "memory", "currentMemory", "vcpu": break
            case "uuid": self.report(path, "the SMBIOS UUID is not kept (QEMU makes one); a guest licence bound to it may need re-activation")
            case "title", "description", "metadata": self.report(path, "not carried over (CleverVM keeps no domain metadata)")
            case "os": osBootDevices = self.importOS(child, path: path, into: &spec, variables: &uefiVariablesSource)
            case "features": self.importFeatures(child, path: path)
            case "cpu": self.importCPU(child, path: path, into: &spec)
            case "clock":
                if let offset = child["offset"], offset != "utc" {
                    self.report(path, "clock offset \(offset): the guest's RTC runs in UTC (set Windows' RealTimeIsUniversal)")
                }
                for timer in child.children(named: "timer") where timer["name"] != "rtc" && timer["name"] != "pit" && timer["name"] != "hpet" {
                    self.report("\(path)/\(timer.pathStep)", "timer \(timer["name"] ?? "?") settings are QEMU's defaults")
                }
            case "on_poweroff", "on_reboot":
                let expected = child.name == "on_poweroff" ? "destroy" : "restart"
                if child.text.trimmingCharacters(in: .whitespaces) != expected {
                    self.report(path, "\(child.text): a powered-off VM is stopped and a rebooting VM reboots in place")
                }
            case "on_crash": self.report(path, "the cluster's monitor restarts a crashed (panicked) guest, whatever on_crash says")
            case "devices":
                self.importDevices(child, path: path, vm: vm, into: &spec, disks: &disks)
            default:
                self.report(path, "<\(child.name)> has no CleverVM equivalent; not carried over")
            }
        }

        // Volumes: one per disk, named after the VM and the guest's device name.
        var resources: [ResourceConfig] = []
        var port = self.options.firstPort
        func volume(_ id: String, size: UInt64) -> ResourceConfig {
            var volumeSpec = VolumeSpec(size: size, backing: "\(self.options.backingDirectory)/\(id).img", port: port)
            volumeSpec.secretFile = self.options.secretFile
            port += 1
            return ResourceConfig(id: id, kind: .volume(volumeSpec))
        }
        for disk in disks {
            let id = "\(vm)-\(LibvirtImport.identifier(disk.target))"
            var size = disk.source.flatMap(self.options.sourceSize)
            if size == nil {
                self.report("domain/devices/disk[@target=\(disk.target)]",
                            "its size could not be read here (\(disk.source ?? "no source")): volume \(id) is \(LibvirtImport.unknownDiskSize >> 30) GiB; correct it before importing the disk")
                size = LibvirtImport.unknownDiskSize
            }
            resources.append(volume(id, size: Self.roundUp(size!)))
            spec.volumes.append(id)
            if let source = disk.source { diskSources.append(LibvirtImport.DiskSource(volume: id, source: source, format: disk.format)) }
        }
        // The bus for all disks: virtio-scsi only when every disk was on SCSI (one controller for all).
        if !disks.isEmpty, disks.allSatisfy({ $0.bus == "scsi" }) { spec.diskBus = .virtioSCSI }
        // Boot: a disk's own <boot order>, else <os><boot dev>; hd means the first disk.
        let ordered = zip(disks, spec.volumes).filter { $0.0.bootOrder != nil }.sorted { $0.0.bootOrder! < $1.0.bootOrder! }
        if let first = ordered.first {
            spec.boot = first.1
        } else if osBootDevices.first == "cdrom", spec.cdrom != nil {
            spec.boot = VMSpec.cdromBoot
        } else if let first = spec.volumes.first {
            spec.boot = first
        } else if spec.cdrom != nil {
            spec.boot = VMSpec.cdromBoot
        } else {
            throw self.error(domain, "domain/devices", "the domain has no disk and no CD-ROM to boot from")
        }
        for device in osBootDevices where device != "hd" && device != "cdrom" {
            self.report("domain/os/boot[@dev=\(device)]", "booting from \(device) is not offered (disks and the CD-ROM are)")
        }
        if spec.firmware == .uefi {
            let id = "\(vm)-nvram"
            resources.append(volume(id, size: LibvirtImport.nvramVolumeSize))
            spec.nvramVolume = id
            if let source = uefiVariablesSource { diskSources.append(LibvirtImport.DiskSource(volume: id, source: source, format: "raw")) }
        }
        let stateID = "\(vm)-state"
        resources.append(volume(stateID, size: Self.roundUp(UInt64(spec.memoryMiB + 64) << 20)))
        spec.stateVolume = stateID
        if let address = self.options.address {
            let id = "\(vm)-ip"
            resources.append(ResourceConfig(id: id, kind: .ip(IPSpec(address: address.address, prefixLength: address.prefixLength))))
            spec.addresses = [id]
        }
        resources.insert(ResourceConfig(id: vm, kind: .vm(spec), operationTimeout: Seconds(120)), at: 0)
        return LibvirtImport.Result(resources: resources, disks: diskSources, unsupported: self.unsupported)
    }

    static func roundUp(_ bytes: UInt64) -> UInt64 { (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20) }

    // MARK: - os, features, cpu

    mutating func importOS(_ os: XMLNode, path: String, into spec: inout VMSpec, variables: inout String?) -> [String] {
        var bootDevices: [String] = []
        if os["firmware"] == "efi" { spec.firmware = .uefi }
        for child in os.children {
            let childPath = "\(path)/\(child.pathStep)"
            switch child.name {
            case "type":
                if let arch = child["arch"], arch != "x86_64" { self.report(childPath, "architecture \(arch): CleverVM runs x86_64 guests") }
                if let machine = child["machine"] { spec.machine = machine }
            case "loader":
                let loader = child.text.trimmingCharacters(in: .whitespacesAndNewlines)
                if child["type"] == "pflash" || loader.lowercased().contains("ovmf") || loader.lowercased().contains("edk2") {
                    spec.firmware = .uefi
                    self.report(childPath, "OVMF from each host's Debian `ovmf` (OVMF_CODE_4M.fd) replaces \(loader.isEmpty ? "the loader" : loader)")
                } else if !loader.isEmpty {
                    self.report(childPath, "loader \(loader): a BIOS VM boots SeaBIOS")
                }
                if child["secure"] == "yes" { self.report("\(childPath)/@secure", "Secure Boot is not offered: the VM boots OVMF without it") }
            case "nvram":
                let file = child.text.trimmingCharacters(in: .whitespacesAndNewlines)
                let loader = os.child(named: "loader")?.text ?? ""
                // OVMF_CODE_4M needs the 4 MiB build's variables layout (540672 bytes); a 2 MiB build's store
                // (OVMF_VARS.fd, 128 KiB) would not fit it, so the VM then starts with fresh variables.
                if !file.isEmpty, (child["template"] ?? loader).contains("4M") || (child["template"] == nil && loader.isEmpty) {
                    variables = file
                } else if !file.isEmpty {
                    self.report(childPath, "\(file) is in the 2 MiB OVMF layout; the VM starts with fresh UEFI variables (re-create boot entries if the disk has no EFI/BOOT/BOOTX64.EFI)")
                }
                if let template = child["template"] { self.report("\(childPath)/@template", "the template is OVMF_VARS_4M.fd, not \(template)") }
            case "boot": if let device = child["dev"] { bootDevices.append(device) }
            case "firmware":
                // libvirt's firmware auto-selection: only Secure Boot would matter, and it is not offered.
                if child.children.contains(where: { $0["name"] == "secure-boot" && $0["enabled"] == "yes" }) {
                    self.report(childPath, "Secure Boot is not offered: the VM boots OVMF without it")
                }
            case "bootmenu", "smbios", "bios":
                self.report(childPath, "<\(child.name)> is not carried over (the firmware's defaults apply)")
            case "kernel", "initrd", "cmdline", "dtb":
                self.report(childPath, "direct kernel boot: use boot: DIRECTORY with vmlinuz, initrd and cmdline")
            default: self.report(childPath, "<\(child.name)> is not carried over")
            }
        }
        return bootDevices
    }

    mutating func importFeatures(_ features: XMLNode, path: String) {
        for feature in features.children {
            switch feature.name {
            // What QEMU's q35/pc machines give every guest anyway.
            case "acpi", "apic", "pae", "vmport": break
            case "hyperv": self.report("\(path)/hyperv", "Hyper-V enlightenments are not set; Windows guests run without them (slower timers)")
            case "smm": self.report("\(path)/smm", "SMM is only needed for Secure Boot, which is not offered")
            default: self.report("\(path)/\(feature.pathStep)", "feature \(feature.name) is not carried over")
            }
        }
    }

    mutating func importCPU(_ cpu: XMLNode, path: String, into spec: inout VMSpec) {
        switch cpu["mode"] ?? "custom" {
        case "host-passthrough":
            spec.cpuModel = "host"
            self.report("\(path)/@mode", "host-passthrough kept as cpu-model: host; live moves then need identical hosts")
        case "host-model":
            self.report("\(path)/@mode", "host-model becomes a named model every host runs (Nehalem under KVM), so live moves work")
        default:
            if let model = cpu.child(named: "model")?.text.trimmingCharacters(in: .whitespacesAndNewlines), !model.isEmpty {
                spec.cpuModel = model
            }
        }
        for child in cpu.children {
            switch child.name {
            case "model": break
            case "topology":
                self.report("\(path)/topology", "sockets/cores/threads are not kept: the guest sees \(spec.cpus) single-core sockets")
            default: self.report("\(path)/\(child.pathStep)", "<\(child.name)> is not carried over (the model's own features apply)")
            }
        }
    }

    // MARK: - devices

    mutating func importDevices(_ devices: XMLNode, path: String, vm: String, into spec: inout VMSpec, disks: inout [Disk]) {
        var nics: [VMSpec.NICSpec] = []
        var reportedAddresses = false
        for device in devices.children {
            let devicePath = "\(path)/\(device.pathStep)"
            if !reportedAddresses, device.child(named: "address") != nil, device.name != "controller" {
                reportedAddresses = true
                self.report("\(path)/*/address", "device addresses (PCI slots, drive units) are not kept: the guest sees its devices at new addresses")
            }
            switch device.name {
            case "emulator": break  // each host's qemu-system-x86_64
            case "disk": self.importDisk(device, path: devicePath, into: &spec, disks: &disks)
            case "controller":
                if device["type"] == "scsi", let model = device["model"], model != "virtio-scsi" {
                    self.report(devicePath, "SCSI controller \(model): the disks are on virtio-scsi (the guest needs its driver)")
                } else if !["pci", "usb", "sata", "ide", "virtio-serial", "scsi"].contains(device["type"] ?? "") {
                    self.report(devicePath, "controller \(device["type"] ?? "?") is not carried over")
                }
                // Other controllers come with the devices that need them.
            case "interface":
                if let nic = self.importInterface(device, path: devicePath) { nics.append(nic) }
            case "graphics":
                switch device["type"] {
                case "vnc": spec.display = .vnc
                case "spice":
                    spec.display = .vnc
                    self.report(devicePath, "SPICE is not offered: the VM gets a VNC display instead")
                default: self.report(devicePath, "graphics \(device["type"] ?? "?") is not offered (vnc is)")
                }
                if device["listen"] != nil || device.child(named: "listen") != nil || device["passwd"] != nil {
                    self.report("\(devicePath)/listen", "the display is a root-only unix socket (the web console shows it), not a network listener")
                }
            case "video":
                let model = device.child(named: "model")?["type"] ?? "vga"
                if model != "vga" { self.report(devicePath, "video \(model): the guest sees a standard VGA card") }
            case "channel":
                let target = device.child(named: "target")?["name"]
                if target == "org.qemu.guest_agent.0" {
                    spec.guestAgent = true
                } else {
                    self.report(devicePath, "channel \(target ?? device["type"] ?? "?") is not carried over (only the guest agent's)")
                }
            case "serial", "console":
                if device["type"] != "pty" && device["type"] != nil {
                    self.report(devicePath, "a \(device["type"]!) serial port: the serial console is a unix socket (clevervm console)")
                }
            case "input":
                if device["bus"] == "usb" || device["type"] == "tablet" {
                    self.report(devicePath, "\(device["type"] ?? "input") on \(device["bus"] ?? "?"): there is no USB; the VNC pointer is a PS/2 mouse")
                } else if device["bus"] == "virtio" {
                    self.report(devicePath, "virtio input is not carried over (PS/2 keyboard and mouse are)")
                }
            case "rng": break  // every VM has virtio-rng from /dev/urandom
            case "memballoon":
                if device["model"] != "none" { self.report(devicePath, "no memory balloon: the guest keeps all its memory") }
            case "tpm": self.report(devicePath, "no TPM: a guest that needs one (Windows 11, measured boot) will not start or will complain")
            case "sound", "audio": self.report(devicePath, "no sound device")
            case "watchdog": self.report(devicePath, "no watchdog device: the cluster's monitor watches the VM")
            case "hostdev", "redirdev", "smartcard", "hub":
                self.report(devicePath, "\(device.name) passes host hardware through: a VM that can move between hosts cannot have it")
            case "filesystem": self.report(devicePath, "shared host directories are not offered: put the data on a volume")
            case "panic": self.report(devicePath, "no pvpanic device: a crashed guest is found by the monitor")
            default: self.report(devicePath, "<\(device.name)> is not carried over")
            }
        }
        if let first = nics.first {
            spec.bridge = first.bridge
            spec.mac = first.mac
            if nics.count > 1 { spec.extraNICs = Array(nics.dropFirst()) }
        }
    }

    mutating func importDisk(_ disk: XMLNode, path: String, into spec: inout VMSpec, disks: inout [Disk]) {
        let device = disk["device"] ?? "disk"
        let target = disk.child(named: "target")?["dev"] ?? "disk\(disks.count)"
        let bus = disk.child(named: "target")?["bus"] ?? "virtio"
        let diskPath = "\(path.prefix { $0 != "[" })[@target=\(target)]"
        let source: String?
        switch disk["type"] ?? "file" {
        case "file": source = disk.child(named: "source")?["file"]
        case "block": source = disk.child(named: "source")?["dev"]
        default:
            self.report(diskPath, "a \(disk["type"]!) disk (\(disk.child(named: "source")?.attributes.description ?? "")) cannot be read here; import its contents by hand")
            source = nil
        }
        switch device {
        case "cdrom":
            guard let source else {
                self.report(diskPath, "an empty CD-ROM drive is not carried over (add cdrom: ISO when installing)")
                return
            }
            if spec.cdrom != nil {
                self.report(diskPath, "a second CD-ROM (\(source)): a VM has one")
                return
            }
            spec.cdrom = source
            self.report(diskPath, "CD-ROM \(source) must exist at that path on every host that may run the VM")
        case "disk":
            if disk["type"] != "file", disk["type"] != "block", disk["type"] != nil { return }
            let driver = disk.child(named: "driver")
            for attribute in ["cache", "io"] where driver?[attribute] != nil {
                self.report("\(diskPath)/driver/@\(attribute)", "\(attribute)=\(driver![attribute]!): the volume decides caching (writes are replicated before they complete)")
            }
            switch bus {
            case "virtio", "scsi": break
            case "sata", "ide", "usb":
                self.report("\(diskPath)/target/@bus", "\(bus) becomes virtio: the guest needs virtio drivers before the move (Windows: virtio-win's viostor)")
            default: self.report("\(diskPath)/target/@bus", "bus \(bus) becomes virtio")
            }
            for child in disk.children where ["readonly", "shareable", "iotune", "encryption", "backingStore", "blockio"].contains(child.name) {
                if child.name == "backingStore", child.children.isEmpty { continue }
                self.report("\(diskPath)/\(child.name)", "<\(child.name)> is not carried over")
            }
            let order = disk.child(named: "boot")?["order"].flatMap { Int($0) }
            disks.append(Disk(target: target, bus: bus, source: source, format: driver?["type"], bootOrder: order))
        default:
            self.report(diskPath, "a \(device) drive is not offered")
        }
    }

    mutating func importInterface(_ interface: XMLNode, path: String) -> VMSpec.NICSpec? {
        let mac = interface.child(named: "mac")?["address"]?.lowercased()
        let nicPath = mac.map { "\(path.prefix { $0 != "[" })[@mac=\($0)]" } ?? path
        let bridge: String
        switch interface["type"] {
        case "bridge":
            guard let name = interface.child(named: "source")?["bridge"] else {
                self.report(nicPath, "a bridge interface without a source bridge")
                return nil
            }
            bridge = name
        case "network":
            let network = interface.child(named: "source")?["network"] ?? "default"
            bridge = self.options.networkBridges[network] ?? (network == "default" ? "virbr0" : network)
            self.report(nicPath, "libvirt network \(network) becomes bridge \(bridge), which must exist on every host (libvirt's NAT and DHCP are not carried over)")
        default:
            self.report(nicPath, "a \(interface["type"] ?? "?") interface is not offered (bridge and network are)")
            return nil
        }
        let model = interface.child(named: "model")?["type"] ?? "virtio"
        if model != "virtio" {
            self.report("\(nicPath)/model", "\(model) becomes virtio-net: the guest needs its driver (Windows: virtio-win's netkvm)")
        }
        for child in interface.children where !["mac", "source", "model", "address", "alias", "target"].contains(child.name) {
            self.report("\(nicPath)/\(child.name)", "<\(child.name)> is not carried over")
        }
        guard bridge.utf8.count <= 15 else {
            self.report(nicPath, "bridge name \(bridge) is longer than Linux's 15 characters")
            return nil
        }
        return VMSpec.NICSpec(bridge: bridge, mac: mac)
    }
}

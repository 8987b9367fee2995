#if canImport(Glibc)
import Glibc
#endif
import CleverModel
import CleverSystem
import Foundation
import Testing

@testable import CleverQEMU

/// `clevervm volume import` as an administrator runs it: the built binary against a replicated volume's running
/// processes (primary on alpha, secondary on beta). A qcow2 image of the BIOS test guest's boot disk goes into the
/// volume with qemu-img's progress; the secondary gets every byte by replication; the VM then boots from it
/// through SeaBIOS.
@Suite(.serialized, .enabled(if: which("qemu-system-x86_64") && which("qemu-img") && which("nbdinfo") && which("sfdisk")))
struct ImportLiveTests {
    /// The built `clevervm`, next to the test bundle.
    static let clevervm = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("clevervm").path

    /// Runs the CLI; (exit status, stdout, stderr).
    static func cli(_ arguments: [String], in directory: String) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.clevervm)
        process.arguments = arguments
        let out = "\(directory)/cli.out"
        let err = "\(directory)/cli.err"
        for file in [out, err] { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    @Test func aQcow2ImageImportedIntoARunningReplicatedVolumeBootsFromIt() throws {
        try TestGuest.build()
        let image = "\(TestGuest.directory)/boot-bios-import.img"
        let built = Subprocess.run(["\(TestGuest.repositoryRoot)/scripts/build-boot-disk.sh", TestGuest.directory, "bios", image,
                                    "quiet writer.disk=/dev/vdb"], timeout: .seconds(300))
        #expect(built.succeeded, "\(built.output)")
        let lab = try VolumeLab("import", size: 64 << 20)
        defer { lab.teardown() }
        try lab.startPair()
        let qcow2 = lab.path("installed.qcow2")
        let converted = Subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", image, qcow2], timeout: .seconds(60))
        #expect(converted.succeeded, "\(converted.output)")
        // Each host's run directory as the agent lays it out: VOLUME.ctl and VOLUME.nbd.
        for node in lab.nodes {
            let run = lab.path("run-\(node)")
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: "\(run)/vol0.ctl", withDestinationPath: lab.path("\(node).ctl"))
            try FileManager.default.createSymbolicLink(atPath: "\(run)/vol0.nbd", withDestinationPath: lab.path("\(node).nbd"))
        }

        // On the secondary: refused, with where to run it.
        let (onSecondary, _, secondaryError) = try Self.cli(["volume", "import", "vol0", qcow2, "--run-directory", lab.path("run-beta")],
                                                           in: lab.directory)
        #expect(onSecondary != 0)
        #expect(secondaryError.contains("volume vol0 is Secondary here; import on the host where it is Primary"), "\(secondaryError)")

        // On the primary: imported, progress on stderr (stdout stays one JSON document).
        let (status, output, progress) = try Self.cli(["volume", "import", "vol0", qcow2, "--run-directory", lab.path("run-alpha"), "--json"],
                                                     in: lab.directory)
        #expect(status == 0, "\(output) \(progress)")
        let report = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        #expect(report?["format"] as? String == "qcow2")
        #expect((report?["imageBytes"] as? NSNumber)?.intValue == 64 << 20)
        #expect(report?["zerosSkipped"] as? Bool == true, "a fresh volume reads as zeros")
        #expect(progress.contains("100.00/100%"), "qemu-img's progress: \(progress.suffix(200))")
        print("volume import: \(output.trimmingCharacters(in: .whitespacesAndNewlines))")

        // A second import would replace the data: refused without --overwrite.
        let (again, _, againError) = try Self.cli(["volume", "import", "vol0", qcow2, "--run-directory", lab.path("run-alpha")], in: lab.directory)
        #expect(again != 0)
        #expect(againError.contains("volume vol0 already holds data; --overwrite replaces it"), "\(againError)")

        // Replicated: both hosts' backing stores hold the image, byte for byte.
        try lab.wait("beta", "UpToDate after the import") { $0.disk == "UpToDate" && $0.peerDisk == "UpToDate" }
        for node in lab.nodes {
            #expect(FileManager.default.contentsEqual(atPath: lab.path("\(node).img"), andPath: image), "\(node)'s copy differs from the image")
        }

        // It boots: SeaBIOS reads the bootloader, kernel and initramfs from the volume on the primary.
        let spec = VMSpec(cpus: 1, memoryMiB: 256, volumes: ["vol0"], boot: "vol0")
        var qemu = QEMUCommandLine(vm: "imported", spec: spec, boot: .firmware, accelerator: .tcg, volumeSockets: [lab.path("alpha.nbd")],
                                   qmpSocket: lab.path("imported.qmp"), consoleLog: lab.path("imported.console"))
        qemu.reconnectDelay = 0
        let pid = try Subprocess.spawnDaemon(qemu.arguments, log: lab.path("imported.qemu.log"))
        defer {
            kill(pid, SIGKILL)
            _ = Subprocess.isAlive(pid)
        }
        let deadline = Date().addingTimeInterval(180)
        var console = ""
        while !console.contains("GUEST UP"), Date() < deadline, Subprocess.isAlive(pid) {
            Thread.sleep(forTimeInterval: 0.2)
            console = (try? String(decoding: Data(contentsOf: URL(fileURLWithPath: lab.path("imported.console"))), as: UTF8.self)) ?? ""
        }
        #expect(console.contains("GUEST UP"), "console: \(console.suffix(400)); qemu: \(Subprocess.tail(lab.path("imported.qemu.log"), lines: 5))")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import CleverBytes
import CleverNBD
import CleverReplication
import CleverVolume
import Foundation
import Testing

/// Tests with real `clevervm-volume` processes and real NBD clients. Serialized: they share two cores.
@Suite(.serialized) struct LiveVolumeTests {
    static let toolsPresent = which("nbdinfo") && which("nbdcopy") && which("qemu-io") && which("fio")

    // MARK: One volume, real clients

    @Test(.enabled(if: toolsPresent)) func realClientsAgainstASinglePrimary() throws {
        let lab = try VolumeLab("clients", nodes: ["solo"])
        defer { lab.teardown() }
        try lab.configure("solo")
        try lab.start("solo")
        // Not primary: nothing exported.
        let (refused, refusedOutput) = run(["nbdinfo", lab.nbdURI("solo")])
        #expect(refused != 0, "export visible while Secondary: \(refusedOutput)")
        let promoted = try lab.control("solo", .init(command: .promote))
        #expect(!promoted.ok, "promoted Inconsistent data without --force")
        #expect(try lab.control("solo", .init(command: .promote, force: true)).ok)

        for capability in ["flush", "fua", "trim", "zero", "multi-conn"] {
            let (status, output) = run(["nbdinfo", "--can", capability, lab.nbdURI("solo")])
            #expect(status == 0, "nbdinfo --can \(capability): \(output)")
        }
        let (sizeStatus, size) = run(["nbdinfo", "--size", lab.nbdURI("solo")])
        #expect(sizeStatus == 0 && size.trimmingCharacters(in: .whitespacesAndNewlines) == "\(lab.size)")

        // nbdcopy both ways.
        let source = lab.path("source.img")
        #expect(run(["dd", "if=/dev/urandom", "of=\(source)", "bs=1M", "count=32", "status=none"]).0 == 0)
        let (copyIn, copyInOutput) = run(["nbdcopy", source, lab.nbdURI("solo")])
        #expect(copyIn == 0, "\(copyInOutput)")
        let (copyOut, copyOutOutput) = run(["nbdcopy", lab.nbdURI("solo"), lab.path("back.img")])
        #expect(copyOut == 0, "\(copyOutOutput)")
        #expect(lab.filesEqual("source.img", "back.img"))

        // qemu-io: pattern writes with FUA, zeroes, discard, flush, and reads checking the patterns.
        let (io, ioOutput) = run([
            "qemu-io", "-f", "raw", "-c", "write -P 0x5a 4096 8192", "-c", "write -f -P 0x11 0 4096",
            "-c", "write -z 65536 65536", "-c", "discard 131072 65536", "-c", "flush",
            "-c", "read -P 0x11 0 4096", "-c", "read -P 0x5a 4096 8192", "-c", "read -P 0 65536 131072",
            lab.nbdURI("solo"),
        ])
        #expect(io == 0 && !ioOutput.contains("failed"), "\(ioOutput)")

        // fio's nbd engine, 16 requests in flight, with data verification.
        let (fio, fioOutput) = run([
            "fio", "--name=verify", "--ioengine=nbd", "--uri=\(lab.nbdURI("solo"))", "--rw=randwrite", "--bs=4k",
            "--iodepth=16", "--size=8m", "--verify=crc32c", "--do_verify=1", "--verify_state_save=0",
        ])
        #expect(fio == 0 && fioOutput.contains("err= 0"), "\(fioOutput)")

        // qemu-img compare against the backing file: what NBD serves is what is on disk.
        let (compare, compareOutput) = run(["qemu-img", "compare", "-f", "raw", "-F", "raw", lab.nbdURI("solo"),
            lab.path("solo.img")])
        #expect(compare == 0, "\(compareOutput)")

        // The binary's client verbs, end to end.
        let (statusCode, statusOutput) = run([volumeBinary, "status", "--config", lab.path("solo.json")])
        #expect(statusCode == 0)
        #expect(statusOutput.hasPrefix("vol0 StandAlone Primary/Unknown UpToDate/DUnknown"), "\(statusOutput)")
        let (jsonCode, jsonOutput) = run([volumeBinary, "status", "--json", "--socket", lab.path("solo.ctl")])
        #expect(jsonCode == 0 && jsonOutput.contains("\"role\" : \"Primary\""), "\(jsonOutput)")
        let (twoCode, twoOutput) = run([volumeBinary, "promote", "--allow-two-primaries", "--config", lab.path("solo.json")])
        #expect(twoCode == 0, "already primary: \(twoOutput)")
        let (badCode, badOutput) = run([volumeBinary, "serve", "--config", lab.path("missing.json")])
        #expect(badCode != 0 && badOutput.contains("missing.json"), "\(badOutput)")

        // Demote refuses while a client is connected, then works.
        let client = try NBDClient(socket: lab.path("solo.nbd"))
        #expect(try !lab.control("solo", .init(command: .demote)).ok)
        client.disconnect()
        Thread.sleep(forTimeInterval: 0.2)
        #expect(try lab.control("solo", .init(command: .demote)).ok)
    }

    @Test func malformedNBDBytesCloseTheConnectionNotTheServer() throws {
        let lab = try VolumeLab("malformed", nodes: ["solo"])
        defer { lab.teardown() }
        try lab.configure("solo")
        try lab.start("solo")
        #expect(try lab.control("solo", .init(command: .promote, force: true)).ok)
        var random = SystemRandomNumberGenerator()
        for round in 0..<40 {
            let fd = try Sockets.connectUnix(path: lab.path("solo.nbd"))
            _ = Sockets.readFully(fd, count: 18)
            if round % 2 == 0 {
                // Garbage in the handshake.
                let junk = (0..<Int.random(in: 1...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                Sockets.writeFully(fd, junk)
            } else {
                // A valid handshake, then a bad request header.
                var writer = ByteWriter()
                writer.write(UInt32(3))
                writer.write(NBD.optionMagic)
                writer.write(UInt32(7))
                writer.write(UInt32(6))
                writer.write(UInt32(0))
                writer.write(UInt16(0))
                Sockets.writeFully(fd, writer.bytes)
                var header = NBD.encodeRequestHeader(command: 1, flags: 0, cookie: 1, offset: 0, length: 4096)
                header[Int.random(in: 0..<28, using: &random)] ^= 0xFF
                Sockets.writeFully(fd, header + [UInt8](repeating: 0, count: 4096))
            }
            shutdown(fd, Int32(SHUT_WR))
            while Sockets.readSome(fd, max: 4096) != nil {}
            close(fd)
        }
        // Still serving.
        let client = try NBDClient(socket: lab.path("solo.nbd"))
        try client.write(offset: 0, [UInt8](repeating: 9, count: 4096), fua: true)
        #expect(try client.read(offset: 0, length: 4096) == [UInt8](repeating: 9, count: 4096))
        // Out-of-range requests get errors, the connection stays usable.
        #expect(throws: VolumeError.self) { try client.read(offset: lab.size, length: 4096) }
        #expect(try client.read(offset: 0, length: 1) == [9])
    }
}

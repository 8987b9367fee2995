import CleverBytes
import Testing

@testable import CleverReplication

@Suite struct DirtyBitmapTests {
    @Test func markCoversEveryTouchedBlock() {
        var bitmap = Replication.DirtyBitmap(volumeSize: 1 << 20)
        #expect(bitmap.blockCount == 256)
        bitmap.mark(offset: 4095, length: 2)
        #expect(bitmap.isSet(0) && bitmap.isSet(1) && !bitmap.isSet(2))
        #expect(bitmap.setCount == 2)
        bitmap.mark(offset: 8192, length: 0)
        #expect(bitmap.setCount == 2)
    }

    @Test func mergeIsOr() {
        var a = Replication.DirtyBitmap(volumeSize: 1 << 20)
        var b = Replication.DirtyBitmap(volumeSize: 1 << 20)
        a.set(1); a.set(100)
        b.set(100); b.set(200)
        a.merge(b)
        #expect(a.setCount == 3)
        #expect(a.nextSet(from: 0) == 1)
        #expect(a.nextSet(from: 2) == 100)
        #expect(a.nextSet(from: 101) == 200)
        #expect(a.nextSet(from: 201) == nil)
    }

    @Test func encodingRoundTripsAndDropsBitsPastTheEnd() {
        var bitmap = Replication.DirtyBitmap(volumeSize: 70 * 4096)
        bitmap.set(0); bitmap.set(69)
        let decoded = Replication.DirtyBitmap.decode(blockCount: 70, bytes: bitmap.encoded)
        #expect(decoded == bitmap)
        #expect(Replication.DirtyBitmap.decode(blockCount: 70, bytes: [1, 2, 3]) == nil)
        let allOnes = [UInt8](repeating: 0xFF, count: 16)
        #expect(Replication.DirtyBitmap.decode(blockCount: 70, bytes: allOnes)?.setCount == 70)
    }

    @Test func outOfRangeBlocksAreIgnored() {
        var bitmap = Replication.DirtyBitmap(volumeSize: 4096)
        bitmap.set(5)
        #expect(bitmap.setCount == 0)
        #expect(!bitmap.isSet(5))
    }
}

func roundTrip(_ frame: Replication.Frame) -> Replication.Frame? {
    let bytes = Replication.Wire.encode(frame)
    guard case .success(let header) = Replication.Wire.decodeHeader(Array(bytes.prefix(12))) else { return nil }
    guard case .success(let decoded) = Replication.Wire.decode(header: header, payload: Array(bytes.dropFirst(12)))
    else { return nil }
    return decoded
}

let sampleFrames: [Replication.Frame] = [
    .hello(Replication.Hello(protocolVersion: 1, node: "alpha", volume: "vol0", challenge: Array(repeating: 7, count: 32))),
    .authProof(Array(repeating: 9, count: 32)),
    .authAccepted,
    .report(Replication.Report(
        node: Replication.NodeReport(
            name: "alpha", role: .primary, disk: .upToDate,
            generations: Replication.GenerationIDs(current: 0x101, bitmap: 0x80, history: [0x40, 0x20]),
            crashedPrimary: true, dirtyBlocks: 12, discardMyData: false),
        volumeSize: 1 << 30,
        policies: Replication.SplitBrainPolicies(zeroPrimaries: .discardLeastChanges, onePrimary: .consensus),
        protocolMode: .C, allowTwoPrimaries: false)),
    .bitmapChunk(startWord: 3, words: Array(repeating: 0xAA, count: 16)),
    .bitmapDone,
    .write(sequence: 5, offset: 8192, fua: true, data: [1, 2, 3, 4]),
    .zero(sequence: 6, offset: 0, length: 4096, trim: true, fua: false),
    .flush(sequence: 7),
    .ack(sequence: 7, error: 0),
    .resyncData(offset: 4096, data: Array(repeating: 1, count: 4096)),
    .resyncAck(offset: 4096, length: 4096),
    .resyncDone,
    .verifyRequest(startBlock: 10, count: 64),
    .verifyDigests(startBlock: 10, digests: [1, 2, 3]),
    .roleChanged(.secondary),
    .ping,
    .pong,
    .goodbye("split brain"),
]

@Suite struct WireFrameTests {
    @Test(arguments: sampleFrames)
    func everyFrameRoundTrips(frame: Replication.Frame) {
        #expect(roundTrip(frame) == frame)
    }

    @Test func badMagicVersionAndLengthAreErrors() {
        var bytes = Replication.Wire.encode(.ping)
        bytes[0] = 0
        guard case .failure(let error) = Replication.Wire.decodeHeader(bytes) else { Issue.record("accepted"); return }
        #expect(error.description.contains("magic"))
        var version = Replication.Wire.encode(.ping)
        version[4] = 9
        guard case .failure = Replication.Wire.decodeHeader(version) else { Issue.record("accepted"); return }
        var writer = ByteWriter()
        writer.write(Replication.Wire.magic)
        writer.write(UInt8(1))
        writer.write(UInt8(10))
        writer.write(UInt16(0))
        writer.write(UInt32.max)
        guard case .failure = Replication.Wire.decodeHeader(writer.bytes) else { Issue.record("accepted"); return }
    }

    @Test func trailingBytesAndUnknownTypesAreErrors() {
        let header = Replication.FrameHeader(version: 1, type: 41, flags: 0, length: 1)
        guard case .failure = Replication.Wire.decode(header: header, payload: [0]) else { Issue.record("accepted"); return }
        let unknown = Replication.FrameHeader(version: 1, type: 200, flags: 0, length: 0)
        guard case .failure = Replication.Wire.decode(header: unknown, payload: []) else { Issue.record("accepted"); return }
    }

    @Test func authTranscriptBindsDirectionAndNames() {
        let forward = Replication.authTranscript(volume: "v", proverNode: "a", verifierNode: "b",
            verifierChallenge: [1], proverChallenge: [2])
        let backward = Replication.authTranscript(volume: "v", proverNode: "b", verifierNode: "a",
            verifierChallenge: [1], proverChallenge: [2])
        #expect(forward != backward)
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct WireFuzzTests {
    @Test func mutatedFramesNeverCrash() {
        var random = SplitMix64(state: 4242)
        var accepted = 0
        for iteration in 0..<20000 {
            var bytes = Replication.Wire.encode(sampleFrames[iteration % sampleFrames.count])
            let edits = Int.random(in: 0...4, using: &random)
            for _ in 0..<edits where !bytes.isEmpty {
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.remove(at: Int.random(in: 0..<bytes.count, using: &random))
                default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...bytes.count, using: &random))
                }
            }
            if iteration % 7 == 0 {
                bytes = (0..<Int.random(in: 0..<80, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            guard bytes.count >= 12, case .success(let header) = Replication.Wire.decodeHeader(Array(bytes.prefix(12)))
            else { continue }
            let payload = Array(bytes.dropFirst(12).prefix(Int(header.length)))
            if case .success = Replication.Wire.decode(header: header, payload: payload) { accepted += 1 }
        }
        #expect(accepted > 0)
    }
}

import Testing

@testable import CleverNBD
import CleverBytes

/// A small deterministic generator so fuzz failures reproduce (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func mutate(_ bytes: [UInt8], using random: inout SplitMix64) -> [UInt8] {
    var out = bytes
    let edits = Int.random(in: 1...4, using: &random)
    for _ in 0..<edits {
        switch Int.random(in: 0..<4, using: &random) {
        case 0 where !out.isEmpty: out[Int.random(in: 0..<out.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
        case 1 where !out.isEmpty: out.remove(at: Int.random(in: 0..<out.count, using: &random))
        case 2: out.insert(UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...out.count, using: &random))
        default: if !out.isEmpty { out = Array(out.prefix(Int.random(in: 0..<out.count, using: &random))) }
        }
    }
    return out
}

@Suite struct NBDFuzzTests {
    @Test func mutatedHandshakeStreamsNeverCrashAndAlwaysTerminateOrWait() {
        var random = SplitMix64(seed: 0xC1E7E5)
        let valid = ClientBytes.flags() + ClientBytes.option(8) + ClientBytes.option(3)
            + ClientBytes.option(6, ClientBytes.goData(name: "disk0", infos: [1, 2, 3]))
            + ClientBytes.option(7, ClientBytes.goData(name: "disk0"))
        for iteration in 0..<3000 {
            let input: [UInt8]
            if iteration % 5 == 0 {
                input = (0..<Int.random(in: 0..<200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                input = mutate(valid, using: &random)
            }
            var handshake = NBD.ServerHandshake(exports: [diskExport])
            // Feed in random chunk sizes.
            var position = 0
            while position < input.count {
                let chunk = Int.random(in: 1...32, using: &random)
                let end = min(input.count, position + chunk)
                let directives = handshake.receive(input[position..<end])
                for directive in directives {
                    if case .send(let bytes) = directive { #expect(!bytes.isEmpty) }
                }
                position = end
            }
            #expect(handshake.bytesWanted >= 0)
        }
    }

    @Test func randomRequestHeadersAreDecidedWithoutCrash() {
        var random = SplitMix64(seed: 77)
        var executed = 0
        for _ in 0..<20000 {
            var bytes = NBD.encodeRequestHeader(
                command: UInt16.random(in: 0...9, using: &random), flags: UInt16.random(in: 0...63, using: &random),
                cookie: random.next(), offset: [0, 4096, 1 << 20, UInt64.max, random.next()].randomElement(using: &random)!,
                length: [0, 1, 4096, 1 << 25, UInt32.max, UInt32.random(in: 0...UInt32.max, using: &random)]
                    .randomElement(using: &random)!)
            if Bool.random(using: &random) { bytes = mutate(bytes, using: &random) }
            switch NBD.decideRequest(header: bytes, export: diskExport) {
            case .execute(let request):
                executed += 1
                if request.command != .disconnect && request.command != .flush {
                    #expect(request.offset + UInt64(request.length) <= diskExport.size)
                }
                if request.command == .read || request.command == .write {
                    #expect(request.length <= diskExport.maxPayload)
                }
            case .reject(_, let error, let discard, _):
                #expect(error != .none)
                #expect(discard <= diskExport.maxPayload)
            case .disconnect:
                break
            }
        }
        #expect(executed > 0)
    }
}

import CleverBytes

extension Replication {
    /// The replication link's frames. Every frame: a 12-byte header (magic "CVVR", version, type, flags, payload
    /// length, all big-endian) and a payload whose layout depends on the type. docs/architecture-volume.md
    /// lists every frame.
    public enum Frame: Hashable, Sendable {
        /// First frame from each side: who we are and a fresh challenge for the peer to answer.
        case hello(Hello)
        /// HMAC-SHA256 over the peer's challenge (see `AuthTranscript`).
        case authProof([UInt8])
        /// The peer's proof checked out.
        case authAccepted
        /// State report used for the sync decision.
        case report(Report)
        /// A run of little-endian bitmap words starting at word `startWord`.
        case bitmapChunk(startWord: UInt64, words: [UInt8])
        case bitmapDone
        /// Application write, replicated in order. `fua`: make durable before acknowledging.
        case write(sequence: UInt64, offset: UInt64, fua: Bool, data: [UInt8])
        /// TRIM (`trim` true) or WRITE_ZEROES of a range.
        case zero(sequence: UInt64, offset: UInt64, length: UInt32, trim: Bool, fua: Bool)
        case flush(sequence: UInt64)
        /// Acknowledges write/zero/flush `sequence`; `error` 0 is success (else an errno).
        case ack(sequence: UInt64, error: UInt32)
        /// Resync data for a run of blocks.
        case resyncData(offset: UInt64, data: [UInt8])
        case resyncAck(offset: UInt64, length: UInt32)
        /// Source finished sending every dirty block.
        case resyncDone
        /// Asks the peer for digests of `count` blocks starting at `startBlock`.
        case verifyRequest(startBlock: UInt64, count: UInt32)
        case verifyDigests(startBlock: UInt64, digests: [UInt64])
        case roleChanged(Role)
        case ping
        case pong
        /// Orderly close with a reason (e.g. "split brain").
        case goodbye(String)
    }

    public struct Hello: Hashable, Sendable {
        public var protocolVersion: UInt16
        public var node: String
        public var volume: String
        public var challenge: [UInt8]

        public init(protocolVersion: UInt16, node: String, volume: String, challenge: [UInt8]) {
            self.protocolVersion = protocolVersion
            self.node = node
            self.volume = volume
            self.challenge = challenge
        }
    }

    public struct Report: Hashable, Sendable {
        public var node: NodeReport
        public var volumeSize: UInt64
        public var policies: SplitBrainPolicies
        public var protocolMode: ProtocolMode
        public var allowTwoPrimaries: Bool

        public init(
            node: NodeReport, volumeSize: UInt64, policies: SplitBrainPolicies, protocolMode: ProtocolMode,
            allowTwoPrimaries: Bool
        ) {
            self.node = node
            self.volumeSize = volumeSize
            self.policies = policies
            self.protocolMode = protocolMode
            self.allowTwoPrimaries = allowTwoPrimaries
        }
    }

    /// The frame type byte of the header. The numbers are the wire format: never renumber a case.
    public enum FrameType: UInt8, Hashable, Sendable, CaseIterable {
        case hello = 1, authProof = 2, authAccepted = 3, report = 4, bitmapChunk = 5, bitmapDone = 6
        case write = 10, zero = 11, flush = 12, ack = 13
        case resyncData = 20, resyncAck = 21, resyncDone = 22
        case verifyRequest = 30, verifyDigests = 31
        case roleChanged = 40, ping = 41, pong = 42
        case goodbye = 50

        /// Fixed fields of a write frame before its data: sequence (8), offset (8), fua (1).
        public static let writeFieldsSize = 17
    }

    public struct FrameHeader: Hashable, Sendable {
        public var version: UInt8
        public var type: UInt8
        public var flags: UInt16
        public var length: UInt32

        /// Set on every frame after the handshake's authentication: a `Wire.tagSize`-byte tag follows the
        /// payload (see `FrameSealer`).
        public static let sealedFlag: UInt16 = 1

        public var isSealed: Bool { self.flags & Self.sealedFlag != 0 }
        public var frameType: FrameType? { FrameType(rawValue: self.type) }
    }

    public struct FrameError: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { "replication frame: \(self.message)" }
    }

    public enum Wire {
        public static let magic: UInt32 = 0x4356_5652  // "CVVR"
        public static let version: UInt8 = 1
        public static let headerSize = 12
        /// Largest payload: a 32 MiB NBD write plus its fields.
        public static let maxPayload: UInt32 = 32 * 1024 * 1024 + 64
        /// Largest payload accepted before the peer has proved it knows the secret (a hello is at most 546
        /// bytes, a goodbye 1024): a stranger cannot make us buffer megabytes.
        public static let maxUnauthenticatedPayload: UInt32 = 1100
        public static let challengeSize = 32
        public static let maxNameLength = 255
        /// Bytes of the integrity tag that follows the payload of a sealed frame.
        public static let tagSize = 16

        public static func decodeHeader(
            _ bytes: [UInt8], maxPayload: UInt32 = Wire.maxPayload
        ) -> Result<FrameHeader, FrameError> {
            var reader = ByteReader(bytes)
            guard bytes.count == headerSize, let magic = reader.readUInt32(), let version = reader.readUInt8(),
                let type = reader.readUInt8(), let flags = reader.readUInt16(), let length = reader.readUInt32()
            else { return .failure(FrameError("header has \(bytes.count) bytes, expected \(headerSize)")) }
            guard magic == Self.magic else {
                return .failure(FrameError("bad magic 0x\(String(magic, radix: 16)), expected 0x43565652"))
            }
            guard version == Self.version else {
                return .failure(FrameError("unsupported version \(version), this side speaks \(Self.version)"))
            }
            guard length <= maxPayload else {
                return .failure(FrameError("type \(type) payload \(length) bytes exceeds limit \(maxPayload)"))
            }
            guard flags & ~FrameHeader.sealedFlag == 0 else {
                return .failure(FrameError("type \(type) has unknown flags 0x\(String(flags, radix: 16))"))
            }
            return .success(FrameHeader(version: version, type: type, flags: flags, length: length))
        }

        /// A whole unsealed frame (the handshake's hello, proof, acceptance and a pre-auth goodbye).
        public static func encode(_ frame: Frame) -> [UInt8] {
            let (type, payload) = Self.encodePayload(frame)
            return Self.header(type: type, length: payload.count, sealed: false) + payload
        }

        /// The 12 header bytes of a frame of `type` with a `length`-byte payload.
        public static func header(type: FrameType, length: Int, sealed: Bool) -> [UInt8] {
            var writer = ByteWriter(capacity: headerSize)
            writer.write(Self.magic)
            writer.write(Self.version)
            writer.write(type.rawValue)
            writer.write(sealed ? FrameHeader.sealedFlag : 0)
            writer.write(UInt32(length))
            return writer.bytes
        }

        /// A frame's type and payload bytes, without the header.
        public static func encodePayload(_ frame: Frame) -> (FrameType, [UInt8]) {
            var payload = ByteWriter(capacity: 64)
            let type: FrameType
            switch frame {
            case .hello(let hello):
                type = .hello
                payload.write(hello.protocolVersion)
                writeString(hello.node, into: &payload)
                writeString(hello.volume, into: &payload)
                payload.write(bytes: hello.challenge)
            case .authProof(let mac):
                type = .authProof
                payload.write(bytes: mac)
            case .authAccepted:
                type = .authAccepted
            case .report(let report):
                type = .report
                payload.write(report.volumeSize)
                payload.write(roleCode(report.node.role))
                payload.write(diskCode(report.node.disk))
                payload.write(UInt8(report.node.crashedPrimary ? 1 : 0))
                payload.write(UInt8((report.node.discardMyData ? 1 : 0) | (report.node.discardPeerData ? 2 : 0)))
                payload.write(report.node.generations.current)
                payload.write(report.node.generations.bitmap)
                payload.write(report.node.generations.history[0])
                payload.write(report.node.generations.history[1])
                payload.write(report.node.dirtyBlocks)
                payload.write(UInt8(SplitBrainPolicies.ZeroPrimaries.allCases.firstIndex(of: report.policies.zeroPrimaries)!))
                payload.write(UInt8(SplitBrainPolicies.OnePrimary.allCases.firstIndex(of: report.policies.onePrimary)!))
                payload.write(UInt8(SplitBrainPolicies.TwoPrimaries.allCases.firstIndex(of: report.policies.twoPrimaries)!))
                payload.write(UInt8(report.protocolMode == .C ? 1 : 0))
                payload.write(UInt8(report.allowTwoPrimaries ? 1 : 0))
                writeString(report.node.name, into: &payload)
            case .bitmapChunk(let startWord, let words):
                type = .bitmapChunk
                payload.write(startWord)
                payload.write(bytes: words)
            case .bitmapDone:
                type = .bitmapDone
            case .write(let sequence, let offset, let fua, let data):
                type = .write
                payload.write(sequence)
                payload.write(offset)
                payload.write(UInt8(fua ? 1 : 0))
                payload.write(bytes: data)
            case .zero(let sequence, let offset, let length, let trim, let fua):
                type = .zero
                payload.write(sequence)
                payload.write(offset)
                payload.write(length)
                payload.write(UInt8((trim ? 1 : 0) | (fua ? 2 : 0)))
            case .flush(let sequence):
                type = .flush
                payload.write(sequence)
            case .ack(let sequence, let error):
                type = .ack
                payload.write(sequence)
                payload.write(error)
            case .resyncData(let offset, let data):
                type = .resyncData
                payload.write(offset)
                payload.write(bytes: data)
            case .resyncAck(let offset, let length):
                type = .resyncAck
                payload.write(offset)
                payload.write(length)
            case .resyncDone:
                type = .resyncDone
            case .verifyRequest(let startBlock, let count):
                type = .verifyRequest
                payload.write(startBlock)
                payload.write(count)
            case .verifyDigests(let startBlock, let digests):
                type = .verifyDigests
                payload.write(startBlock)
                for digest in digests { payload.write(digest) }
            case .roleChanged(let role):
                type = .roleChanged
                payload.write(roleCode(role))
            case .ping:
                type = .ping
            case .pong:
                type = .pong
            case .goodbye(let reason):
                type = .goodbye
                payload.write(bytes: reason.utf8.prefix(1024))
            }
            return (type, payload.bytes)
        }

        public static func decode(header: FrameHeader, payload: [UInt8]) -> Result<Frame, FrameError> {
            guard payload.count == Int(header.length) else {
                return .failure(FrameError("type \(header.type) payload has \(payload.count) of \(header.length) bytes"))
            }
            var reader = ByteReader(payload)
            func fail(_ what: String) -> Result<Frame, FrameError> {
                .failure(FrameError("type \(header.type): \(what)"))
            }
            func done(_ frame: Frame) -> Result<Frame, FrameError> {
                reader.remaining == 0 ? .success(frame) : fail("\(reader.remaining) trailing bytes")
            }
            guard let type = FrameType(rawValue: header.type) else { return fail("unknown frame type") }
            switch type {
            case .hello:
                guard let version = reader.readUInt16(), let node = readString(&reader),
                    let volume = readString(&reader), let challenge = reader.readBytes(challengeSize)
                else { return fail("truncated hello") }
                return done(.hello(Hello(protocolVersion: version, node: node, volume: volume, challenge: challenge)))
            case .authProof:
                guard let mac = reader.readBytes(32) else { return fail("proof must be 32 bytes") }
                return done(.authProof(mac))
            case .authAccepted: return done(.authAccepted)
            case .report:
                guard let size = reader.readUInt64(), let role = reader.readUInt8().flatMap(role(code:)),
                    let disk = reader.readUInt8().flatMap(disk(code:)), let crashed = reader.readUInt8(),
                    let discard = reader.readUInt8(), let current = reader.readUInt64(),
                    let bitmap = reader.readUInt64(), let history0 = reader.readUInt64(),
                    let history1 = reader.readUInt64(), let dirty = reader.readUInt64(),
                    let zero = reader.readUInt8(), Int(zero) < SplitBrainPolicies.ZeroPrimaries.allCases.count,
                    let one = reader.readUInt8(), Int(one) < SplitBrainPolicies.OnePrimary.allCases.count,
                    let two = reader.readUInt8(), Int(two) < SplitBrainPolicies.TwoPrimaries.allCases.count,
                    let mode = reader.readUInt8(), mode <= 1, let twoPrimaries = reader.readUInt8(), twoPrimaries <= 1,
                    crashed <= 1, discard <= 3, let name = readString(&reader)
                else { return fail("malformed report") }
                let node = NodeReport(
                    name: name, role: role, disk: disk,
                    generations: GenerationIDs(current: current, bitmap: bitmap, history: [history0, history1]),
                    crashedPrimary: crashed == 1, dirtyBlocks: dirty, discardMyData: discard & 1 == 1,
                    discardPeerData: discard & 2 == 2)
                let policies = SplitBrainPolicies(
                    zeroPrimaries: SplitBrainPolicies.ZeroPrimaries.allCases[Int(zero)],
                    onePrimary: SplitBrainPolicies.OnePrimary.allCases[Int(one)],
                    twoPrimaries: SplitBrainPolicies.TwoPrimaries.allCases[Int(two)])
                return done(.report(Report(node: node, volumeSize: size, policies: policies,
                    protocolMode: mode == 1 ? .C : .A, allowTwoPrimaries: twoPrimaries == 1)))
            case .bitmapChunk:
                guard let start = reader.readUInt64() else { return fail("truncated bitmap chunk") }
                let words = reader.readRest()
                guard words.count % 8 == 0 else { return fail("bitmap chunk of \(words.count) bytes is not whole words") }
                return done(.bitmapChunk(startWord: start, words: words))
            case .bitmapDone: return done(.bitmapDone)
            case .write:
                guard let sequence = reader.readUInt64(), let offset = reader.readUInt64(), let fua = reader.readUInt8(),
                    fua <= 1
                else { return fail("truncated write") }
                return done(.write(sequence: sequence, offset: offset, fua: fua == 1, data: reader.readRest()))
            case .zero:
                guard let sequence = reader.readUInt64(), let offset = reader.readUInt64(),
                    let length = reader.readUInt32(), let flags = reader.readUInt8(), flags <= 3
                else { return fail("malformed zero") }
                return done(.zero(sequence: sequence, offset: offset, length: length, trim: flags & 1 == 1,
                    fua: flags & 2 == 2))
            case .flush:
                guard let sequence = reader.readUInt64() else { return fail("truncated flush") }
                return done(.flush(sequence: sequence))
            case .ack:
                guard let sequence = reader.readUInt64(), let error = reader.readUInt32() else {
                    return fail("truncated ack")
                }
                return done(.ack(sequence: sequence, error: error))
            case .resyncData:
                guard let offset = reader.readUInt64() else { return fail("truncated resync data") }
                return done(.resyncData(offset: offset, data: reader.readRest()))
            case .resyncAck:
                guard let offset = reader.readUInt64(), let length = reader.readUInt32() else {
                    return fail("truncated resync ack")
                }
                return done(.resyncAck(offset: offset, length: length))
            case .resyncDone: return done(.resyncDone)
            case .verifyRequest:
                guard let start = reader.readUInt64(), let count = reader.readUInt32(), count <= 65536 else {
                    return fail("malformed verify request")
                }
                return done(.verifyRequest(startBlock: start, count: count))
            case .verifyDigests:
                guard let start = reader.readUInt64(), reader.remaining % 8 == 0 else {
                    return fail("malformed verify digests")
                }
                var digests: [UInt64] = []
                while let digest = reader.readUInt64() { digests.append(digest) }
                return done(.verifyDigests(startBlock: start, digests: digests))
            case .roleChanged:
                guard let role = reader.readUInt8().flatMap(role(code:)) else { return fail("bad role") }
                return done(.roleChanged(role))
            case .ping: return done(.ping)
            case .pong: return done(.pong)
            case .goodbye: return done(.goodbye(String(decoding: reader.readRest(), as: UTF8.self)))
            }
        }

        static func writeString(_ string: String, into writer: inout ByteWriter) {
            let bytes = Array(string.utf8.prefix(maxNameLength))
            writer.write(UInt8(bytes.count))
            writer.write(bytes: bytes)
        }

        static func readString(_ reader: inout ByteReader) -> String? {
            guard let length = reader.readUInt8(), let bytes = reader.readBytes(Int(length)) else { return nil }
            return String(validating: bytes, as: UTF8.self)
        }

        static func roleCode(_ role: Role) -> UInt8 {
            switch role {
            case .primary: 1
            case .secondary: 2
            case .unknown: 0
            }
        }

        static func role(code: UInt8) -> Role? {
            switch code {
            case 0: .unknown
            case 1: .primary
            case 2: .secondary
            default: nil
            }
        }

        static func diskCode(_ disk: DiskState) -> UInt8 { UInt8(DiskState.allCases.firstIndex(of: disk)!) }

        static func disk(code: UInt8) -> DiskState? {
            Int(code) < DiskState.allCases.count ? DiskState.allCases[Int(code)] : nil
        }
    }

    /// What the HMAC of the challenge-response covers: a fixed label, the prover's side, both challenges and
    /// both names, so a proof cannot be replayed to another volume, another peer or in the other direction.
    public static func authTranscript(
        volume: String, proverNode: String, verifierNode: String, verifierChallenge: [UInt8], proverChallenge: [UInt8]
    ) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(bytes: "clevervm-volume-auth-v1".utf8)
        for part in [volume, proverNode, verifierNode] {
            writer.write(UInt16(part.utf8.count))
            writer.write(bytes: part.utf8)
        }
        writer.write(bytes: verifierChallenge)
        writer.write(bytes: proverChallenge)
        return writer.bytes
    }
}

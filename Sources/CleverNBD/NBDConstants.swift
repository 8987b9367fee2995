/// Namespace for the NBD protocol (NetworkBlockDevice/nbd doc/proto.md): constants, codecs and the server-side
/// handshake. Pure: no I/O, no clock. The shell feeds bytes in and performs the directives that come out.
public enum NBD {
    public static let initMagic: UInt64 = 0x4e42_444d_4147_4943  // "NBDMAGIC"
    public static let optionMagic: UInt64 = 0x4948_4156_454F_5054  // "IHAVEOPT"
    public static let optionReplyMagic: UInt64 = 0x3_e889_0455_65a9
    public static let requestMagic: UInt32 = 0x2560_9513
    public static let simpleReplyMagic: UInt32 = 0x6744_6698
    public static let requestHeaderSize = 28
    public static let simpleReplyHeaderSize = 16
    /// Largest READ or WRITE payload we accept (QEMU and libnbd never send more than 32 MiB).
    public static let defaultMaxPayload: UInt32 = 32 * 1024 * 1024
    /// Largest option payload we read during the handshake; a longer one ends the connection.
    public static let maxOptionLength: UInt32 = 64 * 1024
    /// Options a client may send before we give up on it (guards against endless option loops).
    public static let maxOptionCount = 256

    /// Handshake flags the server sends after the magics.
    public struct HandshakeFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let fixedNewstyle = HandshakeFlags(rawValue: 1 << 0)
        public static let noZeroes = HandshakeFlags(rawValue: 1 << 1)
    }

    /// Flags the client answers with.
    public struct ClientFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let fixedNewstyle = ClientFlags(rawValue: 1 << 0)
        public static let noZeroes = ClientFlags(rawValue: 1 << 1)
    }

    /// Per-export transmission flags.
    public struct TransmissionFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let hasFlags = TransmissionFlags(rawValue: 1 << 0)
        public static let readOnly = TransmissionFlags(rawValue: 1 << 1)
        public static let sendFlush = TransmissionFlags(rawValue: 1 << 2)
        public static let sendFUA = TransmissionFlags(rawValue: 1 << 3)
        public static let rotational = TransmissionFlags(rawValue: 1 << 4)
        public static let sendTrim = TransmissionFlags(rawValue: 1 << 5)
        public static let sendWriteZeroes = TransmissionFlags(rawValue: 1 << 6)
        public static let sendDF = TransmissionFlags(rawValue: 1 << 7)
        public static let canMultiConn = TransmissionFlags(rawValue: 1 << 8)
        public static let sendResize = TransmissionFlags(rawValue: 1 << 9)
        public static let sendCache = TransmissionFlags(rawValue: 1 << 10)
        public static let sendFastZero = TransmissionFlags(rawValue: 1 << 11)
    }

    public enum Option: UInt32, Hashable, Sendable {
        case exportName = 1
        case abort = 2
        case list = 3
        case peekExport = 4
        case startTLS = 5
        case info = 6
        case go = 7
        case structuredReply = 8
        case listMetaContext = 9
        case setMetaContext = 10
        case extendedHeaders = 11
    }

    public enum OptionReplyType: UInt32, Hashable, Sendable {
        case ack = 1
        case server = 2
        case info = 3
        case metaContext = 4
        case errUnsupported = 0x8000_0001
        case errPolicy = 0x8000_0002
        case errInvalid = 0x8000_0003
        case errPlatform = 0x8000_0004
        case errTLSRequired = 0x8000_0005
        case errUnknown = 0x8000_0006
        case errShutdown = 0x8000_0007
        case errBlockSizeRequired = 0x8000_0008
        case errTooBig = 0x8000_0009
    }

    public enum InfoType: UInt16, Hashable, Sendable {
        case export = 0
        case name = 1
        case description = 2
        case blockSize = 3
    }

    public enum Command: UInt16, Hashable, Sendable, CustomStringConvertible {
        case read = 0
        case write = 1
        case disconnect = 2
        case flush = 3
        case trim = 4
        case cache = 5
        case writeZeroes = 6
        case blockStatus = 7

        public var description: String {
            switch self {
            case .read: "READ"
            case .write: "WRITE"
            case .disconnect: "DISC"
            case .flush: "FLUSH"
            case .trim: "TRIM"
            case .cache: "CACHE"
            case .writeZeroes: "WRITE_ZEROES"
            case .blockStatus: "BLOCK_STATUS"
            }
        }
    }

    public struct CommandFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let fua = CommandFlags(rawValue: 1 << 0)
        public static let noHole = CommandFlags(rawValue: 1 << 1)
        public static let dontFragment = CommandFlags(rawValue: 1 << 2)
        public static let requestOne = CommandFlags(rawValue: 1 << 3)
        public static let fastZero = CommandFlags(rawValue: 1 << 4)
        public static let payloadLength = CommandFlags(rawValue: 1 << 5)
    }

    /// Error values carried in replies (errno-like, fixed by the protocol, not the host's errno).
    public enum ErrorCode: UInt32, Hashable, Sendable {
        case none = 0
        case permissionDenied = 1
        case io = 5
        case noMemory = 12
        case invalid = 22
        case noSpace = 28
        case overflow = 75
        case notSupported = 95
        case shutdown = 108
    }
}

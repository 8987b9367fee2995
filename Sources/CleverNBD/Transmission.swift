import CleverBytes

extension NBD {
    /// A validated request from the transmission phase. For WRITE, `length` payload bytes follow the header.
    public struct Request: Hashable, Sendable {
        public var command: Command
        public var flags: CommandFlags
        public var cookie: UInt64
        public var offset: UInt64
        public var length: UInt32

        public init(command: Command, flags: CommandFlags = [], cookie: UInt64, offset: UInt64, length: UInt32) {
            self.command = command
            self.flags = flags
            self.cookie = cookie
            self.offset = offset
            self.length = length
        }

        /// The 28-byte header a client sends (used by tests and the test writer).
        public var encodedHeader: [UInt8] {
            NBD.encodeRequestHeader(
                command: self.command.rawValue, flags: self.flags.rawValue, cookie: self.cookie,
                offset: self.offset, length: self.length)
        }
    }

    /// What the server does with one request header.
    public enum RequestDecision: Hashable, Sendable {
        /// Valid: perform it (for WRITE, read `length` payload bytes first).
        case execute(Request)
        /// Invalid but the stream is still in step: read and drop `discardPayload` bytes, then reply `error`.
        case reject(cookie: UInt64, error: ErrorCode, discardPayload: UInt32, reason: String)
        /// The stream cannot be trusted any more (bad magic, oversize write): close the connection.
        case disconnect(reason: String)
    }

    public static func encodeRequestHeader(
        command: UInt16, flags: UInt16, cookie: UInt64, offset: UInt64, length: UInt32, magic: UInt32 = NBD.requestMagic
    ) -> [UInt8] {
        var writer = ByteWriter(capacity: NBD.requestHeaderSize)
        writer.write(magic)
        writer.write(flags)
        writer.write(command)
        writer.write(cookie)
        writer.write(offset)
        writer.write(length)
        return writer.bytes
    }

    /// Decodes and checks one 28-byte request header against the export it addresses.
    public static func decideRequest(header: [UInt8], export: Export) -> RequestDecision {
        var reader = ByteReader(header)
        guard header.count == NBD.requestHeaderSize, let magic = reader.readUInt32(),
            let rawFlags = reader.readUInt16(), let rawCommand = reader.readUInt16(),
            let cookie = reader.readUInt64(), let offset = reader.readUInt64(), let length = reader.readUInt32()
        else {
            return .disconnect(reason: "request header has \(header.count) bytes, expected \(NBD.requestHeaderSize)")
        }
        guard magic == NBD.requestMagic else {
            return .disconnect(reason: "request magic 0x\(String(magic, radix: 16)) is not 0x25609513")
        }
        let flags = CommandFlags(rawValue: rawFlags)
        // A WRITE's payload always follows, whatever else is wrong: skip it to stay in step, unless it is so
        // large that reading it would be a denial of service.
        let isWrite = rawCommand == Command.write.rawValue
        if isWrite && length > export.maxPayload {
            return .disconnect(reason: "WRITE of \(length) bytes exceeds the limit \(export.maxPayload)")
        }
        let payload: UInt32 = isWrite ? length : 0
        func reject(_ error: ErrorCode, _ reason: String) -> RequestDecision {
            .reject(cookie: cookie, error: error, discardPayload: payload, reason: reason)
        }
        guard let command = Command(rawValue: rawCommand) else {
            return reject(.invalid, "unknown command \(rawCommand)")
        }
        let known: CommandFlags = [.fua, .noHole, .dontFragment, .requestOne, .fastZero]
        guard flags.isSubset(of: known) else {
            return reject(.invalid, "\(command) carries unknown flags 0x\(String(rawFlags, radix: 16))")
        }
        let request = Request(command: command, flags: flags, cookie: cookie, offset: offset, length: length)
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        let beyondEnd = overflow || end > export.size
        switch command {
        case .disconnect:
            return .execute(request)
        case .read:
            guard length <= export.maxPayload else {
                return reject(.invalid, "READ of \(length) bytes exceeds the limit \(export.maxPayload)")
            }
            guard !beyondEnd else { return reject(.invalid, "READ at \(offset)+\(length) beyond size \(export.size)") }
            return .execute(request)
        case .write:
            guard !export.flags.contains(.readOnly) else { return reject(.permissionDenied, "export is read-only") }
            guard !beyondEnd else { return reject(.noSpace, "WRITE at \(offset)+\(length) beyond size \(export.size)") }
            return .execute(request)
        case .flush:
            guard export.flags.contains(.sendFlush) else { return reject(.invalid, "FLUSH not advertised") }
            return .execute(request)
        case .trim, .writeZeroes:
            let advertised: TransmissionFlags = command == .trim ? .sendTrim : .sendWriteZeroes
            guard export.flags.contains(advertised) else { return reject(.invalid, "\(command) not advertised") }
            guard !export.flags.contains(.readOnly) else { return reject(.permissionDenied, "export is read-only") }
            if flags.contains(.fastZero) { return reject(.notSupported, "fast zero is not supported") }
            guard !beyondEnd else {
                return reject(command == .trim ? .invalid : .noSpace,
                    "\(command) at \(offset)+\(length) beyond size \(export.size)")
            }
            return .execute(request)
        case .cache, .blockStatus:
            return reject(.invalid, "\(command) is not supported")
        }
    }

    /// The 16-byte simple reply header; a successful READ's data follows it.
    public static func simpleReplyHeader(cookie: UInt64, error: ErrorCode) -> [UInt8] {
        var writer = ByteWriter(capacity: NBD.simpleReplyHeaderSize)
        writer.write(NBD.simpleReplyMagic)
        writer.write(error.rawValue)
        writer.write(cookie)
        return writer.bytes
    }

    public struct SimpleReply: Hashable, Sendable {
        public var error: UInt32
        public var cookie: UInt64
    }

    /// Client side: decodes a simple reply header (nil when the magic or size is wrong).
    public static func decodeSimpleReply(_ header: [UInt8]) -> SimpleReply? {
        var reader = ByteReader(header)
        guard header.count == NBD.simpleReplyHeaderSize, reader.readUInt32() == NBD.simpleReplyMagic,
            let error = reader.readUInt32(), let cookie = reader.readUInt64()
        else { return nil }
        return SimpleReply(error: error, cookie: cookie)
    }
}

import CleverBytes

extension NBD {
    /// One export the server offers.
    public struct Export: Hashable, Sendable {
        public var name: String
        public var description: String
        public var size: UInt64
        public var flags: TransmissionFlags
        /// Preferred I/O size advertised in NBD_INFO_BLOCK_SIZE.
        public var preferredBlockSize: UInt32
        public var maxPayload: UInt32

        public init(
            name: String, description: String = "", size: UInt64, flags: TransmissionFlags,
            preferredBlockSize: UInt32 = 4096, maxPayload: UInt32 = NBD.defaultMaxPayload
        ) {
            self.name = name
            self.description = description
            self.size = size
            self.flags = flags.union(.hasFlags)
            self.preferredBlockSize = preferredBlockSize
            self.maxPayload = maxPayload
        }
    }

    /// Server side of the fixed-newstyle handshake, from the greeting to the start of transmission.
    ///
    /// Feed it every byte the client sends with `receive(_:)`; send every `.send` directive's bytes in order;
    /// stop at `.startTransmission` (the leftover bytes belong to the transmission phase) or `.close`.
    public struct ServerHandshake: Sendable {
        public enum Directive: Hashable, Sendable {
            case send([UInt8])
            /// Handshake done: serve `export`. `leftover` are client bytes already received after the handshake.
            case startTransmission(Export, leftover: [UInt8])
            /// End the connection (after sending any earlier `.send`); `reason` is for the log.
            case close(reason: String)
        }

        enum State: Hashable, Sendable {
            /// Greeting sent, waiting for the client's 32-bit flags. Can become: awaitingOption, closed.
            case awaitingClientFlags
            /// Waiting for the next option. Can become: transmission, closed.
            case awaitingOption(noZeroes: Bool, optionsSeen: Int)
            /// Handshake over. Final.
            case transmission
            /// Connection to be closed. Final.
            case closed
        }

        public let exports: [Export]
        public let handshakeFlags: HandshakeFlags
        private(set) var state: State = .awaitingClientFlags
        private var buffer: [UInt8] = []

        public init(exports: [Export], handshakeFlags: HandshakeFlags = [.fixedNewstyle, .noZeroes]) {
            self.exports = exports
            self.handshakeFlags = handshakeFlags
        }

        /// The 18 bytes the server sends first.
        public var greeting: [UInt8] {
            var writer = ByteWriter(capacity: 18)
            writer.write(NBD.initMagic)
            writer.write(NBD.optionMagic)
            writer.write(self.handshakeFlags.rawValue)
            return writer.bytes
        }

        public var isFinished: Bool {
            switch self.state {
            case .transmission, .closed: true
            default: false
            }
        }

        /// How many more bytes the parser needs before it can make progress (a read-size hint for the shell).
        public var bytesWanted: Int {
            switch self.state {
            case .awaitingClientFlags: return max(1, 4 - self.buffer.count)
            case .awaitingOption:
                if self.buffer.count < 16 { return 16 - self.buffer.count }
                var reader = ByteReader(self.buffer, position: 12)
                let length = Int(reader.readUInt32() ?? 0)
                return max(1, 16 + length - self.buffer.count)
            case .transmission, .closed: return 0
            }
        }

        public mutating func receive(_ bytes: some Sequence<UInt8>) -> [Directive] {
            guard !self.isFinished else { return [] }
            self.buffer.append(contentsOf: bytes)
            var directives: [Directive] = []
            while !self.isFinished {
                guard let step = self.step() else { break }
                directives.append(contentsOf: step)
            }
            return directives
        }

        /// One parsing step; nil when more bytes are needed.
        private mutating func step() -> [Directive]? {
            switch self.state {
            case .awaitingClientFlags:
                guard self.buffer.count >= 4 else { return nil }
                var reader = ByteReader(self.buffer)
                let raw = reader.readUInt32()!
                self.buffer.removeFirst(4)
                let flags = ClientFlags(rawValue: raw)
                let known: ClientFlags = [.fixedNewstyle, .noZeroes]
                guard flags.isSubset(of: known) else {
                    return self.close("client flags 0x\(String(raw, radix: 16)) contain unknown bits")
                }
                guard flags.contains(.fixedNewstyle) else {
                    return self.close("client does not speak fixed newstyle (flags 0x\(String(raw, radix: 16)))")
                }
                if flags.contains(.noZeroes) && !self.handshakeFlags.contains(.noZeroes) {
                    return self.close("client set NO_ZEROES which the server did not offer")
                }
                self.state = .awaitingOption(noZeroes: flags.contains(.noZeroes), optionsSeen: 0)
                return []

            case .awaitingOption(let noZeroes, let optionsSeen):
                guard self.buffer.count >= 16 else { return nil }
                var reader = ByteReader(self.buffer)
                let magic = reader.readUInt64()!
                let option = reader.readUInt32()!
                let length = reader.readUInt32()!
                guard magic == NBD.optionMagic else {
                    return self.close("option magic 0x\(String(magic, radix: 16)) is not IHAVEOPT")
                }
                guard length <= NBD.maxOptionLength else {
                    return self.close("option \(option) has length \(length), over the limit \(NBD.maxOptionLength)")
                }
                guard optionsSeen < NBD.maxOptionCount else {
                    return self.close("client sent more than \(NBD.maxOptionCount) options")
                }
                guard self.buffer.count >= 16 + Int(length) else { return nil }
                let data = Array(self.buffer[16..<(16 + Int(length))])
                self.buffer.removeFirst(16 + Int(length))
                self.state = .awaitingOption(noZeroes: noZeroes, optionsSeen: optionsSeen + 1)
                return self.handleOption(option, data: data, noZeroes: noZeroes)

            case .transmission, .closed:
                return nil
            }
        }

        private mutating func close(_ reason: String) -> [Directive] {
            self.state = .closed
            self.buffer = []
            return [.close(reason: reason)]
        }

        private func export(named name: String) -> Export? {
            if name.isEmpty { return self.exports.first }
            return self.exports.first { $0.name == name }
        }

        private mutating func handleOption(_ rawOption: UInt32, data: [UInt8], noZeroes: Bool) -> [Directive] {
            guard let option = Option(rawValue: rawOption) else {
                return [.send(Self.reply(rawOption, .errUnsupported, message: "option \(rawOption) is not supported"))]
            }
            switch option {
            case .exportName:
                let name = String(decoding: data, as: UTF8.self)
                guard let export = self.export(named: name) else {
                    // EXPORT_NAME has no error reply: the protocol says close.
                    return self.close("client asked for unknown export '\(name)' with EXPORT_NAME")
                }
                var writer = ByteWriter(capacity: 134)
                writer.write(export.size)
                writer.write(export.flags.rawValue)
                if !noZeroes { writer.writeZeroes(124) }
                return self.finish(export, before: [.send(writer.bytes)])

            case .abort:
                self.state = .closed
                return [.send(Self.reply(rawOption, .ack)), .close(reason: "client sent NBD_OPT_ABORT")]

            case .list:
                guard data.isEmpty else {
                    return [.send(Self.reply(rawOption, .errInvalid, message: "NBD_OPT_LIST takes no data"))]
                }
                var out: [UInt8] = []
                for export in self.exports {
                    var writer = ByteWriter()
                    let name = Array(export.name.utf8)
                    writer.write(UInt32(name.count))
                    writer.write(bytes: name)
                    writer.write(bytes: export.description.utf8)
                    out += Self.reply(rawOption, .server, data: writer.bytes)
                }
                out += Self.reply(rawOption, .ack)
                return [.send(out)]

            case .info, .go:
                var reader = ByteReader(data)
                guard let nameLength = reader.readUInt32(), nameLength <= UInt32(reader.remaining),
                    let nameBytes = reader.readBytes(Int(nameLength)), let requestCount = reader.readUInt16(),
                    reader.remaining == Int(requestCount) * 2
                else {
                    return [.send(Self.reply(rawOption, .errInvalid, message: "malformed \(option) request"))]
                }
                var requested: [UInt16] = []
                for _ in 0..<requestCount { requested.append(reader.readUInt16()!) }
                let name = String(decoding: nameBytes, as: UTF8.self)
                guard let export = self.export(named: name) else {
                    return [.send(Self.reply(rawOption, .errUnknown, message: "no export named '\(name)'"))]
                }
                var out: [UInt8] = []
                var info = ByteWriter()
                info.write(InfoType.export.rawValue)
                info.write(export.size)
                info.write(export.flags.rawValue)
                out += Self.reply(rawOption, .info, data: info.bytes)
                var sizes = ByteWriter()
                sizes.write(InfoType.blockSize.rawValue)
                sizes.write(UInt32(1))
                sizes.write(export.preferredBlockSize)
                sizes.write(export.maxPayload)
                out += Self.reply(rawOption, .info, data: sizes.bytes)
                if requested.contains(InfoType.name.rawValue) {
                    var named = ByteWriter()
                    named.write(InfoType.name.rawValue)
                    named.write(bytes: export.name.utf8)
                    out += Self.reply(rawOption, .info, data: named.bytes)
                }
                if requested.contains(InfoType.description.rawValue), !export.description.isEmpty {
                    var described = ByteWriter()
                    described.write(InfoType.description.rawValue)
                    described.write(bytes: export.description.utf8)
                    out += Self.reply(rawOption, .info, data: described.bytes)
                }
                out += Self.reply(rawOption, .ack)
                if option == .info { return [.send(out)] }
                return self.finish(export, before: [.send(out)])

            case .peekExport, .startTLS, .structuredReply, .listMetaContext, .setMetaContext, .extendedHeaders:
                return [.send(Self.reply(rawOption, .errUnsupported, message: "\(option) is not supported"))]
            }
        }

        private mutating func finish(_ export: Export, before: [Directive]) -> [Directive] {
            self.state = .transmission
            let leftover = self.buffer
            self.buffer = []
            return before + [.startTransmission(export, leftover: leftover)]
        }

        static func reply(_ option: UInt32, _ type: OptionReplyType, data: [UInt8] = []) -> [UInt8] {
            var writer = ByteWriter(capacity: 20 + data.count)
            writer.write(NBD.optionReplyMagic)
            writer.write(option)
            writer.write(type.rawValue)
            writer.write(UInt32(data.count))
            writer.write(bytes: data)
            return writer.bytes
        }

        static func reply(_ option: UInt32, _ type: OptionReplyType, message: String) -> [UInt8] {
            Self.reply(option, type, data: Array(message.utf8))
        }
    }
}

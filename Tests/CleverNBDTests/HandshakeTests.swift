import Testing

@testable import CleverNBD
import CleverBytes

/// Client-side byte builders for the tests.
enum ClientBytes {
    static func flags(_ flags: NBD.ClientFlags = [.fixedNewstyle, .noZeroes]) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(flags.rawValue)
        return writer.bytes
    }

    static func option(_ option: UInt32, _ data: [UInt8] = [], magic: UInt64 = NBD.optionMagic) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(magic)
        writer.write(option)
        writer.write(UInt32(data.count))
        writer.write(bytes: data)
        return writer.bytes
    }

    static func goData(name: String, infos: [UInt16] = []) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(UInt32(name.utf8.count))
        writer.write(bytes: name.utf8)
        writer.write(UInt16(infos.count))
        for info in infos { writer.write(info) }
        return writer.bytes
    }
}

struct OptionReply: Equatable {
    var option: UInt32
    var type: UInt32
    var data: [UInt8]
}

func decodeReplies(_ bytes: [UInt8]) -> [OptionReply] {
    var reader = ByteReader(bytes)
    var replies: [OptionReply] = []
    while reader.remaining > 0 {
        guard reader.readUInt64() == NBD.optionReplyMagic, let option = reader.readUInt32(),
            let type = reader.readUInt32(), let length = reader.readUInt32(), let data = reader.readBytes(Int(length))
        else {
            Issue.record("malformed option reply stream")
            return replies
        }
        replies.append(OptionReply(option: option, type: type, data: data))
    }
    return replies
}

func sentBytes(_ directives: [NBD.ServerHandshake.Directive]) -> [UInt8] {
    directives.flatMap { directive -> [UInt8] in
        if case .send(let bytes) = directive { return bytes }
        return []
    }
}

let diskExport = NBD.Export(
    name: "disk0", description: "test disk", size: 1 << 20,
    flags: [.sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes])

func negotiated() -> NBD.ServerHandshake {
    var handshake = NBD.ServerHandshake(exports: [diskExport])
    _ = handshake.receive(ClientBytes.flags())
    return handshake
}

@Suite struct HandshakeTests {
    @Test func greetingIsMagicsAndFlags() {
        let handshake = NBD.ServerHandshake(exports: [diskExport])
        var reader = ByteReader(handshake.greeting)
        #expect(reader.readUInt64() == 0x4e42_444d_4147_4943)
        #expect(reader.readUInt64() == 0x4948_4156_454F_5054)
        #expect(reader.readUInt16() == 3)
        #expect(reader.remaining == 0)
    }

    @Test func clientWithoutFixedNewstyleIsClosed() {
        var handshake = NBD.ServerHandshake(exports: [diskExport])
        let directives = handshake.receive(ClientBytes.flags([]))
        guard case .close = directives.last else { Issue.record("expected close, got \(directives)"); return }
        #expect(handshake.isFinished)
    }

    @Test func unknownClientFlagBitsAreClosed() {
        var handshake = NBD.ServerHandshake(exports: [diskExport])
        let directives = handshake.receive([0, 0, 0, 0x81])
        guard case .close(let reason) = directives.last else { Issue.record("expected close"); return }
        #expect(reason.contains("unknown bits"))
    }

    @Test func goAnswersInfoExportBlockSizeThenAckAndStartsTransmission() {
        var handshake = negotiated()
        let directives = handshake.receive(ClientBytes.option(7, ClientBytes.goData(name: "disk0")))
        let replies = decodeReplies(sentBytes(directives))
        #expect(replies.map(\.type) == [3, 3, 1])
        var info = ByteReader(replies[0].data)
        #expect(info.readUInt16() == 0)
        #expect(info.readUInt64() == 1 << 20)
        let flags = NBD.TransmissionFlags(rawValue: info.readUInt16()!)
        #expect(flags.isSuperset(of: [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes]))
        #expect(directives.last == .startTransmission(diskExport, leftover: []))
    }

    @Test func goWithEmptyNameSelectsDefaultExport() {
        var handshake = negotiated()
        let directives = handshake.receive(ClientBytes.option(7, ClientBytes.goData(name: "")))
        #expect(directives.last == .startTransmission(diskExport, leftover: []))
    }

    @Test func infoDoesNotStartTransmission() {
        var handshake = negotiated()
        let directives = handshake.receive(ClientBytes.option(6, ClientBytes.goData(name: "disk0", infos: [1, 2])))
        let replies = decodeReplies(sentBytes(directives))
        #expect(replies.map(\.type) == [3, 3, 3, 3, 1])
        #expect(!handshake.isFinished)
    }

    @Test func goForUnknownExportIsErrUnknown() {
        var handshake = negotiated()
        let directives = handshake.receive(ClientBytes.option(7, ClientBytes.goData(name: "nope")))
        #expect(decodeReplies(sentBytes(directives)).map(\.type) == [0x8000_0006])
        #expect(!handshake.isFinished)
    }

    @Test func goWithNoExportsWhileSecondaryIsErrUnknown() {
        var handshake = NBD.ServerHandshake(exports: [])
        _ = handshake.receive(ClientBytes.flags())
        let directives = handshake.receive(ClientBytes.option(7, ClientBytes.goData(name: "")))
        #expect(decodeReplies(sentBytes(directives)).map(\.type) == [0x8000_0006])
    }

    @Test func malformedGoIsErrInvalid() {
        var handshake = negotiated()
        // Name length larger than the data.
        let directives = handshake.receive(ClientBytes.option(7, [0, 0, 0, 50, 65]))
        #expect(decodeReplies(sentBytes(directives)).map(\.type) == [0x8000_0003])
        // Trailing garbage after the info requests.
        let more = handshake.receive(ClientBytes.option(7, ClientBytes.goData(name: "disk0") + [9]))
        #expect(decodeReplies(sentBytes(more)).map(\.type) == [0x8000_0003])
    }

    @Test func structuredReplyAndExtendedHeadersAreUnsupported() {
        var handshake = negotiated()
        for option: UInt32 in [8, 11, 5, 9, 10, 4, 99, 0xFFFF_FFFF] {
            let directives = handshake.receive(ClientBytes.option(option))
            let replies = decodeReplies(sentBytes(directives))
            #expect(replies.map(\.type) == [0x8000_0001], "option \(option)")
            #expect(replies.first?.option == option)
        }
        #expect(!handshake.isFinished)
    }

    @Test func listNamesEveryExportThenAck() {
        var handshake = NBD.ServerHandshake(exports: [
            diskExport, NBD.Export(name: "other", size: 4096, flags: []),
        ])
        _ = handshake.receive(ClientBytes.flags())
        let replies = decodeReplies(sentBytes(handshake.receive(ClientBytes.option(3))))
        #expect(replies.map(\.type) == [2, 2, 1])
        var first = ByteReader(replies[0].data)
        let length = first.readUInt32()!
        #expect(String(decoding: first.readBytes(Int(length))!, as: UTF8.self) == "disk0")
    }

    @Test func listWithDataIsInvalid() {
        var handshake = negotiated()
        let replies = decodeReplies(sentBytes(handshake.receive(ClientBytes.option(3, [1]))))
        #expect(replies.map(\.type) == [0x8000_0003])
    }

    @Test func abortAcksAndCloses() {
        var handshake = negotiated()
        let directives = handshake.receive(ClientBytes.option(2))
        #expect(decodeReplies(sentBytes(directives)).map(\.type) == [1])
        guard case .close = directives.last else { Issue.record("expected close"); return }
    }

    @Test func exportNameSendsSizeFlagsAndNoZeroPadWhenNoZeroes() {
        var handshake = negotiated()
        let directives = handshake.receive(ClientBytes.option(1, Array("disk0".utf8)))
        #expect(sentBytes(directives).count == 10)
        var withZeroes = NBD.ServerHandshake(exports: [diskExport])
        _ = withZeroes.receive(ClientBytes.flags([.fixedNewstyle]))
        #expect(sentBytes(withZeroes.receive(ClientBytes.option(1, Array("disk0".utf8)))).count == 134)
    }

    @Test func exportNameForUnknownExportCloses() {
        var handshake = negotiated()
        let directives = handshake.receive(ClientBytes.option(1, Array("x".utf8)))
        guard case .close = directives.last else { Issue.record("expected close"); return }
    }

    @Test func badOptionMagicCloses() {
        var handshake = negotiated()
        let directives = handshake.receive(ClientBytes.option(7, [], magic: 0x1234))
        guard case .close(let reason) = directives.last else { Issue.record("expected close"); return }
        #expect(reason.contains("IHAVEOPT"))
    }

    @Test func oversizeOptionCloses() {
        var handshake = negotiated()
        var writer = ByteWriter()
        writer.write(NBD.optionMagic)
        writer.write(UInt32(7))
        writer.write(UInt32(10_000_000))
        guard case .close = handshake.receive(writer.bytes).last else { Issue.record("expected close"); return }
    }

    @Test func byteByByteFeedingGivesSameResult() {
        var handshake = NBD.ServerHandshake(exports: [diskExport])
        let stream = ClientBytes.flags() + ClientBytes.option(8) + ClientBytes.option(7, ClientBytes.goData(name: ""))
            + [1, 2, 3]
        var directives: [NBD.ServerHandshake.Directive] = []
        for byte in stream { directives += handshake.receive([byte]) }
        #expect(decodeReplies(sentBytes(directives)).map(\.type) == [0x8000_0001, 3, 3, 1])
        // Bytes sent after GO in the same segment as the last option byte belong to transmission.
        guard case .startTransmission = directives.last else { Issue.record("expected start"); return }
    }

    @Test func leftoverBytesAfterGoArePassedOn() {
        var handshake = negotiated()
        let directives = handshake.receive(ClientBytes.option(7, ClientBytes.goData(name: "")) + [7, 8, 9])
        #expect(directives.last == .startTransmission(diskExport, leftover: [7, 8, 9]))
    }

    @Test func tooManyOptionsClose() {
        var handshake = negotiated()
        var last: [NBD.ServerHandshake.Directive] = []
        for _ in 0...NBD.maxOptionCount { last = handshake.receive(ClientBytes.option(8)) }
        guard case .close = last.last else { Issue.record("expected close"); return }
    }

    @Test func bytesWantedHintsHeaderThenPayload() {
        var handshake = NBD.ServerHandshake(exports: [diskExport])
        #expect(handshake.bytesWanted == 4)
        _ = handshake.receive(ClientBytes.flags())
        #expect(handshake.bytesWanted == 16)
        let option = ClientBytes.option(7, ClientBytes.goData(name: "disk0"))
        _ = handshake.receive(option.prefix(16))
        #expect(handshake.bytesWanted == option.count - 16)
    }
}

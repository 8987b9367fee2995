import Testing

@testable import CleverNBD
import CleverBytes

@Suite struct RequestTests {
    func header(_ command: UInt16, flags: UInt16 = 0, offset: UInt64 = 0, length: UInt32 = 4096, cookie: UInt64 = 42)
        -> [UInt8]
    {
        NBD.encodeRequestHeader(command: command, flags: flags, cookie: cookie, offset: offset, length: length)
    }

    @Test func validReadWriteFlushTrimZeroesExecute() {
        for command: UInt16 in [0, 1, 4, 6] {
            guard case .execute(let request) = NBD.decideRequest(header: header(command), export: diskExport) else {
                Issue.record("command \(command) not executed"); continue
            }
            #expect(request.cookie == 42)
            #expect(request.length == 4096)
        }
        #expect(
            NBD.decideRequest(header: header(3, length: 0), export: diskExport)
                == .execute(NBD.Request(command: .flush, cookie: 42, offset: 0, length: 0)))
    }

    @Test func fuaFlagIsKept() {
        let decision = NBD.decideRequest(header: header(1, flags: 1), export: diskExport)
        #expect(decision == .execute(NBD.Request(command: .write, flags: .fua, cookie: 42, offset: 0, length: 4096)))
    }

    @Test func badMagicDisconnects() {
        let bytes = NBD.encodeRequestHeader(command: 0, flags: 0, cookie: 1, offset: 0, length: 1, magic: 0xdead_beef)
        guard case .disconnect(let reason) = NBD.decideRequest(header: bytes, export: diskExport) else {
            Issue.record("expected disconnect"); return
        }
        #expect(reason.contains("magic"))
    }

    @Test func shortHeaderDisconnects() {
        guard case .disconnect = NBD.decideRequest(header: Array(header(0).prefix(20)), export: diskExport) else {
            Issue.record("expected disconnect"); return
        }
    }

    @Test func oversizeWriteDisconnectsButOversizeReadIsRejected() {
        guard case .disconnect = NBD.decideRequest(header: header(1, length: 64 << 20), export: diskExport) else {
            Issue.record("expected disconnect"); return
        }
        let decision = NBD.decideRequest(header: header(0, length: 64 << 20), export: diskExport)
        guard case .reject(42, .invalid, 0, _) = decision else { Issue.record("got \(decision)"); return }
    }

    @Test func writeBeyondEndIsNoSpaceAndPayloadIsSkipped() {
        let decision = NBD.decideRequest(header: header(1, offset: (1 << 20) - 100), export: diskExport)
        guard case .reject(42, .noSpace, 4096, _) = decision else { Issue.record("got \(decision)"); return }
    }

    @Test func readBeyondEndIsInvalid() {
        let decision = NBD.decideRequest(header: header(0, offset: 1 << 20, length: 1), export: diskExport)
        guard case .reject(_, .invalid, 0, _) = decision else { Issue.record("got \(decision)"); return }
    }

    @Test func offsetOverflowIsRejectedNotTrapped() {
        let decision = NBD.decideRequest(header: header(0, offset: UInt64.max - 1, length: 4096), export: diskExport)
        guard case .reject(_, .invalid, 0, _) = decision else { Issue.record("got \(decision)"); return }
        let write = NBD.decideRequest(header: header(1, offset: UInt64.max, length: 16), export: diskExport)
        guard case .reject(_, .noSpace, 16, _) = write else { Issue.record("got \(write)"); return }
    }

    @Test func unknownCommandIsInvalid() {
        let decision = NBD.decideRequest(header: header(77), export: diskExport)
        guard case .reject(42, .invalid, 0, let reason) = decision else { Issue.record("got \(decision)"); return }
        #expect(reason.contains("77"))
    }

    @Test func unknownFlagsOnWriteAreInvalidAndPayloadSkipped() {
        let decision = NBD.decideRequest(header: header(1, flags: 0x8000), export: diskExport)
        guard case .reject(42, .invalid, 4096, _) = decision else { Issue.record("got \(decision)"); return }
    }

    @Test func unadvertisedCommandsAreInvalid() {
        let plain = NBD.Export(name: "p", size: 1 << 20, flags: [])
        for command: UInt16 in [3, 4, 6, 5, 7] {
            guard case .reject(_, .invalid, 0, _) = NBD.decideRequest(header: header(command), export: plain) else {
                Issue.record("command \(command) not rejected"); continue
            }
        }
    }

    @Test func readOnlyExportRefusesWrites() {
        let readOnly = NBD.Export(name: "r", size: 1 << 20, flags: [.readOnly, .sendTrim])
        guard case .reject(_, .permissionDenied, 4096, _) = NBD.decideRequest(header: header(1), export: readOnly)
        else { Issue.record("expected EPERM"); return }
    }

    @Test func fastZeroIsNotSupported() {
        guard case .reject(_, .notSupported, 0, _) = NBD.decideRequest(header: header(6, flags: 16), export: diskExport)
        else { Issue.record("expected ENOTSUP"); return }
    }

    @Test func disconnectExecutes() {
        guard case .execute(let request) = NBD.decideRequest(header: header(2, length: 0), export: diskExport) else {
            Issue.record("expected execute"); return
        }
        #expect(request.command == .disconnect)
    }

    @Test func simpleReplyRoundTrips() {
        let bytes = NBD.simpleReplyHeader(cookie: 0x0102_0304_0506_0708, error: .io)
        #expect(bytes.count == 16)
        #expect(NBD.decodeSimpleReply(bytes) == NBD.SimpleReply(error: 5, cookie: 0x0102_0304_0506_0708))
        #expect(NBD.decodeSimpleReply(Array(bytes.prefix(10))) == nil)
        var corrupted = bytes
        corrupted[0] = 0
        #expect(NBD.decodeSimpleReply(corrupted) == nil)
    }

    @Test func requestEncodingRoundTrips() {
        let request = NBD.Request(command: .writeZeroes, flags: .fua, cookie: 9, offset: 8192, length: 512)
        #expect(NBD.decideRequest(header: request.encodedHeader, export: diskExport) == .execute(request))
    }
}

import Crypto
import Foundation

extension Replication {
    /// The keys that protect a link's frames after the handshake, one per direction, derived from the shared
    /// secret and both hellos' fresh challenges (HKDF-SHA256), so every connection has keys of its own and a
    /// frame recorded on one connection is useless on another.
    public struct SessionKeys: Sendable, Equatable, CustomStringConvertible {
        public var sending: [UInt8]
        public var receiving: [UInt8]

        public init(sending: [UInt8], receiving: [UInt8]) {
            self.sending = sending
            self.receiving = receiving
        }

        /// Both sides derive the same pair, mirrored: `sending` here is `receiving` on the peer.
        public static func derive(
            secret: [UInt8], volume: String, localNode: String, peerNode: String, localChallenge: [UInt8],
            peerChallenge: [UInt8]
        ) -> SessionKeys {
            Self.derive(secret: secret, purpose: "clevervm-volume-frames-v1", subject: volume, localNode: localNode,
                peerNode: peerNode, localChallenge: localChallenge, peerChallenge: peerChallenge)
        }

        /// The same derivation for another kind of link (`purpose` names it, e.g. the console relay's), so keys of
        /// one kind never serve the other.
        public static func derive(
            secret: [UInt8], purpose: String, subject: String, localNode: String, peerNode: String,
            localChallenge: [UInt8], peerChallenge: [UInt8]
        ) -> SessionKeys {
            func key(sender: String, receiver: String, senderChallenge: [UInt8], receiverChallenge: [UInt8]) -> [UInt8] {
                var salt: [UInt8] = []
                salt += senderChallenge
                salt += receiverChallenge
                var info = Array(purpose.utf8)
                for part in [subject, sender, receiver] {
                    info += [UInt8(truncatingIfNeeded: part.utf8.count >> 8), UInt8(truncatingIfNeeded: part.utf8.count)]
                    info += part.utf8
                }
                let derived = HKDF<SHA256>.deriveKey(
                    inputKeyMaterial: SymmetricKey(data: secret), salt: salt, info: info, outputByteCount: 32)
                return derived.withUnsafeBytes { Array($0) }
            }
            return SessionKeys(
                sending: key(sender: localNode, receiver: peerNode, senderChallenge: localChallenge,
                    receiverChallenge: peerChallenge),
                receiving: key(sender: peerNode, receiver: localNode, senderChallenge: peerChallenge,
                    receiverChallenge: localChallenge))
        }

        /// Never the key bytes: this value may end up in a log line.
        public var description: String { "SessionKeys(…)" }
    }

    /// Integrity of one direction of a link: every frame after the handshake carries a 16-byte tag over its
    /// header and payload, keyed per direction and numbered by an implicit frame counter, so a changed,
    /// dropped, replayed or reordered frame fails the check. The tag is AES-256-GCM's over the payload as
    /// associated data with the header as the (never sent) message: GHASH runs at memory speed with AES-NI
    /// and PCLMUL, and both halves are hashed where they lie, without copying a 1 MiB write.
    ///
    /// Frames are sealed in the order they are sent and opened in the order they arrive (one sealer per
    /// sending side, under its send lock; one opener per receiving thread).
    public struct FrameSealer: Sendable {
        private let key: [UInt8]
        public private(set) var counter: UInt64 = 0

        public init(key: [UInt8]) {
            self.key = key
        }

        /// How many leading payload bytes join the header as GCM's message; the rest is associated data. The
        /// split depends only on the payload's length, so sender and receiver agree whatever pieces they hold.
        static let messagePrefix = 32

        /// The tag over `header` and the logical payload `fields + data` (a write's fixed fields precede its
        /// data, which stays where the client's request put it).
        private func tag(header: [UInt8], fields: [UInt8], data: UnsafeRawBufferPointer, counter: UInt64) -> [UInt8] {
            precondition(fields.count <= Self.messagePrefix, "sealed fields longer than the message prefix")
            let fromData = min(Self.messagePrefix - fields.count, data.count)
            var message = header
            message += fields
            message += UnsafeRawBufferPointer(rebasing: data[0..<fromData])
            let associated = UnsafeRawBufferPointer(rebasing: data[fromData...])
            // A 12-byte nonce is always valid and sealing cannot fail on valid inputs: a throw here is a broken
            // crypto library, not bad input.
            let box = try! AES.GCM.seal(message, using: SymmetricKey(data: self.key), nonce: Self.nonce(counter),
                authenticating: associated)
            return Array(box.tag)
        }

        /// GCM's nonce for frame number `counter`: unique per key, since every connection derives keys of its own.
        private static func nonce(_ counter: UInt64) -> AES.GCM.Nonce {
            var nonce = [UInt8](repeating: 0, count: 12)
            for index in 0..<8 { nonce[4 + index] = UInt8(truncatingIfNeeded: counter >> (56 - 8 * index)) }
            return try! AES.GCM.Nonce(data: nonce)
        }

        /// The tag of the next frame sent, whose payload is `fields` followed by `data`.
        public mutating func seal(header: [UInt8], fields: [UInt8] = [], data: UnsafeRawBufferPointer) -> [UInt8] {
            defer { self.counter += 1 }
            return self.tag(header: header, fields: fields, data: data, counter: self.counter)
        }

        public mutating func seal(header: [UInt8], payload: [UInt8]) -> [UInt8] {
            payload.withUnsafeBytes { self.seal(header: header, data: $0) }
        }

        /// Checks the next frame received; false means this frame (or one before it) was changed, dropped,
        /// replayed or reordered.
        public mutating func open(header: [UInt8], payload: UnsafeRawBufferPointer, tag: [UInt8]) -> Bool {
            defer { self.counter += 1 }
            return Replication.constantTimeEqual(
                self.tag(header: header, fields: [], data: payload, counter: self.counter), tag)
        }

        public mutating func open(header: [UInt8], payload: [UInt8], tag: [UInt8]) -> Bool {
            payload.withUnsafeBytes { self.open(header: header, payload: $0, tag: tag) }
        }

        // MARK: Encrypted frames

        /// The next frame sent on a link whose payload is confidential too (the console relay): the payload
        /// encrypted with AES-256-GCM under this direction's key and frame number, the header as associated data.
        public mutating func encrypt(header: [UInt8], payload: [UInt8]) -> (ciphertext: [UInt8], tag: [UInt8]) {
            defer { self.counter += 1 }
            let box = try! AES.GCM.seal(payload, using: SymmetricKey(data: self.key), nonce: Self.nonce(self.counter),
                authenticating: header)
            return (Array(box.ciphertext), Array(box.tag))
        }

        /// The payload of the next frame received, or nil when it (or one before it) was changed, dropped,
        /// replayed or reordered: the link must then end.
        public mutating func decrypt(header: [UInt8], ciphertext: [UInt8], tag: [UInt8]) -> [UInt8]? {
            defer { self.counter += 1 }
            guard let box = try? AES.GCM.SealedBox(nonce: Self.nonce(self.counter), ciphertext: ciphertext, tag: tag),
                let plain = try? AES.GCM.open(box, using: SymmetricKey(data: self.key), authenticating: header)
            else { return nil }
            return Array(plain)
        }
    }

    /// Compares secrets' derivatives (proofs, tags) in time that does not depend on where they differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// HMAC-SHA256 of the handshake's challenge-response (see `authTranscript`).
    public static func authProof(secret: [UInt8], transcript: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: transcript, using: SymmetricKey(data: secret)))
    }
}

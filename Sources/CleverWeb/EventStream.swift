import CleverControl
import Foundation
import HTTPTypes
import Hummingbird

/// `GET /api/v1/stream`: server-sent events. `history` events carry the event log (with ids, so a reconnecting
/// browser resumes from Last-Event-ID without a gap); a `status` event follows every change of the cluster's
/// state, with the agent's reachability. A comment every 15 polls without a change keeps proxies from closing an idle
/// stream.
struct EventStream {
    let feed: StatusFeed
    static let lastEventID = HTTPField.Name("Last-Event-ID")!

    struct StatusMessage: Encodable {
        var version: Int
        var agentError: String?
        var status: StatusReport?
    }

    func response(lastEventID: String?) async throws -> Response {
        let feed = self.feed
        let (id, frames) = await feed.subscribe()
        let first = await feed.frame
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-store"
        let resumeAfter = lastEventID.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
        let body = ResponseBody { writer in
            defer { Task { await feed.unsubscribe(id) } }
            var lastSent = resumeAfter ?? first.events.last?.streamID ?? 0
            // What the browser missed while disconnected, then where things stand now.
            if resumeAfter != nil {
                for event in first.events where event.streamID > lastSent {
                    try await writer.write(ByteBuffer(string: try Self.history(event)))
                    lastSent = event.streamID
                }
            }
            try await writer.write(ByteBuffer(string: try Self.status(first)))
            for await message in frames {
                switch message {
                case .keepAlive:
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                case .frame(let frame):
                    for event in frame.events where event.streamID > lastSent {
                        try await writer.write(ByteBuffer(string: try Self.history(event)))
                        lastSent = event.streamID
                    }
                    try await writer.write(ByteBuffer(string: try Self.status(frame)))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    static func history(_ event: EventRecord) throws -> String {
        "id: \(event.streamID)\nevent: history\ndata: \(try Self.line(event))\n\n"
    }

    static func status(_ frame: Frame) throws -> String {
        "event: status\ndata: \(try Self.line(StatusMessage(version: frame.version, agentError: frame.agentError, status: frame.status)))\n\n"
    }

    /// One line of JSON (SSE data ends at a newline).
    static func line<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

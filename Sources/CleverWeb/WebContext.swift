import Foundation
import Hummingbird
import HummingbirdWebSocket

/// Per request: who is logged in (if anyone). It also serves the websocket router (the console's screen and
/// serial console), so the same access middleware decides an upgrade.
public struct WebContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<WebContext>
    public var session: SessionTable.Session?
    public var sessionToken: String?
    /// The peer's IP address (the login throttle's key); nil on a test channel.
    public var remoteAddress: String?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    public var requestDecoder: FormOrJSONDecoder { FormOrJSONDecoder() }
}

/// HTML forms post urlencoded, the API takes JSON.
public struct FormOrJSONDecoder: RequestDecoder {
    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        if request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true {
            return try await URLEncodedFormDecoder().decode(type, from: request, context: context)
        }
        return try await JSONDecoder().decode(type, from: request, context: context)
    }
}

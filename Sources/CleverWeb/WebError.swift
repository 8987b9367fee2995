import Foundation
import Hummingbird

/// An error the console reports to a user: what went wrong, naming the thing, with the HTTP status it maps to.
public struct WebError: Error, HTTPResponseError, CustomStringConvertible, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    /// Sent with the answer (e.g. `Retry-After`).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { self.message }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let wantsJSON = request.uri.path.hasPrefix("/api/") || request.headers[.accept]?.contains("application/json") == true
        if wantsJSON {
            let body = (try? JSONEncoder().encode(["error": self.message])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            var headers = self.headers
            headers[.contentType] = "application/json; charset=utf-8"
            return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        var headers = self.headers
        headers[.contentType] = "text/html; charset=utf-8"
        let html = "<!doctype html><title>\(self.status.code)</title><link rel=stylesheet href=/static/bootstrap.min.css>"
            + "<div class='container py-4'><div class='alert alert-danger'>\(HTML.escape(self.message))</div>"
            + "<a href='/'>Overview</a></div>"
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

/// Small helpers for text the console writes by hand.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}

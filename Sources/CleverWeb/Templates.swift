import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// The mustache templates (Templates/*.mustache, shipped as resources) and the page layout around them.
public struct Templates: Sendable {
    let library: MustacheLibrary

    public static func load() async throws -> Templates {
        let directory = WebResources.url("Templates").path
        guard FileManager.default.fileExists(atPath: directory) else {
            throw WebError(.internalServerError, "the console's templates are missing: no \(directory)")
        }
        return Templates(library: try await MustacheLibrary(directory: directory))
    }

    struct Layout {
        var title: String
        var page: String
        var csrf: String
        var user: String
        var role: String
        var isOperator: Bool
        var content: String
        var controls: String
        var version: Int
    }

    /// Every HTML answer: no caching, no inline script or style, no framing, no type sniffing.
    static var htmlHeaders: HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return headers
    }

    func render(_ object: Any, _ template: String) throws -> String {
        guard let text = self.library.render(object, withTemplate: template) else {
            throw WebError(.internalServerError, "no template named \(template)")
        }
        return text
    }

    /// A page: the live part (re-fetched with `X-Fragment: 1` when the SSE stream says the cluster changed),
    /// then its controls, which stay as the user left them.
    func page(request: Request, context: WebContext, name: String, title: String, live: Any, controls: Any? = nil, version: Int) throws -> Response {
        let content = try self.render(live, name)
        let headers = Self.htmlHeaders
        if request.headers[HTTPField.Name("X-Fragment")!] != nil {
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: content)))
        }
        let session = context.session
        let layout = Layout(
            title: title, page: name, csrf: session?.csrfToken ?? "", user: session?.user ?? "", role: session?.role.rawValue ?? "",
            isOperator: (session?.role ?? .viewer) >= .operator, content: content,
            controls: try controls.map { try self.render($0, name + "-controls") } ?? "", version: version)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: try self.render(layout, "layout"))))
    }
}

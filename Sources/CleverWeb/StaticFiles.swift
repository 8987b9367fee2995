import Foundation
import Hummingbird

/// The console's own script and style (resources), and Debian's Bootstrap 5 (`libjs-bootstrap5`) from where the
/// package installs it: nothing comes from the internet.
enum StaticFiles {
    static let bootstrapDirectory = "/usr/share/javascript/bootstrap5/css"
    static let files: [String: (type: String, source: Source)] = [
        "app.js": ("text/javascript; charset=utf-8", .resource),
        "app.css": ("text/css; charset=utf-8", .resource),
        "screen.js": ("text/javascript; charset=utf-8", .resource),
        "serial.js": ("text/javascript; charset=utf-8", .resource),
        "bootstrap.min.css": ("text/css; charset=utf-8", .system(bootstrapDirectory + "/bootstrap.min.css")),
    ]

    enum Source { case resource, system(String) }

    static func response(_ name: String) throws -> Response {
        guard let entry = self.files[name] else { throw WebError(.notFound, "no static file named '\(name)'") }
        let path: String
        switch entry.source {
        case .resource:
            path = WebResources.url("Static/\(name)").path
        case .system(let systemPath):
            path = systemPath
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            if name == "bootstrap.min.css" {
                // The console still works unstyled; say what is missing in the page's own CSS comments.
                return self.make("/* \(path) is missing: apt-get install libjs-bootstrap5 */", type: entry.type)
            }
            throw WebError(.notFound, "\(path) is missing")
        }
        return self.make(String(decoding: data, as: UTF8.self), type: entry.type)
    }

    static func make(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=300"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

enum OpenAPIDocument {
    static func response() throws -> Response {
        let path = WebResources.url("Static/openapi.json").path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WebError(.internalServerError, "the OpenAPI document is missing from the console's resources (\(path))")
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}

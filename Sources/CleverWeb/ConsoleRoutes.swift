import CleverModel
import CleverQEMU
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging

/// The VM's screen (noVNC) and serial console: their pages, their websockets, and Debian's noVNC files.
///
///     GET /vm/ID/screen              the noVNC page            (operator)
///     GET /vm/ID/serial              the serial console page   (operator)
///     GET /vm/ID/screen/websocket    RFB of the VM's VNC display, both ways    (operator, same origin)
///     GET /vm/ID/serial/websocket    the serial console's bytes, both ways     (operator, same origin)
///     GET /novnc/core/…, /novnc/vendor/…   /usr/share/novnc (open, as /static)
///
/// A websocket is bridged to `ConsoleDialer.open`: the VM's socket here, or the console relay of its host.
struct ConsoleRoutes {
    let templates: Templates
    let feed: StatusFeed
    let link: AgentLink
    let dialer: ConsoleDialer

    static let noVNCDirectory = "/usr/share/novnc"

    struct Page { var banner: Views.Banner; var id: String; var `where`: String; var hasScreen: Bool; var noVNCMissing: Bool }

    /// The pages and the answers to a websocket path asked without an upgrade (the upgrade itself is served by
    /// `addWebSockets`): the access middleware here says why one would be refused, else 426.
    func add(to router: Router<WebContext>) {
        for channel in ConsoleRelay.Channel.allCases {
            let name = Self.pageName(channel)
            router.get("vm/:id/\(name)") { request, context -> Response in
                let id = try context.parameters.require("id")
                let frame = await self.feed.frame
                if let config = frame.config { try ConsoleDialer.check(id, channel: channel, config: config) }
                let hosts = frame.status?.resources.first { $0.id == id }?.roles.keys.sorted() ?? []
                let page = Page(banner: Views.banner(frame), id: id, where: hosts.isEmpty ? "runs nowhere" : "on " + hosts.joined(separator: ", "),
                                hasScreen: Views.hasScreen(id, config: frame.config),
                                noVNCMissing: !FileManager.default.fileExists(atPath: Self.noVNCDirectory + "/core/rfb.js"))
                return try self.templates.page(request: request, context: context, name: name,
                                               title: "\(channel == .vnc ? "Screen" : "Serial console") of \(id)", live: page,
                                               controls: page, version: frame.version)
            }
            router.get("vm/:id/\(name)/websocket") { _, context -> Response in
                let id = try context.parameters.require("id")
                if let config = await self.feed.frame.config { try ConsoleDialer.check(id, channel: channel, config: config) }
                throw WebError(HTTPResponse.Status(code: 426, reasonPhrase: "Upgrade Required"),
                               "GET /vm/\(id)/\(name)/websocket is a websocket: the \(name) page opens it",
                               headers: [.upgrade: "websocket"])
            }
        }
        router.get("novnc/**") { _, context -> Response in
            try Self.noVNCFile(context.parameters.getCatchAll().joined(separator: "/"))
        }
    }

    /// The websocket upgrades, on the router that decides them (behind the same access middleware).
    func addWebSockets(to router: Router<WebContext>) {
        for channel in ConsoleRelay.Channel.allCases {
            let name = Self.pageName(channel)
            router.ws("vm/:id/\(name)/websocket") { _, context in
                let id = try context.parameters.require("id")
                if let config = await self.feed.frame.config { try ConsoleDialer.check(id, channel: channel, config: config) }
                return .upgrade([:])
            } onUpgrade: { inbound, outbound, context in
                let id = try context.requestContext.parameters.require("id")
                let user = context.requestContext.session?.user ?? "?"
                let logger = context.logger
                let opened: ConsoleDialer.Opened
                do {
                    opened = try await self.dialer.open(id, channel: channel, link: self.link)
                } catch {
                    let message = "cannot open \(id)'s \(channel == .vnc ? "screen" : "serial console"): \(error)"
                    logger.notice("console refused", metadata: ["vm": "\(id)", "channel": "\(channel.rawValue)", "user": "\(user)", "error": "\(error)"])
                    try? await outbound.write(.text(message))
                    try? await outbound.close(.unexpectedServerError, reason: String(message.utf8.prefix(120)) ?? "cannot open the console")
                    return
                }
                logger.info("console opened", metadata: ["vm": "\(id)", "channel": "\(channel.rawValue)", "user": "\(user)", "node": "\(opened.host)"])
                try await ConsoleBridge.run(fd: opened.fd, inbound: inbound, outbound: outbound)
                logger.info("console closed", metadata: ["vm": "\(id)", "channel": "\(channel.rawValue)", "user": "\(user)"])
            }
        }
    }

    static func pageName(_ channel: ConsoleRelay.Channel) -> String { channel == .vnc ? "screen" : "serial" }

    /// A file of Debian's noVNC: only its JavaScript modules (core/, vendor/), by plain names, nothing above them.
    static func noVNCFile(_ relative: String) throws -> Response {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
        let plain = parts.allSatisfy { part in
            !part.isEmpty && !part.hasPrefix(".") && part.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
        }
        guard plain, parts.count >= 2, ["core", "vendor"].contains(parts[0]), relative.hasSuffix(".js") else {
            throw WebError(.notFound, "no noVNC file named '\(relative)'")
        }
        let path = "\(Self.noVNCDirectory)/\(relative)"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WebError(.notFound, "\(path) is missing: apt-get install novnc")
        }
        return StaticFiles.make(String(decoding: data, as: UTF8.self), type: "text/javascript; charset=utf-8")
    }
}

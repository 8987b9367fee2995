import Foundation

/// Where the console's own files (Static/, Templates/) are. A build has them in SwiftPM's resource bundle beside the
/// executable (or the test runner); the Debian package installs them in /usr/share/clevervm/web, since a bundle
/// directory has no place in /usr/bin. The bundle is looked for by hand first: SwiftPM's `Bundle.module` stops the
/// process when it finds none, and a packaged console must start without one.
enum WebResources {
    static let bundleName = "CleverVM_CleverWeb.resources"
    static let packagedDirectory = "/usr/share/clevervm/web"

    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["CLEVERVM_WEB_RESOURCES"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        let besideExecutable = Bundle.main.bundleURL.appendingPathComponent(bundleName)
        if FileManager.default.fileExists(atPath: besideExecutable.path) { return besideExecutable }
        if FileManager.default.fileExists(atPath: packagedDirectory) { return URL(fileURLWithPath: packagedDirectory) }
        return Bundle.module.resourceURL ?? Bundle.module.bundleURL
    }()

    static func url(_ relativePath: String) -> URL { self.directory.appendingPathComponent(relativePath) }
}

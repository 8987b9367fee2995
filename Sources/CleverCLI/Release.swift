/// The release this build is: `clevervm --version`, and the Debian package's version (scripts/build-deb.sh reads
/// it from the built binary, so the two cannot differ). Raise it for every release.
enum Release {
    static let version = "0.1.0"
}

#if canImport(Glibc)
import Glibc
#endif

/// Whether a string is an IPv4 dotted quad or an IPv6 address (inet_pton's reading).
enum IPAddressText {
    static func isAddress(_ text: String) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, text, &buffer) == 1 || inet_pton(AF_INET6, text, &buffer) == 1
    }
}

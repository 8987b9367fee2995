// Added by the CIB import branch: the model's Codable types (ClusterProperties, ResourceMeta, ...)
// hold Scores, so Score must be Codable for the package to build. Encoded as its clamped integer.
extension Score: Codable {
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(Int.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.value)
    }
}

import SluiceCore

/// Reading the fields every client API shares, with the errors clients see.
enum RequestFields {
    /// An optional number within `range`; anything else is a 400 naming the field.
    static func number(_ value: JSONValue?, _ name: String, in range: ClosedRange<Double>) throws -> Double? {
        switch value {
        case nil, .null?: return nil
        case .some(let v):
            guard let d = v.doubleValue, range.contains(d) else {
                throw SluiceError(.invalidValue, "\(name): expected a number from \(range.lowerBound) to \(range.upperBound).", param: name)
            }
            return d
        }
    }
}

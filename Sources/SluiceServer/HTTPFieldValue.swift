import HTTPTypes

extension HTTPFields {
    /// The value of the field `name`, as `self[name]` gives it, for the headers read on every
    /// request. The subscript joins the values through an unspecialised generic `joined`, which
    /// showed in profiles even with one field; one field's value is returned as it is, and only
    /// several fields of the name go through the subscript's joining.
    func value(_ name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            if found != nil { return self[name] }
            found = field.value
        }
        return found
    }
}

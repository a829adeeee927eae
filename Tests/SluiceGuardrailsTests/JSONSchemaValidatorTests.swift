import SluiceCore
import Testing
@testable import SluiceGuardrails

@Suite struct JSONSchemaValidatorTests {
    let schema: JSONValue = [
        "type": "object",
        "properties": [
            "name": ["type": "string", "minLength": 2, "maxLength": 10, "pattern": "^[A-Z]"],
            "age": ["type": "integer", "minimum": 0, "maximum": 150],
            "tags": ["type": "array", "items": ["type": "string"], "minItems": 1, "maxItems": 3],
            "kind": ["enum": ["a", "b"]],
            "version": ["const": 2],
            "address": ["$ref": "#/$defs/address"],
            "contact": ["anyOf": [["type": "string"], ["type": "null"]]],
            "shape": ["oneOf": [["type": "integer"], ["type": "number", "minimum": 10]]],
            "both": ["allOf": [["type": "number"], ["minimum": 1]]],
        ],
        "required": ["name", "age"],
        "additionalProperties": false,
        "$defs": ["address": ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]]],
    ]

    func violations(_ json: String) throws -> [String] {
        try JSONSchemaValidator(schema: schema).validate(text: json).map(\.description)
    }

    @Test func validDocumentPasses() throws {
        #expect(try violations(#"{"name":"Ann","age":30,"tags":["x"],"kind":"a","version":2,"address":{"city":"Oslo"},"contact":null,"shape":3,"both":2}"#).isEmpty)
        // A Markdown fence around the JSON is tolerated.
        #expect(try violations("```json\n{\"name\":\"Ann\",\"age\":1}\n```").isEmpty)
    }

    @Test func eachKeywordIsEnforced() throws {
        let v = try violations(#"{"name":"a","age":200.5,"tags":[],"kind":"c","version":3,"address":{},"contact":5,"shape":12,"both":0,"extra":1}"#)
        let all = v.joined(separator: "\n")
        for expected in [
            "/name: must be at least 2 characters", "/name: does not match pattern", "/age: expected integer", "/tags: needs at least 1 items",
            "/kind: must be one of", "/version: must be 2", "/address: missing required property 'city'", "/contact: matches none of anyOf",
            "/shape: must match exactly one of oneOf, matches 2", "/both: must be ≥ 1", "/: property 'extra' is not allowed",
        ] {
            #expect(all.contains(expected), "missing '\(expected)' in:\n\(all)")
        }
        #expect(try violations(#"{"age":1}"#).contains("/: missing required property 'name'"))
        #expect(try violations("not json") == ["/: the answer is not valid JSON"])
    }

    @Test func badPatternIsAClientError() {
        #expect(throws: SluiceError.self) { try JSONSchemaValidator(schema: ["type": "string", "pattern": "(unclosed"]) }
    }
}

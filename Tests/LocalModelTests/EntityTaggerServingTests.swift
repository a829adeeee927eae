import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceServer

/// The PII entity tagger (`pii: {ner: true}`) wired into a policy: MiniLM in process gives each
/// word's state, the shipped network tags names, addresses and dates, and the findings are
/// redacted with the detectors' own.
@Suite(.enabled(if: LocalModels.miniLMDirectory != nil, "needs SLUICE_MINILM_DIR (make test sets it)"))
struct EntityTaggerServingTests {
    static func build(ner: String = "true") async throws -> SluiceApplication {
        try await LocalModels.build(
            yaml: LocalModels.simulatedWithMiniLM(
                guardrails: "{ default_policy: tagged, policies: { tagged: { input: { pii: { action: redact, ner: \(ner) } } }, cues: { input: { pii: { action: redact } } } } }"))
    }

    // Written for this test; in no training file.
    static let letter = "Marguerite Okonkwo has lived at 14 Baker Street, London NW1 6XE since March 3, 2021."

    static func types(_ json: JSONValue?) -> [String] {
        (json?["findings"]?.arrayValue ?? []).compactMap { $0["type"]?.stringValue }
    }

    @Test func theCheckEndpointFindsNamesAddressesAndDatesTheCuesMiss() async throws {
        let app = try await Self.build()
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/guardrails/check", method: .post, body: ByteBuffer(string: #"{"text":"\#(Self.letter)"}"#)) { response in
                #expect(response.status == .ok)
                let types = Self.types(response.body.json)
                #expect(types.contains("PERSON"), "\(types)")
                #expect(types.contains("STREET_ADDRESS"), "\(types)")
                #expect(types.contains("DATE_TIME"), "\(types)")
                let text = response.body.json?["text"]?.stringValue ?? ""
                #expect(!text.contains("Okonkwo") && !text.contains("Baker Street") && !text.contains("2021"), "\(text)")
                #expect(text.hasSuffix("."), "the full stop is not part of the date: \(text)")
            }
            // The same text under the cue-only policy: no name, no date.
            try await client.execute(uri: "/v1/guardrails/check", method: .post, body: ByteBuffer(string: #"{"text":"\#(Self.letter)","policy":"cues"}"#)) { response in
                let types = Self.types(response.body.json)
                #expect(!types.contains("PERSON") && !types.contains("DATE_TIME"), "\(types)")
            }
            // Nothing personal: nothing found.
            try await client.execute(uri: "/v1/guardrails/check", method: .post, body: ByteBuffer(string: #"{"text":"How do I reset the password of my home router?"}"#)) { response in
                #expect(Self.types(response.body.json) == [], "\(Self.types(response.body.json))")
            }
        }
    }

    @Test func aChatPromptReachesTheModelRedacted() async throws {
        let app = try await Self.build()
        try await app.http.test(.router) { client in
            let body = ByteBuffer(string: #"{"model":"sim","messages":[{"role":"user","content":[{"type":"text","text":"\#(Self.letter)"}]}]}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [HTTPField.Name("x-sim-mode")!: "echo"], body: body) { response in
                #expect(response.status == .ok)
                let answer = response.body.json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? ""
                #expect(answer.contains("has lived at"), "\(answer)")
                #expect(!answer.contains("Okonkwo") && !answer.contains("Baker Street"), "\(answer)")
            }
        }
    }

    @Test func aPolicyWithoutAMiniLMModelIsAConfigError() async throws {
        func simulatedOnly(_ policy: String) -> String {
            """
            store: { sqlite: ":memory:" }
            providers: { sim: { kind: simulated } }
            models: [{ name: sim, provider: sim }]
            guardrails: { policies: { tagged: \(policy) } }
            logging: { level: error }
            """
        }
        await #expect(throws: ConfigErrors.self) { _ = try await LocalModels.build(yaml: simulatedOnly("{ input: { pii: { ner: true } } }")) }
        await #expect(throws: ConfigErrors.self) { _ = try await Self.build(ner: "{ model: nowhere }") }
        await #expect(throws: ConfigErrors.self) { _ = try await LocalModels.build(yaml: simulatedOnly("{ output: { pii: { ner: true } } }")) }
    }
}

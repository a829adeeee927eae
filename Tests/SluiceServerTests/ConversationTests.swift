import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import AsyncHTTPClient
import SluiceTesting
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// Conversations through HTTP: the API's shapes, history reaching the model, truncation, nothing
/// stored for a failed turn, ownership, and a flow that keeps history.
@Suite struct ConversationTests {
    static let yaml = AccessTests.yaml.replacingOccurrences(of: "auth: { enabled: true, default_max_tokens: 64 }", with: "auth: { enabled: true, default_max_tokens: 64 }\nrouting: { backoff_ms: 1, retries: 0 }") + """

        flows:
          chat:
            model: sim-small
            messages: [{ role: system, content: "Be kind." }, { role: user, content: "{{text}}" }]
            input: { type: object, required: [text], properties: { text: { type: string } } }
            conversation: { max_history_tokens: 30 }
          digest:
            model: sim-small
            messages: [{ role: user, content: "{{text}}" }]
            input: { type: object, required: [text], properties: { text: { type: string } } }
            conversation: { max_history_tokens: 60, strategy: summarize }
          stateless:
            model: sim-small
            messages: [{ role: user, content: "{{text}}" }]
            input: { type: object, required: [text], properties: { text: { type: string } } }
        """
    // The simulator answers a conversation with k assistant messages with replies[k]: what it
    // answers shows how much history reached it.
    static let replies = HTTPField.Name("x-sim-replies")!
    static let script = #"["zero", "one", "two", "three", "four", "five"]"#

    static func create(_ client: some TestClientProtocol, _ key: String, _ body: String = "{}") async throws -> String {
        try await client.execute(uri: "/v1/conversations", method: .post, headers: AccessTests.headers(key), body: ByteBuffer(string: body)) { response in
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            #expect(response.body.json?["object"] == "conversation")
            return try #require(response.body.json?["id"]?.stringValue)
        }
    }

    static func turn(_ client: some TestClientProtocol, _ key: String, _ conversation: String, _ text: String, stream: Bool = false, extra: HTTPFields = [:])
        async throws -> (HTTPResponse.Status, String)
    {
        var headers = AccessTests.headers(key)
        headers[replies] = script
        for field in extra { headers[field.name] = field.value }
        let body = #"{"model":"sim-small","conversation":"\#(conversation)","stream":\#(stream),"messages":[{"role":"user","content":"\#(text)"}]}"#
        return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            let raw = String(buffer: response.body)
            if stream { return (response.status, raw) }
            return (response.status, response.body.json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? raw)
        }
    }

    static func items(_ client: some TestClientProtocol, _ key: String, _ conversation: String, _ query: String = "?order=asc&limit=100") async throws -> [JSONValue] {
        try await client.execute(uri: "/v1/conversations/\(conversation)/items\(query)", method: .get, headers: AccessTests.headers(key)) {
            $0.body.json?["data"]?.arrayValue ?? []
        }
    }

    @Test func historyReachesTheModelAndTurnsAreStored() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: AccessTests.adminKey)
        try await app.http.test(.router) { client in
            let key = AccessTests.adminKey
            let id = try await Self.create(client, key, #"{"metadata":{"topic":"tides"},"items":[{"type":"message","role":"user","content":"hello"},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hi there"}]}]}"#)
            // One assistant message already: the model sees it.
            #expect(try await Self.turn(client, key, id, "first question") == (.ok, "one"))
            #expect(try await Self.turn(client, key, id, "second question") == (.ok, "two"))
            let (status, streamed) = try await Self.turn(client, key, id, "third question", stream: true)
            #expect(status == .ok && streamed.contains("three") && streamed.contains("[DONE]"))
            // A failed turn stores nothing.
            let (failed, _) = try await Self.turn(client, key, id, "lost question", extra: [HTTPField.Name("x-sim-fault")!: "500"])
            #expect(failed == .badGateway)
            let stored = try await Self.items(client, key, id)
            #expect(stored.compactMap { $0["content"]?[0]?["text"]?.stringValue } == [
                "hello", "hi there", "first question", "one", "second question", "two", "third question", "three",
            ])
            #expect(stored.compactMap { $0["role"]?.stringValue } == ["user", "assistant", "user", "assistant", "user", "assistant", "user", "assistant"])
            #expect(stored[3]["content"]?[0]?["type"] == "output_text" && stored[2]["content"]?[0]?["type"] == "input_text")
            // Pages, newest first by default.
            try await client.execute(uri: "/v1/conversations/\(id)/items?limit=3", method: .get, headers: AccessTests.headers(key)) { response in
                let body = try #require(response.body.json)
                #expect(body["data"]?.arrayValue?.compactMap { $0["content"]?[0]?["text"]?.stringValue } == ["three", "third question", "two"])
                #expect(body["has_more"] == true && body["first_id"] == stored[7]["id"] && body["last_id"] == stored[5]["id"])
            }
            let after = try #require(stored[5]["id"]?.stringValue)
            let older = try await Self.items(client, key, id, "?limit=2&after=\(after)")
            #expect(older.compactMap { $0["content"]?[0]?["text"]?.stringValue } == ["second question", "one"])
            // Metadata, then deletion.
            try await client.execute(uri: "/v1/conversations/\(id)", method: .post, headers: AccessTests.headers(key), body: ByteBuffer(string: #"{"metadata":{"topic":"waves"}}"#)) {
                #expect($0.body.json?["metadata"]?["topic"] == "waves")
            }
            try await client.execute(uri: "/v1/conversations/\(id)", method: .get, headers: AccessTests.headers(key)) {
                #expect($0.body.json?["metadata"]?["topic"] == "waves")
            }
            try await client.execute(uri: "/v1/conversations/\(id)", method: .delete, headers: AccessTests.headers(key)) {
                #expect($0.body.json?["deleted"] == true)
            }
            try await client.execute(uri: "/v1/conversations/\(id)", method: .get, headers: AccessTests.headers(key)) { #expect($0.status == .notFound) }
            #expect(try await Self.turn(client, key, id, "after deletion").0 == .notFound)
            // Bad input.
            for (body, param) in [(#"{"metadata":{"k":1}}"#, "metadata.k"), (#"{"items":[{"role":"robot","content":"x"}]}"#, "items[0]"), (#"{"nope":1}"#, "nope")] {
                try await client.execute(uri: "/v1/conversations", method: .post, headers: AccessTests.headers(key), body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .badRequest, "\(body)")
                    #expect(response.body.json?["error"]?["param"]?.stringValue == param, "\(body)")
                }
            }
            try await client.execute(uri: "/v1/conversations/\(id)/items?order=sideways", method: .get, headers: AccessTests.headers(key)) {
                #expect($0.status == .notFound, "a deleted conversation is gone before its query is read")
            }
        }
    }

    @Test func aConversationIsItsOwnersOnly() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: AccessTests.adminKey)
        try await app.http.test(.router) { client in
            for team in ["red", "blue"] {
                try await client.execute(
                    uri: "/admin/teams", method: .post, headers: AccessTests.headers(AccessTests.adminKey), body: ByteBuffer(string: #"{"name":"\#(team)"}"#)
                ) { #expect($0.status == .created) }
            }
            let (_, red) = try await AccessTests.createKey(client, #"{"name":"r1","team":"red"}"#)
            let (_, red2) = try await AccessTests.createKey(client, #"{"name":"r2","team":"red"}"#)
            let (_, blue) = try await AccessTests.createKey(client, #"{"name":"b1","team":"blue"}"#)
            let id = try await Self.create(client, red)
            #expect(try await Self.turn(client, red, id, "hi").0 == .ok)
            // Another key of the same team shares it; another team sees nothing.
            #expect(try await Self.turn(client, red2, id, "hi again") == (.ok, "one"))
            #expect(try await Self.turn(client, blue, id, "let me in").0 == .notFound)
            for (method, path) in [(HTTPRequest.Method.get, "/v1/conversations/\(id)"), (.get, "/v1/conversations/\(id)/items"), (.delete, "/v1/conversations/\(id)")] {
                try await client.execute(uri: path, method: method, headers: AccessTests.headers(blue)) { #expect($0.status == .notFound, "\(path)") }
            }
            #expect(try await Self.items(client, red, id).count == 4)
        }
    }

    @Test func aFlowKeepsItsHistoryWithinItsBudget() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: AccessTests.adminKey)
        try await app.http.test(.router) { client in
            let key = AccessTests.adminKey
            let id = try await Self.create(client, key)
            var headers = AccessTests.headers(key)
            headers[Self.replies] = Self.script
            var answers: [String] = []
            for i in 0..<4 {
                let body = #"{"input":{"text":"question number \#(i)"},"conversation_id":"\#(id)"}"#
                try await client.execute(uri: "/v1/flows/chat/run", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                    #expect(response.body.json?["conversation_id"]?.stringValue == id)
                    answers.append(response.body.json?["output"]?.stringValue ?? "")
                }
            }
            // 30 tokens of history hold the last turn or two, never the whole conversation.
            #expect(answers[0] == "zero" && answers[1] == "one")
            #expect(answers[3] != "three", "\(answers)")
            // The flow's system prompt is not history; its rendered user turn is.
            let stored = try await Self.items(client, key, id)
            #expect(stored.count == 8)
            #expect(stored.first?["content"]?[0]?["text"] == "question number 0")
            try await client.execute(
                uri: "/v1/flows/stateless/run", method: .post, headers: headers,
                body: ByteBuffer(string: #"{"input":{"text":"x"},"conversation_id":"\#(id)"}"#)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["param"] == "conversation_id")
            }
        }
    }

    @Test func storedTurnsFollowTheGuardrailPolicy() async throws {
        let yaml = Self.yaml + """

            guardrails:
              policies:
                default:
                  input: { pii: { action: redact } }
                  output: { pii: { action: redact } }
            """
        let app = try await TestApp.build(yaml: yaml, adminKey: AccessTests.adminKey)
        try await app.http.test(.router) { client in
            let key = AccessTests.adminKey
            let id = try await Self.create(client, key)
            #expect(try await Self.turn(client, key, id, "mail me at jane.doe@example.com").0 == .ok)
            let stored = try await Self.items(client, key, id).compactMap { $0["content"]?[0]?["text"]?.stringValue }
            #expect(stored.count == 2)
            #expect(!stored[0].contains("jane.doe@example.com") && stored[0].contains("[EMAIL"), "\(stored)")
        }
    }

    /// 50 turns at once on one conversation, over real connections: every turn kept, in one
    /// order, each question beside its answer.
    @Test func fiftyConcurrentTurnsLoseNone() async throws {
        try await TestApp.live(yaml: Self.yaml, adminKey: AccessTests.adminKey) { base, _, _ in
            try await withHTTPClient(configuration: AccessTests.pooled(50)) { client in
                var create = HTTPClientRequest(url: base + "/v1/conversations")
                create.method = .POST
                create.headers.add(name: "authorization", value: "Bearer \(AccessTests.adminKey)")
                create.body = .bytes(ByteBuffer(string: "{}"))
                let created = try await client.execute(create, timeout: .seconds(10))
                let id = try #require(try await created.body.collect(upTo: 1 << 16).json?["id"]?.stringValue)
                let statuses = try await withThrowingTaskGroup(of: UInt.self) { group in
                    for i in 0..<50 {
                        group.addTask {
                            var request = HTTPClientRequest(url: base + "/v1/chat/completions")
                            request.method = .POST
                            request.headers.add(name: "authorization", value: "Bearer \(AccessTests.adminKey)")
                            request.headers.add(name: "x-sim-mode", value: "echo")
                            request.body = .bytes(
                                ByteBuffer(string: #"{"model":"sim-small","conversation":"\#(id)","messages":[{"role":"user","content":"turn \#(i)"}]}"#))
                            return try await client.execute(request, timeout: .seconds(30)).status.code
                        }
                    }
                    return try await group.reduce(into: [UInt]()) { $0.append($1) }
                }
                #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
                var items: [JSONValue] = []
                var after: String?
                repeat {
                    var list = HTTPClientRequest(url: base + "/v1/conversations/\(id)/items?order=asc&limit=100" + (after.map { "&after=\($0)" } ?? ""))
                    list.headers.add(name: "authorization", value: "Bearer \(AccessTests.adminKey)")
                    let page = try await client.execute(list, timeout: .seconds(10)).body.collect(upTo: 1 << 22).json
                    items += page?["data"]?.arrayValue ?? []
                    after = page?["has_more"] == true ? page?["last_id"]?.stringValue : nil
                } while after != nil
                #expect(items.count == 100)
                let texts = items.compactMap { $0["content"]?[0]?["text"]?.stringValue }
                for pair in stride(from: 0, to: texts.count - 1, by: 2) {
                    // The echo answers with the question: a pair is the same text twice, user then assistant.
                    #expect(texts[pair] == texts[pair + 1] && items[pair]["role"] == "user" && items[pair + 1]["role"] == "assistant", "\(pair)")
                }
                #expect(Set(texts).count == 50)
            }
        }
    }

    /// `strategy: summarize`: turns that no longer fit are folded into a running summary by the
    /// flow's model, through the pipeline (one more attempt, charged and recorded with the run).
    @Test func aSummarizingFlowFoldsOldTurnsIntoASummary() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: AccessTests.adminKey)
        try await app.http.test(.router) { client in
            let key = AccessTests.adminKey
            let id = try await Self.create(client, key)
            var attempts: [String] = []
            for i in 0..<5 {
                let text = "Turn \(i): the tide rose over the old harbour wall and the boats drifted toward the northern pier again"
                try await client.execute(
                    uri: "/v1/flows/digest/run", method: .post, headers: AccessTests.headers(key) + [HTTPField.Name("x-request-id")!: "digest-\(i)"],
                    body: ByteBuffer(string: #"{"input":{"text":"\#(text)"},"conversation_id":"\#(id)"}"#)
                ) { response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                    attempts.append(response.headers[HTTPField.Name("x-sluice-attempts")!] ?? "")
                }
            }
            // The first turn has no history; a later one had to fold older turns: two calls.
            #expect(attempts.first == "1")
            #expect(attempts.contains("2"), "\(attempts)")
            let conversation = try #require(try await app.conversations.conversation(id: id))
            #expect(conversation.summary?.isEmpty == false)
            #expect(conversation.summarizedThrough >= 2)
            // Every turn is still stored; only what reaches the model is summarised.
            #expect(try await Self.items(client, key, id).count == 10)
            await app.auditLog.drain()
            let folding = try #require(try await app.store.search(AuditSearch(flow: "digest", limit: 10)).first { $0.attempts == 2 })
            var search = AuditSearch(limit: 10)
            search.conversationID = id
            #expect(try await app.store.search(search).count == 5, "every run is on the audit record with its conversation")
            let plain = try #require(try await app.store.record(id: "digest-0"))
            #expect(folding.tokensIn > plain.tokensIn, "the summary's call is counted in the run's usage")
        }
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import SluiceProviders
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// Flows through HTTP: `/v1/flows/{name}/run` and `model: "flow:NAME"`, both one pipeline request.
@Suite struct FlowEndpointTests {
    static let yaml = TestApp.yaml + """

        flows:
          triage:
            description: Route a support ticket
            model: sim-small
            messages:
              - { role: system, content: "You triage tickets for {{company}}. Answer in JSON." }
              - { role: user, content: "Subject: {{subject}} -- {{body}}" }
            input: { type: object, required: [subject, body], properties: { subject: {type: string, maxLength: 40}, body: {type: string}, company: {type: string, default: Acme} } }
            output: { type: object, required: [queue, priority], properties: { queue: {enum: [billing, bug, account]}, priority: {type: integer, minimum: 1, maximum: 4} }, additionalProperties: false }
            params: { temperature: 0, max_tokens: 300 }
          summarize:
            model: sim-small
            messages: [{ role: user, content: "Summarize: {{text}}" }]
            input: { type: object, required: [text], properties: { text: { type: string } } }
        """

    static let requestID = HTTPField.Name("x-request-id")!
    static let replies = HTTPField.Name("x-sim-replies")!
    static let mode = HTTPField.Name("x-sim-mode")!

    @Test func aRunAnswersTheValidatedOutputAndIsAudited() async throws {
        let app = try await TestApp.build(yaml: Self.yaml)
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/v1/flows/triage/run", method: .post, headers: [Self.requestID: "run-1"],
                body: ByteBuffer(string: #"{"input":{"subject":"Charged twice","body":"Please refund"}}"#)
            ) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let body = try #require(response.body.json)
                #expect(body["id"] == "run-1")
                #expect(body["object"] == "flow.run")
                #expect(body["flow"] == "triage" && body["version"] == 1)
                #expect(body["output"]?["queue"] == "billing")
                #expect(body["output"]?["priority"]?.intValue.map { (1...4).contains($0) } == true)
                #expect((body["usage"]?["prompt_tokens"]?.intValue ?? 0) > 0)
                #expect((body["cost_usd"]?.doubleValue ?? 0) > 0)
            }
        }
        await app.auditLog.drain()
        let row = try #require(try await app.store.record(id: "run-1"))
        #expect(row.endpoint == "flows.run" && row.status == 200)
        #expect(row.flow == "triage" && row.flowVersion == 1)
        #expect(row.modelRequested == "flow:triage" && row.deployment == "sim-small")
        #expect(try await app.store.search(AuditSearch(flow: "triage", limit: 10)).map(\.id) == ["run-1"])
    }

    @Test func aFlowsOutputSchemaIsRepairedWithoutAGuardrailPolicy() async throws {
        let app = try await TestApp.build(yaml: Self.yaml)
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/v1/flows/triage/run", method: .post,
                headers: [Self.replies: #"["{\"queue\": \"sales\", \"priority\": 9}", "{\"queue\": \"bug\", \"priority\": 2}"]"#],
                body: ByteBuffer(string: #"{"input":{"subject":"Crash","body":"It crashes"}}"#)
            ) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "2")
                let body = try #require(response.body.json)
                #expect(body["output"] == ["queue": "bug", "priority": 2])
            }
            // Never valid: the contract holds, the run fails.
            try await client.execute(
                uri: "/v1/flows/triage/run", method: .post, headers: [Self.replies: #"["{\"queue\": \"sales\", \"priority\": 9}"]"#],
                body: ByteBuffer(string: #"{"input":{"subject":"Crash","body":"It crashes"}}"#)
            ) { response in
                #expect(response.status == .badGateway)
                #expect(response.body.json?["error"]?["code"] == "schema_validation_failed")
            }
        }
    }

    @Test func anyOpenAIClientCanCallAFlowByModelName() async throws {
        let app = try await TestApp.build(yaml: Self.yaml)
        try await app.http.test(.router) { client in
            // The simulator echoes the last user message: the rendered prompt is what reached it.
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: [Self.mode: "echo", Self.requestID: "chat-flow"],
                body: ByteBuffer(string: #"{"model":"flow:summarize","messages":[{"role":"user","content":"the tide comes in"}]}"#)
            ) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let completion = try JSONCoding.decode(ChatCompletion.self, from: response.body)
                #expect(completion.choices.first?.message.content == "Summarize: the tide comes in")
            }
            // A JSON object as the last message fills an object input.
            try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                body: ByteBuffer(string: #"{"model":"flow:triage","messages":[{"role":"user","content":"{\"subject\":\"s\",\"body\":\"b\"}"}],"stream":true}"#)
            ) { response in
                #expect(response.status == .ok)
                let text = String(buffer: response.body)
                #expect(text.contains("data: [DONE]"))
                #expect(text.contains(#"\"queue\""#) || text.contains("queue"), "\(text)")
            }
        }
        await app.auditLog.drain()
        let row = try #require(try await app.store.record(id: "chat-flow"))
        #expect(row.endpoint == "chat.completions" && row.flow == "summarize" && row.flowVersion == 1)
    }

    @Test func aStreamedRunSendsDeltasThenTheResult() async throws {
        let app = try await TestApp.build(yaml: Self.yaml)
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/v1/flows/summarize/run", method: .post, headers: [Self.mode: "echo"],
                body: ByteBuffer(string: #"{"input":{"text":"waves and sand"},"stream":true}"#)
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/event-stream")
                let events = String(buffer: response.body).components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
                #expect(events.last == "[DONE]")
                let payloads = events.dropLast().compactMap { try? JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: $0)) }
                let deltas = payloads.filter { $0["object"] == "flow.run.delta" }.compactMap { $0["delta"]?.stringValue }
                #expect(deltas.count > 1)
                #expect(deltas.joined() == "Summarize: waves and sand")
                let result = try #require(payloads.last)
                #expect(result["object"] == "flow.run" && result["output"] == "Summarize: waves and sand")
                #expect((result["usage"]?["completion_tokens"]?.intValue ?? 0) > 0)
            }
        }
    }

    @Test func badRunsAreRefusedBeforeAnythingGoesUpstream() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml, probe: probe)
        try await app.http.test(.router) { client in
            let cases: [(String, String, HTTPResponse.Status, String?)] = [
                ("/v1/flows/triage/run", #"{"input":{"subject":"a subject that is much longer than forty characters","body":"b"}}"#, .badRequest, "input/subject"),
                ("/v1/flows/triage/run", #"{"input":{"subject":"s"}}"#, .badRequest, "input"),
                ("/v1/flows/triage/run", #"{"input":"just text"}"#, .badRequest, "input"),
                ("/v1/flows/triage/run", #"{}"#, .badRequest, "input"),
                ("/v1/flows/triage/run", #"{"input":{"subject":"s","body":"b"},"version":2}"#, .notFound, "version"),
                ("/v1/flows/nope/run", #"{"input":{}}"#, .notFound, "flow"),
                ("/v1/flows/triage/run", #"{"input":"#, .badRequest, nil),
            ]
            for (uri, body, status, param) in cases {
                try await client.execute(uri: uri, method: .post, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == status, "\(body): \(String(buffer: response.body))")
                    let error = try #require(response.body.json?["error"], "\(body)")
                    if let param { #expect(error["param"]?.stringValue == param, "\(body): \(error)") }
                    #expect(error["message"]?.stringValue?.isEmpty == false)
                }
            }
            try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                body: ByteBuffer(string: #"{"model":"flow:triage","messages":[{"role":"user","content":"not json"}]}"#)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["param"] == "messages")
            }
            try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                body: ByteBuffer(string: #"{"model":"flow:summarize","messages":[{"role":"system","content":"no user message"}]}"#)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["param"] == "messages")
            }
            try await client.execute(uri: "/v1/flows/triage/run", method: .post, body: ByteBuffer(string: #"{"input":{},"version":1.5}"#)) { response in
                #expect(response.status == .badRequest)
                let message = response.body.json?["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("1.5") && !message.contains("double("), "\(message)")
            }
            try await client.execute(uri: "/v1/flows/triage/run", method: .get) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "POST")
            }
        }
        #expect(probe.started(model: "small") == 0)
    }

    @Test func theAdminAPIListsFlowsAndReportsTheirObjectives() async throws {
        let admin = "sk-sluice-test-admin-0123456789abcdefghijklmnopqrstuvwxyz"
        let yaml = Self.yaml.replacingOccurrences(of: "auth: { enabled: false }", with: "auth: { enabled: true }")
            .replacingOccurrences(of: "    params: { temperature: 0, max_tokens: 300 }", with: "    params: { temperature: 0, max_tokens: 300 }\n    slo: { p95_ms: 60000, success_rate: 0.5, max_cost_usd: 1.0 }")
        let app = try await TestApp.build(yaml: yaml, adminKey: admin)
        let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
        try await app.http.test(.router) { client in
            for i in 0..<3 {
                try await client.execute(
                    uri: "/v1/flows/triage/run", method: .post, headers: auth,
                    body: ByteBuffer(string: #"{"input":{"subject":"s\#(i)","body":"b"}}"#)
                ) { #expect($0.status == .ok) }
            }
            await app.auditLog.drain()
            try await client.execute(uri: "/admin/flows", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                let names = response.body.json?["data"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
                #expect(names == ["summarize", "triage"])
            }
            try await client.execute(uri: "/admin/flows/triage", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                let body = try #require(response.body.json)
                #expect(body["active_version"] == 1 && body["output"] == "json_schema")
                #expect(body["definition"]?["messages"]?.arrayValue?.count == 2)
                #expect(body["slo_24h"]?["requests"] == 3)
            }
            try await client.execute(uri: "/admin/flows/triage/slo", method: .get, headers: auth) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let windows = try #require(response.body.json?["windows"]?.arrayValue)
                #expect(windows.compactMap { $0["window"]?.stringValue } == ["1h", "24h", "7d"])
                for window in windows {
                    #expect(window["requests"] == 3 && window["success_rate"]?.doubleValue == 1)
                    let objectives = window["objectives"]?.arrayValue ?? []
                    #expect(objectives.compactMap { $0["name"]?.stringValue } == ["p95_ms", "success_rate", "max_cost_usd"])
                    #expect(objectives.allSatisfy { $0["met"] == true })
                }
            }
            for (uri, status) in [("/admin/flows/nope/slo", HTTPResponse.Status.notFound), ("/admin/flows/triage/slo?version=9", .notFound),
                                  ("/admin/flows/triage/slo?bogus=1", .badRequest), ("/admin/flows/triage/slo?version=x", .badRequest)] {
                try await client.execute(uri: uri, method: .get, headers: auth) { response in
                    #expect(response.status == status, "\(uri)")
                    #expect(response.body.json?["error"]?["message"] != nil, "\(uri)")
                }
            }
        }
    }

    @Test func versionsArePushedActivatedDiffedAndRolledBack() async throws {
        let admin = "sk-sluice-test-admin-0123456789abcdefghijklmnopqrstuvwxyz"
        let yaml = Self.yaml.replacingOccurrences(of: "auth: { enabled: false }", with: "auth: { enabled: true }")
        let app = try await TestApp.build(yaml: yaml, adminKey: admin)
        let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
        let echo: HTTPFields = [.authorization: "Bearer \(admin)", Self.mode: "echo"]
        try await app.http.test(.router) { client in
            let push = #"{"model":"sim-small","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Digest: {{text}}"}],"params":{"temperature":0.3}}"#
            try await client.execute(uri: "/admin/flows/summarize/versions", method: .post, headers: auth, body: ByteBuffer(string: push)) { response in
                #expect(response.status == .created, "\(String(buffer: response.body))")
                #expect(response.body.json?["version"] == 2 && response.body.json?["active"] == false)
                #expect(response.body.json?["definition"]?["messages"]?.arrayValue?.count == 2)
            }
            // Not active yet: a run gets version 1 unless it names 2.
            #expect(try await Self.output(client, echo, #"{"input":{"text":"tides"}}"#) == "Summarize: tides")
            #expect(try await Self.output(client, echo, #"{"input":{"text":"tides"},"version":2}"#) == "Digest: tides")
            try await client.execute(uri: "/admin/flows/summarize/activate", method: .post, headers: auth, body: ByteBuffer(string: #"{"version":2}"#)) {
                #expect($0.status == .ok)
            }
            #expect(try await Self.output(client, echo, #"{"input":{"text":"tides"}}"#) == "Digest: tides")
            try await client.execute(uri: "/admin/flows/summarize/versions", method: .get, headers: auth) { response in
                let data = response.body.json?["data"]?.arrayValue ?? []
                #expect(data.compactMap { $0["version"]?.intValue } == [1, 2])
                #expect(data.map { $0["active"] } == [false, true])
                #expect(response.body.json?["active_version"] == 2)
            }
            try await client.execute(uri: "/admin/flows/summarize/diff?from=1&to=2", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                let diff = String(buffer: response.body)
                #expect(diff.hasPrefix("--- summarize version 1\n+++ summarize version 2\n@@ "))
                #expect(diff.contains("-      \"content\" : \"Summarize: {{text}}\""), "\(diff)")
                #expect(diff.contains("+      \"content\" : \"Digest: {{text}}\""), "\(diff)")
                #expect(diff.contains("+      \"content\" : \"Be brief.\""), "\(diff)")
            }
            try await client.execute(uri: "/admin/flows/summarize/versions/2", method: .get, headers: auth) { response in
                #expect(response.body.json?["definition"]?["params"]?["temperature"]?.doubleValue == 0.3)
            }
            // Rollback.
            try await client.execute(uri: "/admin/flows/summarize/activate", method: .post, headers: auth, body: ByteBuffer(string: #"{"version":1}"#)) {
                #expect($0.status == .ok)
            }
            #expect(try await Self.output(client, echo, #"{"input":{"text":"tides"}}"#) == "Summarize: tides")
            // What a version may not be, each refused with the key at fault.
            let bad: [(String, String, HTTPResponse.Status, String?)] = [
                ("summarize", #"{"model":"nope","messages":[{"role":"user","content":"{{text}}"}]}"#, .badRequest, "model"),
                ("summarize", #"{"model":"sim-small","messages":[{"role":"user","content":"{{txt}}"}]}"#, .badRequest, "messages[0].content"),
                ("summarize", #"{"model":"sim-small","messages":[{"role":"user","content":"x"}],"input":{"type":"object"}}"#, .badRequest, "input"),
                ("summarize", #"{"model":"sim-small","template":"/etc/passwd"}"#, .badRequest, "template"),
                ("summarize", #"{"model":"sim-small","messages":[{"role":"user","content":"x"}],"bogus":1}"#, .badRequest, "bogus"),
                ("nope", #"{"model":"sim-small","messages":[{"role":"user","content":"x"}]}"#, .notFound, "flow"),
            ]
            for (flow, body, status, param) in bad {
                try await client.execute(uri: "/admin/flows/\(flow)/versions", method: .post, headers: auth, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == status, "\(body): \(String(buffer: response.body))")
                    #expect(response.body.json?["error"]?["param"]?.stringValue == param, "\(body): \(String(buffer: response.body))")
                }
            }
            for (uri, body, status) in [
                ("/admin/flows/summarize/activate", #"{"version":9}"#, HTTPResponse.Status.notFound),
                ("/admin/flows/summarize/activate", #"{"version":"2"}"#, .badRequest),
            ] {
                try await client.execute(uri: uri, method: .post, headers: auth, body: ByteBuffer(string: body)) { #expect($0.status == status, "\(body)") }
            }
            try await client.execute(uri: "/admin/flows/summarize/diff?from=1", method: .get, headers: auth) { #expect($0.status == .badRequest) }
        }
    }

    static func output(_ client: some TestClientProtocol, _ headers: HTTPFields, _ body: String) async throws -> String? {
        try await client.execute(uri: "/v1/flows/summarize/run", method: .post, headers: headers, body: ByteBuffer(string: body)) {
            $0.body.json?["output"]?.stringValue
        }
    }
}

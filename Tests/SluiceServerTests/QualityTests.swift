import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceEvaluation
import SluiceTesting
import Testing
@testable import SluiceServer

/// Feedback, experiments and judges through the HTTP API.
@Suite struct QualityTests {
    static let adminKey = AccessTests.adminKey

    @Test func feedbackBelongsToTheTeamThatAskedAndOnePerUser() async throws {
        let app = try await TestApp.build(yaml: AccessTests.yaml, adminKey: Self.adminKey)
        try await app.http.test(.router) { client in
            for team in ["red", "blue"] {
                try await client.execute(uri: "/admin/teams", method: .post, headers: AccessTests.headers(Self.adminKey), body: ByteBuffer(string: #"{"name":"\#(team)"}"#)) {
                    #expect($0.status == .created)
                }
            }
            let (_, red) = try await AccessTests.createKey(client, #"{"name":"r","team":"red"}"#)
            let (_, blue) = try await AccessTests.createKey(client, #"{"name":"b","team":"blue"}"#)
            let id = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: AccessTests.headers(red), body: chatBody()) { response in
                #expect(response.status == .ok)
                return try #require(response.headers[.init("x-request-id")!])
            }
            func feedback(_ key: String, _ body: String) async throws -> (HTTPResponse.Status, JSONValue?) {
                try await client.execute(uri: "/v1/feedback", method: .post, headers: AccessTests.headers(key), body: ByteBuffer(string: body)) {
                    ($0.status, $0.body.json)
                }
            }
            // Another team's request is not found; so is one that does not exist.
            #expect(try await feedback(blue, #"{"request_id":"\#(id)","score":"up"}"#).0 == .notFound)
            #expect(try await feedback(red, #"{"request_id":"nope","score":"up"}"#).0 == .notFound)
            let (status, first) = try await feedback(red, #"{"request_id":"\#(id)","score":"up","label":"helpful","user":"ann"}"#)
            #expect(status == .ok)
            #expect(first?["score"]?.doubleValue == 1 && first?["model"]?.stringValue == "sim-small")
            // A later verdict by the same user replaces the first; another user's is kept beside it.
            #expect(try await feedback(red, #"{"request_id":"\#(id)","score":"down","user":"ann","comment":"wrong team"}"#).0 == .ok)
            #expect(try await feedback(red, #"{"request_id":"\#(id)","score":0.75,"user":"bob"}"#).0 == .ok)
            for (body, param) in [
                (#"{"request_id":"\#(id)","score":1.5}"#, "score"), (#"{"request_id":"\#(id)","score":"sideways"}"#, "score"),
                (#"{"score":1}"#, "request_id"), (#"{"request_id":"\#(id)"}"#, "score"), (#"{"request_id":"\#(id)","score":1,"stars":5}"#, "stars"),
                (#"{"request_id":"\#(id)","score":1,"comment":7}"#, "comment"),
            ] {
                let (s, error) = try await feedback(red, body)
                #expect(s == .badRequest, "\(body)")
                #expect(error?["error"]?["param"]?.stringValue == param, "\(body)")
            }
            #expect(try await feedback(red, "{not json").0 == .badRequest)
            try await client.execute(uri: "/admin/feedback?model=sim-small", method: .get, headers: AccessTests.headers(Self.adminKey)) { response in
                let rows = response.body.json?["data"]?.arrayValue ?? []
                #expect(rows.count == 2)
                #expect(rows.contains { $0["user"]?.stringValue == "ann" && $0["score"]?.doubleValue == 0 && $0["comment"]?.stringValue == "wrong team" })
            }
            try await client.execute(uri: "/admin/feedback/summary?group_by=model", method: .get, headers: AccessTests.headers(Self.adminKey)) { response in
                let row = response.body.json?["data"]?.arrayValue?.first
                #expect(row?["group"]?.stringValue == "sim-small" && row?["requests"] == .int(1))
                #expect(row?["feedback"]?["n"] == .int(2) && row?["feedback"]?["mean"]?.doubleValue == 0.375)
            }
            try await client.execute(uri: "/admin/feedback?colour=red", method: .get, headers: AccessTests.headers(Self.adminKey)) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/admin/requests/\(id)", method: .get, headers: AccessTests.headers(Self.adminKey)) { response in
                #expect(response.body.json?["feedback"]?.arrayValue?.count == 2)
            }
            // Viewers read feedback; apps do not.
            try await client.execute(uri: "/admin/feedback", method: .get, headers: AccessTests.headers(red)) { #expect($0.status == .forbidden) }
        }
    }

    static func call(_ client: HTTPClient, _ base: String, _ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws
        -> (status: UInt, headers: HTTPHeaders, json: JSONValue?)
    {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "authorization", value: "Bearer \(adminKey)")
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        return (response.status.code, response.headers, bytes.json)
    }

    static func experimentYAML(_ sqlite: String, stopping: String = "fixed") -> String {
        AccessTests.yaml.replacingOccurrences(of: #"store: { sqlite: ":memory:" }"#, with: "store: { sqlite: \"\(sqlite)\" }")
            .replacingOccurrences(of: "auth: { enabled: true, default_max_tokens: 64 }", with: "auth: { enabled: true, default_max_tokens: 64, refresh_ms: 100 }")
            + """

            flows:
              triage:
                model: sim-small
                messages: [{ role: user, content: "Route: {{text}}" }]
                input: { type: object, required: [text], properties: { text: { type: string } } }
            experiments:
              triage-v2:
                flow: triage
                variants: { control: { version: 1 }, treatment: { version: 2 } }
                split: { control: 50, treatment: 50 }
                sticky: user
                primary: feedback
                stopping: \(stopping)
                min_samples: 8
                auto_promote: true
            """
    }

    /// Two replicas on one database: a user gets the same variant on both, the variant's version
    /// runs, pausing on one reaches the other, and the analysis promotes a clear winner.
    @Test func experimentsAreStickyAcrossReplicasAndPromoteTheirWinner() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-exp-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        // The first replica makes the database (and version 2) before the second opens it.
        try await TestApp.live(yaml: Self.experimentYAML(path), adminKey: Self.adminKey) { a, _, _ in
            try await withHTTPClient { client in
                let pushed = try await Self.call(
                    client, a, .POST, "/admin/flows/triage/versions", #"{"model":"sim-small","messages":[{"role":"user","content":"Route v2: {{text}}"}]}"#)
                #expect(pushed.status == 201)
            }
            try await TestApp.live(yaml: Self.experimentYAML(path), adminKey: Self.adminKey) { b, _, _ in
                try await withHTTPClient { client in
                    var assigned: [String: String] = [:]
                    var ids: [(String, String)] = []
                    for i in 0..<40 {
                        for base in [a, b] {
                            let r = try await Self.call(client, base, .POST, "/v1/flows/triage/run", #"{"input":{"text":"t\#(i)"},"user":"user-\#(i)"}"#)
                            #expect(r.status == 200)
                            let variant = try #require(r.headers.first(name: "x-sluice-variant"))
                            #expect(r.headers.first(name: "x-sluice-experiment") == "triage-v2")
                            if let earlier = assigned[String(i)] { #expect(earlier == variant, "user-\(i) moved between replicas") }
                            assigned[String(i)] = variant
                            #expect(r.json?["version"] == .int(variant == "control" ? 1 : 2), "the variant's version ran")
                            ids.append((try #require(r.json?["id"]?.stringValue), variant))
                        }
                    }
                    let counts = Dictionary(grouping: assigned.values, by: { $0 }).mapValues(\.count)
                    #expect((counts["control"] ?? 0) >= 8 && (counts["treatment"] ?? 0) >= 8, "\(counts)")
                    // A run that names its version is outside the experiment.
                    let pinned = try await Self.call(client, a, .POST, "/v1/flows/triage/run", #"{"input":{"text":"x"},"user":"user-1","version":1}"#)
                    #expect(pinned.headers.first(name: "x-sluice-variant") == nil)

                    // Paused on one replica, the other stops assigning within its refresh.
                    #expect(try await Self.call(client, a, .POST, "/admin/experiments/triage-v2/pause").json?["status"]?.stringValue == "paused")
                    var stillAssigned = true
                    for _ in 0..<50 where stillAssigned {
                        try await Task.sleep(for: .milliseconds(50))
                        let r = try await Self.call(client, b, .POST, "/v1/flows/triage/run", #"{"input":{"text":"p"},"user":"user-3"}"#)
                        stillAssigned = r.headers.first(name: "x-sluice-variant") != nil
                    }
                    #expect(!stillAssigned)
                    #expect(try await Self.call(client, b, .GET, "/admin/experiments/triage-v2").json?["decision"]?.stringValue == "continue")
                    #expect(try await Self.call(client, b, .POST, "/admin/experiments/triage-v2/start").json?["status"]?.stringValue == "running")

                    // Users like the treatment: every answer of it up, every control answer down.
                    for (id, variant) in ids {
                        let f = try await Self.call(client, b, .POST, "/v1/feedback", #"{"request_id":"\#(id)","score":"\#(variant == "treatment" ? "up" : "down")"}"#)
                        #expect(f.status == 200)
                    }
                    let analysis = try #require(try await Self.call(client, a, .GET, "/admin/experiments/triage-v2").json)
                    #expect(analysis["decision"]?.stringValue == "winner:treatment", "\(analysis)")
                    #expect(analysis["promoted"]?.stringValue == "treatment" && analysis["status"]?.stringValue == "stopped")
                    let variants = analysis["variants"]?.arrayValue ?? []
                    #expect(variants.first?["name"]?.stringValue == "control" && variants.first?["metrics"]?["feedback"]?["mean"]?.doubleValue == 0)
                    let comparison = analysis["comparisons"]?.arrayValue?.first { $0["metric"]?.stringValue == "feedback" }
                    #expect(comparison?["test"]?.stringValue == "two_proportion_z" && comparison?["significant"] == .bool(true))
                    #expect(analysis["comparisons"]?.arrayValue?.contains { $0["metric"]?.stringValue == "latency_ms" && $0["test"]?.stringValue == "welch_t" } == true)
                    // The winner's version is now the flow's active one, on both replicas.
                    var active = 0
                    for _ in 0..<50 where active != 2 {
                        active = (try await Self.call(client, b, .POST, "/v1/flows/triage/run", #"{"input":{"text":"z"},"user":"someone"}"#).json?["version"])?.intValue ?? 0
                        if active != 2 { try await Task.sleep(for: .milliseconds(50)) }
                    }
                    #expect(active == 2)
                    #expect(try await Self.call(client, a, .GET, "/admin/experiments/nope").status == 404)
                    #expect(try await Self.call(client, a, .GET, "/admin/requests?experiment=triage-v2&variant=treatment&limit=1000").json?["data"]?.arrayValue?.count
                        == ids.filter { $0.1 == "treatment" }.count)
                }
            }
        }
    }

    /// An alias experiment compares models without a flow: the variant's model serves, sticky by key.
    @Test func anAliasExperimentPicksTheVariantsModel() async throws {
        let yaml = AccessTests.yaml.replacingOccurrences(
            of: "models:\n", with: "models:\n  - { name: sim-large, provider: sim, upstream_model: large, price: { input_per_mtok: 5.0, output_per_mtok: 10.0 } }\n")
            + """

            aliases:
              smart: { deployments: [sim-small] }
            experiments:
              models:
                alias: smart
                variants: { small: { model: sim-small }, large: { model: sim-large } }
                sticky: key
                primary: cost_usd
            """
        try await TestApp.live(yaml: yaml, adminKey: Self.adminKey) { base, app, _ in
            try await withHTTPClient { client in
                var seen: [String: String] = [:]
                for i in 0..<6 {
                    let key = try await AccessTests.createKeyLive(client, base, #"{"name":"k\#(i)"}"#)
                    for _ in 0..<2 {
                        let (status, headers) = try await Self.chat(client, base, key, model: "smart")
                        #expect(status == 200)
                        let variant = try #require(headers.first(name: "x-sluice-variant"))
                        #expect(headers.first(name: "x-sluice-model") == (variant == "small" ? "sim-small" : "sim-large"))
                        if let earlier = seen[key] { #expect(earlier == variant, "sticky by key") }
                        seen[key] = variant
                    }
                }
                // Asking for a model directly is outside the experiment.
                let key = try await AccessTests.createKeyLive(client, base, #"{"name":"direct"}"#)
                #expect(try await Self.chat(client, base, key, model: "sim-small").1.first(name: "x-sluice-variant") == nil)
                await app.auditLog.drain()
                let analysis = try await Self.call(client, base, .GET, "/admin/experiments/models").json
                #expect(analysis?["alias"]?.stringValue == "smart")
                #expect((analysis?["variants"]?.arrayValue ?? []).map { $0["requests"]?.intValue ?? 0 }.reduce(0, +) == 12)
            }
        }
    }

    static func chat(_ client: HTTPClient, _ base: String, _ key: String, model: String) async throws -> (UInt, HTTPHeaders) {
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key)")
        request.body = .bytes(ByteBuffer(string: #"{"model":"\#(model)","messages":[{"role":"user","content":"Hi"}]}"#))
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        return (response.status.code, response.headers)
    }

    static func judgeYAML(_ rubric: String) -> String {
        AccessTests.yaml.replacingOccurrences(
            of: "  sim: { kind: simulated,",
            with: #"  judge-sim: { kind: simulated, reply: "{\"score\": 4, \"reason\": \"clear\", \"winner\": 1}" }"# + "\n  sim: { kind: simulated,")
            .replacingOccurrences(
                of: "models:\n",
                with: "models:\n  - { name: sim-judge, provider: judge-sim, upstream_model: judge, price: { input_per_mtok: 3.0, output_per_mtok: 15.0 } }\n")
            + """

            flows:
              triage:
                model: sim-small
                messages: [{ role: user, content: "Route: {{text}}" }]
                input: { type: object, required: [text], properties: { text: { type: string } } }
                slo: { min_judge: { helpful: 3.5 } }
            judges:
              helpful:
                model: sim-judge
                rubric: \(rubric)
                scale: { min: 1, max: 5 }
                sample_rate: 0.1
                flows: [triage]
                budget_usd_day: 5
            """
    }

    /// A tenth of 1,000 live runs are judged, off the request path, by the judge's own key; the
    /// scores feed the flow's SLO; pairwise comparison notices a verdict that follows the order.
    @Test func judgesSampleLiveRunsAtTheirRate() async throws {
        let rubric = FileManager.default.temporaryDirectory.appendingPathComponent("rubric-\(UUID().uuidString).mustache").path
        try "Is this answer helpful?\nQuestion: {{input}}\nAnswer: {{output}}\n{{#reference}}Reference: {{reference}}{{/reference}}".write(
            toFile: rubric, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: rubric) }
        try await TestApp.live(yaml: Self.judgeYAML(rubric), adminKey: Self.adminKey) { base, app, _ in
            try await withHTTPClient(configuration: AccessTests.pooled(16)) { client in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<16 {
                        group.addTask {
                            for i in stride(from: worker, to: 1000, by: 16) {
                                let r = try await Self.call(client, base, .POST, "/v1/flows/triage/run", #"{"input":{"text":"ticket \#(i)"}}"#)
                                #expect(r.status == 200)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let queue = try #require(app.judges.queues["helpful"])
                for _ in 0..<200 where queue.backlog > 0 { try await Task.sleep(for: .milliseconds(25)) }
                let judged = try #require(try await Self.call(client, base, .GET, "/admin/judgements?judge=helpful&limit=1000").json?["data"]?.arrayValue)
                // Binomial(1000, 0.1): the standard deviation is 9.5.
                #expect((65...135).contains(judged.count), "\(judged.count) judged")
                #expect(judged.allSatisfy { $0["score"]?.doubleValue == 4 && $0["reason"]?.stringValue == "clear" && $0["flow"]?.stringValue == "triage" })
                #expect(judged.allSatisfy { ($0["cost_usd"]?.doubleValue ?? 0) > 0 && $0["judge_model"]?.stringValue == "sim-judge" })
                #expect(queue.dropped == 0)
                let slo = try #require(try await Self.call(client, base, .GET, "/admin/flows/triage/slo").json)
                let objective = slo["windows"]?.arrayValue?.first?["objectives"]?.arrayValue?.first { $0["name"]?.stringValue == "min_judge:helpful" }
                #expect(objective?["actual"]?.doubleValue == 4 && objective?["met"] == .bool(true), "\(slo)")
                // The judge's calls are its own key's, in the audit log.
                try await app.auditLog.drain()
                let calls = try #require(try await Self.call(client, base, .GET, "/admin/requests?key=key_judge_helpful&limit=1000").json?["data"]?.arrayValue)
                #expect(calls.count == judged.count && calls.allSatisfy { $0["endpoint"]?.stringValue == "judge" })

                let score = try await Self.call(client, base, .POST, "/v1/judges/helpful/score", #"{"input":"2+2?","output":"4","reference":"4"}"#)
                #expect(score.status == 200 && score.json?["score"]?.doubleValue == 4)
                let compare = try await Self.call(client, base, .POST, "/v1/judges/helpful/compare", #"{"input":"2+2?","output_a":"4","output_b":"five"}"#)
                // This judge always picks the first answer it is shown: the verdict flips with the order.
                #expect(compare.json?["winner"]?.stringValue == "inconsistent" && compare.json?["verdicts"] == .array(["a", "b"]))
                #expect(try await Self.call(client, base, .POST, "/v1/judges/nobody/score", #"{"input":"a","output":"b"}"#).status == 404)
                #expect(try await Self.call(client, base, .POST, "/v1/judges/helpful/score", #"{"input":"a"}"#).status == 400)
            }
        }
    }
}

/// Evaluations run by the server: submitted, run through the pipeline, reported; an interrupted
/// one resumes where it stopped.
@Suite struct EvalJobTests {
    static let adminKey = AccessTests.adminKey

    static func yaml(_ sqlite: String) -> String {
        AccessTests.yaml.replacingOccurrences(of: #"store: { sqlite: ":memory:" }"#, with: "store: { sqlite: \"\(sqlite)\" }")
            .replacingOccurrences(of: "  sim: { kind: simulated,", with: "  echo: { kind: simulated, mode: echo }\n  sim: { kind: simulated,")
            .replacingOccurrences(of: "models:\n", with: "models:\n  - { name: sim-echo, provider: echo, upstream_model: echo, price: { input_per_mtok: 1.0, output_per_mtok: 1.0 } }\n")
            + """

            flows:
              capital:
                model: sim-small
                messages: [{ role: user, content: "Capital of {{country}}" }]
                input: { type: object, required: [country], properties: { country: { type: string } } }
            """
    }

    static let spec = #"""
        {"flow":"capital","models":["sim-small","sim-echo"],"scorers":["contains:France","length","latency","similarity:sim-embed"],
         "cases":[{"id":"fr","input":{"country":"France"},"reference":"Paris"},{"id":"jp","input":{"country":"Japan"}},{"id":"it","input":{"country":"Italy"}}],
         "gates":["contains:France>=0.3"]}
        """#

    static func waitForEnd(_ client: HTTPClient, _ base: String, _ id: String) async throws -> JSONValue {
        for _ in 0..<200 {
            let r = try await QualityTests.call(client, base, .GET, "/admin/evals/\(id)")
            if let json = r.json, ["completed", "failed", "cancelled"].contains(json["status"]?.stringValue ?? "") { return json }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SluiceError(.upstreamTimeout, "evaluation \(id) did not end")
    }

    @Test func anEvaluationRunsThroughThePipelineAndReports() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-eval-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        try await TestApp.live(yaml: Self.yaml(path), adminKey: Self.adminKey) { base, app, _ in
            try await withHTTPClient { client in
                let submitted = try await QualityTests.call(client, base, .POST, "/admin/evals", Self.spec)
                #expect(submitted.status == 202, "\(String(describing: submitted.json))")
                let id = try #require(submitted.json?["id"]?.stringValue)
                #expect(submitted.json?["total"] == .int(6))
                let done = try await Self.waitForEnd(client, base, id)
                #expect(done["status"]?.stringValue == "completed" && done["done"] == .int(6) && done["errors"] == .int(0), "\(done)")
                let variants = done["report"]?["variants"]?.arrayValue ?? []
                // The echo model repeats the prompt, which names the country: only it "contains France" (on one case of three).
                let echo = variants.first { $0["variant"]?.stringValue == "sim-echo" }
                #expect(abs((echo?["means"]?["contains:France"]?.doubleValue ?? 0) - 1.0 / 3) < 1e-9)
                #expect(done["report"]?["recommendation"]?["variant"]?.stringValue == "sim-echo")
                // Only the case with a reference has a similarity, through the pipeline's embeddings.
                let similarity = echo?["means"]?["similarity:sim-embed"]?.doubleValue
                #expect(similarity.map { (-1...1).contains($0) } == true)
                #expect(done["report"]?["gates"]?.arrayValue?.first?["failed"] == .array(["sim-small"]))
                let withResults = try await QualityTests.call(client, base, .GET, "/admin/evals/\(id)?results=true")
                #expect(withResults.json?["report"]?["results"]?.arrayValue?.count == 6)
                let html = try await QualityTests.call(client, base, .GET, "/admin/evals/\(id)/report.html")
                #expect(html.status == 200 && html.headers.first(name: "content-type")?.hasPrefix("text/html") == true)
                // Evaluation runs are the evaluations' key's, as evals.run, and in no experiment.
                try await app.auditLog.drain()
                let runs = try await QualityTests.call(client, base, .GET, "/admin/requests?key=key_evals&limit=100").json?["data"]?.arrayValue ?? []
                #expect(runs.filter { $0["endpoint"]?.stringValue == "evals.run" }.count == 6)
                #expect(runs.filter { $0["endpoint"]?.stringValue == "evals.embeddings" }.count == 2, "one similarity per variant: only fr has a reference")
                #expect(try await QualityTests.call(client, base, .GET, "/admin/evals").json?["data"]?.arrayValue?.first?["id"]?.stringValue == id)
                #expect(try await QualityTests.call(client, base, .POST, "/admin/evals/\(id)/cancel").json?["status"]?.stringValue == "completed")
                for (body, param) in [
                    (#"{"cases":[{"input":{}}]}"#, "flow"), (#"{"flow":"capital"}"#, "cases"), (#"{"flow":"capital","cases":[{"input":{}}],"scorers":["bleu"]}"#, nil),
                    (#"{"flow":"capital","cases":[{"input":{}}],"concurrency":0}"#, "concurrency"), (#"{"flow":"capital","cases":[],"x":1}"#, "x"),
                    (#"{"flow":"capital","file_id":"file-nope"}"#, "file_id"),
                ] {
                    let r = try await QualityTests.call(client, base, .POST, "/admin/evals", body)
                    #expect(r.status == 400 || r.status == 404, "\(body)")
                    if let param { #expect(r.json?["error"]?["param"]?.stringValue == param, "\(body): \(String(describing: r.json))") }
                }
                #expect(try await QualityTests.call(client, base, .GET, "/admin/evals/eval_nope").status == 404)
            }
        }
    }

    @Test func anInterruptedEvaluationResumesWhereItStopped() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-eval-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        // A run left half done by a server that went away: 2 of its 6 cases are stored.
        let first = try await TestApp.build(yaml: Self.yaml(path), adminKey: Self.adminKey)
        let spec = try await EvalSpec(json: try #require(ByteBuffer(string: Self.spec).json), file: { _ in nil })
        var text = ByteBuffer()
        try JSONWriter.write(spec.json, to: &text)
        try await first.quality.putEvalRun(
            EvalRunRecord(id: "eval_left", status: .running, createdAt: 1, updatedAt: 1, spec: String(buffer: text), total: 6, done: 2))
        for (c, v) in [("fr", "sim-small"), ("jp", "sim-small")] {
            let r = EvalCaseResult(caseID: c, variant: v, input: "{}", reference: nil, output: "kept", error: nil, latencyMs: 1, costUSD: 0, scores: ["length": 4])
            var b = ByteBuffer()
            try JSONWriter.write(r.json, to: &b)
            try await first.quality.putEvalResult(runID: "eval_left", key: EvalPlan.key(c, v), json: String(buffer: b))
        }
        await first.providers.shutdown()
        try await TestApp.live(yaml: Self.yaml(path), adminKey: Self.adminKey) { base, app, _ in
            try await withHTTPClient { client in
                let done = try await Self.waitForEnd(client, base, "eval_left")
                #expect(done["status"]?.stringValue == "completed" && done["done"] == .int(6), "\(done)")
                try await app.auditLog.drain()
                let runs = try await QualityTests.call(client, base, .GET, "/admin/requests?key=key_evals&limit=100").json?["data"]?.arrayValue ?? []
                #expect(runs.filter { $0["endpoint"]?.stringValue == "evals.run" }.count == 4, "only the 4 missing cases ran again")
                let results = try await QualityTests.call(client, base, .GET, "/admin/evals/eval_left?results=true").json?["report"]?["results"]?.arrayValue ?? []
                #expect(results.filter { $0["output"]?.stringValue == "kept" }.count == 2)
            }
        }
    }
}

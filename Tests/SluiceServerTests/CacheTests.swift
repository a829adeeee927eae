import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import SluiceProviders
import SluiceTesting
import Testing
@testable import SluiceCache
@testable import SluiceObservability
@testable import SluiceServer

/// The exact and semantic response cache, through the HTTP API.
@Suite struct CacheTests {
    static let adminKey = "sk-sluice-test-admin-0123456789abcdefghijklmnopqrstuvwxyz"

    static func yaml(rule: String = "{ exact: true }", auth: Bool = false, extra: String = "") -> String {
        """
        server: { host: 127.0.0.1, port: 0 }
        store: { sqlite: ":memory:" }
        providers:
          sim: { kind: simulated, reply: "Hello from the simulator" }
        models:
          - { name: cached, provider: sim, upstream_model: small, price: { input_per_mtok: 1.0, output_per_mtok: 2.0 }, cache: \(rule) }
          - { name: plain, provider: sim, upstream_model: small, price: { input_per_mtok: 1.0, output_per_mtok: 2.0 } }
          - { name: sim-embed, provider: sim, type: embedding }
        cache: { embedding_model: sim-embed }
        logging: { level: error }
        auth: { enabled: \(auth) }
        \(extra)
        """
    }

    static func body(_ model: String = "cached", content: String = "What is the capital of France?", temperature: String? = "0", stream: Bool = false)
        -> ByteBuffer
    {
        var extra = ""
        if let temperature { extra += #","temperature":\#(temperature)"# }
        if stream { extra += #","stream":true"# }
        return ByteBuffer(string: #"{"model":"\#(model)","messages":[{"role":"user","content":"\#(content)"}]\#(extra)}"#)
    }

    static func headers(_ pairs: [String: String]) -> HTTPFields {
        var fields = HTTPFields()
        for (k, v) in pairs { fields[HTTPField.Name(k)!] = v }
        return fields
    }

    /// Sends one chat request; returns the cache header, the body and the status.
    static func send(
        _ client: some TestClientProtocol, _ body: ByteBuffer, _ headers: [String: String] = [:]
    ) async throws -> (cache: String?, body: String, status: HTTPResponse.Status, response: TestResponse) {
        try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.headers(headers), body: body) { response in
            (response.headers[HTTPField.Name("x-sluice-cache")!], String(buffer: response.body), response.status, response)
        }
    }

    @Test func aRepeatedDeterministicRequestIsServedFromCacheForFree() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        try await app.http.test(.router) { client in
            let first = try await Self.send(client, Self.body(), ["x-request-id": "c-1"])
            #expect(first.cache == "miss")
            let second = try await Self.send(client, Self.body(), ["x-request-id": "c-2"])
            #expect(second.cache == "hit")
            #expect(second.body == first.body)
            #expect(second.response.headers[HTTPField.Name("x-sluice-cost-usd")!] == "0.00000000")
            #expect(second.response.headers[HTTPField.Name("x-sluice-attempts")!] == "0")
            // Whitespace in the JSON and the `user` field do not change the key.
            let spaced = ByteBuffer(
                string: #"{ "temperature": 0, "user": "u-7", "messages": [ {"content": "What is the capital of France?", "role": "user"} ], "model": "cached" }"#)
            #expect(try await Self.send(client, spaced).cache == "hit")
            // Anything that changes the answer does.
            #expect(try await Self.send(client, Self.body(content: "What is the capital of Spain?")).cache == "miss")
            let capped = ByteBuffer(string: #"{"model":"cached","temperature":0,"max_tokens":5,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#)
            #expect(try await Self.send(client, capped).cache == "miss")
        }
        #expect(probe.started(model: "small") == 3)
        await app.auditLog.drain()
        let rows = try await app.store.recent(limit: 10)
        let hit = try #require(rows.first { $0.id == "c-2" })
        let miss = try #require(rows.first { $0.id == "c-1" })
        #expect(hit.cacheStatus == "hit" && hit.costUSD == 0 && hit.tokensIn == 0 && hit.tokensOut == 0 && hit.attempts == 0)
        #expect(hit.details.tokensSaved == miss.tokensIn + miss.tokensOut)
        #expect(miss.costUSD > 0 && miss.cacheStatus == "miss")
    }

    @Test func onlyDeterministicRequestsUnlessOptedIn() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        try await app.http.test(.router) { client in
            // No temperature (1 by default) and 0.7: never served from cache.
            for t in [nil, "0.7"] as [String?] {
                #expect(try await Self.send(client, Self.body(temperature: t)).cache == "off")
                #expect(try await Self.send(client, Self.body(temperature: t)).cache == "off")
            }
            // The header opts in.
            #expect(try await Self.send(client, Self.body(temperature: "0.7"), ["x-sluice-cache": "exact"]).cache == "miss")
            #expect(try await Self.send(client, Self.body(temperature: "0.7"), ["x-sluice-cache": "exact"]).cache == "hit")
            // ... and out.
            #expect(try await Self.send(client, Self.body(), ["x-sluice-cache": "off"]).cache == "off")
            // A model without a rule caches only on request.
            #expect(try await Self.send(client, Self.body("plain")).cache == "off")
            #expect(try await Self.send(client, Self.body("plain"), ["x-sluice-cache": "exact"]).cache == "miss")
            #expect(try await Self.send(client, Self.body("plain"), ["x-sluice-cache": "exact"]).cache == "hit")
            // A header value Sluice does not know is the client's error.
            let bad = try await Self.send(client, Self.body(), ["x-sluice-cache": "always"])
            #expect(bad.status == .badRequest)
            #expect(bad.body.contains("x-sluice-cache"))
        }
        #expect(probe.started(model: "small") == 8)
    }

    @Test func twoTeamsNeverShareAnEntry() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(auth: true), probe: probe, adminKey: Self.adminKey)
        try await app.http.test(.router) { client in
            var keys: [String] = []
            for team in ["red", "blue"] {
                try await client.execute(
                    uri: "/admin/teams", method: .post, headers: AccessTests.headers(Self.adminKey), body: ByteBuffer(string: #"{"name":"\#(team)"}"#)
                ) { #expect($0.status == .created) }
                keys.append(try await AccessTests.createKey(client, #"{"name":"\#(team)-1","team":"\#(team)"}"#).1)
            }
            let redAgain = try await AccessTests.createKey(client, #"{"name":"red-2","team":"red"}"#).1
            let loner = try await AccessTests.createKey(client, #"{"name":"solo"}"#).1
            func ask(_ key: String) async throws -> String? {
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: AccessTests.headers(key), body: Self.body()) { response in
                    #expect(response.status == .ok)
                    return response.headers[HTTPField.Name("x-sluice-cache")!]
                }
            }
            // Same prompt, two teams: two misses.
            #expect(try await ask(keys[0]) == "miss")
            #expect(try await ask(keys[1]) == "miss")
            // Another key of the first team shares its team's entry; a key without a team has its own.
            #expect(try await ask(redAgain) == "hit")
            #expect(try await ask(loner) == "miss")
            #expect(try await ask(loner) == "hit")
        }
        #expect(probe.started(model: "small") == 3)
    }

    @Test func keyScopeKeepsEachKeyApart() async throws {
        let app = try await TestApp.build(yaml: Self.yaml(rule: "{ exact: true, scope: key }", auth: true), adminKey: Self.adminKey)
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/admin/teams", method: .post, headers: AccessTests.headers(Self.adminKey), body: ByteBuffer(string: #"{"name":"red"}"#)
            ) { #expect($0.status == .created) }
            let a = try await AccessTests.createKey(client, #"{"name":"a","team":"red"}"#).1
            let b = try await AccessTests.createKey(client, #"{"name":"b","team":"red"}"#).1
            for (key, expected) in [(a, "miss"), (b, "miss"), (a, "hit"), (b, "hit")] {
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: AccessTests.headers(key), body: Self.body()) { response in
                    #expect(response.headers[HTTPField.Name("x-sluice-cache")!] == expected)
                }
            }
        }
    }

    @Test func entriesExpireAfterTheirTTL() async throws {
        let app = try await TestApp.build(yaml: Self.yaml(rule: "{ exact: true, ttl_s: 1 }"))
        try await app.http.test(.router) { client in
            #expect(try await Self.send(client, Self.body()).cache == "miss")
            #expect(try await Self.send(client, Self.body()).cache == "hit")
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await Self.send(client, Self.body()).cache == "miss")
            #expect(try await Self.send(client, Self.body()).cache == "hit")
        }
        // Pruning drops what expired from memory (and the store).
        await app.cache.prune(now: Date().timeIntervalSince1970 + 2)
        #expect(app.cache.count == 0)
    }

    @Test func noCacheSkipsTheLookupAndNoStoreTheWrite() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        try await app.http.test(.router) { client in
            // no-store: answered fresh and not kept.
            #expect(try await Self.send(client, Self.body(), ["cache-control": "no-store"]).cache == "miss")
            #expect(try await Self.send(client, Self.body(), ["cache-control": "no-store"]).cache == "miss")
            #expect(try await Self.send(client, Self.body()).cache == "miss")
            // Now kept: no-cache still goes upstream, and refreshes the entry.
            let fresh = try await Self.send(client, Self.body(), ["cache-control": "no-cache"])
            #expect(fresh.cache == "miss")
            #expect(try await Self.send(client, Self.body()).cache == "hit")
            #expect(try await Self.send(client, Self.body(), ["cache-control": "max-age=0, no-cache, no-store"]).cache == "miss")
        }
        #expect(probe.started(model: "small") == 5)
    }

    @Test func aCachedStreamReplaysByteForByte() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        try await app.http.test(.router) { client in
            let first = try await Self.send(client, Self.body(stream: true), ["x-request-id": "s-1"])
            #expect(first.cache == "miss")
            #expect(first.body.hasSuffix("data: [DONE]\n\n"))
            let second = try await Self.send(client, Self.body(stream: true), ["x-request-id": "s-2"])
            #expect(second.cache == "hit")
            #expect(second.response.headers[.contentType] == "text/event-stream")
            #expect(second.body == first.body)
            // The usage chunk is still there for a client that asks for it.
            let withUsage = ByteBuffer(
                string: #"{"model":"cached","temperature":0,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"What is the capital of France?"}]}"#)
            let third = try await Self.send(client, withUsage)
            #expect(third.cache == "hit")
            #expect(third.body.contains(#""usage":{"#))
            // A whole answer is cached apart from a stream.
            #expect(try await Self.send(client, Self.body()).cache == "miss")
        }
        #expect(probe.started(model: "small") == 2)
        await app.auditLog.drain()
        let hit = try #require(try await app.store.recent(limit: 10).first { $0.id == "s-2" })
        #expect(hit.stream && hit.cacheStatus == "hit" && hit.costUSD == 0)
    }

    @Test func aStreamCutMidwayIsNotCached() async throws {
        let app = try await TestApp.build(yaml: Self.yaml())
        try await app.http.test(.router) { client in
            let cut = try await Self.send(client, Self.body(stream: true), ["x-sim-fault": "cut"])
            #expect(cut.body.contains(#""error""#))
            #expect(try await Self.send(client, Self.body(stream: true)).cache == "miss")
            #expect(try await Self.send(client, Self.body(stream: true)).cache == "hit")
        }
    }

    /// The same words in another order embed alike (the simulated embedding is a bag of words,
    /// and MiniLM is not much better): the question check turns the candidate away.
    @Test func aCandidateWithTheRolesSwappedIsNotAHit() async throws {
        for verify in [true, false] {
            let app = try await TestApp.build(yaml: Self.yaml(rule: "{ exact: true, semantic: true, threshold: 0.9, verify: \(verify) }"))
            try await app.http.test(.router) { client in
                #expect(try await Self.send(client, Self.body(content: "Did Anna beat Tom at chess?")).cache == "miss")
                let swapped = try await Self.send(client, Self.body(content: "Did Tom beat Anna at chess?"))
                #expect(swapped.cache == (verify ? "miss" : "semantic-hit"))
                #expect(try await Self.send(client, Self.body(content: "did anna beat tom at chess")).cache == "semantic-hit")
            }
            if verify {
                let metrics = try await app.http.test(.router) { client in
                    try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                }
                #expect(metrics.contains(#"sluice_cache_lookups_total{result="semantic-rejected"}"#))
            }
        }
    }

    @Test func semanticHitsNeedTheSameContextAndAnEmbeddingCloseEnough() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(rule: "{ exact: true, semantic: true, threshold: 0.9 }"), probe: probe)
        try await app.http.test(.router) { client in
            #expect(try await Self.send(client, Self.body(content: "What is the capital of France?")).cache == "miss")
            // The simulated embedding is a bag of words: case and punctuation do not change it.
            let near = try await Self.send(client, Self.body(content: "what is THE capital of france"))
            #expect(near.cache == "semantic-hit")
            #expect(near.response.headers[HTTPField.Name("x-sluice-cache-similarity")!] == "1.0")
            // Different words: below the threshold.
            #expect(try await Self.send(client, Self.body(content: "Which city is the seat of the French government?")).cache == "miss")
            // Same words under another system prompt: another partition.
            let system = ByteBuffer(
                string: #"{"model":"cached","temperature":0,"messages":[{"role":"system","content":"Answer in German."},{"role":"user","content":"what is the capital of france"}]}"#)
            #expect(try await Self.send(client, system).cache == "miss")
        }
        #expect(probe.started(model: "small") == 3)
        await app.auditLog.drain()
        let rows = try await app.store.recent(limit: 10)
        #expect(rows.contains { $0.cacheStatus == "semantic-hit" && $0.details.cacheSimilarity ?? 0 > 0.99 })
    }

    @Test func entriesSurviveARestartThroughTheStore() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-cache-\(UUID().uuidString).db").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let yaml = Self.yaml(rule: "{ exact: true, semantic: true }").replacingOccurrences(of: #"sqlite: ":memory:""#, with: #"sqlite: "\#(path)""#)
        do {
            // The write to the store is in the background; graceful shutdown finishes it.
            let app = try await TestApp.build(yaml: yaml)
            let group = app.makeServiceGroup(signals: [])
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await app.http.test(.router) { client in
                    let first = try await Self.send(client, Self.body())
                    #expect(first.cache == "miss")
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(app.cache.writes.backlog == 0)
        }
        let restarted = try await TestApp.build(yaml: yaml)
        try await restarted.http.test(.router) { client in
            let exact = try await Self.send(client, Self.body())
            #expect(exact.cache == "hit")
            let near = try await Self.send(client, Self.body(content: "what is the capital of FRANCE"))
            #expect(near.cache == "semantic-hit")
        }
    }

    /// Two replicas on one PostgreSQL: an exact entry one of them made is found by the other's
    /// lookup (read through: the store is shared), and a semantic one reaches the other's index by
    /// its refresh (every two seconds in service), not only after a restart.
    @Test(.enabled(if: TestPostgres.available, "needs SLUICE_TEST_POSTGRES_URL (make test starts a cluster)"))
    func replicasOnPostgresFindEachOthersEntries() async throws {
        let url = try await TestPostgres.freshDatabase()
        let yaml = Self.yaml(rule: "{ exact: true, semantic: true }").replacingOccurrences(of: #"sqlite: ":memory:""#, with: "postgres: \"\(url)\"")
        try await TestApp.live(yaml: yaml) { a, appA, _ in
            try await TestApp.live(yaml: yaml) { b, appB, _ in
                try await withHTTPClient { client in
                    #expect(try await Self.post(client, a, Self.body()) == "miss")
                    while appA.cache.writes.backlog > 0 { try await Task.sleep(for: .milliseconds(10)) }
                    #expect(try await Self.post(client, b, Self.body()) == "hit")
                    #expect(try await Self.post(client, a, Self.body(content: "Which river runs through Paris?")) == "miss")
                    while appA.cache.writes.backlog > 0 { try await Task.sleep(for: .milliseconds(10)) }
                    _ = try await appB.cache.refresh()
                    #expect(try await Self.post(client, b, Self.body(content: "which river runs through PARIS")) == "semantic-hit")
                }
            }
        }
    }

    /// A chat request to a live replica; answers its `x-sluice-cache`.
    static func post(_ client: HTTPClient, _ base: String, _ body: ByteBuffer) async throws -> String? {
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(body)
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        #expect(response.status == .ok)
        return response.headers.first(name: "x-sluice-cache")
    }
}

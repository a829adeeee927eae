import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceProviders
import Synchronization
import SluiceTesting
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// Keys, roles, limits and budgets, through the HTTP API, with auth on.
@Suite struct AccessTests {
    static let adminKey = "sk-sluice-test-admin-0123456789abcdefghijklmnopqrstuvwxyz"
    static let yaml = TestApp.yaml.replacingOccurrences(of: "auth: { enabled: false }", with: "auth: { enabled: true, default_max_tokens: 64 }")

    static func headers(_ key: String) -> HTTPFields { [.authorization: "Bearer \(key)", .contentType: "application/json"] }

    /// Creates a key through the admin API and returns (id, secret).
    static func createKey(_ client: some TestClientProtocol, _ fields: String) async throws -> (String, String) {
        try await client.execute(uri: "/admin/keys", method: .post, headers: headers(adminKey), body: ByteBuffer(string: fields)) { response in
            #expect(response.status == .created, "\(String(buffer: response.body))")
            let json = try #require(response.body.json)
            return (try #require(json["id"]?.stringValue), try #require(json["key"]?.stringValue))
        }
    }

    @Test func keysAreNeededAndRolesAreEnforced() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: Self.adminKey)
        try await app.http.test(.router) { client in
            // No key, an unknown key: 401 in OpenAI's shape.
            try await client.execute(uri: "/v1/models", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.body.json?["error"]?["code"]?.stringValue == "invalid_api_key")
                #expect(response.body.json?["error"]?["type"]?.stringValue == "authentication_error")
            }
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: [.authorization: "Bearer sk-sluice-nope", HTTPField.Name("x-request-id")!: "refused-1"], body: chatBody()
            ) { #expect($0.status == .unauthorized) }
            // Refused at the door, still in the audit log (without the key).
            await app.auditLog.drain()
            let row = try #require(try await app.store.recent(limit: 10).first { $0.id == "refused-1" })
            #expect(row.status == 401 && row.errorCode == "invalid_api_key" && row.endpoint == "chat.completions" && row.keyID == "")
            // Public paths need none.
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }

            let (appID, appKey) = try await Self.createKey(client, #"{"name":"svc","role":"app","models":["sim-small"]}"#)
            let (_, viewerKey) = try await Self.createKey(client, #"{"name":"dash","role":"viewer"}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [.apiKey: appKey, .contentType: "application/json"], body: chatBody()) {
                #expect($0.status == .ok)
            }
            // An app key may not administer; a viewer may not infer; the allow-list holds.
            try await client.execute(uri: "/admin/keys", method: .get, headers: Self.headers(appKey)) { #expect($0.status == .forbidden) }
            try await client.execute(uri: "/v1/models", method: .get, headers: Self.headers(viewerKey)) { #expect($0.status == .forbidden) }
            try await client.execute(
                uri: "/v1/embeddings", method: .post, headers: Self.headers(appKey), body: ByteBuffer(string: #"{"model":"sim-embed","input":"x"}"#)
            ) { response in
                #expect(response.status == .forbidden)
                #expect(response.body.json?["error"]?["param"]?.stringValue == "model")
            }
            // Lists never show a secret or a hash.
            try await client.execute(uri: "/admin/keys", method: .get, headers: Self.headers(Self.adminKey)) { response in
                let text = String(buffer: response.body)
                #expect(!text.contains(appKey) && !text.contains(APIKeyMint.hash(appKey)))
                #expect(response.body.json?["data"]?.arrayValue?.count == 3)
            }
            // Rotation: the old secret stops, the new one works; revocation: refused at once.
            let rotated = try await client.execute(uri: "/admin/keys/\(appID)/rotate", method: .post, headers: Self.headers(Self.adminKey)) {
                try #require($0.body.json?["key"]?.stringValue)
            }
            try await client.execute(uri: "/v1/models", method: .get, headers: Self.headers(appKey)) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/models", method: .get, headers: Self.headers(rotated)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/admin/keys/\(appID)", method: .delete, headers: Self.headers(Self.adminKey)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/models", method: .get, headers: Self.headers(rotated)) { response in
                #expect(response.status == .forbidden)
                #expect(response.body.json?["error"]?["message"]?.stringValue?.contains("revoked") == true)
            }
        }
    }

    /// Without SLUICE_ADMIN_KEY the first start makes an admin key, kept in a 0600 file beside
    /// the database; the next start finds it and makes no other.
    /// Stored keys are looked up by this hash: it must stay SHA-256 in lower-case hex, whatever
    /// writes it (the standard test vectors), or every key made before would stop matching.
    @Test func keyHashesAreLowerCaseHexSHA256() {
        #expect(APIKeyMint.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(APIKeyMint.hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(APIKeyMint.hash("sk-sluice-é") == "64f0a7815827f4eb89f940c3ec7c020b1638b55562e9f59f84ea4ae2519fae54")
        #expect(APIKeyMint.newID("key").count == "key_".count + 16)
    }

    /// A presented key is read as the header subscript reads it: the name in any case, the
    /// scheme in any case, and two Authorization fields joined (so that neither key is taken).
    @Test func thePresentedKeyIsReadAsTheHeadersSay() {
        func key(_ fields: [(String, String)]) -> String? {
            var headers = HTTPFields()
            for (name, value) in fields { headers.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
            return AuthMiddleware.presentedKey(headers)
        }
        #expect(key([("Authorization", "Bearer  sk-a ")]) == "sk-a")
        #expect(key([("authorization", "bearer sk-a")]) == "sk-a")
        #expect(key([("x-api-key", "sk-b")]) == "sk-b")
        #expect(key([("Authorization", "Basic abc")]) == nil)
        #expect(key([("Authorization", "Bearer sk-a"), ("Authorization", "Bearer sk-c")]) == "sk-a, Bearer sk-c")
        var headers = HTTPFields()
        headers.append(HTTPField(name: .contentLength, value: "12"))
        headers.append(HTTPField(name: .accept, value: "a"))
        headers.append(HTTPField(name: .accept, value: "b"))
        #expect(headers.value(.contentLength) == "12" && headers.value(.accept) == headers[.accept] && headers.value(.cookie) == nil)
    }

    @Test func theFirstStartGeneratesAnAdminKeyOnce() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-boot-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let yaml = Self.yaml.replacingOccurrences(of: #"store: { sqlite: ":memory:" }"#, with: #"store: { sqlite: "\#(folder)/s.db" }"#)
        let app = try await TestApp.build(yaml: yaml)
        let file = folder + "/admin.key"
        let key = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("sk-sluice-") && key.count >= 10 + 43)
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/admin/keys", method: .get, headers: Self.headers(key)) { response in
                #expect(response.status == .ok)
                #expect(response.body.json?["data"]?.arrayValue?.count == 1)
            }
        }
        _ = try await TestApp.build(yaml: yaml)
        #expect(try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == key)
    }

    /// `auth.public_paths` decides which operational paths go without a key.
    @Test func publicPathsAreConfigurable() async throws {
        let yaml = Self.yaml.replacingOccurrences(of: "auth: { enabled: true,", with: "auth: { enabled: true, public_paths: [/healthz],")
        let app = try await TestApp.build(yaml: yaml, adminKey: Self.adminKey)
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/readyz", method: .get, headers: Self.headers(Self.adminKey)) { #expect($0.status == .ok) }
        }
    }

    @Test func adminInputIsChecked() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: Self.adminKey)
        try await app.http.test(.router) { client in
            for (body, param) in [
                (#"{"role":"app"}"#, "name"), (#"{"name":"x","role":"root"}"#, "role"), (#"{"name":"x","rpm":0}"#, "rpm"),
                (#"{"name":"x","rpm":"ten"}"#, "rpm"), (#"{"name":"x","team":"ghosts"}"#, "team"), (#"{"name":"x","colour":"red"}"#, "colour"),
                (#"{"name":"x","expires_at":"soon"}"#, "expires_at"), (#"{"name":"x","expires_at":1e300}"#, "expires_at"),
                (#"{"name":"x","models":"all"}"#, "models"), (#"{"name":"x","metadata":{"a":1}}"#, "metadata"),
            ] {
                try await client.execute(uri: "/admin/keys", method: .post, headers: Self.headers(Self.adminKey), body: ByteBuffer(string: body)) {
                    response in
                    #expect(response.status == .badRequest, "\(body)")
                    #expect(response.body.json?["error"]?["param"]?.stringValue == param, "\(body)")
                }
            }
            try await client.execute(uri: "/admin/keys/key_missing", method: .get, headers: Self.headers(Self.adminKey)) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/admin/keys", method: .put, headers: Self.headers(Self.adminKey)) { #expect($0.status == .methodNotAllowed) }
        }
    }

    @Test func usageIsReportedPerKeyTeamModelAndDay() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: Self.adminKey)
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/admin/teams", method: .post, headers: Self.headers(Self.adminKey), body: ByteBuffer(string: #"{"name":"blue"}"#)) {
                #expect($0.status == .created)
            }
            let (blueID, blue) = try await Self.createKey(client, #"{"name":"b","team":"blue"}"#)
            let (_, other) = try await Self.createKey(client, #"{"name":"o"}"#)
            let (_, viewer) = try await Self.createKey(client, #"{"name":"v","role":"viewer"}"#)
            for key in [blue, blue, other] {
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.headers(key), body: chatBody()) { #expect($0.status == .ok) }
            }
            // A refused request is recorded too, with its key, at no cost.
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.headers(blue), body: chatBody(#""temperature":9"#)) {
                #expect($0.status == .badRequest)
            }
            await app.auditLog.drain()
            try await client.execute(uri: "/admin/usage?group_by=key", method: .get, headers: Self.headers(viewer)) { response in
                #expect(response.status == .ok)
                let rows = try #require(response.body.json?["data"]?.arrayValue)
                let blueRow = try #require(rows.first { $0["key"]?.stringValue == blueID })
                #expect(blueRow["requests"] == .int(3))
                #expect(blueRow["tokens_out"]?.intValue ?? 0 > 0)
                #expect(blueRow["cost_usd"]?.doubleValue ?? 0 > 0)
            }
            let teamID = try await client.execute(uri: "/admin/teams/blue", method: .get, headers: Self.headers(Self.adminKey)) {
                try #require($0.body.json?["id"]?.stringValue)
            }
            try await client.execute(uri: "/admin/usage?team=\(teamID)&from=2020-01-01", method: .get, headers: Self.headers(Self.adminKey)) { response in
                #expect(response.body.json?["data"]?[0]?["requests"] == .int(3))
            }
            try await client.execute(uri: "/admin/usage?group_by=day", method: .get, headers: Self.headers(Self.adminKey)) { response in
                #expect(response.body.json?["data"]?[0]?["day"]?.stringValue?.count == 10)
            }
            try await client.execute(uri: "/admin/usage?group_by=week", method: .get, headers: Self.headers(Self.adminKey)) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["param"]?.stringValue == "group_by")
            }
            try await client.execute(uri: "/admin/requests?limit=2", method: .get, headers: Self.headers(viewer)) { response in
                #expect(response.body.json?["data"]?.arrayValue?.count == 2)
            }
            // A viewer reads usage but not keys.
            try await client.execute(uri: "/admin/keys", method: .get, headers: Self.headers(viewer)) { #expect($0.status == .forbidden) }
        }
    }

    @Test func anExpiredKeyIsRefused() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: Self.adminKey)
        try await app.http.test(.router) { client in
            let (_, key) = try await Self.createKey(client, #"{"name":"old","expires_at":"2020-01-01T00:00:00Z"}"#)
            try await client.execute(uri: "/v1/models", method: .get, headers: Self.headers(key)) { response in
                #expect(response.status == .forbidden)
                #expect(response.body.json?["error"]?["message"]?.stringValue?.contains("expired") == true)
            }
        }
    }

    @Test func perRequestTokenCapAndRateLimitHeaders() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: Self.adminKey)
        try await app.http.test(.router) { client in
            let (_, key) = try await Self.createKey(client, #"{"name":"capped","rpm":5,"tpm":10000,"max_tokens_per_request":100}"#)
            // Absurd caps are refused before any arithmetic is done with them.
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: Self.headers(key), body: chatBody(#""max_tokens":9223372036854775807"#)
            ) { #expect($0.status == .badRequest) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.headers(key), body: chatBody(#""max_tokens":500"#)) {
                response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["param"]?.stringValue == "max_tokens")
            }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.headers(key), body: chatBody(#""max_tokens":20"#)) {
                response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("x-ratelimit-limit-requests")!] == "5")
                // The refused request above was not counted.
                #expect(response.headers[HTTPField.Name("x-ratelimit-remaining-requests")!] == "4")
                #expect(response.headers[HTTPField.Name("x-ratelimit-limit-tokens")!] == "10000")
                #expect(response.headers[HTTPField.Name("x-ratelimit-reset-requests")!]?.hasSuffix("s") == true)
            }
        }
    }

    /// Schema repair asks the model again for the same request: each upstream call is charged
    /// once, at its own usage and price, and the request holds one grant — one request and one
    /// concurrency slot against the key's limits, settled once with the sum of the calls.
    @Test func schemaRepairsAreCountedOncePerAttempt() async throws {
        let yaml = Self.yaml + """

            guardrails:
              policies:
                default:
                  schema_repair_attempts: 2
            """
        let app = try await TestApp.build(yaml: yaml, adminKey: Self.adminKey)
        let format = #""response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}}}"#
        let replies = #"["{\"n\": \"three\"}", "{\"n\": 3.5}", "{\"n\": 3}"]"#
        let limiter = try #require(app.limiter as? LocalUsageLimiter)
        try await app.http.test(.router) { client in
            let (id, key) = try await Self.createKey(
                client, #"{"name":"repairs","rpm":10,"tpm":100000,"max_concurrent":1,"budget_usd_day":5}"#)
            var headers = Self.headers(key)
            headers[HTTPField.Name("x-sim-replies")!] = replies
            headers[HTTPField.Name("x-request-id")!] = "repaired"
            let usage = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: chatBody(format)) { response in
                // With a grant per repair, the second call would have found the key's one slot taken.
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                #expect(response.body.json?["choices"]?[0]?["message"]?["content"] == #"{"n": 3}"#)
                #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "3")
                // One request against the key's requests per minute, not three.
                #expect(response.headers[HTTPField.Name("x-ratelimit-remaining-requests")!] == "9")
                return try #require(try JSONCoding.decode(ChatCompletion.self, from: response.body).usage)
            }
            // Three calls, each with a longer prompt than the last: far more than one call's usage.
            #expect(usage.promptTokens > 3 * 8)
            await app.auditLog.drain()
            let row = try #require(try await app.store.recent(limit: 10).first { $0.id == "repaired" })
            #expect(row.tokensIn == usage.promptTokens)
            #expect(row.tokensOut == usage.completionTokens)
            #expect(row.attempts == 3)
            let cost = (Double(usage.promptTokens) * 1.0 + Double(usage.completionTokens) * 2.0) / 1_000_000
            #expect(abs(row.costUSD - cost) < 1e-12, "\(row.costUSD) vs \(cost)")
            let spend = limiter.daySpend("key:\(id)")
            #expect(abs(spend.spent - cost) < 1e-12, "budget counted \(spend.spent), the calls cost \(cost)")
            #expect(spend.reserved < 1e-12)
            let window = limiter.window("key:\(id)")
            #expect(window.requests == 1)
            #expect(window.tokens == usage.totalTokens, "tokens per minute counted \(window.tokens), the calls used \(usage.totalTokens)")
            #expect(limiter.inFlight("key:\(id)") == 0)
        }
    }

    /// 1,000 concurrent requests against 100 per minute: exactly 100 pass.
    @Test func aThousandConcurrentRequestsAgainstAHundredPerMinute() async throws {
        try await TestApp.live(yaml: Self.yaml, adminKey: Self.adminKey) { base, _, _ in
            try await withHTTPClient(configuration: Self.pooled(64)) { client in
                let key = try await Self.createKeyLive(client, base, #"{"name":"burst","rpm":100}"#)
                let statuses = try await withThrowingTaskGroup(of: UInt.self) { tasks in
                    for _ in 0..<1000 {
                        tasks.addTask { try await Self.chat(client, base, key).status.code }
                    }
                    return try await tasks.reduce(into: [UInt: Int]()) { $0[$1, default: 0] += 1 }
                }
                try await client.shutdown()
                #expect(statuses == [200: 100, 429: 900])
            }
        }
    }

    /// A $0.10 budget under 200 concurrent requests: spend stays within it.
    @Test func aBudgetHoldsUnderConcurrency() async throws {
        let pricey = Self.yaml.replacingOccurrences(of: "input_per_mtok: 1.0, output_per_mtok: 2.0", with: "input_per_mtok: 1000.0, output_per_mtok: 1000.0")
        try await TestApp.live(yaml: pricey, adminKey: Self.adminKey) { base, app, _ in
            try await withHTTPClient(configuration: Self.pooled(64)) { client in
                let (id, key) = try await Self.createKeyLive(client, base, #"{"name":"thrifty","budget_usd_day":0.10}"#, withID: true)
                let results = try await withThrowingTaskGroup(of: (UInt, String?).self) { tasks in
                    for _ in 0..<200 {
                        tasks.addTask {
                            let response = try await Self.chat(client, base, key, extra: #","max_tokens":10"#)
                            return (response.status.code, response.body.json?["error"]?["code"]?.stringValue)
                        }
                    }
                    return try await tasks.reduce(into: [(UInt, String?)]()) { $0.append($1) }
                }
                try await client.shutdown()
                let ok = results.filter { $0.0 == 200 }.count
                #expect(ok > 0)
                #expect(results.allSatisfy { $0.0 == 200 || ($0.0 == 429 && $0.1 == "insufficient_quota") })
                await app.auditLog.drain()
                let spent = try await app.auditLogLedger.spend(keyID: id, teamID: nil, since: 0)
                #expect(spent <= 0.10 + 1e-9, "spent \(spent)")
                #expect(spent > 0.05, "spent \(spent)")
                let (daySpent, reserved) = (app.limiter as! LocalUsageLimiter).daySpend("key:\(id)")
                #expect(abs(daySpent - spent) < 1e-9)
                #expect(reserved < 1e-9)
            }
        }
    }

    /// Streams abandoned midway give their concurrency slots back, every one.
    @Test func cancelledStreamsReleaseTheirSlots() async throws {
        try await TestApp.live(yaml: Self.yaml, adminKey: Self.adminKey) { base, app, _ in
            try await withHTTPClient(configuration: Self.pooled(50)) { client in
                let (id, key) = try await Self.createKeyLive(client, base, #"{"name":"streamer","max_concurrent":50}"#, withID: true)
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for worker in 0..<50 {
                        tasks.addTask {
                            for _ in 0..<20 {
                                var request = HTTPClientRequest(url: base + "/v1/chat/completions")
                                request.method = .POST
                                request.headers.add(name: "authorization", value: "Bearer \(key)")
                                request.headers.add(name: "x-sim-tokens", value: "50")
                                request.headers.add(name: "x-sim-tps", value: "200")
                                request.body = .bytes(chatBody(#""stream":true"#))
                                let response = try await client.execute(request, timeout: .seconds(30))
                                #expect(response.status == .ok, "worker \(worker)")
                                // Read one chunk, then drop the body: the connection closes midway.
                                var it = response.body.makeAsyncIterator()
                                _ = try await it.next()
                            }
                        }
                    }
                    try await tasks.waitForAll()
                }
                try await client.shutdown()
                for _ in 0..<200 where (app.limiter as! LocalUsageLimiter).inFlight("key:\(id)") > 0 {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect((app.limiter as! LocalUsageLimiter).inFlight("key:\(id)") == 0)
            }
        }
    }

    /// At a deployment's cap, waiting requests go in priority order; a wait past the class's
    /// timeout is a 503 with Retry-After.
    @Test func aFullDeploymentServesHigherPriorityFirst() async throws {
        let yaml = Self.yaml.replacingOccurrences(of: "context_window: 8192 }", with: "context_window: 8192, max_concurrent: 1 }")
            + "\nqueue: { low_timeout_ms: 5000, normal_timeout_ms: 200 }"
        let probe = SimulationProbe()
        try await TestApp.live(yaml: yaml, probe: probe, adminKey: Self.adminKey) { base, _, _ in
            try await withHTTPClient(configuration: Self.pooled(8)) { client in
                let high = try await Self.createKeyLive(client, base, #"{"name":"h","priority":"high"}"#)
                let low = try await Self.createKeyLive(client, base, #"{"name":"l","priority":"low"}"#)
                let normal = try await Self.createKeyLive(client, base, #"{"name":"n","priority":"normal"}"#)
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    // Holds the only slot for 600 ms.
                    tasks.addTask { _ = try await Self.chat(client, base, high, headers: ["x-sim-ttft-ms": "600", "x-request-id": "q-holder"]) }
                    for _ in 0..<200 where probe.instant(of: .started, requestID: "q-holder") == nil {
                        try await Task.sleep(for: .milliseconds(5))
                    }
                    tasks.addTask {
                        let r = try await Self.chat(client, base, low, headers: ["x-request-id": "q-low"])
                        #expect(r.status == .ok)
                    }
                    try await Task.sleep(for: .milliseconds(50))
                    tasks.addTask {
                        let r = try await Self.chat(client, base, high, headers: ["x-request-id": "q-high"])
                        #expect(r.status == .ok)
                    }
                    // Normal waits at most 200 ms: it gives up before the slot frees.
                    tasks.addTask {
                        let r = try await Self.chat(client, base, normal, headers: ["x-request-id": "q-normal"])
                        #expect(r.status == .serviceUnavailable)
                        #expect(r.body.json?["error"]?["message"]?.stringValue?.contains("concurrency limit") == true)
                    }
                    try await tasks.waitForAll()
                }
                // Nothing left waiting or holding the slot; the queue reports it.
                var request = HTTPClientRequest(url: base + "/admin/queues")
                request.headers.add(name: "authorization", value: "Bearer \(Self.adminKey)")
                let queues = try await client.execute(request, timeout: .seconds(10)).body.collect(upTo: 1 << 16).json
                let q = try #require(queues?["data"]?[0])
                #expect(q["deployment"] == "sim-small" && q["max_concurrent"] == .int(1) && q["in_flight"] == .int(0))
                #expect(q["waiting"] == ["high": .int(0), "normal": .int(0), "low": .int(0)])
                try await client.shutdown()
                // The upstream saw the later high-priority request before the earlier low one.
                let highAt = try #require(probe.instant(of: .started, requestID: "q-high"))
                let lowAt = try #require(probe.instant(of: .started, requestID: "q-low"))
                let holderAt = try #require(probe.instant(of: .started, requestID: "q-holder"))
                #expect(highAt < lowAt)
                #expect(highAt - holderAt >= .milliseconds(550))
                #expect(probe.instant(of: .started, requestID: "q-normal") == nil)
            }
        }
    }

    static func pooled(_ connections: Int) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        return configuration
    }

    static func chat(
        _ client: HTTPClient, _ base: String, _ key: String, extra: String = "", headers: [String: String] = [:]
    ) async throws -> (status: HTTPResponseStatus, body: ByteBuffer) {
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: #"{"model":"sim-small","messages":[{"role":"user","content":"Hi"}]\#(extra)}"#))
        let response = try await client.execute(request, timeout: .seconds(60))
        return (response.status, try await response.body.collect(upTo: 1 << 20))
    }

    static func createKeyLive(_ client: HTTPClient, _ base: String, _ fields: String) async throws -> String {
        try await createKeyLive(client, base, fields, withID: true).1
    }

    static func createKeyLive(_ client: HTTPClient, _ base: String, _ fields: String, withID: Bool) async throws -> (String, String) {
        var request = HTTPClientRequest(url: base + "/admin/keys")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(adminKey)")
        request.body = .bytes(ByteBuffer(string: fields))
        let response = try await client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        #expect(response.status == .created)
        let json = try #require(body.json)
        return (try #require(json["id"]?.stringValue), try #require(json["key"]?.stringValue))
    }
}

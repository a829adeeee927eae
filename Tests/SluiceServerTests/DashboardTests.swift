import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// The dashboard over HTTP (the browser test in tests/e2e drives it in Chromium): the session
/// cookie, who may sign in, every page's headers, bad input.
@Suite struct DashboardTests {
    @Test func signInSetsAStrictCookieAndEveryPageRenders() async throws {
        let app = try await TestApp.build(yaml: AccessTests.yaml, adminKey: AccessTests.adminKey)
        try await app.http.test(.router) { client in
            let (_, appKey) = try await AccessTests.createKey(client, #"{"name":"svc"}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: AccessTests.headers(appKey),
                body: ByteBuffer(string: #"{"model":"sim-small","messages":[{"role":"user","content":"hi"}]}"#)) { #expect($0.status == .ok) }
            await app.auditLog.drain()
            // Signed out: to the sign-in form.
            try await client.execute(uri: "/dashboard/models", method: .get) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == "/dashboard/login")
            }
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            try await client.execute(uri: "/dashboard/login", method: .post, headers: form, body: ByteBuffer(string: "key=sk-sluice-wrong")) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("class=\"error\""))
            }
            try await client.execute(uri: "/dashboard/login", method: .post, headers: form, body: ByteBuffer(string: "key=\(appKey)")) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.setCookie] == nil)
            }
            let encoded = AccessTests.adminKey.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let cookie = try await client.execute(uri: "/dashboard/login", method: .post, headers: form, body: ByteBuffer(string: "key=\(encoded)")) { response in
                #expect(response.status == .seeOther)
                let set = try #require(response.headers[.setCookie])
                #expect(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/dashboard"))
                return String(set.split(separator: ";")[0])
            }
            for path in [
                "/dashboard", "/dashboard?range=24h", "/dashboard/models", "/dashboard/flows", "/dashboard/keys", "/dashboard/requests", "/dashboard/guardrails",
                "/dashboard/alerts", "/dashboard/quality", "/dashboard/batches",
            ] {
                try await client.execute(uri: path, method: .get, headers: [.cookie: cookie]) { response in
                    #expect(response.status == .ok, "\(path)")
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
                    let html = String(buffer: response.body)
                    #expect(html.hasPrefix("<!doctype html>") && html.contains("Sign out"), "\(path)")
                    #expect(!html.contains("<script"), "\(path)")
                }
            }
            try await client.execute(uri: "/dashboard/models", method: .get, headers: [.cookie: cookie]) { response in
                #expect(String(buffer: response.body).contains("<td>sim-small</td>"))
            }
            try await client.execute(uri: "/dashboard?range=7y", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["param"] == "range")
            }
            try await client.execute(uri: "/dashboard/requests?status=abc", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("status must be a status code"))
            }
            try await client.execute(uri: "/dashboard/requests?cursor=zzz", method: .get, headers: [.cookie: cookie]) { response in
                #expect(String(buffer: response.body).contains("cursor is not one this page made"))
            }
            try await client.execute(uri: "/dashboard/requests/nope", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/dashboard/logout", method: .post, headers: [.cookie: cookie]) { response in
                #expect(response.headers[.setCookie]?.contains("Max-Age=0") == true)
            }
        }
    }

    @Test func flowPagesShowVersionsObjectivesAndRuns() async throws {
        let flows = FlowEndpointTests.yaml.components(separatedBy: "\nflows:\n")[1]
            .replacingOccurrences(of: "    params: { temperature: 0, max_tokens: 300 }", with: "    params: { temperature: 0, max_tokens: 300 }\n    slo: { p95_ms: 60000, success_rate: 0.9 }")
        let app = try await TestApp.build(yaml: AccessTests.yaml + "\nflows:\n" + flows, adminKey: AccessTests.adminKey)
        try await app.http.test(.router) { client in
            let admin = AccessTests.headers(AccessTests.adminKey)
            try await client.execute(
                uri: "/v1/flows/triage/run", method: .post, headers: admin, body: ByteBuffer(string: #"{"input":{"subject":"s","body":"b"}}"#)
            ) { #expect($0.status == .ok) }
            await app.auditLog.drain()
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let encoded = AccessTests.adminKey.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let cookie = try await client.execute(uri: "/dashboard/login", method: .post, headers: form, body: ByteBuffer(string: "key=\(encoded)")) {
                String(try #require($0.headers[.setCookie]).split(separator: ";")[0])
            }
            try await client.execute(uri: "/dashboard/flows", method: .get, headers: [.cookie: cookie]) { response in
                let html = String(buffer: response.body)
                #expect(response.status == .ok)
                #expect(html.contains(#"<a href="/dashboard/flows/triage">triage</a>"#))
                #expect(html.contains(#"class="on">Flows</a>"#))
                #expect(html.contains(#"<td class="good">met</td>"#), "\(html)")
            }
            try await client.execute(uri: "/dashboard/flows/triage", method: .get, headers: [.cookie: cookie]) { response in
                let html = String(buffer: response.body)
                #expect(response.status == .ok)
                #expect(html.contains("Flow triage") && html.contains("version 1 active"))
                #expect(html.contains("Cost per interval (USD)") && html.contains("p95 latency per interval"))
                #expect(html.contains("<td>success_rate</td>") && html.contains("<td>p95_ms</td>"))
                #expect(html.contains("/dashboard/requests/"), "a recent run links to its record")
                #expect(html.contains("&quot;model&quot; : &quot;sim-small&quot;"), "the definition is shown, escaped")
                #expect(!html.contains("<script"))
            }
            try await client.execute(uri: "/dashboard/flows/nope", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .notFound) }
        }
    }

    @Test func cookiesAndFormsParse() {
        #expect(DashboardRoutes.cookie("sluice_session", in: "a=1; sluice_session=sk-x_y; b=2") == "sk-x_y")
        #expect(DashboardRoutes.cookie("sluice_session", in: "sluice_sessionx=1") == nil)
        #expect(DashboardRoutes.form("key=sk%2Dab+c&x=") == ["key": "sk-ab c", "x": ""])
        #expect(SVGChart.bars([1, 2], label: "a<b").contains("aria-label=\"a&lt;b\""))
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import SluiceCore
import Testing
@testable import SluiceProviders
@testable import SluiceServer

#if canImport(Glibc)
import Glibc
#endif

/// Gemma 3 270M served by a llama-server that Sluice starts and supervises (`kind: llama-server`).
@Suite(.enabled(if: LocalModels.haveChat, "needs SLUICE_LLAMA_SERVER and SLUICE_GEMMA_MODEL (make test sets them)"), .serialized)
struct LocalChatTests {
    static let question = #"{"model":"gemma-3-270m","messages":[{"role":"system","content":"Answer briefly."},{"role":"user","content":"What is the capital of France?"}],"max_tokens":24,"temperature":0}"#

    @Test func aCompletionHasTextAndUsage() async throws {
        try await LocalModels.live { base, _ in
            let (status, body) = try await LocalModels.post(base + "/v1/chat/completions", Self.question)
            #expect(status == 200, "\(String(buffer: body))")
            let json = try #require(body.json)
            let text = json["choices"]?[0]?["message"]?["content"]?.stringValue ?? ""
            #expect(!text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
            #expect(json["model"]?.stringValue == "gemma-3-270m")
            #expect(["stop", "length"].contains(json["choices"]?[0]?["finish_reason"]?.stringValue ?? ""))
            // The prompt is the turn format: <bos>, two turn openings, the text, markers.
            #expect((json["usage"]?["prompt_tokens"]?.intValue ?? 0) > 10)
            let completion = json["usage"]?["completion_tokens"]?.intValue ?? 0
            #expect(completion > 0 && completion <= 24)
            #expect(!text.contains("<end_of_turn>") && !text.contains("<start_of_turn>"))
        }
    }

    @Test func aStreamYieldsSeveralChunksThenDone() async throws {
        try await LocalModels.live { base, _ in
            let body = Self.question.replacingOccurrences(of: #""temperature":0"#, with: #""temperature":0,"stream":true,"stream_options":{"include_usage":true}"#)
            let (status, bytes) = try await LocalModels.post(base + "/v1/chat/completions", body)
            #expect(status == 200)
            let events = String(buffer: bytes).components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
            #expect(events.last == "[DONE]")
            let chunks = events.dropLast().compactMap { try? JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: $0)) }
            #expect(chunks.count == events.count - 1, "every event but [DONE] is a JSON chunk")
            let withText = chunks.filter { !($0["choices"]?[0]?["delta"]?["content"]?.stringValue ?? "").isEmpty }
            #expect(withText.count >= 3)
            #expect(chunks.first?["choices"]?[0]?["delta"]?["role"]?.stringValue == "assistant")
            #expect(chunks.allSatisfy { $0["object"]?.stringValue == "chat.completion.chunk" })
            #expect((chunks.last?["usage"]?["completion_tokens"]?.intValue ?? 0) > 0)
        }
    }

    @Test func aKilledServerIsReplacedAndTheNextRequestSucceeds() async throws {
        try await LocalModels.live { base, app in
            let supervisor = try #require(app.providers.localServers["local"])
            let first = try #require(supervisor.pid)
            kill(first, SIGKILL)
            let killedAt = ContinuousClock.now
            var succeeded = false
            while ContinuousClock.now - killedAt < .seconds(30) {
                let (status, body) = try await LocalModels.post(base + "/v1/chat/completions", Self.question)
                if status == 200 {
                    succeeded = true
                    break
                }
                // While it restarts: a clean 503 in the OpenAI shape, never a hang or a 500.
                #expect(status == 503 || status == 502, "\(String(buffer: body))")
                #expect(body.json?["error"]?["message"]?.stringValue != nil)
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(succeeded)
            #expect(supervisor.restarts >= 1)
            #expect(supervisor.pid != nil && supervisor.pid != first)
        }
    }

    @Test func aRequestInFlightWhenTheServerDiesFailsCleanly() async throws {
        try await LocalModels.live { base, app in
            let supervisor = try #require(app.providers.localServers["local"])
            let pid = try #require(supervisor.pid)
            let long = #"{"model":"gemma-3-270m","messages":[{"role":"user","content":"Tell me a long story."}],"max_tokens":2000,"stream":true}"#
            var request = HTTPClientRequest(url: base + "/v1/chat/completions")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: long))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            #expect(response.status == .ok)
            var received = ""
            var killed = false
            for try await part in response.body {
                received += String(buffer: part)
                if !killed, received.components(separatedBy: "data: ").count > 3 {
                    kill(pid, SIGKILL)
                    killed = true
                }
            }
            // The stream ends (no hang) with an error event, not with [DONE].
            #expect(killed)
            #expect(received.contains(#""error""#))
            #expect(!received.contains("[DONE]"))
        }
    }

    /// Starting llama-server must not disturb MiniLM's BLAS threads (fork() would run OpenBLAS's
    /// atfork handler under a running matrix product, which then never finishes).
    @Test(.enabled(if: LocalModels.miniLMDirectory != nil), .timeLimit(.minutes(1)))
    func embeddingsKeepWorkingWhileTheChatServerRestarts() async throws {
        try await LocalModels.live { base, app in
            let supervisor = try #require(app.providers.localServers["local"])
            let sentences = (0..<32).map { #""Sentence number \#($0) about restarting servers.""# }.joined(separator: ",")
            let body = #"{"model":"all-minilm-l6-v2","input":["# + sentences + "]}"
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for _ in 0..<5 {
                        let before = supervisor.restarts
                        if let pid = supervisor.pid { kill(pid, SIGKILL) }
                        while supervisor.restarts == before || supervisor.pid == nil { try await Task.sleep(for: .milliseconds(20)) }
                        try await Task.sleep(for: .milliseconds(300))
                    }
                }
                group.addTask {
                    for _ in 0..<20 {
                        let (status, bytes) = try await LocalModels.post(base + "/v1/embeddings", body)
                        #expect(status == 200, "\(String(buffer: bytes))")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test(arguments: [false, true]) func aPromptLongerThanTheContextIsA400(stream: Bool) async throws {
        try await LocalModels.live { base, _ in
            let words = String(repeating: "word ", count: 3_000)
            let body = #"{"model":"gemma-3-270m","max_tokens":5,"stream":\#(stream),"messages":[{"role":"user","content":"\#(words)"}]}"#
            let (status, bytes) = try await LocalModels.post(base + "/v1/chat/completions", body)
            #expect(status == 400, "\(String(buffer: bytes))")
            #expect(bytes.json?["error"]?["message"]?.stringValue?.contains("context") == true)
        }
    }

    @Test(arguments: [
        (#"{"model":"gemma-3-270m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#, "tools"),
        (#"{"model":"gemma-3-270m","messages":[{"role":"user","content":"hi"}],"n":2}"#, "n"),
        (#"{"model":"gemma-3-270m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]}"#, "messages[0].content[0]"),
        (#"{"model":"gemma-3-270m","messages":[{"role":"tool","content":"42","tool_call_id":"c1"}]}"#, "messages[0].role"),
    ]) func refusesWhatTheModelCannotDo(body: String, param: String) async throws {
        try await LocalModels.live { base, _ in
            let (status, bytes) = try await LocalModels.post(base + "/v1/chat/completions", body)
            #expect(status == 400, "\(String(buffer: bytes))")
            #expect(bytes.json?["error"]?["param"]?.stringValue == param)
            #expect(bytes.json?["error"]?["type"]?.stringValue == "invalid_request_error")
        }
    }
}

/// The `sluice` process itself: stopping it, gracefully or with SIGKILL, leaves no llama-server.
@Suite(.enabled(if: LocalModels.haveChat && LocalModels.sluiceBinary != nil, "needs SLUICE_BIN and the local model"), .serialized)
struct LocalServerLifetimeTests {
    /// Starts `sluice serve` on a free port and returns it with its llama-server's PID.
    func startSluice() async throws -> (Process, pid_t) {
        let port = try freeLoopbackPort()
        let config = NSTemporaryDirectory() + "sluice-lifetime-\(port).yaml"
        try LocalModels.yaml(port: port).write(toFile: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LocalModels.sluiceBinary!)
        process.arguments = ["serve", "--config", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(60) {
            if let child = children(of: process.processIdentifier).first,
                (try? await HTTPClient.shared.get(url: "http://127.0.0.1:\(port)/healthz").get())?.status == .ok
            {
                return (process, child)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.terminate()
        Issue.record("sluice did not start within 60 s")
        throw CancellationError()
    }

    @Test func sigkillOfSluiceLeavesNoLlamaServer() async throws {
        let (process, llama) = try await startSluice()
        #expect(isRunning(llama))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(await ends(llama, within: .seconds(5)))
    }

    @Test func sigtermStopsLlamaServerWithSluice() async throws {
        let (process, llama) = try await startSluice()
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(!isRunning(llama))
    }

    /// Whether `pid` is alive (a zombie, dead but not yet collected by its new parent, is not).
    func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    func ends(_ pid: pid_t, within limit: Duration) async -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if !isRunning(pid) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// PIDs whose parent is `parent`.
    func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent
        }
    }
}

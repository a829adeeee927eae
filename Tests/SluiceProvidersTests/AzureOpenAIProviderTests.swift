import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import SluiceCore
import SluiceTesting
import Testing
@testable import SluiceProviders

@Suite struct AzureOpenAIProviderTests {
    func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/azure/\(name)", withExtension: nil))
        return try String(contentsOf: url, encoding: .utf8)
    }

    let context = InferenceContext(requestID: "req-z1", endpoint: "chat.completions", logger: Logger(label: "t"), receivedAtUnix: 1_700_000_000)

    @Test func pathsFollowTheAPIVersion() {
        let dated = OpenAICompatibleProvider.OpenAIPaths.azure(apiVersion: "2024-10-21")
        #expect(dated.path("chat/completions", model: "gpt 4o") == "/openai/deployments/gpt%204o/chat/completions?api-version=2024-10-21")
        #expect(dated.health == "/openai/models?api-version=2024-10-21")
        let v1 = OpenAICompatibleProvider.OpenAIPaths.azure(apiVersion: "v1")
        #expect(v1.path("embeddings", model: "e") == "/openai/v1/embeddings")
        #expect(OpenAICompatibleProvider.OpenAIPaths.openAI.path("chat/completions", model: "x") == "/chat/completions")
    }

    @Test func callsTheDeploymentWithItsKeyAndMapsTheContentFilter() async throws {
        let captured = Captured()
        let response = try fixture("chat-response.json")
        let filtered = try fixture("content-filter-error.json")
        try await FakeUpstream.with({ router in
            router.post("/openai/deployments/{deployment}/chat/completions") { request, context -> Response in
                captured.add(request, body: try await request.body.collect(upTo: 1 << 20))
                let blocked = context.parameters.get("deployment") == "filtered"
                return Response(
                    status: blocked ? .badRequest : .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: blocked ? filtered : response)))
            }
        }) { base in
            let config = HTTPProviderConfig(baseURL: base, apiKey: "azure-key")
            try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
                let provider = try OpenAICompatibleProvider.azure(name: "az", config: config, client: client)
                let result = try await provider.complete(ChatCompletionRequest(model: "gpt4o-prod", messages: [.init(role: .user, text: "hi")]), context: context)
                #expect(try result.completion().choices.first?.message.content == "Hello from Azure.")
                #expect(result.usage == Usage(promptTokens: 11, completionTokens: 4))
                #expect(captured.last?.headers["api-key"] == "azure-key" && captured.last?.headers["authorization"] == nil)
                do {
                    _ = try await provider.complete(ChatCompletionRequest(model: "filtered", messages: [.init(role: .user, text: "x")]), context: context)
                    Issue.record("expected a content filter error")
                } catch let error as SluiceError {
                    #expect(error.code == .contentFiltered && error.httpStatus == 400 && error.message.contains("content management policy"))
                }
            }
        }
    }

    @Test func anEntraTokenIsABearerAndNoCredentialIsAConfigurationError() async throws {
        let config = HTTPProviderConfig(baseURL: "https://example.openai.azure.com")
        try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
            #expect(throws: ConfigError.self) { try OpenAICompatibleProvider.azure(name: "az", config: config, client: client, environment: [:]) }
            _ = try OpenAICompatibleProvider.azure(name: "az", config: config, client: client, environment: ["AZURE_OPENAI_AD_TOKEN": "eyJ0"])
        }
    }
}

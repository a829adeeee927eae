import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceObservability
@testable import SluiceServer

@Suite struct EmbeddingsTests {
    @Test func embedsStringsAndArraysInBothEncodings() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            var floats: [Float] = []
            try await client.execute(uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: #"{"model":"sim-embed","input":["first text","second text"]}"#)) { response in
                #expect(response.status == .ok)
                let body = try JSONCoding.decode(EmbeddingsResponse.self, from: response.body)
                #expect(body.data.count == 2)
                #expect(body.data.map(\.index) == [0, 1])
                #expect(body.model == "sim-embed")
                #expect(body.usage.promptTokens > 0)
                if case .float(let v) = body.data[0].embedding { floats = v }
                #expect(floats.count == 384)
            }
            try await client.execute(
                uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: #"{"model":"sim-embed","input":"first text","encoding_format":"base64"}"#)
            ) { response in
                let body = try JSONCoding.decode(EmbeddingsResponse.self, from: response.body)
                guard case .base64(let text) = body.data[0].embedding, let data = Data(base64Encoded: text) else {
                    Issue.record("not base64")
                    return
                }
                let decoded = data.withUnsafeBytes { raw in
                    (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
                }
                #expect(decoded == floats)
            }
        }
        await app.requestLog.drain()
        let rows = try await app.store.recent(limit: 10)
        #expect(rows.count == 2)
        #expect(rows.allSatisfy { $0.endpoint == "embeddings" && $0.status == 200 && $0.tokensIn > 0 })
    }
}

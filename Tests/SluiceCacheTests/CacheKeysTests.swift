import SluiceCore
import Testing
@testable import SluiceCache

/// Entries persist across restarts keyed by these digests: a key must not change when the code
/// that computes it does, or every stored entry would stop matching.
@Suite struct CacheKeysTests {
    @Test func keysStayThoseOfStoredEntries() throws {
        let request = ChatCompletionRequest(model: "m", messages: [.init(role: .user, text: "Say hello")], temperature: 0)
        let exact = try CacheKeys.exact(request, tenant: "open")
        let partition = try CacheKeys.partition(request, tenant: "team:t1")
        #expect(exact == "353fabf8b19b58af08833c2809e8845dc56a7943a84bd8e0c1de13bb607de149")
        #expect(partition == "ab160ed6c14ea06910a476699a5802c293ab0371882fafde0eb269f1f852ac22")
    }
}

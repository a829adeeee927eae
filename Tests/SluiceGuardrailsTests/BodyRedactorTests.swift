import Foundation
import NIOCore
import SluiceCore
import Testing
@testable import SluiceGuardrails

/// What the audit log keeps of a request with `log_bodies: redacted`: each message's texts are
/// redacted as they were sent, then written as JSON.
@Suite struct BodyRedactorTests {
    static func messages(_ json: String) throws -> [ChatMessage] {
        try JSONDecoder().decode([ChatMessage].self, from: Data(json.utf8))
    }

    /// The redacted messages as the audit log writes them, parsed back.
    static func written(_ messages: [ChatMessage]) throws -> [[String: Any]] {
        let bytes = try ChatMessage.jsonArrayBytes(BodyRedactor().redact(messages))
        let parsed = try JSONSerialization.jsonObject(with: Data(String(buffer: bytes).utf8))
        return try #require(parsed as? [[String: Any]])
    }

    /// Values behind a line break or a tab: in the JSON text they follow an escape (`\n555…`),
    /// where the detectors saw no boundary, and a placeholder after `\` broke the escape.
    @Test func valuesAfterLineBreaksAndTabsAreRedactedAndTheBodyStaysJSON() throws {
        let sent = try Self.messages(#"""
            [{"role": "user", "content": "Reach me at\n555-867-5309 tonight"},
             {"role": "user", "content": "mail:\tjohn.doe@example.com\nthanks"},
             {"role": "user", "content": "SSN\n123-45-6789"},
             {"role": "user", "content": "key \"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD\" here"}]
            """#)
        let written = try Self.written(sent)
        #expect(written.map { $0["content"] as? String } == [
            "Reach me at\n[PHONE_1] tonight", "mail:\t[EMAIL_1]\nthanks", "SSN\n[US_SSN_1]", "key \"[SECRET_1]\" here",
        ])
    }

    @Test func oneValueHasOnePlaceholderAcrossTheMessages() throws {
        let sent = try Self.messages(#"""
            [{"role": "system", "content": "Escalate to ann@example.com."},
             {"role": "user", "content": "I am bob@example.org, cc ann@example.com"}]
            """#)
        let written = try Self.written(sent)
        #expect(written.map { $0["content"] as? String } == ["Escalate to [EMAIL_1].", "I am [EMAIL_2], cc [EMAIL_1]"])
    }

    @Test func textPartsRefusalsAndToolCallsAreRedactedAndTheRestKept() throws {
        let sent = try Self.messages(#"""
            [{"role": "user", "content": [
                {"type": "text", "text": "Card\n4111 1111 1111 1111", "cache_control": {"type": "ephemeral"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
             {"role": "assistant", "refusal": "Not sending mail to ann@example.com",
              "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"email\":\"ann@example.com\"}"}}]},
             {"role": "tool", "tool_call_id": "call_1", "content": "no match"}]
            """#)
        let written = try Self.written(sent)
        let parts = try #require(written[0]["content"] as? [[String: Any]])
        #expect(parts[0]["text"] as? String == "Card\n[CREDIT_CARD_1]")
        #expect((parts[0]["cache_control"] as? [String: Any])?["type"] as? String == "ephemeral")
        #expect((parts[1]["image_url"] as? [String: Any])?["url"] as? String == "https://example.com/a.png")
        #expect(written[1]["refusal"] as? String == "Not sending mail to [EMAIL_1]")
        let call = try #require((written[1]["tool_calls"] as? [[String: Any]])?.first)
        let function = try #require(call["function"] as? [String: Any])
        #expect(function["arguments"] as? String == #"{"email":"[EMAIL_1]"}"#)
        #expect(function["name"] as? String == "lookup" && call["id"] as? String == "call_1")
        #expect(written[2]["content"] as? String == "no match" && written[2]["tool_call_id"] as? String == "call_1")

        // The redacted text part is the same in the part's own field and in what is written.
        guard case .parts(let redactedParts)? = BodyRedactor().redact(sent)[0].content else {
            Issue.record("the content is no longer parts")
            return
        }
        #expect(redactedParts[0].text == "Card\n[CREDIT_CARD_1]")
    }

    @Test func messagesWithoutFindingsAreUnchanged() throws {
        let sent = try Self.messages(#"[{"role": "user", "content": "What is the capital of France?\nShort answer."}]"#)
        #expect(BodyRedactor().redact(sent) == sent)
    }
}

import NIOCore
import SluiceCore
import Testing
@testable import SluiceClientAPIs

func json(_ text: String) throws -> JSONValue {
    try JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: text))
}

@Suite struct MessagesAPITests {
    @Test func translatesARequestWithSystemImagesToolsAndResults() throws {
        let body = try json(
            #"""
            {"model": "claude-x", "max_tokens": 300, "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
             "temperature": 0.2, "top_p": 0.9, "stop_sequences": ["END"], "metadata": {"user_id": "u-1"},
             "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
             "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
             "messages": [
               {"role": "user", "content": [{"type": "text", "text": "What is this? "}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]},
               {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "Let me look."},
                 {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "Sunny"}]},
                 {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": true}, {"type": "text", "text": "Thanks"}]}
             ]}
            """#)
        let chat = try MessagesAPI.chatRequest(from: body)
        #expect(chat.model == "claude-x" && chat.maxTokens == 300 && chat.temperature == 0.2 && chat.topP == 0.9)
        #expect(chat.stop == .many(["END"]) && chat.user == "u-1" && chat.parallelToolCalls == false)
        #expect(chat.toolChoice == ["type": "function", "function": ["name": "get_weather"]])
        #expect(chat.tools?.first?.function.name == "get_weather" && chat.tools?.first?.function.parameters?["type"] == "object")
        let roles = chat.messages.map(\.role)
        #expect(roles == [.system, .user, .assistant, .tool, .tool, .user])
        #expect(chat.messages[0].text == "Be brief.\n\nBe kind.")
        guard case .parts(let parts)? = chat.messages[1].content else { Issue.record("expected parts"); return }
        #expect(parts.map(\.type) == ["text", "image_url"] && parts[1].raw["image_url"]?["url"] == "data:image/png;base64,iVBOR")
        #expect(chat.messages[2].text == "Let me look." && chat.messages[2].toolCalls?.first?.function.arguments == #"{"city":"Paris"}"#)
        #expect(chat.messages[3].toolCallId == "toolu_1" && chat.messages[3].text == "Sunny")
        #expect(chat.messages[4].text == "Error: boom")
        #expect(chat.messages[5].text == "Thanks")
    }

    @Test func refusesWhatItCannotTranslateWithTheParameter() throws {
        func refusal(_ text: String) throws -> SluiceError? {
            do {
                _ = try MessagesAPI.chatRequest(from: try json(text))
                return nil
            } catch let error as SluiceError {
                return error
            }
        }
        let missing = try refusal(#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#)
        #expect(missing?.param == "max_tokens" && missing?.httpStatus == 400)
        let document = try refusal(
            #"{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}"#)
        #expect(document?.param == "messages[0].content[0].type" && document?.code == .unsupported)
        let serverTool = try refusal(
            #"{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "bash_20250124", "name": "bash"}]}"#)
        #expect(serverTool?.param == "tools[0].type")
        let role = try refusal(#"{"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}"#)
        #expect(role?.param == "messages[0].role")
        let temperature = try refusal(#"{"model": "m", "max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]}"#)
        #expect(temperature?.param == "temperature")
        #expect(try refusal(#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#) != nil)
        #expect(try MessagesAPI.chatRequest(from: try json(#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#), requireMaxTokens: false).maxTokens == nil)
    }

    @Test func answersAMessageWithTextToolUseStopReasonAndUsage() throws {
        var message = AssistantMessage(content: "Checking.", toolCalls: [ToolCall(id: "call_1", name: "get_weather", arguments: #"{"city":"Paris"}"#)])
        message.refusal = nil
        let completion = ChatCompletion(
            id: "c", created: 1, model: "upstream-name", choices: [.init(index: 0, message: message, finishReason: "tool_calls")],
            usage: Usage(promptTokens: 12, completionTokens: 7))
        let out = MessagesAPI.message(from: completion, id: "msg_1", model: "claude-x")
        #expect(out["model"] == "claude-x" && out["stop_reason"] == "tool_use" && out["type"] == "message")
        #expect(out["content"]?[0] == ["type": "text", "text": "Checking."])
        #expect(out["content"]?[1] == ["type": "tool_use", "id": "call_1", "name": "get_weather", "input": ["city": "Paris"]])
        #expect(out["usage"] == ["input_tokens": 12, "output_tokens": 7])
        #expect(MessagesAPI.stopReason("length") == "max_tokens" && MessagesAPI.stopReason("stop") == "end_turn")
        #expect(MessagesAPI.stopReason("content_filter") == "refusal")
    }

    @Test func streamsTextThenAToolCallAsAnthropicEvents() throws {
        var writer = MessagesStreamWriter(id: "msg_1", model: "claude-x", estimatedInputTokens: 9)
        var events = writer.start()
        func chunk(_ delta: ChatCompletionChunk.Delta, finish: String? = nil, usage: Usage? = nil) -> ChatCompletionChunk {
            ChatCompletionChunk(id: "c", created: 1, model: "m", choices: usage == nil ? [.init(index: 0, delta: delta, finishReason: finish)] : [], usage: usage)
        }
        events += writer.events(for: chunk(.init(role: "assistant", content: "")))
        events += writer.events(for: chunk(.init(content: "Hi")))
        events += writer.events(for: chunk(.init(toolCalls: [.init(index: 0, id: "call_1", type: "function", function: .init(name: "f", arguments: ""))])))
        events += writer.events(for: chunk(.init(toolCalls: [.init(index: 0, function: .init(arguments: #"{"a":"#))])))
        events += writer.events(for: chunk(.init(toolCalls: [.init(index: 0, function: .init(arguments: "1}"))])))
        events += writer.events(for: chunk(.init(), finish: "tool_calls"))
        events += writer.events(for: chunk(.init(), usage: Usage(promptTokens: 11, completionTokens: 4)))
        events += writer.finish()
        #expect(
            events.map(\.name) == [
                "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop", "content_block_start",
                "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
            ])
        #expect(events[0].data["message"]?["usage"]?["input_tokens"] == 9)
        #expect(events[3].data["delta"] == ["type": "text_delta", "text": "Hi"] && events[3].data["index"] == 0)
        #expect(events[5].data["content_block"]?["type"] == "tool_use" && events[5].data["index"] == 1)
        #expect(events[6].data["delta"] == ["type": "input_json_delta", "partial_json": #"{"a":"#] && events[6].data["index"] == 1)
        #expect(events[9].data["delta"]?["stop_reason"] == "tool_use")
        #expect(events[9].data["usage"] == ["input_tokens": 11, "output_tokens": 4])
    }

    @Test func errorsTakeAnthropicsShapeAndTypes() {
        let body = MessagesAPI.errorBody(SluiceError(.rateLimited, "slow down"))
        #expect(body == ["type": "error", "error": ["type": "rate_limit_error", "message": "slow down"]])
        #expect(MessagesAPI.errorType(status: 401) == "authentication_error" && MessagesAPI.errorType(status: 404) == "not_found_error")
        #expect(MessagesAPI.errorType(status: 413) == "request_too_large" && MessagesAPI.errorType(status: 503) == "overloaded_error")
        #expect(MessagesAPI.errorType(status: 502) == "api_error" && MessagesAPI.errorType(status: 400) == "invalid_request_error")
    }
}

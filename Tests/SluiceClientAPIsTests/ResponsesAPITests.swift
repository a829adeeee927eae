import NIOCore
import SluiceCore
import Testing
@testable import SluiceClientAPIs

@Suite struct ResponsesAPITests {
    @Test func translatesItemsToolsFormatAndEchoesWhatWasSent() throws {
        let body = try json(
            #"""
            {"model": "gpt-x", "instructions": "Be brief.", "max_output_tokens": 50, "temperature": 0.3, "store": false,
             "metadata": {"ticket": "T-1"}, "previous_response_id": "resp_abc", "parallel_tool_calls": false,
             "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": true}],
             "tool_choice": {"type": "function", "name": "get_weather"},
             "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
             "input": [
               {"role": "developer", "content": "Use metric units."},
               {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather? "}, {"type": "input_image", "image_url": "https://x/img.png", "detail": "low"}]},
               {"type": "reasoning", "id": "rs_1", "summary": []},
               {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
               {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
               {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
               {"type": "function_call_output", "call_id": "call_1", "output": "Sunny"},
               {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "Rain"}]}
             ]}
            """#)
        let request = try ResponsesAPI.request(from: body)
        #expect(request.store == false && request.previousResponseID == "resp_abc" && request.instructions == "Be brief.")
        #expect(request.metadata == ["ticket": "T-1"])
        let chat = request.chat(continuing: [ChatMessage(role: .user, text: "earlier")])
        #expect(chat.messages.map(\.role) == [.system, .user, .developer, .user, .assistant, .tool, .tool])
        #expect(chat.messages[0].text == "Be brief." && chat.messages[1].text == "earlier")
        guard case .parts(let parts)? = chat.messages[3].content else { Issue.record("expected parts"); return }
        #expect(parts[1].raw["image_url"] == ["url": "https://x/img.png", "detail": "low"])
        #expect(chat.messages[4].text == "Checking." && chat.messages[4].toolCalls?.map(\.id) == ["call_1", "call_2"])
        #expect(chat.messages[6].text == "Rain" && chat.messages[6].toolCallId == "call_2")
        #expect(chat.maxCompletionTokens == 50 && chat.temperature == 0.3 && chat.parallelToolCalls == false)
        #expect(chat.toolChoice == ["type": "function", "function": ["name": "get_weather"]])
        #expect(chat.tools?.first?.function.strict == true)
        #expect(chat.responseFormat?.type == "json_schema" && chat.responseFormat?.jsonSchema?.name == "w")
        // `instructions` are not part of what a continuation inherits.
        #expect(!request.input.contains { $0.role == .system })

        let object = ResponsesAPI.response(
            id: "resp_1", createdAt: 5, model: "gpt-x", request: request, status: "incomplete", output: [], usage: Usage(promptTokens: 3, completionTokens: 2),
            finishReason: "length")
        #expect(object["tools"] == body["tools"] && object["text"] == body["text"] && object["tool_choice"] == body["tool_choice"])
        #expect(object["max_output_tokens"] == 50 && object["store"] == false && object["previous_response_id"] == "resp_abc")
        #expect(object["incomplete_details"] == ["reason": "max_output_tokens"] && object["usage"]?["total_tokens"] == 5)
    }

    @Test func refusesHostedToolsUnknownItemsAndBadValues() throws {
        func refusal(_ text: String) throws -> SluiceError? {
            do {
                _ = try ResponsesAPI.request(from: try json(text))
                return nil
            } catch let error as SluiceError {
                return error
            }
        }
        #expect(try refusal(#"{"model": "m", "input": "x", "tools": [{"type": "web_search"}]}"#)?.param == "tools[0].type")
        #expect(try refusal(#"{"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}"#)?.param == "input[0].type")
        #expect(try refusal(#"{"model": "m"}"#)?.param == "input")
        #expect(try refusal(#"{"input": "x"}"#)?.param == "model")
        #expect(try refusal(#"{"model": "m", "input": "x", "max_output_tokens": 0}"#)?.param == "max_output_tokens")
        #expect(try refusal(#"{"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}"#)?.param == "text.format")
        #expect(try refusal(#"{"model": "m", "input": "x", "tool_choice": {"type": "allowed_tools"}}"#)?.param == "tool_choice")
        #expect(try refusal(#"{"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}"#)?.param == "input[0].content[0].type")
    }

    @Test func answersOutputItemsForTextAndToolCalls() {
        let completion = ChatCompletion(
            id: "c", created: 1, model: "m",
            choices: [.init(index: 0, message: AssistantMessage(content: nil, toolCalls: [ToolCall(id: "call_9", name: "f", arguments: "{}")]), finishReason: "tool_calls")],
            usage: nil)
        let output = ResponsesAPI.output(of: completion, responseID: "resp_1")
        #expect(output == [["type": "function_call", "id": "fc_1_1", "call_id": "call_9", "name": "f", "arguments": "{}", "status": "completed"]])
        let assistant = ResponsesAPI.assistantMessage(completion)
        #expect(assistant.content == nil && assistant.toolCalls?.first?.id == "call_9")
        let text = ChatCompletion(
            id: "c", created: 1, model: "m", choices: [.init(index: 0, message: AssistantMessage(content: "Hi"), finishReason: "stop")], usage: nil)
        #expect(ResponsesAPI.output(of: text, responseID: "resp_1").first?["content"]?[0]?["text"] == "Hi")
        #expect(ResponsesAPI.status(finishReason: "stop") == "completed" && ResponsesAPI.status(finishReason: "length") == "incomplete")
    }

    @Test func streamsTypedEventsInOrderWithSequenceNumbers() throws {
        let request = try ResponsesAPI.request(from: try json(#"{"model": "m", "input": "x", "stream": true}"#))
        var writer = ResponsesStreamWriter(id: "resp_1", createdAt: 5, model: "m", request: request)
        func chunk(_ delta: ChatCompletionChunk.Delta, finish: String? = nil) -> ChatCompletionChunk {
            ChatCompletionChunk(id: "c", created: 1, model: "m", choices: [.init(index: 0, delta: delta, finishReason: finish)])
        }
        var events = writer.start()
        events += writer.events(for: chunk(.init(content: "Let me ")))
        events += writer.events(for: chunk(.init(content: "check.")))
        events += writer.events(for: chunk(.init(toolCalls: [.init(index: 0, id: "call_1", type: "function", function: .init(name: "f", arguments: "{\"a\""))])))
        events += writer.events(for: chunk(.init(toolCalls: [.init(index: 0, function: .init(arguments: ":1}"))]), finish: "tool_calls"))
        events += writer.events(for: ChatCompletionChunk(id: "c", created: 1, model: "m", choices: [], usage: Usage(promptTokens: 4, completionTokens: 6)))
        let (last, final) = writer.finish()
        events += last
        #expect(
            events.map(\.name) == [
                "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
                "response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done",
                "response.output_item.done", "response.output_item.added", "response.function_call_arguments.delta",
                "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done", "response.completed",
            ])
        #expect(events.map { $0.data["sequence_number"] } == (0..<events.count).map { .int($0) })
        #expect(events[0].data["response"]?["status"] == "in_progress")
        #expect(events[6].data["text"] == "Let me check.")
        #expect(events[12].data["arguments"] == #"{"a":1}"# && events[12].data["output_index"] == 1)
        #expect(final["status"] == "completed" && final["usage"]?["output_tokens"] == 6)
        #expect(final["output"]?[1]?["call_id"] == "call_1" && final["output"]?[0]?["content"]?[0]?["text"] == "Let me check.")
        #expect(writer.assistant.text == "Let me check." && writer.assistant.toolCalls?.first?.function.arguments == #"{"a":1}"#)
    }
}

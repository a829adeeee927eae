import Metrics
import OTel
import SluiceCore
import Synchronization
import Tracing

/// The outermost stage: once a request is over — answered, failed, or its stream finished or
/// abandoned — it settles the request's usage ledger (the one place usage, cost, budgets and
/// rate limits are settled) and writes the log line and the audit-log row through
/// `AuditRecorder`.
package struct RecordStage: InferenceStage {
    package let recorder: AuditRecorder
    /// Requests between this stage's start and their record (`sluice_requests_in_flight`).
    package var inFlight: Meter?
    /// Whether the audit log keeps the messages and the answer.
    package var keepsBodies = false
    /// Opens the request's span (its parent from an incoming `traceparent`); nil with tracing off.
    package var tracer: (any Tracer)?
    /// `telemetry.trace_sample_ratio`: the share of requests without a `traceparent` that are traced.
    package var traceSampleRatio = 1.0

    package init(recorder: AuditRecorder, inFlight: Meter? = nil, keepsBodies: Bool = false, tracer: (any Tracer)? = nil, traceSampleRatio: Double = 1.0) {
        self.recorder = recorder
        self.inFlight = inFlight
        self.keepsBodies = keepsBodies
        self.tracer = tracer
        self.traceSampleRatio = traceSampleRatio
    }

    package func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        let keepsBodies = keepsBodies
        if keepsBodies, let chat = request.chat { context.facts.update(\.bodies) { $0.messages = chat.messages } }
        let model = request.model
        let streaming = request.isStreaming
        inFlight?.increment()
        let recorder = recorder
        let inFlight = inFlight
        let span = tracer.flatMap { tracer in
            Self.isSampled(context.headers["traceparent"], ratio: traceSampleRatio) ? Self.startSpan(tracer, request: request, context: context) : nil
        }
        @Sendable func finish(_ outcome: StreamOutcome) {
            inFlight?.decrement()
            recorder.finish(context, model: model, stream: streaming, outcome: outcome)
            if let span { Self.end(span, outcome: outcome, context: context) }
        }
        let response: InferenceResponse
        do {
            // An unsampled request makes no child spans: its stages see no span context.
            if let span, span.isRecording {
                response = try await InstrumentationContext.withValue(span.context) { try await next(request, context) }
            } else {
                response = try await next(request, context)
            }
        } catch {
            finish(.failed(error))
            throw error
        }
        switch response {
        case .embeddings:
            finish(.finished)
            return response
        case .completion(let result):
            context.facts.update(\.answer) { $0.finishReason = result.finishReason }
            // Kept undecoded: the audit-log writer reads it.
            if keepsBodies { context.facts.update(\.bodies) { $0.result = result } }
            finish(.finished)
            return response
        case .stream(let stream):
            let watch = StreamWatch(startedAt: context.startedAt, keepsText: keepsBodies)
            let observed = stream.observed(
                onEvent: { event in watch.observe(event, facts: context.facts) },
                onFinish: { outcome in
                    watch.close(facts: context.facts)
                    finish(outcome)
                })
            return .stream(observed)
        }
    }
}

extension RecordStage {
    /// Whether a request is traced: as its caller decided (the `sampled` flag of a well-formed
    /// `traceparent`), else with probability `ratio`. Decided here rather than by swift-otel's
    /// sampler because an unsampled span there still costs about 15 µs (ids, context, and a trip
    /// through its span processor's stream); an untraced request costs nothing.
    package static func isSampled(_ traceparent: String?, ratio: Double) -> Bool {
        if let traceparent {
            // version-traceid-parentid-flags: 2-32-16-2 hex digits.
            let parts = traceparent.split(separator: "-")
            if parts.count >= 4, parts[0].count == 2, parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
                let flags = UInt8(parts[3], radix: 16)
            {
                return flags & 1 == 1
            }
        }
        return ratio >= 1 || (ratio > 0 && Double.random(in: 0..<1) < ratio)
    }

    /// The request's span, named as the GenAI conventions name a chat call; its trace id is noted
    /// for the log line and the audit row.
    package static func startSpan(_ tracer: any Tracer, request: InferenceRequest, context: InferenceContext) -> any Span {
        var parent = InstrumentationContext.topLevel
        tracer.extract(context.headers, into: &parent, using: TraceHeaderExtractor())
        let operation = request.chat == nil ? "embeddings" : "chat"
        let span = tracer.startSpan("\(operation) \(request.model)", context: parent, ofKind: .server)
        span.attributes["gen_ai.operation.name"] = operation
        span.attributes["gen_ai.request.model"] = request.model
        span.attributes["sluice.request_id"] = context.requestID
        if let traceID = span.context.otelTraceID { context.facts.update(\.traceID) { $0 = traceID } }
        return span
    }

    package static func end(_ span: any Span, outcome: StreamOutcome, context: InferenceContext) {
        let facts = context.facts.snapshot
        if let d = facts.route.deployment { span.attributes["sluice.deployment"] = d }
        if let u = context.ledger.settlement?.usage {
            span.attributes["gen_ai.usage.input_tokens"] = u.promptTokens
            span.attributes["gen_ai.usage.output_tokens"] = u.completionTokens
        }
        span.attributes["sluice.cache"] = facts.cache.status.rawValue
        switch outcome {
        case .finished: break
        case .failed(let error):
            span.recordError(error)
            span.setStatus(.init(code: .error))
        case .cancelled:
            span.setStatus(.init(code: .error, message: "client disconnected"))
        }
        span.end()
    }
}

/// What a stream has shown so far: when its first token came, its finish reason, and its text
/// when the audit log keeps bodies. (Its usage is the ledger's: the invoker charges it.)
package final class StreamWatch: Sendable {
    package struct State {
        var sawFirstToken = false
        var finishReason: String?
        /// The first choice's text so far, for the audit log's copy of the answer (nil until an
        /// event carries output).
        var text: String?
    }

    private let state = Mutex(State())
    package let startedAt: ContinuousClock.Instant
    package let keepsText: Bool

    package init(startedAt: ContinuousClock.Instant, keepsText: Bool = false) {
        self.startedAt = startedAt
        self.keepsText = keepsText
    }

    package func observe(_ event: ChatStreamEvent, facts: RequestFacts) {
        let summary = event.summary
        let bytes = summary.outputBytes
        let finish = summary.finishReason
        let keep = keepsText && bytes > 0
        // The text, not the event: a kept event would hold its network buffer until the end.
        let piece = keep ? ((try? event.firstDeltaContent()) ?? nil) : nil
        let first = state.withLock { s -> Bool in
            if keep {
                if s.text == nil { s.text = piece ?? "" } else if let piece { s.text!.append(piece) }
            }
            if let finish { s.finishReason = finish }
            if bytes > 0 && !s.sawFirstToken {
                s.sawFirstToken = true
                return true
            }
            return false
        }
        if first {
            let ttft = ContinuousClock.now - startedAt
            facts.update(\.answer) { $0.timeToFirstToken = ttft }
        }
    }

    /// Moves what the stream showed into the request's facts.
    package func close(facts: RequestFacts) {
        let s = state.withLock { $0 }
        facts.update(\.answer) { $0.finishReason = s.finishReason }
        if keepsText { facts.update(\.bodies) { $0.streamText = s.text } }
    }
}

import Metrics
import OTel
import SluiceCore
import Synchronization
import Tracing

/// The outermost stage: once a request is over — answered, failed, or its stream finished or
/// abandoned — it writes the log line and the audit-log row through `RequestRecorder`.
package struct RecordStage: InferenceStage {
    package let recorder: RequestRecorder
    /// Requests between this stage's start and their record (`sluice_requests_in_flight`).
    package var inFlight: Meter?
    /// Whether the audit log keeps the messages and the answer.
    package var keepsBodies = false
    /// Opens the request's span (its parent from an incoming `traceparent`); nil with tracing off.
    package var tracer: (any Tracer)?
    /// `telemetry.trace_sample_ratio`: the share of requests without a `traceparent` that are traced.
    package var traceSampleRatio = 1.0

    package init(recorder: RequestRecorder, inFlight: Meter? = nil, keepsBodies: Bool = false, tracer: (any Tracer)? = nil, traceSampleRatio: Double = 1.0) {
        self.recorder = recorder
        self.inFlight = inFlight
        self.keepsBodies = keepsBodies
        self.tracer = tracer
        self.traceSampleRatio = traceSampleRatio
    }

    package func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        let keepsBodies = keepsBodies
        context.trace.withValues {
            $0.modelRequested = request.chat.model
            $0.stream = request.chat.isStreaming
            if keepsBodies { $0.requestMessages = request.chat.messages }
        }
        inFlight?.increment()
        let recorder = recorder
        let inFlight = inFlight
        let span = tracer.flatMap { tracer in
            Self.isSampled(context.headers["traceparent"], ratio: traceSampleRatio) ? Self.startSpan(tracer, request: request, context: context) : nil
        }
        @Sendable func finish(_ outcome: StreamOutcome) {
            inFlight?.decrement()
            recorder.finish(context, outcome: outcome)
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
        case .completion(let result):
            context.trace.withValues {
                $0.usage = result.usage
                $0.finishReason = result.finishReason
                // Kept undecoded: the audit-log writer reads it.
                if keepsBodies { $0.responseResult = result }
            }
            finish(.finished)
            return response
        case .stream(let stream):
            let watch = StreamWatch(startedAt: context.startedAt, keepsText: keepsBodies)
            let observed = stream.observed(
                onEvent: { event in watch.observe(event, trace: context.trace) },
                onFinish: { outcome in
                    watch.settle(trace: context.trace, request: request.chat)
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
        let span = tracer.startSpan("chat \(request.chat.model)", context: parent, ofKind: .server)
        span.attributes["gen_ai.operation.name"] = "chat"
        span.attributes["gen_ai.request.model"] = request.chat.model
        span.attributes["sluice.request_id"] = context.requestID
        if let traceID = span.context.otelTraceID { context.trace.withValues { $0.traceID = traceID } }
        return span
    }

    package static func end(_ span: any Span, outcome: StreamOutcome, context: InferenceContext) {
        let values = context.trace.values
        if let d = values.deployment { span.attributes["sluice.deployment"] = d }
        if let u = values.usage {
            span.attributes["gen_ai.usage.input_tokens"] = u.promptTokens
            span.attributes["gen_ai.usage.output_tokens"] = u.completionTokens
        }
        span.attributes["sluice.cache"] = values.cacheStatus
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

/// What a stream has shown so far: when its first token came, its usage, how much text it sent
/// (to estimate usage when the stream ended before reporting it), and its text when the audit
/// log keeps bodies.
package final class StreamWatch: Sendable {
    package struct State {
        var sawFirstToken = false
        var outputBytes = 0
        var usage: Usage?
        var finishReason: String?
        /// Events that carried output, kept (not decoded) for the audit log's copy of the answer.
        var textEvents: [ChatStreamEvent] = []
    }

    private let state = Mutex(State())
    package let startedAt: ContinuousClock.Instant
    package let keepsText: Bool

    package init(startedAt: ContinuousClock.Instant, keepsText: Bool = false) {
        self.startedAt = startedAt
        self.keepsText = keepsText
    }

    package func observe(_ event: ChatStreamEvent, trace: RequestTrace) {
        let summary = event.summary
        let bytes = summary.outputBytes
        let finish = summary.finishReason
        let keep = keepsText && bytes > 0
        let first = state.withLock { s -> Bool in
            s.outputBytes += bytes
            // Kept as they are (a reference, no copy): decoding waits until the stream is over.
            if keep { s.textEvents.append(event) }
            if let u = summary.usage { s.usage = u }
            if let finish { s.finishReason = finish }
            if bytes > 0 && !s.sawFirstToken {
                s.sawFirstToken = true
                return true
            }
            return false
        }
        if first {
            let ttft = ContinuousClock.now - startedAt
            trace.withValues { $0.timeToFirstToken = ttft }
        }
    }

    /// Moves usage into the trace: the upstream's, or an estimate if it never said.
    package func settle(trace: RequestTrace, request: ChatCompletionRequest) {
        let s = state.withLock { $0 }
        let usage = s.usage ?? Usage(promptTokens: TokenEstimator.promptTokens(of: request), completionTokens: (s.outputBytes + 3) / 4)
        trace.withValues {
            $0.usage = usage
            $0.finishReason = s.finishReason
            if keepsText { $0.responseEvents = s.textEvents }
        }
    }
}

import Logging
import SluiceCore

/// Writes what one request did: a structured log line at info, an audit-log row, and its metrics.
package struct RequestRecorder: Sendable {
    package let sink: any RequestRecordSink
    package var metrics: RequestMetrics?
    /// The alert rules' window of recent requests.
    package var recent: RecentRequests?

    package init(sink: any RequestRecordSink, metrics: RequestMetrics? = nil, recent: RecentRequests? = nil) {
        self.sink = sink
        self.metrics = metrics
        self.recent = recent
    }

    package func finish(_ context: InferenceContext, outcome: StreamOutcome) {
        let values = context.trace.values
        let latency = context.elapsed.milliseconds
        var status = 200
        var errorCode: String?
        switch outcome {
        case .finished: break
        case .failed(let error):
            let e = (error as? SluiceError) ?? SluiceError(.internalError, "\(error)")
            status = e.httpStatus
            errorCode = e.code.wireValue
        case .cancelled:
            status = 499  // client closed request
            errorCode = "client_disconnected"
        }
        // A cache hit used no tokens and cost nothing: what it saved is in `tokens_saved`.
        let servedFromCache = values.cacheStatus == "hit" || values.cacheStatus == "semantic-hit"
        let usage = servedFromCache ? nil : values.usage
        let cost = usage.flatMap { u in values.price.map { $0.cost(of: u) } } ?? 0
        context.trace.withValues {
            $0.costUSD = cost
            if servedFromCache { $0.usage = nil }
        }
        context.trace.settle()
        let record = RequestRecord(
            id: context.requestID, time: context.receivedAtUnix, endpoint: context.endpoint, keyID: values.keyID,
            modelRequested: values.modelRequested, deployment: values.deployment, status: status, errorCode: errorCode,
            latencyMs: latency, ttftMs: values.timeToFirstToken?.milliseconds, tokensIn: usage?.promptTokens ?? 0,
            tokensOut: usage?.completionTokens ?? 0, costUSD: cost, cacheStatus: values.cacheStatus, stream: values.stream,
            attempts: values.attempts.count, teamID: values.teamID,
            details: RequestDetails(
                attempts: values.attempts, guardrails: values.guardrailEvents, guardrailPolicy: values.guardrailPolicy,
                routingScore: values.routingScore, cacheSimilarity: values.cacheSimilarity, tokensSaved: values.tokensSaved,
                traceID: values.traceID))
        var withBodies = record
        if let messages = values.requestMessages {
            withBodies.captured = CapturedExchange(messages: messages, result: values.responseResult, events: values.responseEvents ?? [])
        }
        sink.submit(withBodies)
        metrics?.record(record)
        recent?.add(record)
        if context.logger.logLevel <= .info {
            // In key order, so the line handler need not sort them.
            var fields: [(key: String, value: String)] = []
            fields.reserveCapacity(14)
            fields.append(("cache", values.cacheStatus))
            fields.append(("cost_usd", String(cost)))
            if let d = values.deployment { fields.append(("deployment", d)) }
            fields.append(("endpoint", context.endpoint))
            if let errorCode { fields.append(("error_code", errorCode)) }
            if !values.keyID.isEmpty { fields.append(("key_id", values.keyID)) }
            fields.append(("latency_ms", format(latency)))
            fields.append(("model", values.modelRequested))
            fields.append(("status", String(status)))
            fields.append(("stream", values.stream ? "true" : "false"))
            fields.append(("tokens_in", String(record.tokensIn)))
            fields.append(("tokens_out", String(record.tokensOut)))
            if let traceID = values.traceID { fields.append(("trace_id", traceID)) }
            if let t = record.ttftMs { fields.append(("ttft_ms", format(t))) }
            Self.log(fields, to: context.logger)
        }
    }

    /// The request line: straight to `LineLogHandler` when that is the handler (as in `sluice
    /// serve`), else through swift-log with the fields as metadata.
    package static func log(_ sortedFields: [(key: String, value: String)], to logger: Logger) {
        if let lines = logger.handler as? LineLogHandler {
            lines.log(level: .info, message: "request", sortedFields: sortedFields)
        } else {
            var metadata: Logger.Metadata = [:]
            for (key, value) in sortedFields { metadata[key] = .string(value) }
            logger.info("request", metadata: metadata)
        }
    }

    private func format(_ ms: Double) -> String {
        let rounded = (ms * 100).rounded() / 100
        return String(rounded)
    }
}

/// A sink that keeps nothing: `store.audit_log.enabled: false`.
package struct DiscardingRecordSink: RequestRecordSink {
    package init() {}

    package func submit(_ record: RequestRecord) {}
}

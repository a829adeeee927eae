import Logging
import SluiceCore

/// Writes what one request did: a structured log line at info, an audit-log row, and its metrics.
struct RequestRecorder: Sendable {
    let sink: any RequestRecordSink
    var metrics: RequestMetrics?
    /// The alert rules' window of recent requests.
    var recent: RecentRequests?

    func finish(_ context: InferenceContext, outcome: StreamOutcome) {
        let values = context.trace.values
        let latency = context.elapsed.milliseconds
        var status = 200
        var errorCode: String?
        switch outcome {
        case .finished: break
        case .failed(let error):
            let e = (error as? SluiceError) ?? SluiceError(.internalError, "\(error)")
            status = e.httpStatus
            errorCode = e.code.rawValue
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
            var metadata: Logger.Metadata = [
                "endpoint": .string(context.endpoint),
                "model": .string(values.modelRequested),
                "status": .string(String(status)),
                "latency_ms": .string(format(latency)),
                "tokens_in": .string(String(record.tokensIn)),
                "tokens_out": .string(String(record.tokensOut)),
                "cost_usd": .string(String(cost)),
                "stream": .string(values.stream ? "true" : "false"),
                "cache": .string(values.cacheStatus),
            ]
            if let d = values.deployment { metadata["deployment"] = .string(d) }
            if !values.keyID.isEmpty { metadata["key_id"] = .string(values.keyID) }
            if let t = record.ttftMs { metadata["ttft_ms"] = .string(format(t)) }
            if let errorCode { metadata["error_code"] = .string(errorCode) }
            if let traceID = values.traceID { metadata["trace_id"] = .string(traceID) }
            context.logger.info("request", metadata: metadata)
        }
    }

    private func format(_ ms: Double) -> String {
        let rounded = (ms * 100).rounded() / 100
        return String(rounded)
    }
}

/// A sink that keeps nothing: `store.audit_log.enabled: false`.
struct DiscardingRecordSink: RequestRecordSink {
    func submit(_ record: RequestRecord) {}
}

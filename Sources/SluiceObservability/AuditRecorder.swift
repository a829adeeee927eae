import Logging
import SluiceCore

/// Writes what one request did: a structured log line at info, an audit-log row, and its metrics.
package struct AuditRecorder: Sendable {
    package let sink: any AuditLogSink
    package var metrics: RequestMetrics?
    /// The alert rules' window of recent requests.
    package var recent: RecentRequests?

    package init(sink: any AuditLogSink, metrics: RequestMetrics? = nil, recent: RecentRequests? = nil) {
        self.sink = sink
        self.metrics = metrics
        self.recent = recent
    }

    /// Settles the request's ledger and records it. `model` is the name the client asked for.
    package func finish(_ context: InferenceContext, model: String, stream: Bool, outcome: StreamOutcome) {
        let settlement = context.ledger.settle()
        let facts = context.facts.snapshot
        let keyID = context.principal?.key.id ?? ""
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
        // Usage is what the upstream calls were charged: a cache hit has none (what it saved is
        // in `tokens_saved`), a schema repair's calls are each counted once.
        let usage = settlement.usage
        let cost = settlement.costUSD
        let record = AuditRecord(
            id: context.requestID, time: context.receivedAtUnix, endpoint: context.endpoint, keyID: keyID,
            modelRequested: LogfmtText.escapingControls(model), deployment: facts.route.deployment, status: status, errorCode: errorCode,
            latencyMs: latency, ttftMs: facts.answer.timeToFirstToken?.milliseconds, tokensIn: usage?.promptTokens ?? 0,
            tokensOut: usage?.completionTokens ?? 0, costUSD: cost, cacheStatus: facts.cache.status.rawValue, stream: stream,
            attempts: facts.route.attempts.count, teamID: context.principal?.team?.id ?? "",
            details: AuditDetails(
                attempts: facts.route.attempts, guardrails: facts.guardrails.events, guardrailPolicy: facts.guardrails.policy,
                routingScore: facts.route.complexityScore, cacheSimilarity: facts.cache.similarity, tokensSaved: facts.cache.tokensSaved,
                traceID: facts.traceID),
            flow: facts.flow.name, flowVersion: facts.flow.version, conversationID: facts.flow.conversation.map(LogfmtText.escapingControls),
            experiment: facts.experiment.name, variant: facts.experiment.variant)
        var withBodies = record
        if let messages = facts.bodies.messages {
            withBodies.captured = CapturedExchange(messages: messages, result: facts.bodies.result, streamText: facts.bodies.streamText)
        }
        sink.submit(withBodies)
        metrics?.record(record)
        recent?.add(record)
        if context.logger.logLevel <= .info {
            // In key order, so the line handler need not sort them.
            var fields: [(key: String, value: String)] = []
            fields.reserveCapacity(14)
            fields.append(("cache", facts.cache.status.rawValue))
            fields.append(("cost_usd", String(cost)))
            if let d = facts.route.deployment { fields.append(("deployment", d)) }
            fields.append(("endpoint", context.endpoint))
            if let errorCode { fields.append(("error_code", errorCode)) }
            if !keyID.isEmpty { fields.append(("key_id", keyID)) }
            fields.append(("latency_ms", format(latency)))
            fields.append(("model", model))
            fields.append(("status", String(status)))
            fields.append(("stream", stream ? "true" : "false"))
            fields.append(("tokens_in", String(record.tokensIn)))
            fields.append(("tokens_out", String(record.tokensOut)))
            if let traceID = facts.traceID { fields.append(("trace_id", traceID)) }
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
package struct DiscardingRecordSink: AuditLogSink {
    package init() {}

    package func submit(_ record: AuditRecord) {}
}

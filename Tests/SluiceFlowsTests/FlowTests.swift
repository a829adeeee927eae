import Foundation
import SluiceCore
import Testing
@testable import SluiceFlows

@Suite struct FlowConfigTests {
    static let base = """
        providers: { sim: { kind: simulated } }
        models:
          - { name: m, provider: sim, upstream_model: m }
        aliases:
          smart: { deployments: [m] }
        guardrails:
          policies:
            strict: { input: { pii: { action: block } } }
        """

    static func load(_ flows: String) throws -> SluiceConfig {
        try SluiceConfig.load(yaml: base + "\nflows:\n" + flows, environment: [:])
    }

    static let triage = """
          ticket-triage:
            description: Route a support ticket
            model: smart
            messages:
              - { role: system, content: "You triage tickets for {{company}}. Answer in JSON." }
              - { role: user, content: "Subject: {{subject}}\\n\\n{{body}}" }
            input: { type: object, required: [subject, body], properties: { subject: {type: string, maxLength: 20}, body: {type: string}, company: {type: string, default: Acme} } }
            output: { type: object, required: [queue, priority], properties: { queue: {enum: [billing, bug, account]}, priority: {type: integer, minimum: 1, maximum: 4} } }
            params: { temperature: 0, max_tokens: 300 }
            guardrails: strict
        """

    @Test func theDocumentedShapeLoads() throws {
        let config = try Self.load(Self.triage)
        let flow = try #require(config.flows["ticket-triage"])
        #expect(flow.model == "smart")
        #expect(flow.messages.count == 2)
        #expect(flow.params.maxTokens == 300)
        #expect(flow.guardrails == "strict")
        guard case .schema = flow.output else {
            Issue.record("expected an output schema")
            return
        }
    }

    @Test(arguments: [
        ("    bogus: 1\n", "flows.ticket-triage.bogus", "unknown key"),
        ("    model: nope\n", "flows.ticket-triage.model", "no model or alias named 'nope'"),
        ("    guardrails: lax\n", "flows.ticket-triage.guardrails", "no guardrail policy named 'lax'"),
    ])
    func mistakesAreNamedByPath(extra: String, path: String, message: String) throws {
        var yaml = Self.triage + "\n" + extra
        if extra.contains("model:") { yaml = yaml.replacingOccurrences(of: "    model: smart\n", with: "") }
        if extra.contains("guardrails:") { yaml = yaml.replacingOccurrences(of: "    guardrails: strict\n", with: "") }
        do {
            _ = try Self.load(yaml)
            Issue.record("loaded")
        } catch let error as ConfigErrors {
            #expect(error.errors.contains { $0.path == path && $0.message.contains(message) }, "\(error)")
        } catch let error as ConfigError {
            #expect(error.path == path && error.message.contains(message), "\(error)")
        }
    }

    @Test func aTemplateVariableTheInputDoesNotDeclareIsAnError() throws {
        let yaml = Self.triage.replacingOccurrences(of: "{{body}}", with: "{{body}} {{urgency}}")
        #expect(throws: ConfigErrors.self) { try Self.load(yaml) }
        do { _ = try Self.load(yaml) } catch let error as ConfigErrors {
            #expect(error.errors.map(\.path) == ["flows.ticket-triage.messages[1].content"])
            #expect(error.errors[0].message.contains("'{{urgency}}'"))
        }
    }

    @Test func mustacheNamesAreTheTopLevelOnes() {
        #expect(MustacheNames.topLevel(in: "Hi {{name}}, {{{raw}}} {{& amp }} {{! note }}{{#items}}{{title}}{{/items}}{{^empty}}x{{/empty}} {{user.email}}")
            == ["name", "raw", "amp", "items", "empty", "user"])
    }
}

@Suite struct FlowRunTests {
    static func catalog(_ flows: String = FlowConfigTests.triage, directory: String? = nil) throws -> FlowCatalog {
        var config = try FlowConfigTests.load(flows)
        config.directory = directory
        return try FlowCatalog(config: config, baseDirectory: directory)
    }

    @Test func theInputIsCheckedDefaultedAndRenderedAsText() throws {
        let flow = try Self.catalog().definition("ticket-triage")
        #expect(flow.version == 1)
        let input = try flow.resolvedInput(FlowRun(name: "ticket-triage", input: ["subject": "Refund <now>", "body": "I was charged \"twice\" & more"]))
        #expect(input["company"] == "Acme")
        let chat = try flow.chatRequest(input: input, base: nil)
        #expect(chat.model == "smart")
        #expect(chat.temperature == 0 && chat.maxTokens == 300)
        #expect(chat.messages.map(\.role) == [.system, .user])
        #expect(chat.messages[0].text == "You triage tickets for Acme. Answer in JSON.")
        // Prompts are text: nothing is HTML-escaped.
        #expect(chat.messages[1].text == "Subject: Refund <now>\n\nI was charged \"twice\" & more")
        #expect(chat.responseFormat?.type == "json_schema")
        #expect(chat.responseFormat?.jsonSchema?.schema?["required"] == ["queue", "priority"])
    }

    @Test func badInputIsA400NamingThePointerAndTheRule() throws {
        let flow = try Self.catalog().definition("ticket-triage")
        do {
            _ = try flow.resolvedInput(FlowRun(name: "ticket-triage", input: ["subject": "a subject far longer than twenty", "body": "x"]))
            Issue.record("accepted")
        } catch let error as SluiceError {
            #expect(error.httpStatus == 400)
            #expect(error.param == "input/subject")
            #expect(error.message.contains("input/subject") && error.message.contains("20"), "\(error.message)")
        }
        do {
            _ = try flow.resolvedInput(FlowRun(name: "ticket-triage", input: ["subject": "s"]))
            Issue.record("accepted")
        } catch let error as SluiceError {
            #expect(error.httpStatus == 400)
            #expect(error.message.contains("body"), "\(error.message)")
        }
        #expect(throws: SluiceError.self) { try flow.resolvedInput(FlowRun(name: "ticket-triage", input: ["not", "an", "object"])) }
    }

    @Test func plainTextInputIsParsedOrBoundToTheOneStringProperty() throws {
        let catalog = try Self.catalog(
            FlowConfigTests.triage + """

                  summarize:
                    model: m
                    messages: [{ role: user, content: "Summarize: {{text}}" }]
                    input: { type: object, required: [text], properties: { text: { type: string } } }
                """)
        let summarize = try catalog.definition("summarize")
        #expect(try summarize.resolvedInput(FlowRun(name: "summarize", input: .null, text: "some words")) == ["text": "some words"])
        let triage = try catalog.definition("ticket-triage")
        let parsed = try triage.resolvedInput(FlowRun(name: "ticket-triage", input: .null, text: #"{"subject":"s","body":"b"}"#))
        #expect(parsed["subject"] == "s" && parsed["company"] == "Acme")
        // Two string properties: plain text cannot be bound to either.
        #expect(throws: SluiceError.self) { try triage.resolvedInput(FlowRun(name: "ticket-triage", input: .null, text: "just text")) }
    }

    @Test func unknownFlowsAndVersionsAre404s() throws {
        let catalog = try Self.catalog()
        for (name, version) in [("nope", nil), ("ticket-triage", 7)] as [(String, Int?)] {
            do {
                _ = try catalog.definition(name, version: version)
                Issue.record("found \(name) \(version ?? 0)")
            } catch let error as SluiceError {
                #expect(error.httpStatus == 404)
            }
        }
    }

    @Test func aTemplateFileIsReadBesideTheConfigAndChecked() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flows-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/prompts", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "Tell {{who}} about {{topic}}".write(toFile: directory + "/prompts/tell.mustache", atomically: true, encoding: .utf8)
        let flows = """
              tell:
                model: m
                template: prompts/tell.mustache
                input: { type: object, properties: { who: { type: string }, topic: { type: string } } }
            """
        let chat = try Self.catalog(flows, directory: directory).definition("tell").chatRequest(input: ["who": "Ann", "topic": "tides"], base: nil)
        #expect(chat.messages.map(\.text) == ["Tell Ann about tides"])
        // A variable the schema does not declare, and a file that is not there.
        try "Tell {{whom}}".write(toFile: directory + "/prompts/tell.mustache", atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try Self.catalog(flows, directory: directory) }
        #expect(throws: ConfigError.self) { try Self.catalog(flows.replacingOccurrences(of: "tell.mustache", with: "gone.mustache"), directory: directory) }
    }
}

@Suite struct SLOReportTests {
    @Test func objectivesAreMetOrMissedWithTheirBudgets() {
        let slo = FlowConfig.SLO(p95Ms: 1000, successRate: 0.9, maxCostUSD: 0.002)
        // 100 runs: 95 succeeded, 3 were slower than 1000 ms, $0.10 in all.
        let stats = FlowStats(requests: 100, successes: 95, costUSD: 0.1, p50Ms: 300, p95Ms: 900, p99Ms: 1500, slowerThan: [1000: 3])
        let report = SLOReport(flow: "f", version: nil, slo: slo, stats: [("1h", stats)])
        let window = report.windows[0]
        #expect(window.requests == 100 && window.successRate == 0.95 && window.costPerRunUSD == 0.001)
        let byName = Dictionary(uniqueKeysWithValues: window.objectives.map { ($0.name, $0) })
        // p95: 3% of runs above the target, 5% allowed: 40% of the budget left.
        #expect(byName["p95_ms"]?.met == true)
        #expect(abs((byName["p95_ms"]?.errorBudgetLeft ?? 0) - 0.4) < 1e-9)
        // success: 5% failed, 10% allowed: half the budget left.
        #expect(byName["success_rate"]?.met == true)
        #expect(abs((byName["success_rate"]?.errorBudgetLeft ?? 0) - 0.5) < 1e-9)
        #expect(byName["max_cost_usd"]?.met == true && byName["max_cost_usd"]?.actual == 0.001)

        // Over budget: 80% success against 90% is twice the budget spent.
        let bad = SLOReport(flow: "f", version: 1, slo: slo, stats: [("1h", FlowStats(requests: 10, successes: 8, costUSD: 0.05, p95Ms: 2000, slowerThan: [1000: 2]))])
        let missed = Dictionary(uniqueKeysWithValues: bad.windows[0].objectives.map { ($0.name, $0) })
        #expect(missed["success_rate"]?.met == false)
        #expect(abs((missed["success_rate"]?.errorBudgetLeft ?? 0) - -1) < 1e-9)
        #expect(missed["p95_ms"]?.met == false && missed["max_cost_usd"]?.met == false)

        // No runs: nothing measured, nothing spent.
        let idle = SLOReport(flow: "f", version: nil, slo: slo, stats: [("1h", FlowStats(requests: 0, successes: 0, costUSD: 0))])
        #expect(idle.windows[0].objectives.allSatisfy { $0.met == nil && ($0.errorBudgetLeft == nil || $0.errorBudgetLeft == 1) })
    }

    @Test func percentilesAreNearestRank() {
        let values = (1...100).map(Double.init)
        #expect(FlowStats.percentile(values, 0.5) == 50)
        #expect(FlowStats.percentile(values, 0.95) == 95)
        #expect(FlowStats.percentile(values, 0.99) == 99)
        #expect(FlowStats.percentile([7], 0.99) == 7)
        #expect(FlowStats.percentile([], 0.5) == nil)
        let stats = FlowStats(runs: values.map { (200, $0, 0.0) }, thresholds: [90])
        #expect(stats.slowerThan[90] == 10)
    }

    @Test func sloBurnRulesNameAFlowAndOneOfItsObjectives() throws {
        let flows = FlowConfigTests.triage + "\n    slo: { p95_ms: 2500, success_rate: 0.99 }\n"
        func load(_ rule: String) throws -> SluiceConfig {
            try SluiceConfig.load(
                yaml: FlowConfigTests.base + "\nalerts:\n  rules:\n    - " + rule + "\nflows:\n" + flows, environment: [:])
        }
        let ok = try load("{ name: burn, kind: slo_burn, flow: ticket-triage, objective: success_rate, window_s: 3600 }")
        #expect(ok.alerts.rules.first?.shortWindow == 300)
        #expect(ok.alerts.rules.first?.burnRate == 14.4)
        for (rule, path) in [
            ("{ name: burn, kind: slo_burn, flow: nope, objective: success_rate }", "alerts.rules[0].flow"),
            ("{ name: burn, kind: slo_burn, flow: ticket-triage, objective: p99_ms }", "alerts.rules[0].objective"),
            ("{ name: burn, kind: slo_burn, flow: ticket-triage, objective: p95_ms, window_s: 60, short_window_s: 120 }", "alerts.rules[0].short_window_s"),
        ] {
            do {
                _ = try load(rule)
                Issue.record("loaded \(rule)")
            } catch let error as ConfigErrors {
                #expect(error.errors.map(\.path) == [path], "\(error)")
            }
        }
    }

    @Test func conversationKeysAreChecked() throws {
        let ok = try FlowConfigTests.load(FlowConfigTests.triage + "\n    conversation: { max_history_tokens: 3000, strategy: summarize }\n")
        #expect(ok.flows["ticket-triage"]?.conversation?.maxHistoryTokens == 3000)
        #expect(ok.flows["ticket-triage"]?.conversation?.strategy == .summarize)
        for (extra, path) in [
            ("    conversation: { strategy: shorten }", "flows.ticket-triage.conversation.strategy"),
            ("    conversation: { max_history_tokens: 0 }", "flows.ticket-triage.conversation.max_history_tokens"),
        ] {
            do {
                _ = try FlowConfigTests.load(FlowConfigTests.triage + "\n" + extra + "\n")
                Issue.record("loaded \(extra)")
            } catch let error as ConfigErrors {
                #expect(error.errors.map(\.path) == [path], "\(error)")
            } catch let error as ConfigError {
                #expect(error.path == path, "\(error)")
            }
        }
    }

    @Test func sloKeysAreChecked() throws {
        let yaml = FlowConfigTests.triage + "\n    slo: { p95_ms: 2500, success_rate: 1.5 }\n"
        do {
            _ = try FlowConfigTests.load(yaml)
            Issue.record("loaded")
        } catch let error as ConfigErrors {
            #expect(error.errors.map(\.path) == ["flows.ticket-triage.slo.success_rate"])
        }
        let ok = try FlowConfigTests.load(FlowConfigTests.triage + "\n    slo: { p95_ms: 2500, success_rate: 0.99, max_cost_usd: 0.002 }\n")
        #expect(ok.flows["ticket-triage"]?.slo?.p95Ms == 2500)
    }
}

@Suite struct UnifiedDiffTests {
    @Test func changesComeInHunksWithContext() {
        let a = (1...20).map { "line \($0)" }.joined(separator: "\n")
        var lines = (1...20).map { "line \($0)" }
        lines[4] = "line five"
        lines.insert("new line", at: 15)
        let b = lines.joined(separator: "\n")
        let diff = UnifiedDiff.make(from: a, to: b, fromName: "a", toName: "b", context: 1)
        #expect(diff == """
            --- a
            +++ b
            @@ -4,3 +4,3 @@
             line 4
            -line 5
            +line five
             line 6
            @@ -15,2 +15,3 @@
             line 15
            +new line
             line 16

            """)
        #expect(UnifiedDiff.make(from: a, to: a, fromName: "a", toName: "b") == "")
    }
}

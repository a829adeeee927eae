import Foundation

extension EvalReport {
    /// The report as one self-contained HTML page (inline CSS and SVG, no script, nothing
    /// fetched): the variants' table, quality against cost, the recommendation, the gates, the
    /// failures, and every case's outputs side by side.
    public var html: String {
        var h = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Evaluation of \(esc(flow))</title>
            <style>
            body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#1d2330}
            h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
            .muted{color:#667085}.ok{color:#0a7a3e}.bad{color:#b42318}
            table{border-collapse:collapse;width:100%;margin:8px 0}th,td{border-bottom:1px solid #e4e7ec;padding:6px 8px;text-align:left;vertical-align:top}
            th{background:#f8f9fb;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
            .card{border:1px solid #e4e7ec;border-radius:8px;padding:12px 16px;margin:12px 0;background:#fcfcfd}
            pre{white-space:pre-wrap;word-break:break-word;margin:0;font:12px/1.4 ui-monospace,Menlo,monospace;max-height:220px;overflow:auto}
            .pick{background:#ecfdf3}
            </style></head><body>
            <h1>Evaluation of flow <code>\(esc(flow))</code></h1>
            <div class="muted">Dataset \(esc(dataset)) · \(Set(results.map(\.caseID)).count) cases × \(variants.count) variants · scorers \(esc(scorers.joined(separator: ", "))) · \(esc(Self.date(startedAt))), \(String(format: "%.1f", finishedAt - startedAt)) s</div>

            """
        h += "<div class=\"card\"><b>Recommendation:</b> " + (recommendation.variant.map { "<b>\(esc($0))</b> — " } ?? "none — ") + esc(recommendation.reason) + "</div>\n"
        if !gates.isEmpty {
            h += "<div class=\"card\"><b>Gates:</b><ul>"
            for g in gates {
                h += g.failed.isEmpty
                    ? "<li class=\"ok\">\(esc(g.gate.text)): every variant passes</li>"
                    : "<li class=\"bad\">\(esc(g.gate.text)): missed by \(esc(g.failed.joined(separator: ", ")))</li>"
            }
            h += "</ul></div>\n"
        }
        for a in agreement {
            h += "<div class=\"card\"><b>\(esc(a.scorer)) agreement with itself:</b> asked \(a.runs) times about each of \(a.answers) answers, "
            h += "the same score \(String(format: "%.0f", a.agreement * 100))% of the time (mean spread \(Self.num(a.meanSpread)))</div>\n"
        }
        h += "<h2>Variants</h2><table><tr><th>variant</th><th>cases</th><th>errors</th>"
        for s in scorers { h += "<th>\(esc(s))</th>" }
        h += "<th>cost / case (USD)</th><th>total cost (USD)</th><th>p50 ms</th><th>p95 ms</th></tr>\n"
        for s in summaries {
            h += "<tr\(s.variant == recommendation.variant ? " class=\"pick\"" : "")><td>\(esc(s.variant))</td><td class=\"n\">\(s.cases)</td><td class=\"n\">\(s.errors)</td>"
            for name in scorers { h += "<td class=\"n\">\(s.means[name].map { Self.num($0) } ?? "–")</td>" }
            h += "<td class=\"n\">\(String(format: "%.6f", s.costPerCaseUSD))</td><td class=\"n\">\(String(format: "%.6f", s.costUSD))</td>"
            h += "<td class=\"n\">\(s.p50Ms.map { Self.num($0) } ?? "–")</td><td class=\"n\">\(s.p95Ms.map { Self.num($0) } ?? "–")</td></tr>\n"
        }
        h += "</table>\n"
        if let quality { h += "<h2>\(esc(quality)) against cost</h2>\n" + chart(quality: quality) }
        let failures = results.filter { $0.error != nil }
        h += "<h2>Failures (\(failures.count))</h2>\n"
        if failures.isEmpty {
            h += "<p class=\"muted\">None.</p>\n"
        } else {
            h += "<table><tr><th>case</th><th>variant</th><th>error</th></tr>"
            for f in failures { h += "<tr><td>\(esc(f.caseID))</td><td>\(esc(f.variant))</td><td><pre>\(esc(f.error ?? ""))</pre></td></tr>" }
            h += "</table>\n"
        }
        h += "<h2>Cases</h2><table><tr><th>case</th><th>input</th><th>reference</th>"
        for v in variants { h += "<th>\(esc(v))</th>" }
        h += "</tr>\n"
        var byCase: [String: [String: EvalCaseResult]] = [:]
        var order: [String] = []
        for r in results {
            if byCase[r.caseID] == nil { order.append(r.caseID) }
            byCase[r.caseID, default: [:]][r.variant] = r
        }
        for id in order {
            let row = byCase[id] ?? [:]
            let any = row.values.first
            h += "<tr><td>\(esc(id))</td><td><pre>\(esc(any?.input ?? ""))</pre></td><td><pre>\(esc(any?.reference ?? ""))</pre></td>"
            for v in variants {
                guard let r = row[v] else {
                    h += "<td class=\"muted\">not run</td>"
                    continue
                }
                if let e = r.error {
                    h += "<td class=\"bad\"><pre>\(esc(e))</pre></td>"
                    continue
                }
                let scores = r.scores.sorted { $0.key < $1.key }.map { "\(esc($0.key)) \(Self.num($0.value))" }.joined(separator: " · ")
                h += "<td><pre>\(esc(r.output))</pre><div class=\"muted\">\(scores)</div></td>"
            }
            h += "</tr>\n"
        }
        h += "</table>\n<p class=\"muted\">Written by <code>sluice eval run</code>.</p></body></html>\n"
        return h
    }

    /// Quality (y) against cost per case (x), one labelled point per variant.
    func chart(quality: String) -> String {
        let points = summaries.compactMap { s in s.means[quality].map { (s.variant, s.costPerCaseUSD, $0) } }
        guard !points.isEmpty else { return "<p class=\"muted\">No variant was scored.</p>" }
        let width = 640.0
        let height = 320.0
        let left = 70.0
        let bottom = 40.0
        let top = 20.0
        let right = 160.0
        let xs = points.map(\.1)
        let ys = points.map(\.2)
        let xMax = max(xs.max() ?? 0, 1e-9) * 1.1
        let yLo = min(ys.min() ?? 0, 0)
        let top0 = (ys.max() ?? 1) * 1.05
        // A flat or empty range still gets a readable axis.
        let yHi = top0 - yLo < 1e-6 ? yLo + 1 : top0
        func x(_ v: Double) -> Double { left + v / xMax * (width - left - right) }
        func y(_ v: Double) -> Double { height - bottom - (v - yLo) / (yHi - yLo) * (height - bottom - top) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"\(esc(quality)) against cost per case\">"
        s += "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - right)\" y2=\"\(height - bottom)\" stroke=\"#98a2b3\"/>"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"#98a2b3\"/>"
        for i in 0...4 {
            let xv = xMax * Double(i) / 4
            let yv = yLo + (yHi - yLo) * Double(i) / 4
            s += "<text x=\"\(x(xv))\" y=\"\(height - bottom + 16)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#667085\">\(String(format: "%.2g", xv))</text>"
            s += "<text x=\"\(left - 6)\" y=\"\(y(yv) + 4)\" font-size=\"11\" text-anchor=\"end\" fill=\"#667085\">\(Self.num(yv))</text>"
        }
        s += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 6)\" font-size=\"12\" text-anchor=\"middle\">cost per case (USD)</text>"
        s += "<text x=\"14\" y=\"\((top + height - bottom) / 2)\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 \((top + height - bottom) / 2))\">\(esc(quality))</text>"
        let colors = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2"]
        var labels: [(Double, Double)] = []
        for (i, p) in points.enumerated() {
            let c = colors[i % colors.count]
            s += "<circle cx=\"\(x(p.1))\" cy=\"\(y(p.2))\" r=\"6\" fill=\"\(c)\"><title>\(esc(p.0)): \(Self.num(p.2)) at $\(String(format: "%.6f", p.1))</title></circle>"
            // Labels of points that nearly coincide are stacked rather than drawn over each other.
            var ly = y(p.2) + 4
            while labels.contains(where: { abs($0.0 - x(p.1)) < 80 && abs($0.1 - ly) < 13 }) { ly += 14 }
            labels.append((x(p.1), ly))
            s += "<text x=\"\(x(p.1) + 9)\" y=\"\(ly)\" font-size=\"12\" fill=\"\(c)\">\(esc(p.0))</text>"
        }
        return s + "</svg>\n"
    }

    static func num(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e9 { return String(Int(x)) }
        return String(format: abs(x) < 0.01 ? "%.2e" : "%.3f", x)
    }

    static func date(_ t: Double) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return f.string(from: Date(timeIntervalSince1970: t))
    }
}

func esc(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(ch)
        }
    }
    return out
}

/// The dashboard's Mustache templates, compiled into the binary (one file to deploy, no
/// resource bundle). Every page extends `layout`; `{{{…}}}` is used only for server-drawn SVG.
enum DashboardTemplates {
    static let all: [String: String] = [
        "layout": layout, "login": login, "overview": overview, "models": models, "keys": keys, "requests": requests, "request": request,
        "guardrails": guardrails, "alerts": alerts, "flows": flows, "flow": flow, "quality": quality,
        "batches": batches,
    ]

    static let batches = """
        {{<layout}}{{$content}}
        <h1>Batches</h1>
        <p class="muted">Lines waiting in the queue: {{queued}}. Batches run at priority low, at most {{concurrency}} lines at once per model on each replica.</p>
        <table><tr><th>batch</th><th>owner</th><th>endpoint</th><th>created (UTC)</th><th>status</th><th>done</th><th>failed</th><th>progress</th><th>rate</th><th>ETA</th><th>files</th></tr>
        {{#batches}}<tr><td>{{id}}{{#errors}}<br><span class="bad">{{errors}}</span>{{/errors}}</td><td>{{owner}}</td><td>{{endpoint}}</td><td>{{created}}</td><td class="{{statusClass}}">{{status}}</td><td class="n">{{done}} / {{total}}</td><td class="n">{{failed}}</td><td><span class="bar"><i style="width: {{percent}}%"></i></span> {{percent}}%</td><td class="n">{{rate}}</td><td class="n">{{eta}}</td><td>{{files}}</td></tr>{{/batches}}
        {{^batches}}<tr><td colspan="11" class="muted">No batches yet: upload a file with purpose "batch" and POST /v1/batches.</td></tr>{{/batches}}
        </table>
        {{/content}}{{/layout}}
        """

    static let quality = """
        {{<layout}}{{$content}}
        <h1>Quality</h1>
        <h2>Experiments</h2>
        <table><tr><th>experiment</th><th>on</th><th>status</th><th>primary metric</th><th>variants</th><th>decision</th></tr>
        {{#experiments}}<tr><td>{{name}}</td><td>{{subject}}</td><td>{{status}}</td><td>{{primary}}</td><td>{{variants}}</td><td class="{{decisionClass}}">{{decision}}<br><span class="muted">{{reason}}</span></td></tr>{{/experiments}}
        {{^experiments}}<tr><td colspan="6" class="muted">No experiments are configured (experiments: in sluice.yaml).</td></tr>{{/experiments}}
        </table>
        <h2>Feedback and judges, last 7 days</h2>
        <table><tr><th>flow</th><th>runs</th><th>mean feedback</th><th>feedback given</th><th>judges (mean, n)</th></tr>
        {{#feedback}}<tr><td>{{flow}}</td><td class="n">{{runs}}</td><td class="n">{{feedback}}</td><td class="n">{{n}}</td><td>{{judges}}</td></tr>{{/feedback}}
        {{^feedback}}<tr><td colspan="5" class="muted">No flow runs in the last 7 days.</td></tr>{{/feedback}}
        </table>
        <h2>Evaluations</h2>
        <table><tr><th>evaluation</th><th>flow</th><th>started (UTC)</th><th>status</th><th>done</th><th>errors</th><th>recommendation</th></tr>
        {{#evals}}<tr><td><a href="/dashboard/evals/{{id}}">{{id}}</a></td><td>{{flow}}</td><td>{{created}}</td><td class="{{statusClass}}">{{status}}</td><td class="n">{{progress}}</td><td class="n">{{errors}}</td><td>{{recommendation}}</td></tr>{{/evals}}
        {{^evals}}<tr><td colspan="7" class="muted">None yet: POST /admin/evals, or sluice eval run.</td></tr>{{/evals}}
        </table>
        {{/content}}{{/layout}}
        """

    static let flows = """
        {{<layout}}{{$content}}
        <h1>Flows</h1>
        <table><tr><th>flow</th><th>active version</th><th>model</th><th>output</th><th>runs, 24 h</th><th>success</th><th>p95</th><th>cost per run</th><th>objectives, 24 h</th></tr>
        {{#flows}}<tr><td><a href="/dashboard/flows/{{name}}">{{name}}</a><br><span class="muted">{{description}}</span></td><td class="n">{{version}}</td><td>{{model}}</td><td>{{output}}</td><td class="n">{{runs}}</td><td class="n">{{success}}</td><td class="n">{{p95}}</td><td class="n">{{cost}}</td><td class="{{sloClass}}">{{slo}}</td></tr>{{/flows}}
        {{^flows}}<tr><td colspan="9" class="muted">No flows are configured (flows: in sluice.yaml).</td></tr>{{/flows}}
        </table>
        {{/content}}{{/layout}}
        """

    static let flow = """
        {{<layout}}{{$content}}
        <h1>Flow {{name}} <span class="muted">— version {{active}} active</span></h1>
        <p class="muted">{{description}}</p>
        <h2>Runs</h2>
        <table><tr><th>window</th><th>runs</th><th>success</th><th>p50</th><th>p95</th><th>p99</th><th>cost per run</th></tr>
        {{#summary}}<tr><td>{{window}}</td><td class="n">{{runs}}</td><td class="n">{{success}}</td><td class="n">{{p50}}</td><td class="n">{{p95}}</td><td class="n">{{p99}}</td><td class="n">{{cost}}</td></tr>{{/summary}}
        </table>
        <h2>Objectives</h2>
        <table><tr><th>window</th><th>objective</th><th>target</th><th>measured</th><th>status</th><th>error budget left</th></tr>
        {{#objectives}}<tr><td>{{window}}</td><td>{{name}}</td><td class="n">{{target}}</td><td class="n">{{actual}}</td><td class="{{metClass}}">{{met}}</td><td class="n">{{budget}}</td></tr>{{/objectives}}
        {{^objectives}}<tr><td colspan="6" class="muted">This flow declares no objectives (slo:).</td></tr>{{/objectives}}
        </table>
        <h2>Runs over the last day</h2><div class="chart">{{{requestsChart}}}</div>
        <h2>Latency p95 (ms)</h2><div class="chart">{{{latencyChart}}}</div>
        <h2>Failed runs</h2><div class="chart">{{{errorsChart}}}</div>
        <h2>Cost (USD)</h2><div class="chart">{{{costChart}}}</div>
        <h2>Versions</h2>
        <table><tr><th>version</th><th></th><th>model</th><th>added</th><th>change</th></tr>
        {{#versions}}<tr><td class="n">{{version}}</td><td class="good">{{active}}</td><td>{{model}}</td><td>{{created}}</td><td>{{#diff}}<a href="{{diff}}">diff from the one before</a>{{/diff}}</td></tr>{{/versions}}
        </table>
        <h2>Recent runs</h2>
        <table><tr><th>request</th><th>time (UTC)</th><th>version</th><th>status</th><th>latency</th><th>cost</th></tr>
        {{#recent}}<tr><td><a href="{{link}}">{{id}}</a></td><td>{{time}}</td><td class="n">{{version}}</td><td class="{{statusClass}}">{{status}}</td><td class="n">{{latency}}</td><td class="n">{{cost}}</td></tr>{{/recent}}
        {{^recent}}<tr><td colspan="6" class="muted">No runs in the last day.</td></tr>{{/recent}}
        </table>
        <h2>Active definition</h2><pre>{{definition}}</pre>
        {{/content}}{{/layout}}
        """

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Sluice</title><link rel="icon" href="data:,">
        <style>
        body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f8fafc;color:#0f172a}
        header{background:#0f172a;color:#e2e8f0;padding:10px 20px;display:flex;gap:18px;align-items:center;flex-wrap:wrap}
        header a{color:#cbd5e1;text-decoration:none}header a.on{color:#fff;font-weight:600}header .brand{font-weight:700;color:#fff;margin-right:10px}
        header form{margin-left:auto}main{padding:18px 20px;max-width:1200px}
        h1{font-size:20px;margin:4px 0 14px}h2{font-size:15px;margin:22px 0 8px}
        .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
        .card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px}.card .v{font-size:20px;font-weight:600}.card .k{color:#64748b;font-size:12px}
        table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e2e8f0}th,td{padding:6px 8px;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:top}
        th{background:#f1f5f9;font-weight:600;font-size:12px;color:#334155}td.n{text-align:right;font-variant-numeric:tabular-nums}
        .chart{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:8px;margin-bottom:10px}
        .bad{color:#b91c1c;font-weight:600}.good{color:#15803d}.muted{color:#64748b}.pill{display:inline-block;padding:1px 7px;border-radius:9px;background:#e2e8f0;font-size:12px}
        .bar{background:#e2e8f0;border-radius:4px;height:8px;width:120px;display:inline-block;vertical-align:middle}.bar i{display:block;height:8px;border-radius:4px;background:#3b82f6}
        form.filters{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:10px}input,select,button{font:inherit;padding:4px 8px}
        pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #e2e8f0;padding:8px;border-radius:6px}
        .error{background:#fee2e2;border:1px solid #fca5a5;padding:8px 10px;border-radius:6px}
        </style></head><body>
        <header><span class="brand">Sluice</span>
        {{#nav}}<a href="{{href}}" class="{{#on}}on{{/on}}">{{label}}</a>{{/nav}}
        {{#signedIn}}<form method="post" action="/dashboard/logout"><span class="muted">{{who}} ({{role}})</span> <button type="submit">Sign out</button></form>{{/signedIn}}
        </header><main>{{$content}}{{/content}}</main></body></html>
        """

    static let login = """
        {{<layout}}{{$content}}
        <h1>Sign in</h1>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        <form method="post" action="/dashboard/login">
        <p><label>API key (an admin or viewer key)<br><input type="password" name="key" size="60" autocomplete="off" required></label></p>
        <p><button type="submit">Sign in</button></p></form>
        <p class="muted">The key is kept in an HttpOnly, SameSite=Strict session cookie until you sign out.</p>
        {{/content}}{{/layout}}
        """

    static let overview = """
        {{<layout}}{{$content}}
        <h1>Overview <span class="muted">— last {{rangeLabel}}</span></h1>
        <p>{{#ranges}}<a href="/dashboard?range={{value}}" class="pill">{{label}}</a> {{/ranges}}</p>
        {{#truncated}}<p class="muted">Figures cover the newest {{rows}} requests of the window.</p>{{/truncated}}
        <div class="cards">
        {{#cards}}<div class="card"><div class="k">{{label}}</div><div class="v">{{value}}</div></div>{{/cards}}
        </div>
        <h2>Requests</h2><div class="chart">{{{requestsChart}}}</div>
        <h2>Latency p95 (ms)</h2><div class="chart">{{{latencyChart}}}</div>
        <h2>Errors (5xx and 429)</h2><div class="chart">{{{errorsChart}}}</div>
        {{/content}}{{/layout}}
        """

    static let models = """
        {{<layout}}{{$content}}
        <h1>Models and deployments</h1>
        <h2>Models asked for, last hour</h2>
        <table><tr><th>model</th><th>requests</th><th>errors</th><th>p50 ms</th><th>p95 ms</th><th>tokens in</th><th>tokens out</th><th>cost USD</th></tr>
        {{#models}}<tr><td>{{model}}</td><td class="n">{{requests}}</td><td class="n">{{errorRate}}</td><td class="n">{{p50}}</td><td class="n">{{p95}}</td><td class="n">{{tokensIn}}</td><td class="n">{{tokensOut}}</td><td class="n">{{cost}}</td></tr>{{/models}}
        {{^models}}<tr><td colspan="8" class="muted">No requests in the last hour.</td></tr>{{/models}}
        </table>
        <h2>Deployments (this replica)</h2>
        <table><tr><th>deployment</th><th>circuit breaker</th><th>in flight</th><th>latency (moving avg, ms)</th><th>TTFT (moving avg, ms)</th></tr>
        {{#deployments}}<tr><td>{{name}}</td><td class="{{breakerClass}}">{{breaker}}</td><td class="n">{{inFlight}}</td><td class="n">{{latency}}</td><td class="n">{{ttft}}</td></tr>{{/deployments}}
        </table>
        {{/content}}{{/layout}}
        """

    static let keys = """
        {{<layout}}{{$content}}
        <h1>Keys and teams</h1>
        <h2>Teams</h2>
        <table><tr><th>team</th><th>rpm</th><th>tpm</th><th>spent today / budget</th><th>spent this month / budget</th></tr>
        {{#teams}}<tr><td>{{name}}</td><td class="n">{{rpm}}</td><td class="n">{{tpm}}</td><td>{{{day}}}</td><td>{{{month}}}</td></tr>{{/teams}}
        {{^teams}}<tr><td colspan="5" class="muted">No teams.</td></tr>{{/teams}}
        </table>
        <h2>Keys</h2>
        <table><tr><th>key</th><th>id</th><th>team</th><th>role</th><th>state</th><th>rpm</th><th>tpm</th><th>spent today / budget</th><th>spent this month / budget</th></tr>
        {{#keys}}<tr><td>{{name}}</td><td class="muted">{{id}}</td><td>{{team}}</td><td>{{role}}</td><td class="{{stateClass}}">{{state}}</td><td class="n">{{rpm}}</td><td class="n">{{tpm}}</td><td>{{{day}}}</td><td>{{{month}}}</td></tr>{{/keys}}
        </table>
        {{/content}}{{/layout}}
        """

    static let requests = """
        {{<layout}}{{$content}}
        <h1>Audit log</h1>
        <form class="filters" method="get" action="/dashboard/requests">
        <input name="model" placeholder="model" value="{{model}}"><input name="key" placeholder="key id" value="{{key}}">
        <input name="status" placeholder="status (429, 5xx)" value="{{status}}" size="12"><input name="q" placeholder="search" value="{{q}}">
        <button type="submit">Filter</button></form>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        <table><tr><th>time (UTC)</th><th>id</th><th>model</th><th>deployment</th><th>status</th><th>ms</th><th>tokens</th><th>cost USD</th><th>cache</th></tr>
        {{#rows}}<tr><td>{{time}}</td><td><a href="/dashboard/requests/{{id}}">{{id}}</a></td><td>{{model}}</td><td>{{deployment}}</td><td class="{{statusClass}}">{{status}}</td><td class="n">{{latency}}</td><td class="n">{{tokens}}</td><td class="n">{{cost}}</td><td>{{cache}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="9" class="muted">No requests match.</td></tr>{{/rows}}
        </table>
        {{#next}}<p><a href="{{next}}">Older →</a></p>{{/next}}
        {{/content}}{{/layout}}
        """

    static let request = """
        {{<layout}}{{$content}}
        <h1>Request {{id}}</h1>
        <table>{{#fields}}<tr><th>{{name}}</th><td>{{value}}</td></tr>{{/fields}}</table>
        <h2>Upstream attempts</h2>
        <table><tr><th>deployment</th><th>status</th><th>error</th><th>ms</th></tr>
        {{#attempts}}<tr><td>{{deployment}}</td><td>{{status}}</td><td>{{error}}</td><td class="n">{{ms}}</td></tr>{{/attempts}}
        {{^attempts}}<tr><td colspan="4" class="muted">None (refused, or served from the cache).</td></tr>{{/attempts}}</table>
        <h2>Guardrail events</h2>
        <table><tr><th>direction</th><th>check</th><th>type</th><th>message/choice</th><th>span</th><th>score</th><th>action</th></tr>
        {{#events}}<tr><td>{{direction}}</td><td>{{check}}</td><td>{{type}}</td><td class="n">{{index}}</td><td>{{start}}–{{end}}</td><td class="n">{{score}}</td><td>{{action}}</td></tr>{{/events}}
        {{^events}}<tr><td colspan="7" class="muted">None.</td></tr>{{/events}}</table>
        {{#requestBody}}<h2>Messages</h2><pre>{{requestBody}}</pre>{{/requestBody}}
        {{#responseBody}}<h2>Answer</h2><pre>{{responseBody}}</pre>{{/responseBody}}
        {{/content}}{{/layout}}
        """

    static let guardrails = """
        {{<layout}}{{$content}}
        <h1>Guardrail events <span class="muted">— newest {{scanned}} requests</span></h1>
        <h2>By check and action</h2>
        <table><tr><th>direction</th><th>check</th><th>type</th><th>action</th><th>count</th></tr>
        {{#counts}}<tr><td>{{direction}}</td><td>{{check}}</td><td>{{type}}</td><td>{{action}}</td><td class="n">{{count}}</td></tr>{{/counts}}
        {{^counts}}<tr><td colspan="5" class="muted">No guardrail events.</td></tr>{{/counts}}</table>
        <h2>Latest</h2>
        <table><tr><th>time (UTC)</th><th>request</th><th>direction</th><th>check</th><th>type</th><th>score</th><th>action</th></tr>
        {{#latest}}<tr><td>{{time}}</td><td><a href="/dashboard/requests/{{id}}">{{id}}</a></td><td>{{direction}}</td><td>{{check}}</td><td>{{type}}</td><td class="n">{{score}}</td><td>{{action}}</td></tr>{{/latest}}
        </table>
        {{/content}}{{/layout}}
        """

    static let alerts = """
        {{<layout}}{{$content}}
        <h1>Alerts</h1>
        <table><tr><th>rule</th><th>kind</th><th>status</th><th>value</th><th>threshold</th><th>since (UTC)</th><th>message</th></tr>
        {{#alerts}}<tr><td>{{name}}</td><td>{{kind}}</td><td class="{{statusClass}}">{{status}}</td><td class="n">{{value}}</td><td class="n">{{threshold}}</td><td>{{since}}</td><td>{{message}}</td></tr>{{/alerts}}
        {{^alerts}}<tr><td colspan="7" class="muted">No alert rules are configured (see <code>alerts:</code> in sluice.yaml).</td></tr>{{/alerts}}
        </table>
        {{/content}}{{/layout}}
        """
}

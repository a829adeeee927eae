#!/usr/bin/env python3
"""Writes deploy/grafana/sluice.json: a Grafana dashboard over Sluice's /metrics.

Run after changing a metric: python3 scripts/grafana-dashboard.py > deploy/grafana/sluice.json
"""
import json

DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(pid, title, exprs, x, y, w=12, h=8, unit="short", kind="timeseries", legend=None):
    targets = []
    for i, e in enumerate(exprs):
        expr, fmt = e if isinstance(e, tuple) else (e, None)
        t = {"datasource": DS, "expr": expr, "refId": chr(65 + i)}
        if fmt:
            t["legendFormat"] = fmt
        targets.append(t)
    return {
        "id": pid, "type": kind, "title": title, "datasource": DS, "targets": targets,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
    }


def q(h, metric, by="model"):
    return f'histogram_quantile({h}, sum by (le, {by}) (rate({metric}_bucket{{model=~"$model"}}[$__rate_interval])))'


panels = [
    panel(1, "Requests/s by status", [('sum by (status) (rate(sluice_requests_total{model=~"$model"}[$__rate_interval]))', "{{status}}")], 0, 0, unit="reqps"),
    panel(2, "Error rate", [('sum(rate(sluice_requests_total{model=~"$model",status=~"5..|429"}[$__rate_interval])) / '
                             'sum(rate(sluice_requests_total{model=~"$model"}[$__rate_interval]))', "5xx + 429")], 12, 0, unit="percentunit"),
    panel(3, "Latency p50 / p95 / p99", [(q(0.5, "gen_ai_server_request_duration_seconds"), "p50 {{model}}"),
                                        (q(0.95, "gen_ai_server_request_duration_seconds"), "p95 {{model}}"),
                                        (q(0.99, "gen_ai_server_request_duration_seconds"), "p99 {{model}}")], 0, 8, unit="s"),
    panel(4, "Time to first token p50 / p95", [(q(0.5, "gen_ai_server_time_to_first_token_seconds"), "p50 {{model}}"),
                                              (q(0.95, "gen_ai_server_time_to_first_token_seconds"), "p95 {{model}}")], 12, 8, unit="s"),
    panel(5, "Tokens/s", [('sum by (gen_ai_token_type) (rate(gen_ai_client_token_usage_sum{model=~"$model"}[$__rate_interval]))', "{{gen_ai_token_type}}")], 0, 16),
    panel(6, "Cost (USD/hour) by model", [('sum by (model) (rate(sluice_cost_usd_total{model=~"$model"}[$__rate_interval])) * 3600', "{{model}}")], 12, 16, unit="currencyUSD"),
    panel(7, "Cache hit rate", [('sum(rate(sluice_cache_lookups_total{result=~"hit|semantic-hit"}[$__rate_interval])) / '
                                'sum(rate(sluice_cache_lookups_total[$__rate_interval]))', "hits")], 0, 24, unit="percentunit"),
    panel(8, "Guardrail actions/s", [('sum by (check, action) (rate(sluice_guardrail_actions_total[$__rate_interval]))', "{{check}} {{action}}")], 12, 24),
    panel(9, "Circuit breakers (0 closed, 1 half-open, 2 open)", [("max by (deployment) (sluice_circuit_breaker_state)", "{{deployment}}")], 0, 32),
    panel(10, "Fallback attempts/s and admission refusals/s",
          [('sum by (deployment) (rate(sluice_fallback_attempts_total[$__rate_interval]))', "attempts {{deployment}}"),
           ('sum by (code) (rate(sluice_rate_limit_rejections_total[$__rate_interval]))', "refused {{code}}")], 12, 32),
    panel(11, "In flight and queued", [("sum(sluice_requests_in_flight)", "in flight"), ("sum by (deployment) (sluice_queue_depth)", "queued {{deployment}}")], 0, 40),
    panel(12, "Audit log", [("sum(sluice_audit_log_backlog)", "backlog"), ("sum(rate(sluice_audit_log_dropped_total[$__rate_interval]))", "dropped/s"),
                            ("sum(rate(sluice_audit_log_written_total[$__rate_interval]))", "written/s")], 12, 40),
]

dashboard = {
    "title": "Sluice", "uid": "sluice-gateway", "schemaVersion": 39, "version": 1, "editable": True,
    "time": {"from": "now-1h", "to": "now"}, "refresh": "30s", "tags": ["sluice", "llm"],
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        {"name": "model", "type": "query", "datasource": DS, "label": "Model", "includeAll": True, "multi": True, "allValue": ".*",
         "query": {"query": "label_values(sluice_requests_total, model)", "refId": "models"}, "refresh": 2, "current": {"text": "All", "value": "$__all"}},
    ]},
    "panels": panels,
}
print(json.dumps(dashboard, indent=2))

"""The dashboard in a real browser: headless Chromium (Debian's) signs in, loads every page with
traffic behind it, and fails on any console error, failed resource or error response. Screenshots
go to $SLUICE_SCREENSHOTS (default .build/screenshots)."""
import json
import os
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("SLUICE_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("SLUICE_SCREENSHOTS", Path(__file__).resolve().parents[2] / ".build" / "screenshots"))
PAGES = ["/dashboard", "/dashboard?range=24h", "/dashboard/models", "/dashboard/flows", "/dashboard/flows/triage", "/dashboard/keys",
         "/dashboard/requests", "/dashboard/guardrails", "/dashboard/quality", "/dashboard/alerts"]


def call(sluice, path, body, key):
    request = urllib.request.Request(
        f"http://127.0.0.1:{sluice.port}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw or b"{}")
    except ValueError:  # a stream's events
        return status, {"events": raw.decode()}


def traffic(sluice):
    """Requests of every kind for the pages to show; answers (viewer key, app key)."""
    _, team = call(sluice, "/admin/teams", {"name": "search", "budget_usd_day": 1.0}, sluice.admin_key)
    _, app = call(sluice, "/admin/keys", {"name": "search-svc", "team": "search", "rpm": 600}, sluice.admin_key)
    _, viewer = call(sluice, "/admin/keys", {"name": "ops", "role": "viewer"}, sluice.admin_key)
    for i in range(8):
        status, _ = call(sluice, "/v1/chat/completions",
                         {"model": "sim-small", "messages": [{"role": "user", "content": f"question {i} from ann@example.com"}]}, app["key"])
        assert status == 200
    call(sluice, "/v1/chat/completions", {"model": "sim-small", "stream": True, "messages": [{"role": "user", "content": "stream"}]}, app["key"])
    status, _ = call(sluice, "/v1/chat/completions", {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}, app["key"])
    assert status == 404
    return viewer["key"], app["key"]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed (make test-e2e installs it)")
def submit(page):
    """Submits the sign-in form and waits until the page it leads to has loaded.

    Checking `page.url` alone is not enough: it changes when the response starts, and a
    `goto` issued before the load ends aborts that page (net::ERR_ABORTED)."""
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_every_dashboard_page_loads_cleanly_in_chromium(sluice):
    viewer, app = traffic(sluice)
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{sluice.port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            problems = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
            page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)

            # Signed out, every page leads to the sign-in form; an app key is refused there.
            page.goto(base + "/dashboard/models")
            assert page.url.endswith("/dashboard/login")
            page.fill("input[name=key]", app)
            submit(page)
            assert "may not use the dashboard" in page.content()
            problems.clear()  # the refusal is a 403 on purpose

            page.fill("input[name=key]", sluice.admin_key)
            submit(page)
            assert page.url == base + "/dashboard"
            cookie = next(c for c in context.cookies() if c["name"] == "sluice_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

            for path in PAGES:
                response = page.goto(base + path)
                assert response.ok, f"{path}: {response.status}"
                assert "Sluice" in page.title()
                page.screenshot(path=str(SHOTS / ("dashboard" + path.replace("/dashboard", "").replace("/", "-").replace("?", "-").replace("=", "-") + ".png")), full_page=True)
            # The overview counts the traffic; the request log links to a detail page with its attempts.
            page.goto(base + "/dashboard")
            assert ">10<" in page.content(), "ten requests in the last hour"
            page.goto(base + "/dashboard/requests?model=sim-small&q=question%207")
            with page.expect_navigation():
                page.click("table a >> nth=0")
            assert "/dashboard/requests/" in page.url
            assert "Upstream attempts" in page.content() and "sim-small" in page.content()
            # Bodies are kept redacted: the e-mail address is a placeholder.
            assert "[EMAIL_1]" in page.content() and "ann@example.com" not in page.content()
            page.screenshot(path=str(SHOTS / "dashboard-request.png"), full_page=True)
            page.goto(base + "/dashboard/keys")
            assert "search-svc" in page.content() and "ops" in page.content()

            # A viewer may read every page too; signing out ends the session.
            with page.expect_navigation():
                page.click("text=Sign out")
            assert page.url == base + "/dashboard/login"
            page.fill("input[name=key]", viewer)
            submit(page)
            assert page.url == base + "/dashboard"
            for path in PAGES:
                assert page.goto(base + path).ok, path
            assert problems == [], "\n".join(problems)
        finally:
            browser.close()

"""The demo's web console in a real headless Chromium, as the admin and as the tenant (`test_demo`).

Signed in with the tenant's token file (`tenant-ns-003`, granted `kubetally-cost-viewer` in ns-003
only), the page holds no namespace but ns-003: not in the table, not in the chart's series, not in
the lists, not anywhere in the page's HTML or the data behind it. Signed in with the admin's, it
shows all 20 namespaces and both demo CostReports, Ready. No call is made before signing in, and
the console stays free of errors. Screenshots: `$KUBETALLY_ARTIFACTS/console/demo-*.png`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.browser.test_console import painted

ROOT = Path(__file__).resolve().parents[2]


def _signed_in(page: Page, url: str, token_file: str) -> None:
    page.goto(url + "?view=cost&window=7d&step=1d&aggregate=namespace&idle=true")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("kubetally.cost") is None  # nothing asked before a token is given
    page.fill("#token", Path(token_file).read_text().strip())
    page.click("#signin button[type=submit]")
    page.wait_for_selector("body[data-state=ready] #cost:not([hidden])")


def _everything_on(page: Page) -> str:
    """The page's HTML and the data behind its charts and lists, as one text."""
    data = page.evaluate("JSON.stringify({cost: kubetally.cost, chart: kubetally.chart.getOption().series})")
    return page.content() + str(data)


def check_console(output: str, namespaces: set[str], tenant_ns: str) -> None:
    url = re.search(r"web console:\s+(\S+)", output)
    assert url, output
    admin_token = re.search(r"admin token:\s+(\S+)", output)
    tenant_token = re.search(r"tenant-ns-003 token:\s+(\S+)", output)
    assert admin_token, output
    assert tenant_token, output
    folder = Path(os.environ.get("KUBETALLY_ARTIFACTS", ROOT / "build" / "artifacts")) / "console"
    folder.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                             headless=True, args=["--no-sandbox"])
        try:
            for who, token in (("tenant", tenant_token.group(1)), ("admin", admin_token.group(1))):
                context = browser.new_context(viewport={"width": 1366, "height": 768}, ignore_https_errors=True)
                page = context.new_page()
                page.set_default_timeout(30_000)
                page.on("console", lambda m, who=who: errors.append(f"{who}: {m.text}") if m.type == "error" else None)
                page.on("pageerror", lambda e, who=who: errors.append(f"{who}: {e}"))
                _signed_in(page, url.group(1), token)
                rows = page.eval_on_selector_all("#rows tbody td[data-key=name]", "tds => tds.map(t => t.textContent)")
                assert painted(page) > 20_000, who  # drawn, also when the view was hidden behind the sign-in
                page.screenshot(path=str(folder / f"demo-{who}-cost.png"), full_page=True)
                if who == "tenant":
                    assert set(rows) - {"__idle__"} == {tenant_ns}, rows
                    others = {ns for ns in namespaces - {tenant_ns} if re.search(rf"\b{ns}\b", _everything_on(page))}
                    assert not others, f"the tenant's page names {sorted(others)}"
                else:
                    assert set(rows) - {"__idle__"} == namespaces, rows
                page.click("header nav a[data-view=reports]")
                page.wait_for_selector("body[data-state=ready] #objects:not([hidden])")
                reports = page.evaluate("kubetally.objects.map(o => [o.metadata.namespace, o.metadata.name])")
                ready = page.eval_on_selector_all("#object-rows tbody tr", "trs => trs.map(tr => tr.cells[2].textContent)")
                page.screenshot(path=str(folder / f"demo-{who}-reports.png"), full_page=True)
                expected = [[tenant_ns, "my-controllers"]] if who == "tenant" else \
                    [["kubetally-system", "namespaces-7d"], [tenant_ns, "my-controllers"]]
                assert reports == expected, reports
                assert all(text.startswith("True") for text in ready), ready
                if who == "tenant":
                    others = {ns for ns in namespaces - {tenant_ns} if re.search(rf"\b{ns}\b", page.content())}
                    assert not others, others
                    assert "kubetally-system" not in json.dumps(page.evaluate("kubetally.objects"))
                page.click("header nav a[data-view=budgets]")
                page.wait_for_selector("body[data-state=ready] #objects:not([hidden])")
                budgets = page.evaluate("kubetally.objects.map(o => [o.metadata.namespace, o.metadata.name])")
                assert budgets == ([] if who == "tenant" else [["kubetally-system", "platform-weekly"]]), budgets
                page.click("header nav a[data-view=weights]")
                page.wait_for_selector("body[data-state=ready] #objects:not([hidden])")
                assert page.evaluate("kubetally.objects.map(o => o.metadata.name)") == ["default"]
                context.close()
        finally:
            browser.close()
    assert errors == [], errors

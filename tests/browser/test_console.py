"""The web console (`/ui/`) in a real Chromium against a real `kubetally serve` on the demo's cluster.

Every expected number is read from `/v2/cost` by this test (httpx, the same query as the page's URL)
and reshaped here in plain Python, never by the page's code:
- table: one row per key of the one-set answer (no step); its cells' `data-value` equal the API's
  (to 1e-12 relative: two identical requests may differ in the last bit, as DuckDB sums in parallel)
  `cost`, `costRatio`, `cpuCoreRequestAverage`, `cpuCoreUsageAverage`; memory cells equal bytes ÷ 2³⁰;
  efficiency = usage ÷ request (empty when request is 0);
- chart: per step i, the 9 non-idle rows of highest window cost each as a series (their step cost, 0
  when absent), "other" = Σ of the other non-idle rows' step cost, "idle" = Σ idle rows;
  null at every step whose coverage is 0;
- gap: the generated outage (`conftest.GAP`, 06:00–10:00 UTC on day 4) gives exactly those 4 hourly
  steps coverage 0 and null in every series, and no other step null.
"""

from __future__ import annotations

import csv
import io
import math
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page

from kubetally.domain.timeparse import format_rfc3339
from tests.browser.conftest import GAP, SPEC, Console, ready

pytestmark = pytest.mark.browser
GIB = 2**30
COLUMNS = ["Name", "Cost", "Cost ratio", "CPU request (cores)", "CPU usage (cores)", "CPU efficiency",
           "Memory request (GiB)", "Memory usage (GiB)", "Memory efficiency"]


def api(console: Console, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{console.url}/v2/cost", params=params, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def is_idle(name: str) -> bool:
    return name == "__idle__" or name.startswith("idle:")


def expected_cells(row: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: float, b: float) -> float | None:
        return a / b if b > 0 else None
    return {"cost": row["cost"], "costRatio": row["costRatio"], "cpuRequest": row["cpuCoreRequestAverage"],
            "cpuUsage": row["cpuCoreUsageAverage"], "cpuEfficiency": ratio(row["cpuCoreUsageAverage"],
                                                                             row["cpuCoreRequestAverage"]),
            "memoryRequest": row["ramByteRequestAverage"] / GIB, "memoryUsage": row["ramByteUsageAverage"] / GIB,
            "memoryEfficiency": ratio(row["ramByteUsageAverage"], row["ramByteRequestAverage"])}


def table(page: Page) -> list[dict[str, str]]:
    """The table as shown: per row the name cell's text and every number cell's data-value."""
    rows: list[dict[str, str]] = page.eval_on_selector_all("#rows tbody tr", """trs => trs.map(tr => {
        const out = {};
        for (const td of tr.cells) out[td.dataset.key] = td.dataset.key === 'name' ? td.textContent : td.dataset.value;
        return out; })""")
    return rows


def assert_table_is(page: Page, answer: dict[str, Any]) -> None:
    shown = table(page)
    rows = answer["data"][0]
    assert sorted(r["name"] for r in shown) == sorted(rows)
    for cells in shown:
        for key, value in expected_cells(rows[cells["name"]]).items():
            got = None if cells[key] == "" else float(cells[key])
            if value is None or got is None:
                assert got is value, (cells["name"], key, cells[key], value)
            else:  # two identical requests may differ in the last bit: DuckDB sums in parallel
                assert math.isclose(got, value, rel_tol=1e-12, abs_tol=1e-15), (cells["name"], key, got, value)


def expected_series(steps_answer: dict[str, Any], whole: dict[str, Any], idle: bool) -> dict[str, list[float | None]]:
    window_cost: dict[str, float] = {}
    for name, row in whole["data"][0].items():
        if not is_idle(name):
            window_cost[name] = window_cost.get(name, 0.0) + row["cost"]
    ranked = [name for name, _ in sorted(window_cost.items(), key=lambda item: (-item[1], item[0]))]
    own = ranked[:9] if len(ranked) > 10 else ranked
    series: dict[str, list[float | None]] = {name: [] for name in own}
    if len(ranked) > len(own):
        series["other"] = []
    if idle:
        series["idle"] = []
    for sets, step in zip(steps_answer["data"], steps_answer["steps"], strict=True):
        gap = not step["coverage"]
        for name in own:
            series[name].append(None if gap else (sets[name]["cost"] if name in sets else 0))
        if "other" in series:
            series["other"].append(None if gap else sum(r["cost"] for n, r in sets.items()
                                                        if not is_idle(n) and n not in own))
        if idle:
            series["idle"].append(None if gap else sum(r["cost"] for n, r in sets.items() if is_idle(n)))
    return series


def chart_series(page: Page) -> dict[str, list[float | None]]:
    found: list[dict[str, Any]] = page.evaluate(
        "kubetally.chart.getOption().series.map(s => ({name: s.name, data: s.data}))")
    return {s["name"]: s["data"] for s in found}


def assert_chart_is(page: Page, expected: dict[str, list[float | None]]) -> None:
    shown = chart_series(page)
    assert list(shown) == list(expected)
    for name, values in expected.items():
        for got, want in zip(shown[name], values, strict=True):
            if want is None or got is None:
                assert got is want, (name, got, want)
            else:  # as in the table; and "other" and "idle" are sums made here and in the page alike
                assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), (name, got, want)


def painted(page: Page, selector: str = "#chart canvas") -> int:
    """How many pixels of the chart's canvas are not white or transparent."""
    count: int = page.eval_on_selector(selector, """canvas => {
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i + 3] > 0 && (pixels[i] < 250 || pixels[i + 1] < 250 || pixels[i + 2] < 250)) n++;
        }
        return n; }""")
    return count


def query_of(page: Page) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(page.url).query).items()}


def test_page_shows_the_api_numbers(console: Console, page: Page, artifacts: Any) -> None:
    """Cost over the demo week by namespace: table and chart equal /v2/cost; loads well under a second."""
    started = time.monotonic()
    page.goto(f"{console.url}/ui/?view=cost&window=7d&step=1d&aggregate=namespace&idle=true")
    ready(page)
    elapsed = time.monotonic() - started
    timing = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    print(f"console loaded and drawn in {elapsed:.3f} s (DOMContentLoaded at {timing:.0f} ms)")
    whole = api(console, window="7d", aggregate="namespace", idle="true")
    steps = api(console, window="7d", aggregate="namespace", idle="true", step="1d")
    assert len(whole["data"][0]) == 21  # 20 namespaces (demo preset) and __idle__
    assert_table_is(page, whole)
    assert_chart_is(page, expected_series(steps, whole, idle=True))
    assert painted(page) > 50_000  # the stacked bars are on the canvas, not only in the chart's options
    headers = page.eval_on_selector_all("#rows thead th", "ths => ths.map(th => th.textContent)")
    assert headers == COLUMNS
    page.screenshot(path=str(artifacts / "cost-by-namespace.png"), full_page=True)


def shown_window(page: Page) -> str:
    """The absolute window the page's answer covers (`start,end`): asking the API for it gives the same
    numbers even after the running clock moved on."""
    window: dict[str, str] = page.evaluate("kubetally.cost.whole.window")
    return f"{window['start']},{window['end']}"


def assert_page_is_api(console: Console, page: Page) -> None:
    """Table and chart equal the API for the query in the page's URL (at the window it answered)."""
    q = query_of(page)
    params = {"window": shown_window(page), "aggregate": q["aggregate"], "idle": q["idle"]}
    if "filter" in q:
        params["filter"] = q["filter"]
    whole = api(console, **params)
    assert_table_is(page, whole)
    assert_chart_is(page, expected_series(api(console, **params, step=q["step"]), whole, idle=q["idle"] == "true"))


def test_drill_down_and_window_picker_change_url_and_data(console: Console, page: Page, artifacts: Any) -> None:
    """namespace → its controllers → a controller's pods, Back, then the window picker (7d → 48h)."""
    page.goto(f"{console.url}/ui/?view=cost&window=7d&step=1d&aggregate=namespace&idle=true")
    ready(page)
    page.click("#rows a:text-is('ns-003')")
    ready(page)
    assert query_of(page)["aggregate"] == "controller"
    assert query_of(page)["filter"] == 'namespace:"ns-003"'
    assert_page_is_api(console, page)
    names = [row["name"] for row in table(page)]
    assert names
    assert all(not name.startswith("ns-0") for name in names if not is_idle(name)), names
    page.screenshot(path=str(artifacts / "drill-controllers.png"), full_page=True)
    first = page.locator("#rows tbody a").first
    controller = first.text_content()
    first.click()
    ready(page)
    q = query_of(page)
    assert q["aggregate"] == "pod"
    assert q["filter"].startswith('namespace:"ns-003"+'), (controller, q)
    assert "controllerName:" in q["filter"], (controller, q)
    assert_page_is_api(console, page)
    page.screenshot(path=str(artifacts / "drill-pods.png"), full_page=True)
    page.go_back()
    ready(page)
    assert query_of(page)["aggregate"] == "controller"
    assert_page_is_api(console, page)
    page.select_option("#window", "48h")
    ready(page)
    q = query_of(page)
    assert (q["window"], q["step"], q["aggregate"], q["filter"]) == ("48h", "1h", "controller", 'namespace:"ns-003"')
    assert_page_is_api(console, page)
    assert len(page.evaluate("kubetally.cost.series.data")) in (48, 49)  # 48 hours, cut at unaligned edges


def test_csv_download_equals_the_table(console: Console, page: Page) -> None:
    """Sorted by CPU efficiency ascending, the CSV has the table's columns, rows and order, numbers in full."""
    page.goto(f"{console.url}/ui/?view=cost&window=7d&step=1d&aggregate=controller&idle=false")
    ready(page)
    page.click("#rows th[data-key=cpuEfficiency] button")  # first click: descending
    ready(page)
    page.click("#rows th[data-key=cpuEfficiency] button")  # second: ascending
    ready(page)
    assert query_of(page)["sort"] == "cpuEfficiency"
    assert query_of(page)["order"] == "asc"
    with page.expect_download() as download:
        page.click("#csv")
    text = download.value.path().read_text()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == COLUMNS
    keys = ["name", "cost", "costRatio", "cpuRequest", "cpuUsage", "cpuEfficiency", "memoryRequest", "memoryUsage",
            "memoryEfficiency"]
    shown = table(page)
    assert [dict(zip(keys, line, strict=True)) for line in lines[1:]] == shown
    efficiencies = [float(row["cpuEfficiency"]) for row in shown if row["cpuEfficiency"]]
    assert efficiencies == sorted(efficiencies)
    assert len(efficiencies) > 10
    assert_page_is_api(console, page)


def test_a_gap_in_the_data_is_drawn_as_a_gap(console: Console, page: Page, artifacts: Any) -> None:
    """Day 4 by hour: the outage's 4 hours (06:00–10:00 UTC) have coverage 0 and are null in every series
    (no bar, a "no data" area), never 0; every other hour has data."""
    day = SPEC.start + 3 * 86400
    window = f"{format_rfc3339(day)},{format_rfc3339(day + 86400)}"
    page.goto(f"{console.url}/ui/?view=cost&window={window}&step=1h&aggregate=namespace&idle=true")
    ready(page)
    gap_steps = [(GAP[0] - day) // 3600 + k for k in range(4)]
    assert gap_steps == [6, 7, 8, 9]
    answer = api(console, window=window, aggregate="namespace", idle="true", step="1h")
    assert [i for i, step in enumerate(answer["steps"]) if step["coverage"] == 0] == gap_steps
    assert all(answer["data"][i] == {} for i in gap_steps)
    series = chart_series(page)
    for name, values in series.items():
        assert [i for i, v in enumerate(values) if v is None] == gap_steps, name
    assert page.evaluate("kubetally.gaps") == gap_steps
    assert_page_is_api(console, page)
    page.screenshot(path=str(artifacts / "gap-by-hour.png"), full_page=True)


def test_keyboard_reaches_and_drills(console: Console, page: Page) -> None:
    """Tab from the top of the page reaches the table's first namespace link; Enter drills into it."""
    page.goto(f"{console.url}/ui/?view=cost&window=7d&step=1d&aggregate=namespace&idle=true")
    ready(page)
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#rows tbody a') !== null"):
            break
    else:
        pytest.fail("no table link is reachable with Tab")
    name = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    ready(page)
    assert query_of(page)["filter"] == f'namespace:"{name}"'


def test_costweights_view_and_lists_this_process_has(console: Console, page: Page, artifacts: Any) -> None:
    """`kubetally serve` has CostWeights (its --weights file) but no CostReports or CostBudgets: their
    tabs are hidden and never called; the weights in force are the file's."""
    page.goto(f"{console.url}/ui/?view=weights")
    ready(page)
    visible = page.eval_on_selector_all("header nav a", "as => as.filter(a => !a.hidden).map(a => a.textContent)")
    assert visible == ["Cost", "CostWeights"]
    cells = page.eval_on_selector_all("#object-rows tbody tr", "trs => trs.map(tr => [...tr.cells].map(c => c.textContent))")
    assert cells == [["default", "CNY", "1970-01-01T00:00:00Z", "1", "",
                      "cpuCoreHour 0.031611, memoryGiBHour 0.004237, storageGiBHour 0.0000548", "cpu 0.7, memory 0.3",
                      "0"]]
    page.screenshot(path=str(artifacts / "costweights.png"), full_page=True)

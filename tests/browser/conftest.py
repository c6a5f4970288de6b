"""Browser tier: the web console in a real headless Chromium (Debian's `chromium`, driven by Playwright).

The data is the demo's generated cluster (`presets.demo()`: 20 nodes, ~260 pods at a time, 20
namespaces in 5 projects, 7 days at 300 s) with one Prometheus outage of 4 hours on its fourth day
(`GAP`), served by a real Prometheus and a real `kubetally serve` whose clock starts at an unaligned
instant after the week (`NOW`) and keeps running. Every page is opened in a fresh browser context;
console messages of type error and uncaught page errors fail the test that caused them. Screenshots
go to `$KUBETALLY_ARTIFACTS/console/` (default `build/artifacts/console/`), kept after the run.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from kubetally.synthetic import presets
from tests.support.clusters import Served, serve_cluster
from tests.support.serve import ROOT, running_serve
from tests.support.weights import WEIGHTS_YAML

pytestmark = pytest.mark.browser

SPEC = presets.demo()
DAY = 86400
#: The outage: 4 whole hours of the fourth day, 06:00–10:00 UTC (no metric has a sample there).
GAP = (SPEC.start + 3 * DAY + 6 * 3600, SPEC.start + 3 * DAY + 10 * 3600)
#: The served process's clock at start: 17 min 23 s after the week's last hour (unaligned), running.
NOW = SPEC.end + 1043
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass(frozen=True)
class Console:
    url: str
    served: Served


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    spec = replace(SPEC, gaps=(GAP,))
    workdir = tmp_path_factory.mktemp("console-serve")
    for served in serve_cluster(spec, tmp_path_factory.mktemp("console-prometheus")):
        with running_serve(served.url, workdir, now=NOW, weights=WEIGHTS_YAML,
                           cluster=spec.name, hours=spec.hours, resolution=spec.scrape_seconds, timeout=400) as url:
            _rollups_stored(url)
            yield Console(url=url, served=served)


def _rollups_stored(url: str, timeout: float = 300) -> None:
    """Wait for the first rollup build after the ingest (`kubetally_rollup_builds_total` > 0): before it,
    answers come from the facts, after it from the stored rollups, and the two sum in different orders
    (the last bit of a float may differ), so the page and the test's own call must not straddle it."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(r"^kubetally_rollup_builds_total (\S+)$", httpx.get(f"{url}/metrics", timeout=5).text, re.M)
        if found is not None and float(found.group(1)) > 0:
            return
        assert time.monotonic() < deadline, "kubetally serve stored no rollups in time"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module. Not for the session: Playwright's sync API runs its own event loop
    on this thread until it is closed, and every later asyncio test (and `sync_playwright` in
    tests/e2e) would find a loop already running."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run scripts/test.sh, which installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("KUBETALLY_ARTIFACTS", ROOT / "build" / "artifacts")) / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (1366×768, downloads accepted) whose console must stay clean."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    yield page
    context.close()
    assert errors == [], errors


def ready(page: Page) -> None:
    """Wait until the page has drawn what its URL asks for."""
    page.wait_for_selector("body[data-state=ready]")

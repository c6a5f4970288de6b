"""The web console's routes in process: its files (open, this origin only, nothing else readable), the
settings the page starts from, the object lists fenced like the cost data, and the `steps` coverage
the page draws gaps from. The page itself runs in a real Chromium in tests/browser.

Fences (fake Kubernetes of `test_guard`): web-viewer may see `web`, alpha-viewer `shop` and `web`,
admin everything, nobody nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubetally import console as console_files
from kubetally.api import console
from kubetally.api.app import build_app
from kubetally.api.metrics import Metrics
from kubetally.ingest import WindowPlan
from kubetally.ledger.store import PriceRecord
from kubetally.objects import serve_objects, weights_in_force
from kubetally.reports import NoResult
from kubetally.service import CostAnswer
from tests.unit.api.test_app import WINDOW, ready, topology_service
from tests.unit.api.test_guard import FakeKubernetes, bearer, gated

QUERY = "/apis/query.kubetally.io/v1alpha1"


class Lister:
    """Records what it was asked; reports and budgets are one per namespace of NAMESPACES."""

    NAMESPACES = ("batch", "data", "shop", "web")

    def __init__(self) -> None:
        self.asked: list[tuple[str, frozenset[str] | None]] = []

    async def __call__(self, kind: str, namespaces: frozenset[str] | None) -> list[dict[str, Any]]:
        self.asked.append((kind, namespaces))
        if kind == "costweights":
            return [{"metadata": {"name": "default"}, "spec": {}, "status": {}}]
        return [{"metadata": {"namespace": ns, "name": f"r-{ns}"}, "spec": {}, "status": {}}
                for ns in self.NAMESPACES if namespaces is None or ns in namespaces]


@pytest.fixture
async def lister() -> Lister:
    return Lister()


@pytest.fixture
async def client(tmp_path: Path, lister: Lister) -> AsyncIterator[TestClient[Any, Any]]:
    async with gated(tmp_path, FakeKubernetes(), objects=lister) as test_client:
        yield test_client


async def test_the_files_are_open_and_allow_only_this_origin(client: TestClient[Any, Any]) -> None:
    page = await client.get("/ui/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = page.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'; script-src 'self'; style-src 'self';")
    assert "connect-src 'self'" in policy
    assert "http" not in policy  # no other origin anywhere
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="vendor/echarts.min.js" defer></script>' in await page.text()
    script = await client.get("/ui/console.js")
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert (await script.read()) == (console_files.STATIC / "console.js").read_bytes()
    library = await client.get("/ui/vendor/echarts.min.js")
    assert library.status == 200
    assert (await library.read()) == (console_files.VENDOR / "echarts.min.js").read_bytes()
    assert (await client.get("/ui/vendor/echarts-LICENSE.txt")).status == 200
    moved = await client.get("/ui?view=weights", allow_redirects=False)
    assert moved.status == 308
    assert moved.headers["Location"] == "/ui/?view=weights"
    assert (await client.get("/v2/cost", params={"window": WINDOW})).status == 401  # the data is not open


@pytest.mark.parametrize("path", ["/ui/nothing.js", "/ui/..%2Fapi%2Fconsole.py", "/ui/vendor/%2E%2E%2Fconsole.js",
                                  "/ui/.hidden.js", "/ui/vendor/a/b.js", "/ui/x/console.js", "/ui/__init__.py",
                                  "/ui/vendor/installed.txt.py"])
async def test_nothing_else_is_readable_under_ui(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 404, path
    body = await response.json()
    assert body["kind"] == "Status"
    assert "/ui/" in body["message"]


async def test_a_missing_library_is_a_503_naming_the_script(client: TestClient[Any, Any], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "static"
    (empty / "vendor").mkdir(parents=True)
    monkeypatch.setattr(console, "STATIC", empty)
    response = await client.get("/ui/vendor/echarts.min.js")
    assert response.status == 503
    assert "scripts/console-assets.py" in (await response.json())["message"]


async def test_settings_say_whether_to_sign_in_and_which_lists_exist(tmp_path: Path, lister: Lister,
                                                                     client: TestClient[Any, Any]) -> None:
    assert await (await client.get("/ui/settings.json")).json() == {
        "signIn": True, "lists": ["costweights", "costreports", "costbudgets"]}
    assert all(namespaces == frozenset() for _, namespaces in lister.asked)  # asked for nothing
    service = topology_service(tmp_path / "open")
    served = serve_objects(["default"], service.ledger.price_versions, service.clock)
    async with TestClient(TestServer(build_app(service, Metrics(), ready, objects=served))) as open_client:
        assert await (await open_client.get("/ui/settings.json")).json() == {"signIn": False, "lists": ["costweights"]}
        weights = await (await open_client.get(f"{QUERY}/costweights")).json()
        assert [item["metadata"]["name"] for item in weights["items"]] == ["default"]
        reports = await open_client.get(f"{QUERY}/costreports")
        assert reports.status == 404
        assert "kubetally run" in (await reports.json())["message"]
    service.ledger.close()


async def test_lists_are_fenced_like_the_cost_data(client: TestClient[Any, Any], lister: Lister) -> None:
    def names(body: dict[str, Any]) -> list[str]:
        return [item["metadata"]["name"] for item in body["items"]]

    web = await client.get(f"{QUERY}/costreports", headers=bearer("t-web"))
    assert web.status == 200
    body = await web.json()
    assert (body["apiVersion"], body["kind"], names(body)) == ("query.kubetally.io/v1alpha1", "CostReportList", ["r-web"])
    alpha = await (await client.get(f"{QUERY}/costbudgets", headers=bearer("t-alpha"))).json()
    assert (alpha["kind"], names(alpha)) == ("CostBudgetList", ["r-shop", "r-web"])
    admin = await (await client.get(f"{QUERY}/costreports", headers=bearer("t-admin"))).json()
    assert names(admin) == ["r-batch", "r-data", "r-shop", "r-web"]
    assert lister.asked[-1] == ("costreports", None)
    assert (await client.get(f"{QUERY}/namespaces/shop/costreports", headers=bearer("t-web"))).status == 403
    mine = await (await client.get(f"{QUERY}/namespaces/web/costreports", headers=bearer("t-web"))).json()
    assert names(mine) == ["r-web"]
    assert (await client.get(f"{QUERY}/costreports", headers=bearer("t-none"))).status == 403
    assert (await client.get(f"{QUERY}/costreports")).status == 401
    weights = await client.get(f"{QUERY}/costweights", headers=bearer("t-web"))
    assert names(await weights.json()) == ["default"]
    assert lister.asked[-1] == ("costweights", None)
    assert (await client.get(f"{QUERY}/costweights", headers=bearer("t-none"))).status == 403


def test_step_coverage_weights_each_hour_by_the_seconds_it_shares() -> None:
    """Hours 0, 1, 2 (unix 0, 3600, 7200) with coverage 1.0, 0.5, 0.0; by hand:
    [1800, 5400): (1.0·1800 + 0.5·1800) / 3600 = 0.75   (a step cut at :30, as in a +05:30 zone)
    [7200, 10800): 0.0 (no data: a gap)        [10800, 14400): None (no hour of the plan)
    [0, 10800): (3600 + 1800 + 0) / 10800 = 0.5"""
    plan = WindowPlan(ledger_hours=(0, 3600, 7200), live=(), coverage={0: 1.0, 3600: 0.5, 7200: 0.0})
    answer = CostAnswer(table=None, plan=plan, coverage=0.5)  # type: ignore[arg-type]
    assert answer.step_coverage([(1800, 5400), (7200, 10800), (10800, 14400), (0, 10800)]) == [0.75, 0.0, None, 0.5]


async def test_cost_answers_carry_each_steps_bounds_and_coverage(client: TestClient[Any, Any]) -> None:
    """The topology's two ledger hours, both coverage 1.0, by hour and as one set."""
    body = await (await client.get("/v2/cost", params={"window": WINDOW, "step": "1h"}, headers=bearer("t-admin"))).json()
    assert body["steps"] == [{"start": "2025-06-01T00:00:00Z", "end": "2025-06-01T01:00:00Z", "coverage": 1.0},
                             {"start": "2025-06-01T01:00:00Z", "end": "2025-06-01T02:00:00Z", "coverage": 1.0}]
    whole = await (await client.get("/v2/cost", params={"window": WINDOW}, headers=bearer("t-admin"))).json()
    assert whole["steps"] == [{"start": "2025-06-01T00:00:00Z", "end": "2025-06-01T02:00:00Z", "coverage": 1.0}]


def test_the_weights_in_force_are_the_latest_already_effective() -> None:
    versions = [PriceRecord("w", 0, 0, {"currency": "USD"}), PriceRecord("w", 3600, 10, {"currency": "EUR"}),
                PriceRecord("w", 7200, 20, {"currency": "CNY"})]
    assert weights_in_force("w", versions, now=5000) == {
        "metadata": {"name": "w"}, "spec": {"currency": "EUR"},
        "status": {"versions": 3, "effectiveFrom": "1970-01-01T01:00:00Z", "pendingFrom": "1970-01-01T02:00:00Z"}}
    assert weights_in_force("w", versions, now=7200)["status"] == {  # type: ignore[index]
        "versions": 3, "effectiveFrom": "1970-01-01T02:00:00Z"}
    assert weights_in_force("w", [], now=0) is None


async def test_serve_has_no_reports_and_says_where_they_are() -> None:
    lister = serve_objects([], lambda name: [], lambda: 0)
    with pytest.raises(NoResult) as missing:
        await lister("costbudgets", None)
    assert missing.value.code == 404
    assert await lister("costweights", None) == []

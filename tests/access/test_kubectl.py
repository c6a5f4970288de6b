"""A tenant's own kubeconfig and real kubectl, through the aggregated API.

- `kubectl get --raw ".../namespaces/<ns>/costs/cost?window=..."` as tenant-a: tenant-a's rows only, the
  oracle's numbers; another namespace: Forbidden (the apiserver's own RBAC check).
- `kubectl get --raw ".../namespaces/<ns>/costs/usage?..."` as tenant-p: that namespace's items only.
- `kubectl api-resources --api-group=query.kubetally.io` lists costs (the result subresource costreports/result is in the discovery document, not listed).
- A CostReport in tenant-a's namespace: its `status.resultPath` is served by `kubectl get --raw` to
  tenant-a, Forbidden to tenant-p and nobody.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.access import kube
from tests.access.conftest import Tier
from tests.access.fence import FencedOracle, namespace_rows
from tests.campaign import checks
from tests.campaign.oracle import Oracle, cut
from tests.campaign.requests import Usage
from tests.campaign.windows import to_rfc3339

pytestmark = pytest.mark.access
API = "/apis/query.kubetally.io/v1alpha1"


def _window(tier: Tier) -> tuple[int, int]:
    hour = tier.world.now - tier.world.now % 3600
    return hour - 6 * 3600, hour


def _raw(tier: Tier, user: str, path: str, *, check: bool = True) -> str:
    return kube.kubectl(tier.plane, "get", "--raw", path, kubeconfig=tier.plane.kubeconfig_for(user),
                        check=check).stdout


def _denied(tier: Tier, user: str, path: str) -> str:
    result = kube.kubectl(tier.plane, "get", "--raw", path, kubeconfig=tier.plane.kubeconfig_for(user), check=False)
    assert result.returncode != 0, result.stdout[:300]
    assert "Forbidden" in result.stderr or "forbidden" in result.stderr, result.stderr
    return result.stderr


def test_kubectl_get_raw_as_a_tenant_returns_only_their_rows(tier: Tier, oracle: Oracle) -> None:
    (mine,) = tier.world.grants["tenant-a"]
    start, end = _window(tier)
    query = f"window={to_rfc3339(start)},{to_rfc3339(end)}&aggregate=namespace"
    body = json.loads(_raw(tier, "tenant-a", f"{API}/namespaces/{mine}/costs/cost?{query}"))
    (step,) = body["data"]
    want = namespace_rows(oracle, start, end, frozenset({mine}))
    assert set(step) == set(want), (sorted(step), sorted(want))
    assert mine in step
    for name, item in step.items():
        assert math.isclose(item["cost"], want[name]["cost"], rel_tol=1e-9, abs_tol=1e-12), name
        assert math.isclose(item["costRatio"], want[name]["costRatio"], rel_tol=1e-9, abs_tol=1e-12), name
        assert item["properties"].get("namespace") in (None, mine)
    other = next(ns for ns in tier.world.namespaces if ns != mine)
    assert 'User "tenant-a" cannot get resource "costs"' in _denied(
        tier, "tenant-a", f"{API}/namespaces/{other}/costs/cost?{query}")
    _denied(tier, "tenant-a", f"{API}/costs/cost?{query}")  # the cluster path needs a cluster-wide grant


def test_kubectl_get_raw_usage_as_a_project_tenant(tier: Tier, oracle: Oracle) -> None:
    """tenant-p's usage of yesterday (Cpu, Effective) in one of its namespaces that ran pods then."""
    yesterday = datetime.fromtimestamp(tier.world.now, UTC).date() - timedelta(days=1)
    start = int(datetime.combine(yesterday, datetime.min.time(), tzinfo=UTC).timestamp())
    ran = {str(fact["namespace"]) for fact in oracle.facts_of(cut(start, start + 86400)).containers}
    namespace = sorted(tier.world.grants["tenant-p"] & ran or tier.world.grants["tenant-p"])[0]
    spec = Usage(first=yesterday, last=yesterday, step="day", tz=None, kind="namespace_all", name=None, item="Cpu",
                 method="Effective", project=None, page=1, size=20)
    path = f"{API}/namespaces/{namespace}/costs/usage?start={yesterday}&end={yesterday}&kind=namespace_all"
    sent = time.time()
    body = json.loads(_raw(tier, "tenant-p", path))
    fenced = FencedOracle(oracle, frozenset({namespace}), ratio_of_answer=True)
    rows = checks.check_usage(body, spec, fenced, tier.operator.clock, sent, time.time())
    assert {item["namespace"] for item in body["items"]} == {row["namespace"] for row in rows}
    assert {item["namespace"] for item in body["items"]} <= {namespace}
    assert body["items"] or namespace not in ran


def test_kubectl_api_resources_lists_the_group(tier: Tier) -> None:
    printed = kube.kubectl(tier.plane, "api-resources", "--api-group=query.kubetally.io",
                           kubeconfig=tier.plane.kubeconfig_for("tenant-a")).stdout
    names = {line.split()[0]: line.split() for line in printed.splitlines()[1:] if line.strip()}
    assert set(names) == {"costs"}, printed  # costreports/result is a subresource: not listed
    assert names["costs"][1:] == ["query.kubetally.io/v1alpha1", "true", "Cost"], printed
    listed = json.loads(_raw(tier, "tenant-a", API))
    assert {r["name"]: r["verbs"] for r in listed["resources"]} == {
        "costs": ["get", "list"], "costreports/result": ["get"]}


def test_a_costreport_result_is_served_to_its_tenant_only(tier: Tier, oracle: Oracle) -> None:
    (mine,) = tier.world.grants["tenant-a"]
    start, end = _window(tier)
    report = {"apiVersion": "kubetally.io/v1alpha1", "kind": "CostReport", "metadata": {"name": "mine", "namespace": mine},
              "spec": {"window": f"{to_rfc3339(start)},{to_rfc3339(end)}", "aggregate": ["namespace"],
                       "method": "Request", "filter": f'namespace:"{mine}"', "topN": 50}}
    kube.apply(tier.plane, report)
    kube.kubectl(tier.plane, "wait", "--for", "condition=Ready", "--timeout=90s", "costreport/mine", "-n", mine)
    status = json.loads(kube.kubectl(tier.plane, "get", "costreport", "mine", "-n", mine, "-o", "json").stdout)["status"]
    path = status["resultPath"]
    assert path == f"{API}/namespaces/{mine}/costreports/mine/result"
    result = json.loads(_raw(tier, "tenant-a", path))
    (step,) = result["data"]
    want = namespace_rows(oracle, start, end, frozenset({mine}))
    assert {name: item["cost"] for name, item in step.items()} == pytest.approx(
        {name: row["cost"] for name, row in want.items()}, rel=1e-9, abs=1e-12)
    for user in ("tenant-p", "nobody"):
        assert 'cannot get resource "costreports/result"' in _denied(tier, user, path)

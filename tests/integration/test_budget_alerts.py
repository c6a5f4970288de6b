"""The budget alerts of manifests/budget-alerts, run by the real promtool (`check rules`, `test rules`).

Series (1-minute samples) of the budget shop/monthly (CNY), and what must fire, worked out by hand:

| minutes | ratio        | forecast / amount | fires at minute (and why)                                       |
|---------|--------------|-------------------|-----------------------------------------------------------------|
| 0..19   | 0.5          | 0.9               | nothing                                                         |
| 20..59  | 0.85         | 1.2 (1200 / 1000) | NearlySpent at 35 (true from 20, for 15m); ForecastExceeded at 80 (from 20, for 1h) |
| 60..99  | 1.1          | 1.2               | Exceeded at 65 (from 60, for 5m); NearlySpent resolved (< 1 no longer holds) |

So at minute 34: nothing; at 40: NearlySpent; at 70: Exceeded only (ForecastExceeded needs 80); at 85:
Exceeded and ForecastExceeded.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LABELS = '{namespace="shop", name="monthly", currency="CNY"}'
ALERT_LABELS = {"namespace": "shop", "name": "monthly", "currency": "CNY"}


#: The annotations each alert must carry at these samples (templates expanded by hand).
ANNOTATIONS = {
    "KubetallyBudgetNearlySpent": {
        "summary": "CostBudget shop/monthly has spent 85% of its amount",
        "description": "Spent is at least 80% of the budget's amount this period "
                       "(kubectl get costbudget -n shop monthly)."},
    "KubetallyBudgetExceeded": {
        "summary": "CostBudget shop/monthly is over its amount (110%)",
        "description": "Spent has reached the budget's amount this period."},
    "KubetallyBudgetForecastExceeded": {
        "summary": "CostBudget shop/monthly is forecast to exceed its amount this period",
        "description": "At the spend rate of the last 7 days the period ends at 1200 CNY."},
}


def _alerts(at: str, *expected: tuple[str, str]) -> list[dict[str, object]]:
    return [{"eval_time": at, "alertname": name, "exp_alerts": [
        {"exp_labels": {**ALERT_LABELS, "severity": severity}, "exp_annotations": ANNOTATIONS[name]}]}
        for name, severity in expected]


def test_the_budget_alerts_fire_as_computed_by_hand(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: run scripts/test.sh, which installs Debian's prometheus")
    rule = yaml.safe_load((ROOT / "manifests" / "budget-alerts" / "prometheusrule.yaml").read_text())
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    series = [
        {"series": f"kubetally_budget_ratio{LABELS}", "values": "0.5x19 0.85x40 1.1x40"},
        {"series": f"kubetally_budget_amount{LABELS}", "values": "1000x100"},
        {"series": f"kubetally_budget_forecast{LABELS}", "values": "900x19 1200x80"},
    ]
    names = {"NearlySpent": "KubetallyBudgetNearlySpent", "Exceeded": "KubetallyBudgetExceeded",
             "Forecast": "KubetallyBudgetForecastExceeded"}
    tests = [{"interval": "1m", "input_series": series, "alert_rule_test": [
        *({"eval_time": "34m", "alertname": name, "exp_alerts": []} for name in names.values()),
        *_alerts("40m", (names["NearlySpent"], "warning")),
        {"eval_time": "40m", "alertname": names["Exceeded"], "exp_alerts": []},
        *_alerts("70m", (names["Exceeded"], "critical")),
        {"eval_time": "70m", "alertname": names["NearlySpent"], "exp_alerts": []},
        {"eval_time": "70m", "alertname": names["Forecast"], "exp_alerts": []},
        *_alerts("85m", (names["Exceeded"], "critical"), (names["Forecast"], "warning")),
    ]}]
    spec = tmp_path / "test.yaml"
    spec.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}))
    tested = subprocess.run([promtool, "test", "rules", str(spec)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr

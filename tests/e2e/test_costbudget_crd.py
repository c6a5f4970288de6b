"""The CostBudget CRD (crds/costbudgets.kubetally.io.yaml) on a real kube-apiserver v1.20.2, with real kubectl.

- `kubectl explain costbudget.spec.thresholds` shows the CRD's fields and descriptions (kubectl reads the
  apiserver's OpenAPI v2, where the CRD's structural schema is published a moment after it is established),
  and no longer asks to quote a key. `kubectl explain costbudget.spec.notify` shows its description, which
  names the Secret and secretKey, but no FIELDS: `notify` is nullable, and OpenAPI v2 cannot say
  "nullable", so the apiserver publishes such a field without its type or properties (kubectl's client-side
  validation does not look inside it either; the apiserver's does, see the refusals);
- a bare spec {amount: "2000", currency: CNY} is stored with the CRD's defaults: period monthly, method
  Effective, thresholds 80 and 100 on spent and 100 on forecast;
- `kubectl get cbudget` prints empty cells before the first computation, and after a status written as the
  operator writes it (hand-written here: amount "2000.000000", spent "1234.567890", forecast
  "2100.000000", percent "61.73", Exceeded=False WithinAmount) exactly those strings, the State column
  through the JSONPath filter `.status.conditions[?(@.type=="Exceeded")].reason`, which 1.20 evaluates;
- the example manifests/examples/costbudget-monthly.yaml passes a server dry run with its four thresholds
  intact, and so does it with its commented `notify` uncommented;
- the schema's refusals name each field and what is accepted;
- a threshold's `basis` needs no quotes: written bare, as users write YAML, it is stored as written and
  passes kubectl's client-side validation. (The field was once `on`, which YAML 1.1, kubectl's and
  PyYAML's, reads as the boolean true when bare.)
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from kubetally.controlplane import ControlPlane
from tests.support.controlplane import kubectl

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "manifests" / "examples" / "costbudget-monthly.yaml"
NAMESPACE = "costbudget-crd"
CRD = "crd/costbudgets.kubetally.io"
#: How long the apiserver may take to publish a just-established CRD in its OpenAPI document.
OPENAPI_DEADLINE_S = 60.0


def _budget(name: str, spec: str) -> str:
    return (f"apiVersion: kubetally.io/v1alpha1\nkind: CostBudget\nmetadata: {{name: {name}, namespace: {NAMESPACE}}}\n"
            f"spec:\n{spec}")


@pytest.fixture(scope="module")
def installed(control_plane: ControlPlane) -> ControlPlane:
    kubectl(control_plane, "apply", "-k", str(ROOT / "crds"))
    kubectl(control_plane, "wait", "--for", "condition=established", "--timeout=60s", CRD)
    for namespace in (NAMESPACE, "kubetally-system"):
        manifest = kubectl(control_plane, "create", "namespace", namespace, "--dry-run=client", "-o", "yaml").stdout
        kubectl(control_plane, "apply", "-f", "-", input=manifest)
    return control_plane


def test_kubectl_explain_describes_the_thresholds(installed: ControlPlane) -> None:
    deadline = time.monotonic() + OPENAPI_DEADLINE_S
    while (answer := kubectl(installed, "explain", "costbudget.spec.thresholds", check=False)).returncode != 0:
        assert time.monotonic() < deadline, f"kubectl explain never found CostBudget: {answer.stderr}"
        time.sleep(0.5)
    text = " ".join(answer.stdout.split())  # kubectl wraps descriptions at 80 columns
    assert "KIND: CostBudget" in text
    assert "VERSION: kubetally.io/v1alpha1" in text
    assert "RESOURCE: thresholds <[]Object>" in text
    assert "Percents of amount at which kubetally posts an Event" in text
    assert "quote" not in text.lower()  # `basis` is plain YAML: nothing to quote
    assert '"on"' not in text
    assert "basis <string> What is compared with the threshold: spent" in text
    assert "percent <string> -required- The threshold as a percent of amount" in text
    notify = " ".join(kubectl(installed, "explain", "costbudget.spec.notify").stdout.split())
    assert ("to the URL held under secretKey in the Secret kubetally-budget-webhooks of the operator's namespace "
            "(the one Secret the operator may read).") in notify
    assert "FIELDS:" not in notify  # nullable: published without its properties (module doc)
    history = " ".join(kubectl(installed, "explain", "cbudget.status.history").stdout.split())
    assert "The final figures of the last periods, newest first, at most 12." in history


def _row(cp: ControlPlane, name: str) -> dict[str, str]:
    """`kubectl get cbudget NAME` as {column: value} ("" for an empty cell), without AGE; a cell starts
    where its header does."""
    header, row = kubectl(cp, "get", "cbudget", name, "-n", NAMESPACE).stdout.splitlines()
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    ends = [*starts[1:], None]
    columns = {header[start:end].strip(): row[start:end].strip() for start, end in zip(starts, ends, strict=True)}
    del columns["AGE"]
    return columns


def test_defaults_are_stored_and_printer_columns_render(installed: ControlPlane) -> None:
    kubectl(installed, "apply", "-f", "-", input=_budget("bare", '  amount: "2000"\n  currency: CNY\n'))
    stored = json.loads(kubectl(installed, "get", "costbudget", "bare", "-n", NAMESPACE, "-o", "json").stdout)
    assert stored["spec"] == {
        "amount": "2000", "currency": "CNY", "period": "monthly", "method": "Effective",
        "thresholds": [{"percent": "80", "basis": "spent"}, {"percent": "100", "basis": "spent"},
                       {"percent": "100", "basis": "forecast"}],
    }
    assert _row(installed, "bare") == {"NAME": "bare", "AMOUNT": "", "CURRENCY": "CNY", "PERIOD": "monthly",
                                       "SPENT": "", "FORECAST": "", "PERCENT": "", "STATE": ""}
    since = "2025-06-01T00:00:00Z"
    conditions = [
        {"type": "Ready", "status": "True", "reason": "Computed", "message": "spent", "lastTransitionTime": since},
        {"type": "Exceeded", "status": "False", "reason": "WithinAmount", "message": "", "lastTransitionTime": since},
        {"type": "ForecastExceeded", "status": "True", "reason": "ForecastOverAmount", "message": "forecast",
         "lastTransitionTime": since},
    ]
    status = {"amount": "2000.000000", "currency": "CNY", "spent": "1234.567890", "forecast": "2100.000000",
              "percent": "61.73", "forecastPercent": "105.00", "conditions": conditions}
    kubectl(installed, "patch", "costbudget", "bare", "-n", NAMESPACE, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}))
    assert _row(installed, "bare") == {"NAME": "bare", "AMOUNT": "2000.000000", "CURRENCY": "CNY", "PERIOD": "monthly",
                                       "SPENT": "1234.567890", "FORECAST": "2100.000000", "PERCENT": "61.73",
                                       "STATE": "WithinAmount"}


def _dry_run(cp: ControlPlane, manifest: str, *flags: str) -> dict[str, Any]:
    applied = kubectl(cp, "apply", "--dry-run=server", *flags, "-o", "json", "-f", "-", input=manifest).stdout
    obj = json.loads(applied)
    assert isinstance(obj, dict)
    return obj


def test_the_example_passes_a_server_dry_run(installed: ControlPlane) -> None:
    applied = kubectl(installed, "apply", "--dry-run=server", "-f", str(EXAMPLE)).stdout
    assert applied.strip() == "costbudget.kubetally.io/monthly created (server dry run)"
    text = EXAMPLE.read_text(encoding="utf-8")
    obj = _dry_run(installed, text)
    assert obj["spec"]["thresholds"] == [{"percent": "50", "basis": "spent"}, {"percent": "80", "basis": "spent"},
                                         {"percent": "100", "basis": "spent"}, {"percent": "100", "basis": "forecast"}]
    assert (obj["spec"]["period"], obj["spec"]["timeZone"]) == ("monthly", "Asia/Shanghai")
    assert "notify" not in obj["spec"]
    uncommented = text.replace("  # notify:\n", "  notify:\n").replace("  #   secretKey:", "    secretKey:")
    uncommented = uncommented.replace("  #   format:", "    format:")
    assert _dry_run(installed, uncommented)["spec"]["notify"] == {"secretKey": "finops-slack", "format": "slack"}


def test_the_schema_refuses_bad_shapes_naming_what_is_accepted(installed: ControlPlane) -> None:
    bad = _budget("bad", '  amount: "-5"\n  currency: cny\n  period: yearly\n  scope: {namespaces: [Shop]}\n'
                         '  thresholds: [{percent: 80, basis: later}]\n  notify: {secretKey: finops slack, format: teams}\n')
    answer = kubectl(installed, "apply", "--dry-run=server", "--validate=false", "-f", "-", input=bad, check=False)
    assert answer.returncode != 0
    for line in (
        """spec.amount: Invalid value: "-5": spec.amount in body should match '^[0-9]+(\\.[0-9]+)?$'""",
        'spec.currency: Unsupported value: "cny": supported values: "CNY", "USD", "THB", "RUB", "AUD", "CAD", '
        '"CHF", "DKK", "EUR", "GBP", "IDR", "INR", "JPY", "HKD", "SGD"',
        'spec.period: Unsupported value: "yearly": supported values: "daily", "weekly", "monthly", "quarterly"',
        """spec.scope.namespaces: Invalid value: "Shop": spec.scope.namespaces in body should match """
        """'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'""",
        'spec.thresholds.percent: Invalid value: "integer": spec.thresholds.percent in body must be of type string',
        'spec.thresholds.basis: Unsupported value: "later": supported values: "spent", "forecast"',
        """spec.notify.secretKey: Invalid value: "finops slack": spec.notify.secretKey in body should match """
        """'^[-._a-zA-Z0-9]+$'""",
        'spec.notify.format: Unsupported value: "teams": supported values: "json", "slack"',
    ):
        assert f"* {line}" in answer.stderr, (line, answer.stderr)


def test_basis_needs_no_quotes(installed: ControlPlane) -> None:
    """The budget of issue 17 as a user writes it, nothing quoted but the decimal strings: accepted by
    kubectl's client-side validation (which refused the `true` key a bare `on:` was) and stored as written."""
    plain = _budget("plain", '  amount: "2000"\n  currency: CNY\n'
                             '  thresholds: [{percent: "80", basis: spent}, {percent: "100", basis: forecast}]\n'
                             '  notify: {secretKey: finops-slack}\n')
    stored = _dry_run(installed, plain)
    assert stored["spec"]["thresholds"] == [{"percent": "80", "basis": "spent"}, {"percent": "100", "basis": "forecast"}]
    assert stored["spec"]["notify"] == {"secretKey": "finops-slack", "format": "json"}

"""Argo CD's view of kubetally's objects: manifests/argocd/health.lua, run by a real Lua 5.1.

Argo CD (util/lua/lua.go) runs a health check from argocd-cm in gopher-lua, a Lua 5.1, with only the
base and table libraries (plus `package` and a reduced `os`), the live object as the global `obj`, a
1 s deadline, and takes the table the script returns; a status outside Healthy, Progressing, Degraded,
Suspended, Missing, Unknown becomes Unknown. `_argo_cd_lua` rebuilds that sandbox with lupa's Lua 5.1:
no string, math, io, os, debug or coroutine library, and no metatable on strings (gopher-lua has none
without its string library), so a script that calls `string.format` or `("x"):upper()` fails here as it
would in Argo CD (`test_the_sandbox_has_no_string_library`).

The statuses come from the operator's own writers, `kubetally.reports.failed_status` and `condition`,
plus hand-written objects for what those do not make (no status yet, a stale status). The expected
health and message of every case is written by hand in the tables below, from the rules at the top
of health.lua:

    observedGeneration < generation, or no status  → Progressing "waiting for kubetally to observe generation N"
    Ready=False                                    → Degraded    "<reason>: <message>"
    Ready=True                                     → Healthy     "<reason>: <message>"
    Ready=True and Degraded=True                   → Healthy     "...; degraded data: <reason>: <message>"
    Ready=Unknown or absent                        → Progressing

The shipping is checked too: manifests/argocd/argocd-cm.yaml carries health.lua's exact text under the
argocd-cm key of each kind (`resource.customizations.health.kubetally.io_<Kind>`, the group from crds/),
and the Component, built by the real `kubectl kustomize`, patches Argo CD's argocd-cm in both layouts
an overlay can have. After a change to health.lua: `KUBETALLY_UPDATE_ARGOCD=1 pytest
tests/unit/test_argocd_health.py` rewrites argocd-cm.yaml.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51  # type: ignore[import-untyped]
import pytest
import yaml

from kubetally.domain.errors import SourceUnavailable, SpecError
from kubetally.reports import condition, failed_status
from tests.support.controlplane import KUBECTL

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "manifests" / "argocd"
SCRIPT = COMPONENT / "health.lua"
PATCH = COMPONENT / "argocd-cm.yaml"
GROUP = "kubetally.io"
#: The kinds argocd-cm names the script for: every CRD's kind (CostBudget's status carries the same fields).
KINDS = ("CostReport", "CostWeights", "CostBudget")
#: The health statuses Argo CD accepts from a script (anything else becomes Unknown).
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# 2025-06-01T10:17:23Z: an instant on no hour boundary.
NOW = datetime(2025, 6, 1, 10, 17, 23, tzinfo=UTC)
EARLIER = datetime(2025, 5, 30, 7, 41, 9, tzinfo=UTC)


def _argo_cd_lua() -> Any:
    """A Lua 5.1 with what Argo CD gives a health script from argocd-cm: base and table only."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute(
        "debug.setmetatable('', nil)\n"
        "string, math, io, os, debug, coroutine, python = nil, nil, nil, nil, nil, nil, nil"
    )
    return lua


def health(obj: Mapping[str, Any], script: str | None = None) -> dict[str, str]:
    """What Argo CD reads from the script for OBJ: its returned table, checked to be {status, message}."""
    lua = _argo_cd_lua()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    returned = lua.execute(SCRIPT.read_text(encoding="utf-8") if script is None else script)
    assert lua51.lua_type(returned) == "table", f"the script returned {returned!r}, Argo CD wants a table"
    result = dict(returned.items())
    assert set(result) == {"status", "message"}, result
    assert all(isinstance(value, str) for value in result.values()), result
    assert result["status"] in ARGO_STATUSES
    return result


def obj(kind: str, generation: int, status: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A live kubetally object as Argo CD holds it (the spec does not matter to the health check)."""
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": kind,
        "metadata": {"name": "team-a", "namespace": "team-a", "generation": generation},
        "spec": {},
    }
    if status is not None:
        body["status"] = status
    return body


def computed(*, generation: int, degraded: tuple[str, str] | None, ready_message: str) -> dict[str, Any]:
    """A computed report's status as `compute_report` writes it (Ready=True, Computed; Degraded true
    with DEGRADED's reason and message, or false, Complete), from the real `condition`."""
    ready = condition(kind="Ready", status="True", reason="Computed", message=ready_message, generation=generation,
                      now=NOW)
    flag = condition(kind="Degraded", status="True" if degraded else "False",
                     reason=degraded[0] if degraded else "Complete",
                     message=degraded[1] if degraded else "every hour of the window had data",
                     generation=generation, now=NOW)
    return {"observedGeneration": generation, "coverage": 0.994048, "rowCount": 12, "conditions": [ready, flag]}


INVALID = SpecError("spec.weights", "cpu + memory must be 1, got 0.9 (0.6 + 0.3)")
DOWN = SourceUnavailable("prometheus at http://prometheus.monitoring:9090 did not answer within 30 s")
ROWS = "12 rows over 168 h"
RECORDED = "2 price version(s); the newest prices from 2025-06-01T11:00:00Z"

# (case, object, expected status, expected message); statuses from the operator's own writers.
FROM_THE_OPERATOR: list[tuple[str, dict[str, Any], str, str]] = [
    ("report InvalidSpec",
     obj("CostReport", 4, failed_status(INVALID, generation=4, now=NOW)),
     "Degraded", "InvalidSpec: spec.weights: cpu + memory must be 1, got 0.9 (0.6 + 0.3)"),
    ("weights InvalidSpec",
     obj("CostWeights", 1, failed_status(INVALID, generation=1, now=NOW)),
     "Degraded", "InvalidSpec: spec.weights: cpu + memory must be 1, got 0.9 (0.6 + 0.3)"),
    ("report InvalidSpec, still so after an earlier verdict (previous conditions kept)",
     obj("CostReport", 5, failed_status(INVALID, generation=5, now=NOW,
                                        previous=failed_status(INVALID, generation=4, now=EARLIER)["conditions"])),
     "Degraded", "InvalidSpec: spec.weights: cpu + memory must be 1, got 0.9 (0.6 + 0.3)"),
    ("report MetricsUnavailable, no figures at all",
     obj("CostReport", 2, failed_status(DOWN, generation=2, now=NOW)),
     "Degraded", "MetricsUnavailable: prometheus at http://prometheus.monitoring:9090 did not answer within 30 s"),
    ("report InvalidSpec of generation 4, spec fixed since (generation 5, not yet seen)",
     obj("CostReport", 5, failed_status(INVALID, generation=4, now=NOW)),
     "Progressing", "waiting for kubetally to observe generation 5 (status is of generation 4)"),
    ("report computed, complete",
     obj("CostReport", 3, computed(generation=3, degraded=None, ready_message=ROWS)),
     "Healthy", "Computed: 12 rows over 168 h"),
    ("report computed with a gap in the data",
     obj("CostReport", 3, computed(generation=3, degraded=("DataGap", "data coverage of the window is 0.9940"),
                                   ready_message=ROWS)),
     "Healthy", "Computed: 12 rows over 168 h; degraded data: DataGap: data coverage of the window is 0.9940"),
    ("report computed, no workload had a cost",
     obj("CostReport", 3, computed(generation=3, degraded=("NoData", "no workload had any cost in the window"),
                                   ready_message="0 rows over 24 h")),
     "Healthy", "Computed: 0 rows over 24 h; degraded data: NoData: no workload had any cost in the window"),
    ("report computed from the ledger while the store was down",
     obj("CostReport", 3, computed(generation=3, ready_message=ROWS, degraded=(
         "MetricsUnavailable", "data coverage of the window is 0.9821; the live hours were not read"))),
     "Healthy", "Computed: 12 rows over 168 h; degraded data: MetricsUnavailable: data coverage of the window "
                "is 0.9821; the live hours were not read"),
    ("weights recorded",
     obj("CostWeights", 2, {"observedGeneration": 2, "versions": 2, "effectiveFrom": "2025-06-01T11:00:00Z",
                            "conditions": [condition(kind="Ready", status="True", reason="Recorded",
                                                     message=RECORDED, generation=2, now=NOW)]}),
     "Healthy", "Recorded: 2 price version(s); the newest prices from 2025-06-01T11:00:00Z"),
]

# (case, object, expected status, expected message); written by hand.
BY_HAND: list[tuple[str, dict[str, Any], str, str]] = [
    ("report just created, no status yet",
     obj("CostReport", 1),
     "Progressing", "waiting for kubetally to observe generation 1"),
    ("weights just created, no status yet",
     obj("CostWeights", 1),
     "Progressing", "waiting for kubetally to observe generation 1"),
    ("report with an empty status",
     obj("CostReport", 1, {}),
     "Progressing", "waiting for kubetally to observe generation 1"),
    ("report edited: Ready=True of generation 6, spec now generation 7",
     obj("CostReport", 7, {"observedGeneration": 6, "conditions": [
         {"type": "Ready", "status": "True", "reason": "Computed", "message": "3 rows over 24 h",
          "observedGeneration": 6, "lastTransitionTime": "2025-06-01T09:02:41Z"}]}),
     "Progressing", "waiting for kubetally to observe generation 7 (status is of generation 6)"),
    ("no status.observedGeneration, the stale Ready's own counts",
     obj("CostReport", 3, {"conditions": [
         {"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": "window: old",
          "observedGeneration": 2, "lastTransitionTime": "2025-06-01T09:02:41Z"}]}),
     "Progressing", "waiting for kubetally to observe generation 3 (status is of generation 2)"),
    ("status.observedGeneration current, but Ready's stale: the lower counts",
     obj("CostReport", 3, {"observedGeneration": 3, "conditions": [
         {"type": "Ready", "status": "True", "reason": "Computed", "message": "3 rows over 24 h",
          "observedGeneration": 2, "lastTransitionTime": "2025-06-01T09:02:41Z"}]}),
     "Progressing", "waiting for kubetally to observe generation 3 (status is of generation 2)"),
    ("report Ready=True and Degraded=True DataGap",
     obj("CostReport", 2, {"observedGeneration": 2, "coverage": 0.75, "conditions": [
         {"type": "Ready", "status": "True", "reason": "Computed", "message": "4 rows over 24 h",
          "observedGeneration": 2, "lastTransitionTime": "2025-06-01T09:02:41Z"},
         {"type": "Degraded", "status": "True", "reason": "DataGap", "message": "data coverage of the window is 0.7500",
          "observedGeneration": 2, "lastTransitionTime": "2025-06-01T09:02:41Z"}]}),
     "Healthy", "Computed: 4 rows over 24 h; degraded data: DataGap: data coverage of the window is 0.7500"),
    ("weights Recorded",
     obj("CostWeights", 5, {"observedGeneration": 5, "versions": 3, "effectiveFrom": "2025-06-02T00:00:00Z",
                            "conditions": [
         {"type": "Ready", "status": "True", "reason": "Recorded",
          "message": "3 price version(s); the newest prices from 2025-06-02T00:00:00Z",
          "observedGeneration": 5, "lastTransitionTime": "2025-06-01T09:02:41Z"}]}),
     "Healthy", "Recorded: 3 price version(s); the newest prices from 2025-06-02T00:00:00Z"),
    ("budget (a later kind, same conditions) InvalidSpec",
     obj("CostBudget", 1, {"observedGeneration": 1, "conditions": [
         {"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": "spec.limit: must be > 0, got -5",
          "observedGeneration": 1, "lastTransitionTime": "2025-06-01T09:02:41Z"},
         {"type": "Degraded", "status": "True", "reason": "InvalidSpec", "message": "spec.limit: must be > 0, got -5",
          "observedGeneration": 1, "lastTransitionTime": "2025-06-01T09:02:41Z"}]}),
     "Degraded", "InvalidSpec: spec.limit: must be > 0, got -5"),
    ("observed, but no Ready condition yet",
     obj("CostReport", 2, {"observedGeneration": 2}),
     "Progressing", "waiting for kubetally to set the Ready condition"),
    ("Ready=Unknown",
     obj("CostReport", 2, {"observedGeneration": 2, "conditions": [
         {"type": "Ready", "status": "Unknown", "reason": "Computing", "message": "first computation",
          "observedGeneration": 2, "lastTransitionTime": "2025-06-01T09:02:41Z"}]}),
     "Progressing", "Ready is Unknown, Computing: first computation"),
    ("Ready=False without a message",
     obj("CostWeights", 2, {"observedGeneration": 2, "conditions": [
         {"type": "Ready", "status": "False", "reason": "InvalidSpec", "observedGeneration": 2}]}),
     "Degraded", "InvalidSpec"),
]


@pytest.mark.parametrize(("case", "live", "status", "message"), FROM_THE_OPERATOR,
                         ids=[c[0] for c in FROM_THE_OPERATOR])
def test_health_of_statuses_the_operator_writes(case: str, live: dict[str, Any], status: str, message: str) -> None:
    assert health(live) == {"status": status, "message": message}, case


@pytest.mark.parametrize(("case", "live", "status", "message"), BY_HAND, ids=[c[0] for c in BY_HAND])
def test_health_of_hand_written_objects(case: str, live: dict[str, Any], status: str, message: str) -> None:
    assert health(live) == {"status": status, "message": message}, case


def test_the_sandbox_has_no_string_library() -> None:
    """The sandbox is as poor as Argo CD's: were health.lua to use string.* it would fail here too."""
    live = obj("CostReport", 1)
    for script in ('return {status = string.format("%s", "Healthy"), message = ""}',
                   'return {status = ("healthy"):upper(), message = ""}',
                   'return {status = "Healthy", message = tostring(math.floor(1.5))}'):
        with pytest.raises(lua51.LuaError):
            health(live, script)
    assert health(live, 'return {status = "Healthy", message = "gen " .. obj.metadata.generation}') == {
        "status": "Healthy", "message": "gen 1"}


def _render(script: str) -> str:
    """argocd-cm.yaml as generated from SCRIPT: a merge patch naming the script once per kind."""
    lines = [
        "# Generated from health.lua by tests/unit/test_argocd_health.py: do not edit by hand; after a change",
        "# to health.lua run `KUBETALLY_UPDATE_ARGOCD=1 pytest tests/unit/test_argocd_health.py`.",
        "# A patch of Argo CD's ConfigMap argocd-cm: the kustomize Component (kustomization.yaml) applies it,",
        "# or: kubectl -n argocd patch configmap argocd-cm --type merge --patch-file argocd-cm.yaml",
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        "  name: argocd-cm",
        "data:",
    ]
    for kind in KINDS:
        lines.append(f"  resource.customizations.health.{GROUP}_{kind}: |")
        lines += [f"    {line}" if line else "" for line in script.splitlines()]
    return "\n".join(lines) + "\n"


def test_the_configmap_patch_carries_health_lua_under_each_kind() -> None:
    script = SCRIPT.read_text(encoding="utf-8")
    assert script.endswith("\n"), "a YAML `|` block keeps exactly one final newline"
    assert not script.endswith("\n\n"), "a YAML `|` block keeps exactly one final newline"
    assert "\t" not in script
    if os.environ.get("KUBETALLY_UPDATE_ARGOCD"):
        PATCH.write_text(_render(script), encoding="utf-8")
    assert PATCH.read_text(encoding="utf-8") == _render(script), (
        "manifests/argocd/argocd-cm.yaml is not health.lua's: KUBETALLY_UPDATE_ARGOCD=1 pytest " + __file__)
    patch = yaml.safe_load(PATCH.read_text(encoding="utf-8"))
    assert patch["data"] == {
        "resource.customizations.health.kubetally.io_CostReport": script,
        "resource.customizations.health.kubetally.io_CostWeights": script,
        "resource.customizations.health.kubetally.io_CostBudget": script,
    }


def test_the_group_and_kinds_are_the_crds() -> None:
    """The argocd-cm keys are `<group>_<kind>` of the CRDs kubetally installs: a new CRD (CostBudget)
    fails this until its kind joins KINDS (and argocd-cm.yaml is regenerated)."""
    crds = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted((ROOT / "crds").glob("*.yaml"))]
    assert {(crd["spec"]["group"], crd["spec"]["names"]["kind"]) for crd in crds} == {(GROUP, kind) for kind in KINDS}


def _kubectl(*args: str) -> str:
    result = subprocess.run([KUBECTL, *args], capture_output=True, text=True, check=False, timeout=60,
                            env={**os.environ, "KUBECONFIG": os.devnull})
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


# Argo CD's argocd-cm as its install.yaml ships it: no namespace (the overlay, or `kubectl -n`, sets it).
ARGOCD_METADATA: dict[str, Any] = {
    "name": "argocd-cm", "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"}}
ARGOCD_DATA = {"url": "https://argocd.example.com", "statusbadge.enabled": "true"}
ARGOCD_CM: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ARGOCD_METADATA, "data": ARGOCD_DATA}


def _write(directory: Path, kustomization: dict[str, Any], **files: dict[str, Any]) -> Path:
    directory.mkdir(parents=True)
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    for name, content in files.items():
        (directory / name).write_text(yaml.safe_dump(content), encoding="utf-8")
    return directory


@pytest.mark.parametrize("layout", ["namespace from the overlay", "namespace in the base"])
def test_the_component_patches_argocd_cm(tmp_path: Path, layout: str) -> None:
    """`kubectl kustomize` of an Argo CD install overlay with the Component: argocd-cm keeps its keys
    and gains one per kind, each health.lua's exact text, in namespace argocd."""
    in_base = layout == "namespace in the base"
    base_cm = {**ARGOCD_CM, "metadata": {**ARGOCD_METADATA, "namespace": "argocd"}} if in_base else ARGOCD_CM
    base = _write(tmp_path / "argocd", {"resources": ["install.yaml"]}, **{"install.yaml": base_cm})
    overlay: dict[str, Any] = {"resources": [os.path.relpath(base, tmp_path / "overlay")],
               "components": [os.path.relpath(COMPONENT, tmp_path / "overlay")]}
    if not in_base:
        overlay["namespace"] = "argocd"
    built = [doc for doc in yaml.safe_load_all(_kubectl("kustomize", str(_write(tmp_path / "overlay", overlay))))
             if doc]
    script = SCRIPT.read_text(encoding="utf-8")
    assert built == [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {**ARGOCD_METADATA, "namespace": "argocd"},
        "data": {**ARGOCD_DATA,
                 "resource.customizations.health.kubetally.io_CostReport": script,
                 "resource.customizations.health.kubetally.io_CostWeights": script,
                 "resource.customizations.health.kubetally.io_CostBudget": script},
    }]


def test_the_patch_applies_without_kustomize(tmp_path: Path) -> None:
    """The README's recipe without kustomize, `kubectl patch --type merge --patch-file argocd-cm.yaml`,
    here `--local` on a copy of argocd-cm: the other keys stay, one health key per kind is added."""
    live = {**ARGOCD_CM, "metadata": {**ARGOCD_METADATA, "namespace": "argocd"}}
    (tmp_path / "argocd-cm.yaml").write_text(yaml.safe_dump(live), encoding="utf-8")
    patched = yaml.safe_load(_kubectl("patch", "--local", "-f", str(tmp_path / "argocd-cm.yaml"), "--type", "merge",
                                      "--patch-file", str(PATCH), "-o", "yaml"))
    script = SCRIPT.read_text(encoding="utf-8")
    assert patched["metadata"] == live["metadata"]
    assert patched["data"] == {**ARGOCD_DATA,
                               "resource.customizations.health.kubetally.io_CostReport": script,
                               "resource.customizations.health.kubetally.io_CostWeights": script,
                               "resource.customizations.health.kubetally.io_CostBudget": script}

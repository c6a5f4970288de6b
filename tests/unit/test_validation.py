"""One validator: `kubetally validate`, the admission webhook and the InvalidSpec condition say the same.

The fixtures (tests/fixtures/invalid, one object each, schema-valid) name in their first line the field
the message must start with (hand-written). For every fixture:

- the handlers' own path refuses it: a CostWeights through `record_cost_weights` (what the CostWeights
  handler calls), a CostReport through `reports.compute_report` (what the CostReport handler calls);
  the SpecError's text is the InvalidSpec condition's message (`reports.failed_status`);
- `validation.check` raises the very same text, and so does the webhook's AdmissionReview answer
  (`allowed: false`, code 422, reason Invalid) and `kubetally validate` (exit 1);
- the repository's samples (manifests/samples) pass all three.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetally import reports, validation
from kubetally.api import admission
from kubetally.domain.errors import SpecError
from kubetally.ledger.pricebook import record_cost_weights
from kubetally.ledger.store import DuckDBLedger
from kubetally.service import CostService
from kubetally.sources.catalogue import SourceConfig
from kubetally.validate_cli import validate_command
from tests.unit.api.test_app import NoLiveData

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "invalid").glob("*.yaml"))
SAMPLES = sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
NOW = datetime(2026, 11, 30, 10, 7, 13, tzinfo=UTC)  # unaligned on purpose
RESOLUTION = 60


def load(path: Path) -> tuple[str, dict[str, Any]]:
    text = path.read_text()
    expected = text.splitlines()[0].removeprefix("# expect: ").strip()
    return expected, yaml.safe_load(text)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CostService]:
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    yield CostService(ledger, NoLiveData(), SourceConfig(cluster="c1", resolution_seconds=RESOLUTION),
                      clock=lambda: NOW.timestamp())
    ledger.close()


async def handler_message(service: CostService, obj: Mapping[str, Any]) -> str:
    """The InvalidSpec message the operator's handlers would write for `obj`."""
    async def handle() -> None:
        if obj["kind"] == "CostWeights":
            record_cost_weights(service.ledger, obj["metadata"]["name"], obj["spec"], observed_at=int(NOW.timestamp()))
        else:
            await reports.compute_report(service, obj["spec"], namespace=obj["metadata"]["namespace"],
                                         name=obj["metadata"]["name"], generation=1, now=NOW, project=None,
                                         isolated=False)

    with pytest.raises(SpecError) as refused:
        await handle()
    status = reports.failed_status(refused.value, generation=1, now=NOW)
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    return str(ready["message"])


def review(obj: Mapping[str, Any], operation: str = "CREATE", old: Mapping[str, Any] | None = None) -> dict[str, Any]:
    request = {"uid": "3f1c-77", "operation": operation, "object": obj}
    if old is not None:
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


#: A spec change that fixes nothing in any fixture (the UPDATE case): a field each kind accepts.
HARMLESS = {"CostReport": {"topN": 7}, "CostWeights": {"unitPrices": {
    "cpuCoreHour": "0.031611", "memoryGiBHour": "0.004237", "storageGiBHour": "0.0001"}}}


def touched(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {**obj, "spec": {**obj["spec"], **HARMLESS[obj["kind"]]}}


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
async def test_every_invalid_fixture_gets_the_conditions_message_everywhere(
        path: Path, service: CostService, capsys: pytest.CaptureFixture[str]) -> None:
    expected_field, obj = load(path)
    message = await handler_message(service, obj)
    assert message.startswith(f"{expected_field}")
    with pytest.raises(SpecError) as checked:
        validation.check(obj, now=NOW, resolution_seconds=RESOLUTION)
    assert str(checked.value) == message
    refused = {"uid": "3f1c-77", "allowed": False, "status": {
        "status": "Failure", "code": 422, "reason": "Invalid", "message": message}}
    assert admission.verdict(review(obj), now=NOW, resolution_seconds=RESOLUTION)["response"] == refused
    # An UPDATE is judged when it changes the spec; a metadata-only one (the operator's annotations on an
    # object admitted while it was down, a label) goes through.
    changed = admission.verdict(review(touched(obj), "UPDATE", old=obj), now=NOW, resolution_seconds=RESOLUTION)
    assert changed["response"] == refused
    labelled = {**obj, "metadata": {**obj["metadata"], "labels": {"team": "finops"}}}
    kept = admission.verdict(review(labelled, "UPDATE", old=obj), now=NOW, resolution_seconds=RESOLUTION)
    assert kept["response"] == {"uid": "3f1c-77", "allowed": True}
    assert validate_command([str(path)], [], resolution_seconds=RESOLUTION, now=NOW) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"invalid {validation.subject(obj)} ({path}): {message}",
                   "1 billing object(s): 0 valid, 1 invalid"]


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_the_samples_pass(path: Path) -> None:
    obj = yaml.safe_load(path.read_text())
    validation.check(obj, now=NOW, resolution_seconds=RESOLUTION)
    for operation in ("CREATE", "UPDATE"):
        answer = admission.verdict(review(obj, operation), now=NOW, resolution_seconds=RESOLUTION)
        assert answer == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                          "response": {"uid": "3f1c-77", "allowed": True}}


def test_deletes_and_other_groups_are_never_refused() -> None:
    _, bad = load(FIXTURES[0])
    assert admission.verdict(review(bad, "DELETE"), now=NOW, resolution_seconds=RESOLUTION)["response"]["allowed"]
    other = {**bad, "apiVersion": "example.io/v1"}
    assert admission.verdict(review(other), now=NOW, resolution_seconds=RESOLUTION)["response"]["allowed"]
    with pytest.raises(ValueError, match="AdmissionReview"):
        admission.verdict({"kind": "AdmissionReview", "request": {}}, now=NOW, resolution_seconds=RESOLUTION)
    with pytest.raises(SpecError, match="kind: 'CostBudgetz' is not a kind kubetally validates"):
        validation.check({**bad, "kind": "CostBudgetz"}, now=NOW, resolution_seconds=RESOLUTION)


def test_the_command_over_directories_kustomizations_and_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fixtures directory: 12 invalid, exit 1; the samples through `-k` (kubectl kustomize): 2 valid,
    exit 0; a missing file, a YAML error and no input at all: exit 2 with one `kubetally:` line."""
    assert validate_command([str(ROOT / "tests" / "fixtures" / "invalid")], [], resolution_seconds=RESOLUTION,
                            now=NOW) == 1
    assert capsys.readouterr().out.splitlines()[-1] == f"{len(FIXTURES)} billing object(s): 0 valid, " \
                                                       f"{len(FIXTURES)} invalid"
    assert len(FIXTURES) == 12
    assert validate_command([], [str(ROOT / "manifests" / "samples")], resolution_seconds=RESOLUTION, now=NOW) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "2 billing object(s): 2 valid, 0 invalid"
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: CostWeights\nspec: {currency: [\n")
    for paths in ([str(tmp_path / "nope.yaml")], [str(broken)], []):
        assert validate_command(paths, [], resolution_seconds=RESOLUTION, now=NOW) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert len(captured.err.splitlines()) == 1
        assert captured.err.startswith("kubetally: ")


async def test_the_webhook_route_reads_whole_bodies_and_refuses_what_is_not_a_review(tmp_path: Path) -> None:
    """POST /validate over HTTP (aiohttp's test server): a review of ~300 KiB (an object with a big
    annotation, as GitOps tools write; it arrives in many chunks) gets the fixture's verdict; a body that
    is not JSON, or JSON that is not a review, is a 400 Status; so is a body over 1 MiB, by its size."""
    from aiohttp.test_utils import TestClient, TestServer

    from kubetally.api.app import build_app
    from kubetally.api.metrics import Metrics

    async def ready() -> bool:
        return True

    _, bad = load(FIXTURES[0])
    big = {**bad, "metadata": {**bad["metadata"], "annotations": {"example.com/notes": "x" * 300_000}}}
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    service = CostService(ledger, NoLiveData(), SourceConfig(cluster="c1", resolution_seconds=RESOLUTION),
                          clock=lambda: NOW.timestamp())
    async with TestClient(TestServer(build_app(service, Metrics(), ready))) as client:
        answer = await client.post("/validate", data=io.BytesIO(orjson_dumps(review(big))),
                                   headers={"Content-Type": "application/json"})
        assert answer.status == 200
        body = await answer.json()
        assert body["response"]["allowed"] is False
        with pytest.raises(SpecError) as expected:
            validation.check(bad, now=NOW, resolution_seconds=RESOLUTION)
        assert body["response"]["status"]["message"] == str(expected.value)
        for data in (b"{not json", b"[1, 2]", orjson_dumps({"kind": "AdmissionReview"})):
            refused = await client.post("/validate", data=data, headers={"Content-Type": "application/json"})
            assert refused.status == 400
            status = await refused.json()
            assert (status["kind"], status["code"]) == ("Status", 400)
            assert "accepts an admission.k8s.io/v1 AdmissionReview" in status["message"]
        too_big = await client.post("/validate", data=io.BytesIO(b" " * (2 * 1024 * 1024)))
        assert too_big.status == 400
        assert "at most 1048576 bytes" in (await too_big.json())["message"]
    ledger.close()


def orjson_dumps(value: object) -> bytes:
    import orjson

    return orjson.dumps(value)

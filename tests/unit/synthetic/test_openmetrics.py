"""The OpenMetrics writer: syntax, ordering, escaping, the series the ingest reads, and promtool."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from kubetally.synthetic import generate, tiny, write_openmetrics
from kubetally.synthetic.model import Cluster
from kubetally.synthetic.openmetrics import escape
from tests.unit.synthetic.micro import MIB, T10, at, cluster, container, pod, spec

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\} (\S+) (\d+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _text(c: Cluster, start: int | None = None, end: int | None = None) -> tuple[str, int]:
    out = io.StringIO()
    count = write_openmetrics(c, out, start, end)
    return out.getvalue(), count


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def _samples(text: str) -> list[tuple[str, dict[str, str], str, int]]:
    """(name, labels, value text, timestamp) of every sample line, asserting the line syntax."""
    rows = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = _LINE.match(line)
        assert match, line
        labels = {k: _unescape(v) for k, v in _LABEL.findall(match.group(2))}
        rows.append((match.group(1), labels, match.group(3), int(match.group(4))))
    return rows


Sample = tuple[str, dict[str, str], str, int]


@pytest.fixture(scope="module")
def tiny_text() -> tuple[Cluster, str, int]:
    c = generate(tiny())
    text, count = _text(c)
    return c, text, count


@pytest.fixture(scope="module")
def tiny_samples(tiny_text: tuple[Cluster, str, int]) -> list[Sample]:
    return _samples(tiny_text[1])


def test_escape() -> None:
    assert escape('a"b\\c{d}|e') == 'a\\"b\\\\c{d}|e'
    assert escape("x\ny") == "x\\ny"


def test_hostile_label_is_escaped(tiny_text: tuple[Cluster, str, int], tiny_samples: list[Sample]) -> None:
    _, text, _ = tiny_text
    assert 'label_team="a\\"b\\\\c{d}|e"' in text
    teams = {labels.get("label_team") for name, labels, _, _ in tiny_samples if name == "kube_pod_labels"}
    assert 'a"b\\c{d}|e' in teams


def test_families_are_contiguous_and_series_in_time_order(tiny_text: tuple[Cluster, str, int]) -> None:
    _, text, count = tiny_text
    assert text.endswith("# EOF\n")
    lines = text.splitlines()
    types = [line.split()[2:] for line in lines if line.startswith("# TYPE")]
    assert len({name for name, _ in types}) == len(types)
    family, kind, seen, last_time = "", "", set(), {}
    series_order: list[str] = []
    for line in lines[:-1]:
        if line.startswith("# TYPE"):
            _, _, family, kind = line.split()
            continue
        name = line.split("{", 1)[0]
        assert name == (f"{family}_total" if kind == "counter" else family)
        series, _, rest = line.rpartition("} ")
        t = int(rest.split()[1])
        assert t > last_time.get(series, -1), "samples of a series in time order"
        if series not in seen:
            seen.add(series)
            series_order.append(series)
        else:
            assert series_order[-1] == series, "series are contiguous"
        last_time[series] = t
    assert len(series_order) > 100
    assert sum(1 for line in lines if not line.startswith("#")) == count


def test_samples_on_grid_and_never_in_gaps(tiny_text: tuple[Cluster, str, int], tiny_samples: list[Sample]) -> None:
    c, _, count = tiny_text
    spec = c.spec
    ((g0, g1),) = spec.gaps
    assert len(tiny_samples) == count
    times = {t for _, _, _, t in tiny_samples}
    assert all(t % spec.scrape_seconds == 0 and spec.start <= t < spec.end for t in times)
    assert not [t for t in times if g0 <= t < g1]


def test_every_series_has_cluster_job_instance_and_ksm_is_duplicated(tiny_samples: list[Sample]) -> None:
    samples = tiny_samples
    assert all({"cluster", "job", "instance"} <= set(labels) for _, labels, _, _ in samples)
    ksm = Counter(labels["instance"] for name, labels, _, _ in samples if name.startswith("kube_"))
    assert ksm == {"10.0.0.10:8080": ksm["10.0.0.10:8080"], "10.0.0.11:8080": ksm["10.0.0.10:8080"]}
    names = {name for name, _, _, _ in samples}
    assert {"kube_pod_container_status_running", "container_cpu_usage_seconds_total", "node_total_hourly_cost",
            "kube_resourcequota", "kubelet_volume_stats_used_bytes",
            "kube_pod_spec_volumes_persistentvolumeclaims_info", "kube_replicaset_owner"} <= names


def test_pending_pod_series(tiny_text: tuple[Cluster, str, int], tiny_samples: list[Sample]) -> None:
    c, _, _ = tiny_text
    (pending,) = [p for p in c.pods if p.pending]
    samples = [(n, labels, v) for n, labels, v, _ in tiny_samples if labels.get("pod") == pending.name]
    assert {v for n, _, v in samples if n == "kube_pod_container_status_running"} == {"0"}
    assert any(n == "kube_pod_container_resource_requests" for n, _, _ in samples)
    assert any(n == "kube_pod_info" and labels["node"] == pending.node for n, labels, _ in samples)
    assert not [n for n, _, _ in samples if n.startswith("container_")]


def test_micro_pod_lines() -> None:
    """Pod started 09:59:30 with rate 0.75: at 10:00 the counter is 0.75·30 = 22.5, at 10:01 67.5.
    The pod-level cgroup adds the pause container (1/4096 core); a POD series exists; requests carry
    the node; the running gauge is 1; the working set is the constant 50 MiB."""
    c = cluster(pod("p", at(-0.5), at(2), container(memory_span=0)), spec=spec(duplicate_ksm=False))
    text, count = _text(c, T10, at(2))
    lines = text.splitlines()
    cpu = [line for line in lines if line.startswith("container_cpu_usage_seconds_total{") and 'container="app"' in line]
    assert [line.rsplit(" ", 2)[1:] for line in cpu] == [["22.5", str(at(0))], ["67.5", str(at(1))]]
    pod_level = [line for line in lines if 'container=""' in line and line.startswith("container_cpu")]
    assert pod_level[0].rsplit(" ", 2)[1] == repr((0.75 + 1 / 4096) * 30)
    assert any('container="POD"' in line for line in lines)
    running = [line for line in lines if line.startswith("kube_pod_container_status_running{")]
    assert running[0] == (
        f'kube_pod_container_status_running{{cluster="c1",container="app",instance="10.0.0.10:8080",'
        f'job="kube-state-metrics",namespace="shop",pod="p",uid="uid-p"}} 1 {at(0)}'
    )
    requests = [line for line in lines if line.startswith("kube_pod_container_resource_requests{")]
    assert any('node="n1",pod="p",resource="cpu"' in line and line.endswith(f" 0.5 {at(0)}") for line in requests)
    memory = [line for line in lines if line.startswith("container_memory_working_set_bytes{") and 'container="app"' in line]
    assert memory[0].endswith(f" {50 * MIB} {at(0)}")
    assert count == len([line for line in lines if not line.startswith("#")])


def test_windows_partition_the_samples(tiny_text: tuple[Cluster, str, int]) -> None:
    c, _, count = tiny_text
    middle = c.spec.start + 3600
    assert _text(c, None, middle)[1] + _text(c, middle, None)[1] == count


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_backfills_every_sample(tmp_path: Path, tiny_text: tuple[Cluster, str, int]) -> None:
    """promtool accepts the text, and its blocks hold every sample: promtool silently drops samples
    that are out of order within a series, so the count is the real check."""
    _, text, count = tiny_text
    source = tmp_path / "tiny.om"
    source.write_text(text)
    result = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(tmp_path / "data")],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    header, *rows = [line for line in result.stdout.splitlines() if line.strip()]
    position = header.index("NUM SAMPLES")
    blocks = [int(row[position:].split()[0]) for row in rows]
    assert sum(blocks) == count

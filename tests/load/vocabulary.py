"""Valid parameter values for one generated cluster, and the malformed ones per parameter.

Why: a hostile value only reaches deep code (the engine's SQL, the live collection, the CSV writer)
when every other parameter of the request is valid, so the fuzz (`tests.load.cases`) starts from a
valid request built from these values and breaks one or two parts of it. Names come from the
generated cluster itself (its namespaces, projects, nodes, controllers, label keys and values,
including the hostile label value `a"b\\c{d}|e` of the `small` preset), so filters select real rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from kubetally.synthetic import Cluster
from tests.support.hostile import UNALLOCATED

FILTER_FIELDS = ("cluster", "node", "namespace", "controllerName", "controller", "controllerKind", "pod", "project")
OPERATORS = (":", "!:", "~:", "!~:", "<~:", "!<~:", "~>:", "!~>:")
AGGREGATE_KEYS = ("pod", "namespace", "controller", "controllerKind", "node", "cluster", "project")
TIME_ZONES = ("UTC", "Asia/Shanghai", "America/New_York", "Asia/Kathmandu", "+08:00", "-03:30", "+05:45",
              "Australia/Lord_Howe", "Pacific/Chatham", "Etc/GMT+12", "Europe/London")
RELATIVE_WINDOWS = ("1h", "2h", "3h", "12h", "24h", "2d", "7d", "2w", "30m", "90m", "15m", "400d", "today",
                    "yesterday", "week", "lastweek", "month", "lastmonth", "Today", " 7d ")
STEPS = ("1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d", "24h", "36h", "5h", "7h", "1w", "2d", "3d")

#: Malformed values per parameter (besides `tests.support.hostile.NASTY`, used for every parameter).
MALFORMED: dict[str, tuple[str, ...]] = {
    "window": ("", " ", "7", "d", "-7d", "0d", "0h", "0m", "1e3h", "7 d", "1y", "P7D", "now", "tomorrow",
               "401d", "3651d", "99999999999d", "9" * 30 + "s", "2026-01-01T00:00:00Z", "2026-01-01",
               "2026-01-02,2026-01-01", "2026-02-30,2026-03-01", "0,0", "-1,1", "1,2,3", ",", "1767225600,",
               "253402300800,253402300900", "1767225600,1767225601", "1767225600.5,1767229200",
               "2026-01-01T00:00:00,2026-01-01T02:00:00", "2026-01-01T25:00:00Z,2026-01-02T00:00:00Z",
               "2026-01-01T00:00:00+99:00,2026-01-02T00:00:00Z", "lastyear", "thisweek", "yesterday,today",
               "2026-01-01 00:00:00,2026-01-02 00:00:00", "20260101,20260102"),
    "step": ("0", "0h", "0s", "-1h", "-1d", "1s", "59s", "61s", "1m", "5m", "7m", "30m", "45m", "90m", "1.5h",
             "1h30m", "1e9h", "9" * 25 + "h", "10000d", "100w", "h", "1", "3600", "1H", "1D", "P1D", "day"),
    "aggregate": ("", ",", "namespace,", ",namespace", "namespace,,pod", "label", "label:", "label: ", "labels:app",
                  "Namespace", "namespace,namespace", "label:app.name,label:app_name", "deployment", "service",
                  "namespace;pod", "namespace pod", "label:" + "k" * 200, "container"),
    "filter": ('namespace:"', 'namespace:ns', "namespace:", 'namespace="a"', 'namespace:"a"+', 'namespace:"a"|',
               'foo:"a"', 'label[:"a"', 'label[]:"a"', 'label[a:"b"', "(" * 40 + 'namespace:"a"' + ")" * 40,
               'namespace:"a"))', '((namespace:"a")', 'namespace~:"__unallocated__"', 'namespace:"a",',
               'namespace!!:"a"', 'NAMESPACE:"a"', 'namespace:"a" AND pod:"b"', 'namespace:"\\'),
    "idle": ("yes", "no", "TRUE ", "2", "-1", "t", "on"),
    "shareIdle": ("yes", "2", "weighted"),
    "idleByNode": ("yes", "node"),
    "shareSplit": ("proportional", "weighted,even", "0"),
    "format": ("xml", "CSV;", "json,csv", "yaml", "html"),
    "method": ("ProjectQuota", "request,usage", "max", "Requests", "effective "),
    "customWeights": ("nope", "Default", "-a", "a_b", "a..b", "x" * 254, "kube-system/default", "missing-weights"),
    "timeZone": ("Mars/Olympus", "+25:00", "+08", "UTC+8", "GMT+8", "../../etc/localtime", "Etc/../UTC",
                 "/usr/share/zoneinfo/UTC", "utc ", "Asia/Shanghai\x00", "+08:00:00", "-24:00", "Z", "local"),
    "start": ("2026-02-30", "2026-13-01", "2026-00-10", "0000-01-01", "9999-12-31", "10000-01-01", "2026/01/01",
              "01-01-2026", "2026-1-1", "1767225600", "2026-01-01T00:00:00Z", "202601011", "today"),
    "end": ("2026-02-30", "2031-01-02", "2019-01-01", "9999-12-31", "99991231", "2026-01-01T00:00:00Z", "yesterday"),
    "kind": ("pod", "namespaces", "all", "project-all", "NAMESPACE_ALL ", "cluster,namespace"),
    "name": ("x" * 254,),
    "item": ("cpu,memory", "Gpu", "storage-class", "CPU "),
    "currentPage": ("0", "-1", "1.5", "1e3", "1000000000", "9" * 40, "٣", "0x10", "+1"),
    "pageSize": ("0", "1001", "-20", "20.0", "all", "9" * 40),
}


@dataclass(frozen=True)
class Vocabulary:
    """Real names of the served cluster, and its first and last day (UTC dates)."""

    namespaces: tuple[str, ...]
    projects: tuple[str, ...]
    nodes: tuple[str, ...]
    controllers: tuple[str, ...]
    pods: tuple[str, ...]
    label_keys: tuple[str, ...]
    label_values: tuple[str, ...]
    first_day: str
    last_day: str
    start: int
    end: int

    @classmethod
    def of(cls, cluster: Cluster) -> Vocabulary:
        pods = cluster.pods
        return cls(
            namespaces=tuple(sorted({ns.name for ns in cluster.namespaces})),
            projects=tuple(sorted({ns.project for ns in cluster.namespaces if ns.project})),
            nodes=tuple(sorted(node.name for node in cluster.nodes)),
            controllers=tuple(sorted({name for pod in pods for _, name in [cluster.controller_of(pod)] if name})),
            pods=tuple(sorted(pod.name for pod in pods))[:200],
            label_keys=tuple(sorted({key for pod in pods for key, _ in pod.labels})),
            label_values=tuple(sorted({value for pod in pods for _, value in pod.labels})),
            first_day=_day(cluster.spec.start),
            last_day=_day(cluster.spec.end - 1),
            start=cluster.spec.start,
            end=cluster.spec.end,
        )


def _day(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def quoted(value: str) -> str:
    """A filter string literal: only `"` and `\\` are escaped (domain.filters)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rfc3339(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Valid:
    """Draws valid (often hostile-looking) values for one parameter from a `Vocabulary`."""

    def __init__(self, vocabulary: Vocabulary, rng: random.Random) -> None:
        self.v, self.rng = vocabulary, rng

    def window(self) -> str:
        rng, v = self.rng, self.v
        a = v.start + rng.randrange(-7200, v.end - v.start, 60) + rng.choice((0, 0, 17, 59))
        b = a + rng.choice((60, 3600, 3600 * 5 + 1020, 86400, 3 * 86400 + 1, 40 * 86400))
        forms = (
            lambda: rng.choice(RELATIVE_WINDOWS),
            lambda: f"{rfc3339(a)},{rfc3339(b)}",
            lambda: f"{a},{b}",
            lambda: f"{v.first_day},{v.last_day}",
            lambda: f"{datetime.fromtimestamp(a, UTC).astimezone().isoformat()},{rfc3339(b)}",
            lambda: f"{rfc3339(v.end + 86400 * rng.randrange(1, 300))},{rfc3339(v.end + 86400 * 330)}",  # future
        )
        return rng.choice(forms)()

    def step(self) -> str:
        return self.rng.choice(STEPS)

    def aggregate(self) -> str:
        rng = self.rng
        keys = [*AGGREGATE_KEYS, *(f"label:{key}" for key in self.v.label_keys), "label:absent",
                "label:" + rng.choice(('a"b', "é", "{x}", "a|b", ".*", "$", "app\\")), " namespace "]
        return ",".join(rng.sample(keys, rng.choice((1, 1, 1, 2, 3))))

    def condition(self) -> str:
        rng, v = self.rng, self.v
        if rng.random() < 0.3:
            field = f"label[{rng.choice((*v.label_keys, 'absent', 'é', 'a b', '{x}'))}]"
            pool = v.label_values
        else:
            field = rng.choice(FILTER_FIELDS)
            pool = {"namespace": v.namespaces, "project": v.projects, "node": v.nodes, "pod": v.pods,
                    "controller": v.controllers, "controllerName": v.controllers,
                    "controllerKind": ("Deployment", "StatefulSet", "DaemonSet", "Job")}.get(field, ("c1",))
        operator = rng.choice(OPERATORS)
        hostile = ('a"b\\c{d}|e', "", " ", ".*", "$", "\\", '"', "é", "名前", "{", "}", "|", "\n", "\x00")
        values = [rng.choice(pool) if rng.random() < 0.6 else rng.choice(hostile)
                  for _ in range(rng.choice((1, 1, 2, 3)))]
        if operator in (":", "!:") and rng.random() < 0.3:
            values.append(UNALLOCATED)
        return field + operator + ",".join(quoted(value) for value in values)

    def filter(self) -> str:
        rng = self.rng
        shape = rng.random()
        if shape < 0.6:
            return rng.choice(("+", " ", "|")).join(self.condition() for _ in range(rng.choice((1, 1, 2, 3))))
        if shape < 0.8:
            return f"({self.condition()}|{self.condition()})+{self.condition()}"
        # a big valid filter: many conditions (each with up to four values), up to near the 16 KiB cap
        joiner, target = rng.choice(("|", "+")), rng.choice((2000, 8000, 16000))
        text = self.condition()
        while True:
            longer = text + joiner + self.condition()
            if len(longer.encode()) > min(target, 16384):
                return text
            text = longer

    def value(self, name: str) -> str:
        rng, v = self.rng, self.v
        simple: dict[str, tuple[str, ...]] = {
            "idle": ("true", "false", "1", "0", "TRUE"), "shareIdle": ("true", "false"),
            "idleByNode": ("true", "false"), "shareSplit": ("weighted", "even", "EVEN"),
            "format": ("json", "csv", "CSV"), "method": ("Request", "Usage", "Effective", "effective"),
            "customWeights": ("default",), "timeZone": TIME_ZONES,
            "start": (v.first_day, v.first_day.replace("-", "")), "end": (v.last_day, "2026-01-31", "2026-12-31"),
            "kind": ("project", "namespace", "cluster", "project_all", "namespace_all", "cluster_all"),
            "item": ("Cpu", "Memory", "Storage", "cpu"), "currentPage": ("1", "2", "1000", "999999999", "007"),
            "pageSize": ("1", "20", "1000"), "usage_step": ("day", "week", "month", "DAY"),
        }
        if name in simple:
            return rng.choice(simple[name])
        if name == "name":
            pool = (*v.namespaces, *v.projects, "c1", "absent", 'a"b', UNALLOCATED, "é", "x" * 253)
            return rng.choice(pool)
        return str(getattr(self, name)())

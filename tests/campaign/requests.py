"""Random valid requests to both APIs, drawn from one seeded `random.Random`.

Why: users combine every window form with steps, groupings, filters, idle options, methods, formats and
time zones; the campaign draws those combinations and keeps, next to each request's text, what the
oracle needs (`V2` and `Usage`), so nothing is parsed back from the text by the code under test.

A `Case` is one request or a group checked together: a stepped query and its unstepped twin (Σ sets =
unstepped), a CSV query and its JSON twin (CSV = JSON), and /v2/cost by namespace with the Alauda Cpu and
Memory items of the same dates and method (same money). Absolute windows are drawn around the server's
starting instant and rarely reach past it (by at most an hour, or to tomorrow's midnight for 3% of date
pairs): the generated data continues past `now` (the clock runs), and the server collects every future
hour live from Prometheus (~20 queries each). A few requests are meant to hit a documented cap
(at most 2000 sets, windows of at most 400 days) and must then answer 400 naming it. In zones whose
midnights are not whole UTC hours, stepped windows are kept to 6 set boundaries (see `V2` drawing): each
boundary inside an hour costs the server two live collections.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.vocabulary import Method, ShareSplit
from tests.campaign import filters
from tests.campaign.cluster import CUSTOM
from tests.campaign.windows import KEYWORDS, floor60, local_date, resolve, zone

ALAUDA = "/platform/cost.alauda.io/v1beta1"
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu",
         "Australia/Adelaide", "+05:45", "-03:30", "+08:00")
#: Zones whose midnights are not whole UTC hours: their sub-day sets cut every hour in two live pieces.
HALF_HOUR_ZONES = {"Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide", "+05:45", "-03:30"}
STEPS = ("1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d", "2d", "3d", "1w", "2w", "5h", "7h", "36h", "24h", "60m",
         "168h", "48h", "10h")
AGGREGATES = ("pod", "namespace", "controller", "controllerKind", "node", "cluster", "project", "label:app",
              "label:team", "label:app.kubernetes.io/name", "namespace,label:app", "project,namespace",
              "label:team,namespace", "controllerKind,node", "cluster,project,label:app")


@dataclass(frozen=True)
class V2:
    """A /v2/cost request as the oracle reads it."""

    window: str
    form: str
    step: int | None
    tz: str | None
    aggregate: tuple[AggregateKey, ...]
    filter: filters.Node | None
    idle: bool
    share_idle: bool
    share_split: ShareSplit
    idle_by_node: bool
    method: Method
    csv: bool
    custom: bool
    cap: str | None = None  # the documented cap this request is meant to hit


@dataclass(frozen=True)
class Usage:
    """An Alauda usage request as the oracle reads it."""

    first: date
    last: date
    step: str
    tz: str | None
    kind: str
    name: str | None
    item: str
    method: str
    project: str | None
    page: int
    size: int


@dataclass
class Request:
    path: str
    params: list[tuple[str, str]]
    spec: V2 | Usage
    curl: bool = False

    @property
    def api(self) -> str:
        if self.path == "/v2/cost":
            return "v2-csv" if isinstance(self.spec, V2) and self.spec.csv else "v2-json"
        return "alauda-project" if "/projects/" in self.path else "alauda"


@dataclass
class Case:
    kind: str  # single | twin-unstepped | twin-json | same-money
    requests: list[Request] = field(default_factory=list)


def _pick(rng: random.Random, *choices: tuple[float, str | None]) -> str | None:
    roll, total = rng.random() * sum(w for w, _ in choices), 0.0
    for weight, value in choices:
        total += weight
        if roll < total:
            return value
    return choices[-1][1]


def _aggregate(text: str) -> tuple[AggregateKey, ...]:
    keys = []
    for part in text.split(","):
        if part.startswith("label:"):
            keys.append(AggregateKey(Dimension.LABEL, part[len("label:"):]))
        else:
            keys.append(AggregateKey(Dimension(part)))
    return tuple(keys)


class Generator:
    """Draws cases; `now` is the server's starting instant, `vocabulary` the cluster's values."""

    def __init__(self, seed: int, now: int, vocabulary: filters.Vocabulary, projects: list[str]) -> None:
        self.rng = random.Random(seed ^ 0x5EED)
        self.now = now
        self.vocabulary = vocabulary
        self.projects = projects
        self.count = 0

    def cases(self, total: int) -> Iterator[Case]:
        """Cases until `total` requests have been drawn; every 40th request goes through real curl."""
        while self.count < total:
            case = self.case()
            for request in case.requests:
                self.count += 1
                request.curl = self.count % 40 == 0
            yield case

    def case(self) -> Case:
        roll = self.rng.random()
        if roll < 0.05:
            return self.same_money()
        if roll < 0.28:
            return Case("single", [self.usage()])
        request = self.v2()
        assert isinstance(request.spec, V2)
        if request.spec.step is not None and request.spec.cap is None and not request.spec.csv and \
                self.rng.random() < 0.3:
            return Case("twin-unstepped", [request, self.without_step(request)])
        if request.spec.csv and self.rng.random() < 0.5:
            return Case("twin-json", [request, self.as_json(request)])
        return Case("single", [request])

    # --- /v2/cost ------------------------------------------------------------------------------

    def window(self, tz: str | None) -> tuple[str, str]:
        rng, form = self.rng, _pick(self.rng, (30, "keyword"), (25, "duration"), (15, "rfc3339"), (12, "unix"),
                                    (15, "date")) or "keyword"
        if form == "keyword":
            word = rng.choice(KEYWORDS)
            return word, (word.upper() if rng.random() < 0.05 else word)
        if form == "duration":
            unit = _pick(rng, (3, "m"), (4, "h"), (3, "d"), (0.5, "w"), (0.5, "s")) or "h"
            top = {"m": 720, "h": 200, "d": 9, "w": 2, "s": 86400}[unit]
            return "duration", f"{rng.randint(60 if unit == 's' else 1, top)}{unit}"
        if form == "date":
            today = local_date(self.now, zone(tz))
            first = today - timedelta(days=rng.randint(0, 9))
            last = min(first + timedelta(days=rng.randint(1, 5)), today + timedelta(days=rng.random() < 0.03))
            if last <= first:
                last = first + timedelta(days=1)
            return "date", f"{first.isoformat()},{last.isoformat()}"
        start = self.now - rng.randint(-1800, 8 * 86400)
        length = rng.choice([rng.randint(60, 3 * 3600), rng.randint(3600, 3 * 86400), rng.randint(86400, 9 * 86400)])
        end = min(start + length, self.now + (rng.randint(0, 3600) if rng.random() < 0.1 else 0))
        if end <= start + 60:
            start = end - 3600
        if form == "unix":
            return "unix", f"{start},{end}"
        offset = rng.choice([0, 0, 8 * 60, -5 * 60, 330, 345])
        return "rfc3339", f"{_rfc3339(start, offset, rng)},{_rfc3339(end, offset, rng)}"

    def v2(self) -> Request:
        rng = self.rng
        tz = _pick(rng, (45, None), *((55 / len(ZONES), z) for z in ZONES))
        form, window = self.window(tz)
        step_text = None if rng.random() < 0.35 else rng.choice(STEPS)
        cap = None
        if rng.random() < 0.025:
            cap, form = rng.choice([("sets", "cap-sets"), ("window", "cap-window")])
            window, step_text = ("90d", "1h") if cap == "sets" else (f"{rng.randint(401, 3000)}d", step_text)
        step = None if step_text is None else int(step_text[:-1]) * {"m": 60, "h": 3600, "d": 86400, "w": 604800}[
            step_text[-1]]
        if tz in HALF_HOUR_ZONES and step is not None and cap is None and (step % 86400 == 0 or 86400 % step == 0):
            # Sets there start at :30 or :45 past an hour: the server collects every hour such a set boundary
            # cuts live from Prometheus, in two pieces (~10 queries each). Windows stay within 6 such cuts.
            longest = 6 * min(step, 86400)
            if max(b - a for a, b in resolve(window, floor60(self.now), zone(tz))) > longest:
                window, form = f"{rng.randint(1, longest // 3600)}h", "duration"
        aggregate = rng.choice(AGGREGATES)
        flt = None if rng.random() < 0.45 else filters.random_filter(rng, self.vocabulary)
        params: list[tuple[str, str]] = [("window", window)]
        if step_text is not None:
            params.append(("step", step_text))
        if aggregate != "pod" or rng.random() < 0.3:
            params.append(("aggregate", aggregate))
        if flt is not None:
            params.append(("filter", filters.render(flt, rng)))
        idle = self._flag(params, "idle", True)
        share_idle = self._flag(params, "shareIdle", False)
        split = _pick(rng, (60, None), (20, "weighted"), (15, "even"), (5, "Even"))
        if split is not None:
            params.append(("shareSplit", split))
        by_node = self._flag(params, "idleByNode", False)
        method = _pick(rng, (40, None), (20, "Request"), (15, "Usage"), (20, "Effective"), (5, "effective"))
        if method is not None:
            params.append(("method", method))
        fmt = _pick(rng, (60, None), (15, "json"), (25, "csv"))
        if fmt is not None:
            params.append(("format", fmt))
        custom = rng.random() < 0.15
        if custom:
            params.append(("customWeights", CUSTOM))
        if tz is not None:
            params.append(("timeZone", tz))
        rng.shuffle(params)
        spec = V2(window=window, form=form, step=step, tz=tz, aggregate=_aggregate(aggregate), filter=flt, idle=idle,
                  share_idle=share_idle, share_split=ShareSplit((split or "weighted").lower()), idle_by_node=by_node,
                  method=Method((method or "Request").capitalize()), csv=fmt == "csv", custom=custom, cap=cap)
        return Request("/v2/cost", params, spec)

    def _flag(self, params: list[tuple[str, str]], name: str, default: bool) -> bool:
        text = _pick(self.rng, (55, None), (20, "true"), (15, "false"), (5, "1"), (5, "0"))
        if text is None:
            return default
        params.append((name, text))
        return text in ("true", "1")

    @staticmethod
    def without_step(request: Request) -> Request:
        assert isinstance(request.spec, V2)
        params = [(k, v) for k, v in request.params if k not in ("step", "format")]
        return Request(request.path, params, replace(request.spec, step=None, csv=False))

    @staticmethod
    def as_json(request: Request) -> Request:
        assert isinstance(request.spec, V2)
        params = [(k, v) for k, v in request.params if k != "format"]
        return Request(request.path, params, replace(request.spec, csv=False))

    # --- Alauda --------------------------------------------------------------------------------

    def usage(self, first: date | None = None, last: date | None = None, method: str | None = None,
              item: str | None = None, tz: str | None = None, period: str | None = None) -> Request:
        """A random Alauda request; given `period` (a same-money case), all namespaces of those dates."""
        whole = period is not None
        rng = self.rng
        if tz is None and first is None:
            tz = _pick(rng, (60, None), *((40 / len(ZONES), z) for z in ZONES))
        today = local_date(self.now, zone(tz))
        if first is None or last is None:
            first = today - timedelta(days=rng.randint(0, 9))
            last = min(first + timedelta(days=rng.randint(0, 10)), today)
        project = None if whole or rng.random() < 0.7 else rng.choice([*self.projects, "ghost"])
        kinds = ["namespace_all"] if whole else ["project_all", "namespace_all", "cluster_all", "project",
                                                  "namespace", "cluster"]
        kind = rng.choice(kinds)
        name = None
        if kind == "project" and project is not None:
            name = project if rng.random() < 0.5 else None  # the path's project, named or implied
        elif kind == "project":
            name = rng.choice([*self.projects, "ghost"])
        elif kind == "namespace":
            name = rng.choice(list(self.vocabulary.values["namespace"]))
        elif kind == "cluster":
            name = "c1"
        step = period or _pick(rng, (30, None), (25, "day"), (20, "week"), (25, "month"))
        item = item or _pick(rng, (30, None), (30, "Memory"), (15, "Cpu"), (25, "Storage"))
        method = method or _pick(rng, (30, None), (20, "Request"), (20, "Usage"), (15, "Effective"),
                                 (15, "ProjectQuota"))
        compact = rng.random() < 0.3
        params = [("start", first.strftime("%Y%m%d" if compact else "%Y-%m-%d")),
                  ("end", last.strftime("%Y%m%d" if compact else "%Y-%m-%d"))]
        for key, value in (("step", step), ("kind", None if kind == "project_all" and rng.random() < 0.5 else kind),
                           ("name", name), ("item", item), ("method", method), ("timeZone", tz)):
            if value is not None:
                params.append((key, value))
        page, size = 1, 20
        if whole or rng.random() < 0.4:
            size = 1000
            params.append(("pageSize", "1000"))
        elif rng.random() < 0.3:
            page, size = rng.randint(1, 3), rng.randint(1, 15)
            params += [("currentPage", str(page)), ("pageSize", str(size))]
        rng.shuffle(params)
        path = f"{ALAUDA}/projects/{project}/costs/usage" if project else f"{ALAUDA}/costs/usage"
        if kind == "project" and project is not None:
            name = project
        spec = Usage(first=first, last=last, step=step or "month", tz=tz, kind=kind, name=name, item=item or "Cpu",
                     method=method or "Effective", project=project, page=page, size=size)
        return Request(path, params, spec)

    def same_money(self) -> Case:
        """/v2/cost by namespace (no idle) and Alauda Cpu + Memory for the same past dates and method."""
        rng = self.rng
        tz = _pick(rng, (50, None), *((50 / len(ZONES), z) for z in ZONES))
        today = local_date(self.now, zone(tz))
        first = today - timedelta(days=rng.randint(1, 7))
        last = min(first + timedelta(days=rng.randint(0, 3)), today - timedelta(days=1))
        method = rng.choice(["Request", "Usage", "Effective"])
        # The same cuts on both sides: Alauda prices each period's part of an hour a local midnight cuts
        # apart (a +05:45 zone), and so does /v2/cost with sets on the same midnights (conservation and
        # idle shares are per priced piece); a month period only where the dates stay in one month.
        period, step = rng.choice([("day", "1d"), ("week", "1w"), ("month", None)])
        if period == "month" and first.month != last.month:
            period, step = "day", "1d"
        params = [("window", f"{first.isoformat()},{(last + timedelta(days=1)).isoformat()}"),
                  ("aggregate", "namespace"), ("idle", "false"), ("method", method)]
        if step is not None:
            params.append(("step", step))
        if tz is not None:
            params.append(("timeZone", tz))
        v2 = Request("/v2/cost", params, V2(
            window=params[0][1], form="date", step=None if step is None else {"1d": 86400, "1w": 604800}[step], tz=tz, aggregate=_aggregate("namespace"), filter=None,
            idle=False, share_idle=False, share_split=ShareSplit.WEIGHTED, idle_by_node=False, method=Method(method),
            csv=False, custom=False))
        cpu = self.usage(first, last, method, "Cpu", tz, period)
        memory = self.usage(first, last, method, "Memory", tz, period)
        return Case("same-money", [v2, cpu, memory])


def _rfc3339(t: int, offset_minutes: int, rng: random.Random) -> str:
    local = datetime.fromtimestamp(t, UTC) + timedelta(minutes=offset_minutes)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if rng.random() < 0.1:
        text += f".{rng.randint(0, 999):03d}"
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    return text + f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"

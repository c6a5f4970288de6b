"""Seeded hostile requests for every route of `kubetally serve` (the loaded-ledger fuzz).

Case `i` of seed `s` is drawn from its own `random.Random(f"{s}:{i}")`, so a failing case can be
regenerated alone from the seed and its number. The mix, per case:

* /v2/cost 40 %, Alauda usage 25 % (platform and project endpoints), the report result path 7 %,
  /metrics, /healthz, /readyz 6 %, unknown paths 8 %, other methods on every route 8 %, shapes
  built from `hostile.NASTY` alone 6 %;
* an API request starts valid (a window and a few real parameters from `vocabulary.Valid`) and then
  either stays valid with hostile-looking values (filters on `a"b\\c{d}|e`, `__unallocated__`, 16 KiB
  filters, future windows, steps on odd grids), or gets one to three faults: a malformed value, an
  unknown, misspelt or repeated name, an empty value, a value at or over the 16 KiB cap, a step
  ≤ 0, under an hour, over the window or over 2000 sets, an invalid time zone, a page out of range;
* the query string is percent-encoded cleanly (80 %), with reserved characters left raw (12 %), or
  with broken percent-encoding spliced in (`%`, `%zz`, `%ff%fe`, `&&`, `a=b=c`; 8 %).

`Case.names` are the parameter names as the server decodes them (yarl, as aiohttp does), so a 400
can be checked to name one of them. HTTP-level garbage that aiohttp's own parser refuses before our
code runs (a NUL in the request line, an unknown method token, a missing Host) is in `PROTOCOL`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from urllib.parse import quote

from yarl import URL

from tests.load.vocabulary import MALFORMED, Valid, Vocabulary
from tests.support.hostile import COST_KEYS, HUGE_ACCEPTED, HUGE_REFUSED, NASTY, USAGE_KEYS

ALAUDA = "/platform/cost.alauda.io/v1beta1"
RESULT = "/apis/kubetally.io/v1alpha1/namespaces/{namespace}/costreports/{name}/result"
METHODS = ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND")
RAW_SAFE = "\"{}|\\^`<>[]:,!~()'$*+;@/?"
#: `build_app`'s max_line_size less "GET " and " HTTP/1.1".
LINE_CAP = 131072 - 13
BROKEN = ("%", "%z", "%zz", "%ff%fe", "%c3", "%u0041", "%%", "%2", "&&", "&=&", "=", "==", "a=b=c", ";", "&;&")


@dataclass(frozen=True)
class Case:
    """One request: `target` is the request-target exactly as sent; `route` names what it aims at;
    `names` are its parameters as decoded by the server; `implicit` names a 400 may blame although
    the request does not send them (a required parameter, the path's project)."""

    number: int
    method: str
    target: str
    route: str
    names: frozenset[str] = frozenset()
    implicit: frozenset[str] = frozenset()
    body: bytes | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def framing(self) -> bool:
        """Whether the request line is over aiohttp's cap, so that its parser answers (a plain 400)."""
        return len(self.target) > LINE_CAP

    def describe(self) -> str:
        shown = self.target if len(self.target) <= 300 else self.target[:300] + f"…(+{len(self.target) - 300})"
        return f"case {self.number}: {self.method} {shown} [{', '.join(self.notes)}]"


def encode(pairs: list[tuple[str, str]], rng: random.Random) -> tuple[str, tuple[str, ...]]:
    """A query string for `pairs` and a note on how it was encoded."""
    mode = rng.random()
    safe = RAW_SAFE if mode < 0.2 else ""
    parts = [quote(k, safe=safe) + "=" + quote(v, safe=safe) for k, v in pairs]
    if mode < 0.08 and parts:
        position = rng.randrange(len(parts) + 1)
        parts.insert(position, rng.choice(BROKEN))
        return "&".join(parts), ("broken-encoding",)
    return "&".join(parts), (("raw-reserved",) if safe else ())


def decoded_names(query: str) -> frozenset[str]:
    return frozenset(URL.build(path="/", query_string=query, encoded=True).query.keys())


class Generator:
    """Draws case `i` of a seeded campaign over a `Vocabulary`."""

    def __init__(self, seed: int, vocabulary: Vocabulary) -> None:
        self.seed, self.vocabulary = seed, vocabulary

    def case(self, number: int) -> Case:
        rng = random.Random(f"{self.seed}:{number}")
        kinds = ((0.40, self._cost), (0.65, self._usage), (0.72, self._result), (0.78, self._probe),
                 (0.86, self._unknown_path), (0.94, self._other_method), (1.0, self._nasty_only))
        pick = rng.random()
        maker = next(make for bound, make in kinds if pick < bound)
        return maker(number, rng)

    # --- API requests: valid, then broken --------------------------------------------------------

    def _api(self, number: int, rng: random.Random, path: str, route: str, pairs: list[tuple[str, str]],
             keys: tuple[str, ...], implicit: frozenset[str], valid: Valid, notes: list[str]) -> Case:
        if rng.random() < 0.3:
            notes.append("valid-hostile")
        else:
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                self._fault(rng, pairs, keys, valid, notes)
        query, how = encode(pairs, rng)
        notes.extend(how)
        return Case(number, "GET", f"{path}?{query}" if query else path, route, decoded_names(query), implicit,
                    notes=tuple(notes))

    def _fault(self, rng: random.Random, pairs: list[tuple[str, str]], keys: tuple[str, ...], valid: Valid,
               notes: list[str]) -> None:
        names = [name for name, _ in pairs] or [rng.choice(keys)]
        target = rng.choice(names)
        fault = rng.random()
        if fault < 0.35:
            value = rng.choice(MALFORMED.get(target, NASTY)) if rng.random() < 0.7 else rng.choice(NASTY)
            _set(pairs, target, value)
            notes.append(f"malformed {target}")
        elif fault < 0.45:
            unknown = rng.choice((target.lower(), target.upper(), target + " ", " " + target, target + "[]", "",
                                  "window_", "__proto__", "x" * 300, rng.choice(NASTY), "é", "step\x00", "a" * 17000))
            pairs.insert(rng.randrange(len(pairs) + 1), (unknown, valid.value("idle")))
            notes.append("unknown name")
        elif fault < 0.55:
            pairs.append((target, dict(pairs).get(target, "") if rng.random() < 0.5 else rng.choice(NASTY)))
            notes.append(f"repeated {target}")
        elif fault < 0.62:
            _set(pairs, target, rng.choice(("", " ", "\t", "%20")))
            notes.append(f"empty {target}")
        elif fault < 0.72:
            _set(pairs, target, rng.choice(HUGE_ACCEPTED + HUGE_REFUSED))
            notes.append(f"huge {target}")
        elif fault < 0.87 and "window" in keys:
            window, step = rng.choice((
                ("7d", "0h"), ("7d", "-1d"), ("2h", "30m"), ("12h", "45m"), ("6h", "90m"), ("1d", "15m"),
                ("2h", "1d"), ("1h", "1w"), ("90d", "1h"), ("400d", "1h"), ("120d", "1h"), ("83d", "1h"),
                ("84d", "1h"), ("2w", "1m"), ("today", "1d"), ("lastmonth", "1w"), ("2d", "1.5h"), ("1h", "1h"),
            ))
            _set(pairs, "window", window)
            _set(pairs, "step", step)
            notes.append(f"step edge {window}/{step}")
        else:
            key = "timeZone" if "timeZone" in keys and rng.random() < 0.5 else rng.choice(keys)
            _set(pairs, key, rng.choice(MALFORMED.get(key, NASTY)))
            notes.append(f"malformed {key}")

    def _cost(self, number: int, rng: random.Random) -> Case:
        valid = Valid(self.vocabulary, rng)
        pairs = [("window", valid.window())]
        for name in rng.sample([k for k in COST_KEYS if k != "window"], rng.choice((0, 1, 2, 3, 4, 5))):
            pairs.append((name, valid.value(name)))
        rng.shuffle(pairs)
        return self._api(number, rng, "/v2/cost", "cost", pairs, COST_KEYS, frozenset({"window", "aggregate"}),
                         valid, ["cost"])

    def _usage(self, number: int, rng: random.Random) -> Case:
        valid = Valid(self.vocabulary, rng)
        project = None if rng.random() < 0.5 else rng.choice((*self.vocabulary.projects, "absent", "Bad_Name",
                                                             "x" * 70, "é", "a..b", "-a", "%ff", "a%20b"))
        pairs = [("start", valid.value("start")), ("end", valid.value("end"))]
        kind = valid.value("kind")
        pairs.append(("kind", kind))
        if not kind.endswith("_all") and not (kind == "project" and project is not None and rng.random() < 0.5):
            pairs.append(("name", valid.value("name")))
        for name in rng.sample(["step", "item", "method", "currentPage", "pageSize", "timeZone"], rng.randrange(4)):
            pairs.append((name, valid.value("usage_step" if name == "step" else name)))
        rng.shuffle(pairs)
        path = f"{ALAUDA}/costs/usage" if project is None else \
            f"{ALAUDA}/projects/{quote(project, safe='%') if '%' in project else quote(project)}/costs/usage"
        route = "usage" if project is None else "project-usage"
        implicit = frozenset({"start", "end", "name"} | ({"project"} if project is not None else set()))
        return self._api(number, rng, path, route, pairs, USAGE_KEYS, implicit, valid, [route])

    # --- the other routes ----------------------------------------------------------------------

    def _result(self, number: int, rng: random.Random) -> Case:
        pool = (*self.vocabulary.namespaces, "kubetally-system", "x" * 300, *rng.sample(NASTY, 3), "namespaces-7d")
        namespace, name = (quote(rng.choice(pool), safe="") for _ in range(2))
        path = RESULT.format(namespace=namespace, name=name)
        pairs = [] if rng.random() < 0.4 else [("format", rng.choice(("json", "csv", "xml", "", *NASTY[:20])))]
        if rng.random() < 0.2:
            pairs.append((rng.choice(NASTY), "1"))
        query, how = encode(pairs, rng)
        return Case(number, "GET", f"{path}?{query}" if query else path, "result", decoded_names(query),
                    frozenset({"format"}), notes=("result", *how))

    def _probe(self, number: int, rng: random.Random) -> Case:
        path = rng.choice(("/metrics", "/healthz", "/readyz"))
        pairs = [(rng.choice(NASTY), rng.choice(NASTY)) for _ in range(rng.randrange(3))]
        query, how = encode(pairs, rng)
        return Case(number, "GET", f"{path}?{query}" if query else path, path.strip("/"), notes=("probe", *how))

    def _unknown_path(self, number: int, rng: random.Random) -> Case:
        path = rng.choice((
            "/", "/v2", "/v2/", "/v2/cost/", "/V2/COST", "//v2/cost", "/v2//cost", "/v2/cost/..", "/v1/cost",
            "/v2/cost%00", "/v2/cost%2fx", "/%2e%2e/%2e%2e/etc/passwd", "/platform/cost.alauda.io/v1beta1/costs",
            f"{ALAUDA}/projects//costs/usage", f"{ALAUDA}/projects/a/b/costs/usage", "/apis/kubetally.io/v1alpha1",
            "/" + quote(rng.choice(NASTY), safe=""), "/" + "a" * 5000, "/metrics/x", "/healthz/", "/%ff%fe",
            "/api/v1/namespaces", "/favicon.ico", "/.env", "/" + "%zz" * 3,
        ))
        query, how = encode([("window", "7d")] if rng.random() < 0.5 else [], rng)
        return Case(number, "GET", f"{path}?{query}" if query else path, "unknown", notes=("unknown path", *how))

    def _other_method(self, number: int, rng: random.Random) -> Case:
        path = rng.choice(("/v2/cost?window=7d", f"{ALAUDA}/costs/usage?start=2026-01-01&end=2026-01-02",
                           f"{ALAUDA}/projects/project-00/costs/usage?start=2026-01-01&end=2026-01-02&kind=project",
                           RESULT.format(namespace="ns-000", name="r"), "/metrics", "/healthz", "/readyz", "/nope"))
        method = rng.choice(METHODS)
        body = rng.choice((None, b"", b"window=7d", b'{"window": "7d"}', b"\x00" * 1000, b"x" * 70000))
        return Case(number, method, path, "method", body=None if method in ("HEAD", "TRACE") else body,
                    notes=(f"method {method}",))

    def _nasty_only(self, number: int, rng: random.Random) -> Case:
        path, keys, route = rng.choice((("/v2/cost", COST_KEYS, "cost"), (f"{ALAUDA}/costs/usage", USAGE_KEYS, "usage")))
        pairs = [(rng.choice((*keys, *NASTY)), rng.choice(NASTY)) for _ in range(rng.randrange(1, 7))]
        query, how = encode(pairs, rng)
        implicit = frozenset({"window", "aggregate"} if route == "cost" else {"start", "end", "name"})
        return Case(number, "GET", f"{path}?{query}", route, decoded_names(query), implicit,
                    notes=("nasty only", *how))


def _set(pairs: list[tuple[str, str]], name: str, value: str) -> None:
    """Give `name` the value `value` (replacing its first occurrence, or adding it)."""
    for index, (key, _) in enumerate(pairs):
        if key == name:
            pairs[index] = (name, value)
            return
    pairs.append((name, value))


#: Requests aiohttp's HTTP parser refuses before the app runs (a plain-text 400 is expected there):
#: raw bytes sent on a socket, each once per campaign.
PROTOCOL: tuple[bytes, ...] = (
    b"GET /v2/cost?window=1h\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2/cost?window=" + b"a" * 140_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2/cost?window=1h HTTP/9.9\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    b"GET /v2/cost?window=1h HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    b"GET /v2/cost?window=1h HTTP/1.1\r\n\r\n",
    b"FOO /v2/cost?window=1h HTTP/1.1\r\nHost: x\r\n\r\n",
    b"get /v2/cost?window=1h HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2/cost?window=1h HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET /v2/cost?window=1h HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
    b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2/cost?window=1h HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"h" * 200_000 + b"\r\n\r\n",
)

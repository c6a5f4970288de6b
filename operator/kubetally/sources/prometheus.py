"""The async client of the Prometheus HTTP API, the one door through which kubetally reads metrics.

It speaks the API that Prometheus, Thanos, Mimir (base URL with its `/prometheus` prefix) and
VictoriaMetrics share, and carries the hygiene rules of CORRECTNESS.md P3, P9 and R2 so that no
caller can forget them:

- `query_range` rejects more than 11,000 points per series *before* sending (Prometheus rejects
  `(end - start) / step > 11000`; we count points, `(end - start) // step + 1 <= 11000`);
  `chunk_range` splits a long range into step-aligned chunks that respect it and a samples budget.
- Queries are POSTed form-encoded (no URL length limit for long selectors), with the server-side
  `timeout` parameter equal to our own per-attempt deadline, at most `max_concurrency` at a time.
  Every attempt has a deadline (`timeout_seconds`, of which at most `connect_timeout_seconds` to
  connect), so one query takes at most (retries + 1) × timeout + the backoff delays; every
  attempt's outcome is recorded in `health` (`sources.health`), the known state /readyz reads.
- Transient failures (connection errors, timeouts, HTTP 408/429/500/502/503/504, API errors of type
  `timeout`/`unavailable`) are retried with exponential backoff and full jitter, honouring
  `Retry-After` (seconds); when retries run out, `SourceUnavailable` says where, what and how often.
- Answers are asked for uncompressed (`Accept-Encoding: identity`) unless `compressed=True`: an
  hour at scale L is ~125 MB of JSON read once, and gzip cost Prometheus 2.42 ~1.7 s of CPU more
  per hour (4.4 s instead of 2.7 s for the 21 queries, measured) and the client ~0.4 s to inflate;
  turn it on for a store across a slow link. Answers are decoded by `sources.results.decode`
  (points straight into numpy, no Python object per point).
- A query the server rejects as malformed (HTTP 400/422, `bad_data`/`execution`) is our bug, not an
  outage: it raises `PromQLError` at once, never retried. Other refusals (401, 403, 404...) are
  configuration problems and raise `SourceUnavailable` at once.

Messages never hold credentials (userinfo is stripped from the URL) nor more than 200 characters of
a query or of a server message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any, Final, Self, TypeVar

import httpx

from kubetally.domain.errors import SourceUnavailable
from kubetally.sources.health import StoreHealth
from kubetally.sources.results import Decoded, decode, labels_of, parse_instant, parse_matrix_answer, parse_stats
from kubetally.sources.results import InstantSample as InstantSample  # re-exported: the client's answers
from kubetally.sources.results import RangeSeries as RangeSeries

log = logging.getLogger(__name__)

MAX_POINTS_PER_SERIES: Final = 11_000
RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
RETRY_ERROR_TYPES: Final = frozenset({"timeout", "unavailable"})
BAD_QUERY_STATUSES: Final = frozenset({400, 422})
BAD_QUERY_ERROR_TYPES: Final = frozenset({"bad_data", "execution"})
_CLIP: Final = 200

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class PromQLError(ValueError):
    """The server rejected a query as malformed or not executable: a bug of ours, never retried."""

    def __init__(self, message: str, *, status_code: int, error_type: str, query: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.query = query


RangeResult = tuple[list[RangeSeries], int | None]


@dataclass(frozen=True, slots=True)
class _Retry:
    description: str
    retry_after: float | None


def clip(text: str, limit: int = _CLIP) -> str:
    """Return `text` cut to `limit` characters, marked with `…` when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def points_per_series(start: int, end: int, step: int) -> int:
    """Return how many evaluation times `start + k·step <= end` a range query has."""
    return (end - start) // step + 1


def _check_range(start: int, end: int, step: int) -> None:
    if step <= 0:
        raise ValueError(f"query_range step must be a positive number of seconds, not {step}")
    if end < start:
        raise ValueError(f"query_range end {end} is before start {start}")
    points = points_per_series(start, end, step)
    if points > MAX_POINTS_PER_SERIES:
        raise ValueError(
            f"query_range over [{start}, {end}] at step {step}s has {points} points per series, more than "
            f"{MAX_POINTS_PER_SERIES}; split it with chunk_range()"
        )


def chunk_range(
    start: int,
    end: int,
    step: int,
    max_points: int = MAX_POINTS_PER_SERIES,
    max_series_hint: int = 1,
    max_samples: int = 5_000_000,
) -> list[tuple[int, int]]:
    """Split the evaluation times of [start, end] (end inclusive) into step-aligned chunks.

    Each chunk `(a, b)` starts at `start + k·step` and ends on its own last evaluation time, so the
    chunks are contiguous (`next a = b + step`), never overlap, and together hold every evaluation
    time `start + k·step <= end` exactly once. A chunk has at most `max_points` points, and
    `points × max_series_hint <= max_samples` — unless one point per series already exceeds
    `max_samples`, in which case chunks hold one point each (the least possible).
    """
    if step <= 0:
        raise ValueError(f"step must be positive, not {step}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if max_points < 1 or max_series_hint < 1 or max_samples < 1:
        raise ValueError("max_points, max_series_hint and max_samples must be at least 1")
    total = points_per_series(start, end, step)
    per_chunk = max(1, min(max_points, max_samples // max_series_hint))
    return [
        (start + first * step, start + (min(first + per_chunk, total) - 1) * step)
        for first in range(0, total, per_chunk)
    ]


def _display_url(base_url: str) -> str:
    url = httpx.URL(base_url)
    return str(url.copy_with(username=None, password=None, query=None, fragment=None)).rstrip("/")


def _timeout_param(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff rather than read a clock here
    return seconds if seconds >= 0 else None


def _body(response: httpx.Response) -> Decoded | None:
    try:
        return decode(response.content)
    except ValueError:
        return None


def _classify(response: httpx.Response, where: str, query: str) -> Decoded | _Retry:
    """Return the successful answer (its `document` is the `data`), a `_Retry`, or raise the fitting error."""
    body = _body(response)
    status = response.status_code
    envelope = body.document if body is not None and isinstance(body.document, dict) else {}
    error_type = str(envelope.get("errorType", ""))
    server_message = str(envelope.get("error", "")) or clip(response.text.strip(), 120)
    described = clip(f"HTTP {status}" + (f" {error_type}" if error_type else "") + f": {server_message}")
    if body is not None and 200 <= status < 300 and envelope.get("status") == "success" and "data" in envelope:
        for warning in envelope.get("warnings") or ():
            log.warning("%s warned: %s (query: %s)", where, clip(str(warning)), clip(query))
        return Decoded(document=envelope["data"], arrays=body.arrays, body=body.body)
    if status in RETRY_STATUSES or error_type in RETRY_ERROR_TYPES:
        return _Retry(described, _retry_after(response))
    if status in BAD_QUERY_STATUSES or error_type in BAD_QUERY_ERROR_TYPES:
        raise PromQLError(
            f"{where} rejected the query ({described}); query: {clip(query)}",
            status_code=status,
            error_type=error_type or "bad_data",
            query=query,
        )
    if 200 <= status < 300 and envelope.get("status") != "error":
        raise SourceUnavailable(f"{where} answered HTTP {status} without a Prometheus API response: {described}")
    hint = {401: "; check the credentials", 403: "; check the credentials", 404: "; check the URL and its prefix"}
    raise SourceUnavailable(f"{where} refused the request ({described}){hint.get(status, '')}")


class PrometheusClient:
    """Async client of one Prometheus-compatible API; use `async with` or call `aclose()`.

    `transport`, `sleep` and `random` exist for tests (httpx.MockTransport, a recording sleep, a
    seeded Random). `timeout_seconds` is the whole-request deadline of one attempt (also sent to the
    server as `timeout`), `connect_timeout_seconds` the part of it a TCP/TLS connect may take;
    `retries` is the number of retries after the first attempt; `probe_timeout_seconds` bounds `ready`;
    `retry_log_level` is the level of the line each retry logs (the health logs each outage once);
    `compressed` asks for gzip-compressed answers (default: uncompressed, see the module docstring).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 60.0,
        connect_timeout_seconds: float = 2.0,
        probe_timeout_seconds: float = 2.0,
        max_concurrency: int = 2,
        retries: int = 4,
        backoff_base_seconds: float = 1.0,
        backoff_max_seconds: float = 300.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        random: Random | None = None,
        health: StoreHealth | None = None,
        retry_log_level: int = logging.WARNING,
        compressed: bool = False,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"Prometheus URL must be http(s)://host[:port][/prefix], not {_display_url(base_url)!r}")
        timeouts = (timeout_seconds, connect_timeout_seconds, probe_timeout_seconds)
        if min(timeouts) <= 0 or max_concurrency < 1 or retries < 0:
            raise ValueError("timeouts must be > 0, max_concurrency >= 1 and retries >= 0")
        if backoff_base_seconds < 0 or backoff_max_seconds < backoff_base_seconds:
            raise ValueError("backoff seconds must satisfy 0 <= backoff_base_seconds <= backoff_max_seconds")
        self.base_url = _display_url(base_url)
        self._timeout = timeout_seconds
        self._probe_timeout = probe_timeout_seconds
        self.health = health if health is not None else StoreHealth()
        self._retry_log_level = retry_log_level
        self._retries = retries
        self._backoff_base = backoff_base_seconds
        self._backoff_max = backoff_max_seconds
        self._sleep = sleep
        self._random = random if random is not None else Random()
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={**({} if compressed else {"Accept-Encoding": "identity"}), **(headers or {})},
            timeout=httpx.Timeout(timeout_seconds, connect=min(connect_timeout_seconds, timeout_seconds)),
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        """Evaluate `query` at `start + k·step <= end` (unix seconds); at most 11,000 points per series."""
        series, _ = await self._query_range(query, start, end, step, with_stats=False)
        return series

    async def query_range_stats(self, query: str, start: int, end: int, step: int) -> RangeResult:
        """Like `query_range`, with `stats=all`; also return the samples read (None if the server gives none)."""
        return await self._query_range(query, start, end, step, with_stats=True)

    async def query(self, query: str, time: int) -> list[InstantSample]:
        """Evaluate `query` at the instant `time` (unix seconds)."""
        form = {"query": query, "time": str(time), "timeout": _timeout_param(self._timeout)}
        answer = await self._call(self._client.build_request("POST", "/api/v1/query", data=form), query)
        return self._parse(parse_instant, answer.document, "/api/v1/query")

    async def series(self, match: Sequence[str], start: int, end: int) -> list[dict[str, str]]:
        """Return the label sets of the series that match any selector of `match` within [start, end]."""
        if isinstance(match, str) or not match:
            raise ValueError("series() needs a non-empty sequence of selectors")
        if end < start:
            raise ValueError(f"series end {end} is before start {start}")
        params = httpx.QueryParams({"match[]": list(match), "start": str(start), "end": str(end)})
        answer = await self._call(self._client.build_request("GET", "/api/v1/series", params=params), ", ".join(match))
        return self._parse(lambda items: [labels_of(item) for item in items], answer.document, "/api/v1/series")

    async def ready(self) -> bool:
        """Return whether the API answers a trivial query now: one attempt of at most
        `probe_timeout_seconds`, no retry, never raises; the outcome goes to `health`.

        It asks `/api/v1/query` for `1` rather than `/-/ready`, which Mimir serves elsewhere and
        proxies may hide. It does not wait for a query slot: a probe must not queue behind a backfill.
        """
        try:
            async with asyncio.timeout(self._probe_timeout):
                response = await self._client.post("/api/v1/query", data={"query": "1"}, timeout=self._probe_timeout)
            body = _body(response)
        except TimeoutError:
            self.health.record_failure(f"no answer to a probe within {self._probe_timeout:g}s")
            return False
        except (httpx.HTTPError, OSError) as exc:
            self.health.record_failure(clip(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
            return False
        envelope = body.document if body is not None else None
        ok = response.status_code == 200 and isinstance(envelope, dict) and envelope.get("status") == "success"
        if ok:
            self.health.record_success()
        else:
            self.health.record_failure(f"a probe got HTTP {response.status_code}")
        return ok

    async def _query_range(self, query: str, start: int, end: int, step: int, *, with_stats: bool) -> RangeResult:
        _check_range(start, end, step)
        form = {
            "query": query,
            "start": str(start),
            "end": str(end),
            "step": str(step),
            "timeout": _timeout_param(self._timeout),
        }
        if with_stats:
            form["stats"] = "all"
        answer = await self._call(self._client.build_request("POST", "/api/v1/query_range", data=form), query)
        series = self._parse(lambda decoded: parse_matrix_answer(decoded, (start, end, step)), answer,
                             "/api/v1/query_range")
        return series, (self._parse(parse_stats, answer.document, "/api/v1/query_range") if with_stats else None)

    def _parse(self, parse: Callable[[Any], T], data: Any, path: str) -> T:
        try:
            return parse(data)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise SourceUnavailable(
                f"{self.base_url}{path} answered a malformed result: {clip(f'{type(exc).__name__}: {exc}')}"
            ) from exc

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter: uniform in [0, min(max, base·2^attempt)], at least Retry-After, at most max."""
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** min(attempt, 62))
        delay = self._random.uniform(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self._backoff_max)

    async def _call(self, request: httpx.Request, query: str) -> Decoded:
        """Send `request` with the retry policy; return the answer, its `document` being the `data`."""
        where = _display_url(str(request.url))
        attempts = self._retries + 1
        last = ""
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                async with self._semaphore, asyncio.timeout(self._timeout):
                    response = await self._client.send(request)
            except TimeoutError:
                last = f"no answer within {self._timeout:g}s"
            except httpx.TransportError as exc:
                last = clip(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            else:
                await asyncio.sleep(0)  # the query waiting for this slot goes out before we decode (~0.1 s at L)
                outcome = _classify(response, where, query)  # raises on a refusal: no retry
                if not isinstance(outcome, _Retry):
                    self.health.record_success()
                    return outcome
                last, retry_after = outcome.description, outcome.retry_after
            self.health.record_failure(last)
            if attempt + 1 < attempts:
                delay = self._delay(attempt, retry_after)
                log.log(self._retry_log_level, "%s failed (%s); attempt %d of %d, retrying in %.1fs",
                        where, last, attempt + 1, attempts, delay)
                await self._sleep(delay)
        raise SourceUnavailable(
            f"{where} is unavailable after {attempts} attempt{'s' if attempts != 1 else ''}; "
            f"last error: {last}; query: {clip(query)}"
        )

"""Webhook notifications of CostBudget threshold crossings (issue 17), never blocking the reconcile loop.

Why: a budget handler that awaited a receiver would stall every reconciliation behind a slow or hung
endpoint. `Notifier.submit` only starts a task and returns; each crossing is delivered by its own
task with its own deadlines, so one hung receiver delays nothing else.

Decisions:

- A crossing is named by (namespace, name, period start, threshold key); its `id` is
  `<namespace>/<name>/<period start in UTC>/<threshold key>`, e.g. `shop/monthly/2026-10-31T16:00:00Z/spent-80`.
  At most once: a crossing is posted by one task only, however often it is submitted, and once that
  task is settled (delivered, or given up) it is remembered (the newest `remember` keys) and not
  posted again by this process. Across restarts the caller makes it at most once: it submits only
  after the status recording the crossing is written. A retry after a timed-out attempt may reach a
  receiver that did get the first one, so every attempt carries the same `Idempotency-Key: <id>`.
- Schedule: an attempt has `attempt_seconds` (5 s) for the whole exchange (connect, send, status
  line); after a failed attempt the next waits `delays[i]`: 1, 2, 4, 8, 16 s, no jitter, so at most
  6 attempts and 31 s of waiting. Retried: connection errors, timeouts, 408, 429 and 5xx. Given up
  at once: any other answer that is not 2xx (redirects are not followed; a 404 stays a 404).
  `Retry-After` is not read: the schedule is fixed.
- Bounded: at most `max_pending` (100) crossings in delivery; a crossing submitted beyond that, or
  after `close`, is dropped with a warning. Outcomes (delivered, failed, dropped) are counted in
  `counts` and, when given, in a prometheus Counter with one label, `outcome`.
- The URL holds a token (Slack's does), so it is never logged: logs name the host and port. httpx
  logs each request's full URL at INFO; a filter on the `httpx` logger writes our targets' URLs as
  `<scheme>://<host>:<port>/…` there (and only ours: other clients' logs are untouched).
- Bodies (UTF-8 JSON, `Content-Type: application/json`):
  generic (`json`): `{"apiVersion": "kubetally.io/v1alpha1", "kind": "CostBudgetThresholdCrossed",
  "id", "namespace", "name", "threshold", "percent", "basis", "value", "amount", "currency",
  "periodStart", "periodEnd", "crossedAt"}`: numbers are JSON numbers (`percent` and `amount` as
  written in the spec, integral ones without a fraction; `value` at full float64 precision), times
  verbatim as given. Slack-compatible (`slack`): `{"text": "<line>"}` with the line (one line, cut here)
  `CostBudget shop/monthly: spent 1,612.50 CNY is 80.6% of 2,000.00 CNY (threshold 80% on spent),
  period 2026-11-01..2026-12-01`: money rounded half-up to cents with thousands separators;
  percent = value / amount × 100, rounded down to 0.1 (never overstated); a period bound written as
  its date when it is midnight in the offset it is written in (so pass the bounds in the budget's
  zone, `2026-11-01T00:00:00+08:00`), else verbatim.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any, Literal

import httpx
from prometheus_client import Counter

from kubetally import __version__
from kubetally.domain.errors import SpecError
from kubetally.domain.timeparse import format_rfc3339, parse_rfc3339, to_epoch

__all__ = ["DEFAULT_DELAYS", "Crossing", "Notifier", "Outcome", "Target", "body", "classify", "slack_text"]

log = logging.getLogger(__name__)

#: Seconds to wait after failed attempt 1, 2, ... (so len + 1 attempts in all).
DEFAULT_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
KIND = "CostBudgetThresholdCrossed"
API_VERSION = "kubetally.io/v1alpha1"
_MIDNIGHT = re.compile(r"(\d{4}-\d{2}-\d{2})T00:00:00(?:Z|[+-]\d{2}:\d{2})")


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Target:
    """Where a crossing goes: the webhook URL (from the budget's Secret) and the body format.

    The URL is left out of `repr` and of every message: it may hold a token."""

    url: str = field(repr=False)
    format: Literal["json", "slack"] = "json"

    def __post_init__(self) -> None:
        if self.format not in ("json", "slack"):
            raise ValueError(f"notify format {self.format!r} is not accepted; accepted: json, slack")
        try:
            url = httpx.URL(self.url)
        except (httpx.InvalidURL, TypeError):
            raise ValueError("the webhook URL is not a URL; give an absolute http(s) URL, "
                             "e.g. https://hooks.slack.com/services/…") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f'the webhook URL must be an absolute http(s) URL (scheme "{url.scheme}" given), '
                             "e.g. https://hooks.slack.com/services/…")

    @property
    def host(self) -> str:
        """What logs name instead of the URL: `host:port`."""
        return _host_port(httpx.URL(self.url))


def _host_port(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port or (443 if url.scheme == 'https' else 80)}"


@dataclass(frozen=True)
class Crossing:
    """One threshold of one budget crossed in one period, and where to tell it.

    `threshold` is `Threshold.key` (`spent-80`), `percent` and `basis` its parts; `value` is the spent
    (or forecast) that reached it, `amount` the budget, both in `currency`. Times are RFC3339."""

    namespace: str
    name: str
    threshold: str
    percent: Decimal
    basis: Literal["spent", "forecast"]
    amount: Decimal
    value: float
    currency: str
    period_start: str
    period_end: str
    crossed_at: str
    target: Target

    def __post_init__(self) -> None:
        if self.basis not in ("spent", "forecast"):
            raise ValueError(f"basis={self.basis!r} is not accepted; accepted: spent, forecast")
        if self.threshold != f"{self.basis}-{format(self.percent, 'f')}":
            raise ValueError(f'threshold "{self.threshold}" does not name percent {self.percent} on {self.basis}')
        if not self.percent > 0 or not self.amount > 0:
            raise ValueError(f"percent ({self.percent}) and amount ({self.amount}) must be more than 0")
        if not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"value must be a finite amount ≥ 0, got {self.value!r}")
        for what in ("period_start", "period_end", "crossed_at"):
            try:
                parse_rfc3339(getattr(self, what), what)
            except SpecError as error:
                raise ValueError(error.message) from None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two submissions the same crossing (the period start normalized to UTC)."""
        start = format_rfc3339(to_epoch(parse_rfc3339(self.period_start)))
        return self.namespace, self.name, start, self.threshold

    @property
    def id(self) -> str:
        return "/".join(self.key)


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def generic_body(crossing: Crossing) -> dict[str, Any]:
    """The `json` format: every field of the crossing but its target, camelCase (module doc)."""
    return {"apiVersion": API_VERSION, "kind": KIND, "id": crossing.id,
            "namespace": crossing.namespace, "name": crossing.name, "threshold": crossing.threshold,
            "percent": _number(crossing.percent), "basis": crossing.basis, "value": crossing.value,
            "amount": _number(crossing.amount), "currency": crossing.currency,
            "periodStart": crossing.period_start, "periodEnd": crossing.period_end, "crossedAt": crossing.crossed_at}


def _money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01"), ROUND_HALF_UP), ",f")


def _day(instant: str) -> str:
    match = _MIDNIGHT.fullmatch(instant)
    return match.group(1) if match else instant


def _escape(text: str) -> str:
    """Slack's three control characters in text (names are DNS labels, so this is belt and braces)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(crossing: Crossing) -> str:
    """The one-line message of the `slack` format (module doc); `value` is read as its shortest
    decimal text (repr), percent of amount = value × 100 / amount rounded down to 0.1."""
    value = Decimal(repr(crossing.value))
    share = (value * 100 / crossing.amount).quantize(Decimal("0.1"), ROUND_FLOOR)
    return _escape(f"CostBudget {crossing.namespace}/{crossing.name}: {crossing.basis} {_money(value)} "
                   f"{crossing.currency} is {format(share, ',f')}% of {_money(crossing.amount)} {crossing.currency} "
                   f"(threshold {format(crossing.percent, 'f')}% on {crossing.basis}), "
                   f"period {_day(crossing.period_start)}..{_day(crossing.period_end)}")


def body(crossing: Crossing) -> bytes:
    """The POST body for the crossing's target format, compact UTF-8 JSON."""
    document = {"text": slack_text(crossing)} if crossing.target.format == "slack" else generic_body(crossing)
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def classify(status: int) -> Outcome | None:
    """An answer's meaning: DELIVERED (2xx), None (retry: 408, 429, 5xx) or FAILED (anything else)."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in (408, 429) or 500 <= status < 600:
        return None
    return Outcome.FAILED


class _RedactTargets(logging.Filter):
    """Rewrites our webhook URLs among a log record's arguments (httpx logs `request.url`)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: collections.Counter[str] = collections.Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and self.urls:
            record.args = tuple(_redacted(arg) if isinstance(arg, httpx.URL) and str(arg) in self.urls else arg
                                for arg in record.args)
        return True


def _redacted(url: httpx.URL) -> str:
    return f"{url.scheme}://{_host_port(url)}/…"


class Notifier:
    """Delivers crossings in the background: one per operator process, `close` it on shutdown."""

    def __init__(self, *, max_pending: int = 100, remember: int = 10_000, attempt_seconds: float = 5.0,
                 delays: Sequence[float] = DEFAULT_DELAYS, outcomes: Counter | None = None) -> None:
        if max_pending < 1 or remember < 1 or attempt_seconds <= 0 or any(d < 0 for d in delays):
            raise ValueError("max_pending and remember must be ≥ 1, attempt_seconds > 0 and delays ≥ 0")
        self._max_pending = max_pending
        self._remember = remember
        self._attempt_seconds = attempt_seconds
        self._delays = tuple(delays)
        self._outcomes = outcomes
        self._pending: dict[tuple[str, str, str, str], asyncio.Task[None]] = {}
        self._settled: collections.OrderedDict[tuple[str, str, str, str], Outcome] = collections.OrderedDict()
        self._closed = False
        self.counts: collections.Counter[Outcome] = collections.Counter()
        if outcomes is not None:
            for outcome in Outcome:
                outcomes.labels(outcome=outcome.value)  # exported at 0 before the first crossing
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(attempt_seconds),
            limits=httpx.Limits(max_connections=max_pending, max_keepalive_connections=10),
            headers={"User-Agent": f"kubetally/{__version__}"},
        )
        self._filter = _RedactTargets()
        logging.getLogger("httpx").addFilter(self._filter)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def outcome(self, crossing: Crossing) -> Outcome | None:
        """How the crossing ended (None while pending, or if never submitted or forgotten)."""
        return self._settled.get(crossing.key)

    def submit(self, crossing: Crossing) -> None:
        """Start delivering `crossing` and return at once; call from the event loop's thread.

        A crossing already in delivery or settled is ignored; one beyond the pending bound, or
        submitted after `close`, is dropped with a warning."""
        key = crossing.key
        if key in self._pending or key in self._settled:
            log.debug("budget notification %s is already %s", crossing.id,
                      "in delivery" if key in self._pending else self._settled[key].value)
            return
        if self._closed or len(self._pending) >= self._max_pending:
            why = "the notifier is closed" if self._closed else f"{self._max_pending} notifications are pending"
            log.warning("budget notification %s to %s dropped: %s", crossing.id, crossing.target.host, why)
            self._count(Outcome.DROPPED)
            return
        task = asyncio.get_running_loop().create_task(self._deliver(crossing), name=f"notify {crossing.id}")
        self._pending[key] = task
        self._filter.urls[str(httpx.URL(crossing.target.url))] += 1
        task.add_done_callback(partial(self._finished, crossing))

    async def join(self, timeout: float) -> bool:
        """Wait up to `timeout` s until nothing is pending; True if so (for tests and shutdown grace)."""
        try:
            async with asyncio.timeout(timeout):
                while self._pending:
                    await asyncio.wait(list(self._pending.values()))
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 2.0) -> None:
        """Cancel every pending delivery (counted as dropped) and close the client, within `timeout` s."""
        self._closed = True
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        if tasks:
            log.warning("closing the budget notifier: %d undelivered notification(s) abandoned", len(tasks))
        try:
            async with asyncio.timeout(timeout):
                if tasks:
                    await asyncio.wait(tasks)
                await self._client.aclose()
        except TimeoutError:
            log.warning("the budget notifier did not close within %s s", timeout)
        finally:
            logging.getLogger("httpx").removeFilter(self._filter)

    def _count(self, outcome: Outcome) -> None:
        self.counts[outcome] += 1
        if self._outcomes is not None:
            self._outcomes.labels(outcome=outcome.value).inc()

    def _finished(self, crossing: Crossing, task: asyncio.Task[None]) -> None:
        self._pending.pop(crossing.key, None)
        url = str(httpx.URL(crossing.target.url))
        self._filter.urls[url] -= 1
        if self._filter.urls[url] <= 0:
            del self._filter.urls[url]
        if task.cancelled():
            self._count(Outcome.DROPPED)
        elif task.exception() is not None:  # `_deliver` catches what an attempt raises; this is a bug
            log.error("budget notification %s failed: unexpected %s", crossing.id, type(task.exception()).__name__)
            self._settle(crossing, Outcome.FAILED)

    def _settle(self, crossing: Crossing, outcome: Outcome) -> None:
        self._settled[crossing.key] = outcome
        while len(self._settled) > self._remember:
            self._settled.popitem(last=False)
        self._count(outcome)

    async def _deliver(self, crossing: Crossing) -> None:
        """Attempts on the fixed schedule until a 2xx, a final answer, or the last attempt."""
        content = body(crossing)
        headers = {"Content-Type": "application/json", "Idempotency-Key": crossing.id}
        attempts = len(self._delays) + 1
        reason = "no attempt"
        for attempt in range(1, attempts + 1):
            try:
                outcome, reason = await self._attempt(crossing.target.url, content, headers)
            except Exception as error:  # a bug or an unforeseen error: never let it escape unlogged
                outcome, reason = Outcome.FAILED, f"unexpected {type(error).__name__}"
            if outcome is Outcome.DELIVERED:
                log.info("budget notification %s delivered to %s (attempt %d)", crossing.id, crossing.target.host,
                         attempt)
                self._settle(crossing, outcome)
                return
            if outcome is Outcome.FAILED:
                log.warning("budget notification %s to %s given up: %s (not retried)", crossing.id,
                            crossing.target.host, reason)
                self._settle(crossing, outcome)
                return
            if attempt < attempts:
                delay = self._delays[attempt - 1]
                log.debug("budget notification %s to %s, attempt %d/%d: %s; next in %s s", crossing.id,
                          crossing.target.host, attempt, attempts, reason, delay)
                await asyncio.sleep(delay)
        log.warning("budget notification %s to %s given up after %d attempts; last: %s", crossing.id,
                    crossing.target.host, attempts, reason)
        self._settle(crossing, Outcome.FAILED)

    async def _attempt(self, url: str, content: bytes, headers: dict[str, str]) -> tuple[Outcome | None, str]:
        """One POST within `attempt_seconds`: (outcome or None to retry, reason). The response body
        is not read (a receiver cannot make us hold a big one); only exception types are reported,
        as their messages might quote the URL."""
        try:
            async with asyncio.timeout(self._attempt_seconds), \
                    self._client.stream("POST", url, content=content, headers=headers) as response:
                status = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return None, f"no answer within {self._attempt_seconds} s"
        except httpx.UnsupportedProtocol:
            return Outcome.FAILED, "unsupported protocol"
        except httpx.TransportError as error:
            return None, type(error).__name__
        except httpx.HTTPError as error:
            return Outcome.FAILED, type(error).__name__
        return classify(status), f"answered {status}"

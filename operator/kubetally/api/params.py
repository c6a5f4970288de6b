"""Query parameters of the two HTTP APIs → validated engine queries, or one `SpecError`.

Why: the server must answer every bad request with a 400 that says what to fix (CORRECTNESS S3) and
refuse requests too costly to answer (S5). Doing it here, without I/O or clock (`now` is a parameter),
makes every rule testable. Any input gives a request object or a `SpecError(field, message)` naming the
parameter and showing an accepted example; no other exception escapes.

Both parsers take `params` (a `Mapping[str, str]`, e.g. aiohttp's `request.query`) and optionally
`keys`, every key received in order with repeats. Names from `keys` and from `params.items()` are
checked together (a MultiDict's `items()` repeats a repeated key although its `keys()` and iteration
do not), a name's count being the larger of the two; a name missing from `params` counts as absent.

Decisions common to both endpoints:

- Names are case-sensitive. An unknown name is an error listing the accepted names (we do not
  silently ignore a misspelt `shareidle`); a name given twice is an error (which one wins would be a
  guess). These checks come first, then the 16 KiB cap on any single value (UTF-8 bytes).
- An empty or whitespace-only value counts as absent, so optional parameters take their default;
  a required one (`window`, `start`, `end`) is then "required". Surrounding whitespace is ignored.
- Enumerations (`format`, `shareSplit`, `method`, `kind`, `item`) match case-insensitively and keep
  the canonical spelling. Booleans: true/false/1/0, case-insensitively. `timeZone` (an extension of
  both APIs): an IANA name or ±HH:MM, default UTC.

`GET /v2/cost` (`parse_cost_params`):

- `window` and `step` are resolved by `domain.sets.resolve_span`, the one validator shared with
  CostReports: the window as in `domain.window.parse_window` (keywords in `timeZone`), floored to
  multiples of `resolution_seconds` (a window this leaves empty is an error), at most 400 days;
  the step a whole number of hours, the sets cut on its calendar grid in `timeZone` with the first
  and last clipped to the window (`domain.sets`), at most 2000 sets.
- `aggregate`, `filter`: `domain.aggregation` and `domain.filters` grammars (default: per pod).
- `idle` default true, `shareIdle` false, `shareSplit` weighted|even, `idleByNode` false. Every
  combination is accepted; DESIGN §6 gives it meaning (idleByNode also shapes shared idle).
- `format` json|csv (default json). Extensions: `method` Request|Usage|Effective (default Request,
  as ACK); ProjectQuota is refused as Alauda-only. `customWeights`: a CostWeights name
  (DNS-1123 subdomain, ≤ 253 characters) that prices `customCost`.

Alauda usage (`parse_usage_params`):

- `start`, `end` required, YYYY-MM-DD or YYYYMMDD, inclusive, at most 5 years
  (`parse_date_range`); `step` day|week|month (default month), split in `timeZone`.
- `kind` project|namespace|cluster|project_all|namespace_all|cluster_all (default project_all,
  case-insensitive). `name` is required for the three single kinds and refused (unless empty) for the
  `_all` kinds, which report every object; it is stripped, at most 253 characters, otherwise free
  text. A range whose calendar split would run past year 9999 is refused.
- `item` Cpu|Memory|Storage (default Cpu), `method` Effective|Request|Usage|ProjectQuota (default
  Effective). `currentPage` an integer 1..999999999 (default 1); `pageSize` 1..MAX_PAGE_SIZE (default 20).
- `project` (the path of the project endpoint) must be a DNS-1123 label and scopes the query; with
  kind=project, `name` defaults to it and any other name is an error.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal, TypeVar

from kubetally.api.pages import MAX_PAGE_SIZE
from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.errors import SpecError
from kubetally.domain.filters import parse_filter
from kubetally.domain.names import MAX_SUBDOMAIN, is_dns_label, is_dns_subdomain
from kubetally.domain.sets import MAX_SETS, MAX_WINDOW_DAYS, resolve_span
from kubetally.domain.timeparse import DATE_EXAMPLES, WINDOW_EXAMPLES
from kubetally.domain.vocabulary import Item, Method, ShareSplit, UsageKind
from kubetally.domain.window import (
    Window,
    calendar_periods,
    parse_calendar_step,
    parse_date_range,
    parse_timezone,
)
from kubetally.engine.query import CostQuery, UsageQuery

__all__ = [
    "COST_PARAMETERS", "MAX_PAGE", "MAX_STEPS", "MAX_VALUE_BYTES", "MAX_WINDOW_DAYS", "USAGE_PARAMETERS",
    "CostRequest", "UsageRequest", "parse_cost_params", "parse_usage_params",
]

#: Largest accepted value of any single parameter, in UTF-8 bytes.
MAX_VALUE_BYTES = 16 * 1024
#: Most cost sets (steps) one /v2/cost request may ask for (`domain.sets.MAX_SETS`).
MAX_STEPS = MAX_SETS
#: Largest accepted `currentPage`.
MAX_PAGE = 999_999_999
#: Longest Kubernetes object name (DNS-1123 subdomain), the cap of `customWeights` and `name`.
MAX_NAME = MAX_SUBDOMAIN

COST_PARAMETERS = (
    "window", "filter", "step", "aggregate", "idle", "shareIdle", "shareSplit", "idleByNode", "format",
    "method", "customWeights", "timeZone",
)
USAGE_PARAMETERS = (
    "start", "end", "step", "kind", "name", "item", "method", "currentPage", "pageSize", "timeZone",
)
_COST_EXAMPLE = "window=7d&aggregate=namespace&step=1d"
_USAGE_EXAMPLE = "start=2025-06-01&end=2025-06-30&kind=namespace_all"

_DIGITS = re.compile(r"[0-9]+")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_SINGLE_OF = {UsageKind.PROJECT_ALL: UsageKind.PROJECT, UsageKind.NAMESPACE_ALL: UsageKind.NAMESPACE,
              UsageKind.CLUSTER_ALL: UsageKind.CLUSTER}

_T = TypeVar("_T")


@dataclass(frozen=True)
class CostRequest:
    """A parsed /v2/cost request: the engine query and how to answer it."""

    query: CostQuery
    format: Literal["json", "csv"]
    custom_weights: str | None
    time_zone: tzinfo

    @property
    def steps(self) -> tuple[Window, ...]:
        """The cost sets' windows, in order (one when no step is given)."""
        return self.query.sets


@dataclass(frozen=True)
class UsageRequest:
    """A parsed Alauda usage request: the engine query and the page to return."""

    query: UsageQuery
    current_page: int
    page_size: int
    time_zone: tzinfo


def _show(text: str) -> str:
    """`text` quoted for a message, cut to a readable length."""
    return json.dumps(text if len(text) <= 40 else text[:40] + "…", ensure_ascii=False)


class _Reader:
    """The checked parameters of one request: known names only, each once, each ≤ 16 KiB."""

    def __init__(
        self, params: Mapping[str, str], keys: Sequence[str] | None, accepted: tuple[str, ...], example: str
    ) -> None:
        from_items = [name for name, _ in params.items()]  # a MultiDict repeats repeated keys here only
        received = from_items if keys is None else list(keys)
        listed = set(received)
        received += [name for name in from_items if name not in listed]
        for name in received:
            if name not in accepted:
                raise SpecError(
                    name if len(name) <= 40 else name[:40] + "…",
                    f"unknown parameter {_show(name)}; accepted (case-sensitive): {', '.join(accepted)}; "
                    f"e.g. {example}",
                )
        for name, count in (Counter(received) | Counter(from_items)).items():
            if count > 1:
                raise SpecError(name, f"{name} is given {count} times; give it once, e.g. {example}")
        for name in received:
            value = params.get(name)
            size = 0 if value is None else len(value.encode("utf-8", "surrogatepass"))
            if size > MAX_VALUE_BYTES:
                raise SpecError(
                    name, f"the value is {size} bytes; the cap is {MAX_VALUE_BYTES} bytes (16 KiB) per parameter; "
                    f"e.g. {example}",
                )
        self.params = params

    def get(self, name: str) -> str | None:
        """The raw value, or None when absent, empty or only whitespace."""
        value = self.params.get(name)
        return None if value is None or not value.strip() else value


def _choice(reader: _Reader, name: str, choices: tuple[_T, ...], default: _T) -> _T:
    """One of `choices` (StrEnum members or strings) matched case-insensitively by their value."""
    text = reader.get(name)
    if text is None:
        return default
    by_lower = {str(choice).lower(): choice for choice in choices}
    found = by_lower.get(text.strip().lower())
    if found is None:
        accepted = "|".join(str(choice) for choice in choices)
        raise SpecError(name, f"{_show(text)} is not accepted; accepted: {accepted}; e.g. {name}={default}")
    return found


def _boolean(reader: _Reader, name: str, *, default: bool) -> bool:
    text = reader.get(name)
    if text is None:
        return default
    value = _BOOLEANS.get(text.strip().lower())
    if value is None:
        example = "false" if default else "true"
        raise SpecError(name, f"{_show(text)} is not a boolean; accepted: true, false, 1, 0; e.g. {name}={example}")
    return value


def _integer(reader: _Reader, name: str, *, default: int, high: int) -> int:
    text = reader.get(name)
    if text is None:
        return default
    digits = text.strip()
    if _DIGITS.fullmatch(digits) is None:
        raise SpecError(name, f"{_show(text)} is not a whole number in 1..{high}; e.g. {name}={default}")
    if len(digits.lstrip("0")) > len(str(high)) or not 1 <= int(digits) <= high:
        raise SpecError(name, f"{_show(text)} is outside 1..{high}; e.g. {name}={default}")
    return int(digits)


def _time_zone(reader: _Reader) -> tzinfo:
    try:
        return parse_timezone(reader.get("timeZone"))
    except SpecError as error:
        raise SpecError("timeZone", error.message) from None


# --- GET /v2/cost ------------------------------------------------------------------------------


def _span(reader: _Reader, now: datetime, tz: tzinfo, resolution: int) -> tuple[Window, int | None]:
    text = reader.get("window")
    if text is None:
        raise SpecError("window", f"window is required; accepted: {WINDOW_EXAMPLES}; e.g. window=24h")
    return resolve_span(text, reader.get("step"), now=now, tz=tz, resolution=resolution)


def _method(reader: _Reader) -> Method:
    text = reader.get("method")
    if text is not None and text.strip().lower() == Method.PROJECT_QUOTA.lower():
        raise SpecError(
            "method", "ProjectQuota is Alauda-only (/platform/cost.alauda.io/v1beta1/costs/usage); accepted on "
            "/v2/cost: Request|Usage|Effective; e.g. method=Effective",
        )
    return _choice(reader, "method", (Method.REQUEST, Method.USAGE, Method.EFFECTIVE), Method.REQUEST)


def _custom_weights(reader: _Reader) -> str | None:
    text = reader.get("customWeights")
    if text is None:
        return None
    name = text.strip()
    if not is_dns_subdomain(name):
        raise SpecError(
            "customWeights", f"{_show(text)} is not a CostWeights name (a DNS-1123 subdomain of at most "
            f"{MAX_NAME} characters: lower-case letters, digits, '-' and '.'); e.g. customWeights=mixed-policy",
        )
    return name


def parse_cost_params(
    params: Mapping[str, str],
    keys: Sequence[str] | None = None,
    *,
    now: datetime,
    resolution_seconds: int = 60,
) -> CostRequest:
    """The /v2/cost request these parameters describe, relative to `now` (see the module doc).

    Raises `SpecError` for any input it refuses; ValueError only for a naive `now` or a
    non-positive `resolution_seconds` (programming errors).
    """
    if resolution_seconds <= 0:
        raise ValueError(f"resolution_seconds must be positive, got {resolution_seconds}")
    reader = _Reader(params, keys, COST_PARAMETERS, _COST_EXAMPLE)
    tz = _time_zone(reader)
    window, step = _span(reader, now, tz, resolution_seconds)
    query = CostQuery(
        window=window,
        step_seconds=step,
        time_zone=tz,
        aggregate=parse_aggregate(reader.get("aggregate")),
        filter=parse_filter(reader.get("filter")),
        method=_method(reader),
        idle=_boolean(reader, "idle", default=True),
        share_idle=_boolean(reader, "shareIdle", default=False),
        share_split=_choice(reader, "shareSplit", (ShareSplit.WEIGHTED, ShareSplit.EVEN), ShareSplit.WEIGHTED),
        idle_by_node=_boolean(reader, "idleByNode", default=False),
    )
    fmt: Literal["json", "csv"] = "csv" if _choice(reader, "format", ("json", "csv"), "json") == "csv" else "json"
    return CostRequest(query=query, format=fmt, custom_weights=_custom_weights(reader), time_zone=tz)


# --- Alauda usage ------------------------------------------------------------------------------


def _required_date(reader: _Reader, name: str) -> str:
    text = reader.get(name)
    if text is None:
        raise SpecError(name, f"{name} is required; accepted: {DATE_EXAMPLES}; e.g. {_USAGE_EXAMPLE}")
    return text


def _name(reader: _Reader, kind: UsageKind, project: str | None) -> str | None:
    text = reader.get("name")
    name = None if text is None else text.strip()
    if kind in _SINGLE_OF:
        if name is not None:
            single = _SINGLE_OF[kind]
            raise SpecError(
                "name", f"name is not allowed with kind={kind}, which reports every {single}; leave name out or "
                f"empty, or ask for one: kind={single}&name={name[:40]}",
            )
        return None
    if kind is UsageKind.PROJECT and project is not None:
        if name is None:
            return project
        if name != project:
            raise SpecError(
                "name", f"{_show(name)} is not the project {_show(project)} of the path; on "
                f"/projects/{project}/costs/usage kind=project reports that project only: leave name out "
                f"or use name={project}",
            )
    if name is None:
        raise SpecError("name", f"name is required with kind={kind}; e.g. kind={kind}&name=my-{kind}")
    if len(name) > MAX_NAME:
        raise SpecError("name", f"{_show(name)} is longer than {MAX_NAME} characters; e.g. name=my-{kind}")
    return name


def parse_usage_params(
    params: Mapping[str, str], keys: Sequence[str] | None = None, *, project: str | None
) -> UsageRequest:
    """The Alauda usage request these parameters describe; `project` is the project endpoint's path
    parameter, or None for the platform endpoint. Raises `SpecError` for any input it refuses."""
    if project is not None and not is_dns_label(project):
        raise SpecError(
            "project", f"{_show(project)} is not a project name (a DNS-1123 label: at most 63 lower-case "
            "letters, digits and '-'); e.g. /projects/my-project/costs/usage",
        )
    reader = _Reader(params, keys, USAGE_PARAMETERS, _USAGE_EXAMPLE)
    tz = _time_zone(reader)
    window = parse_date_range(_required_date(reader, "start"), _required_date(reader, "end"), tz=tz)
    step = parse_calendar_step(reader.get("step"))
    kind = _choice(reader, "kind", tuple(UsageKind), UsageKind.PROJECT_ALL)
    item = _choice(reader, "item", tuple(Item), Item.CPU)
    method = _choice(
        reader, "method", (Method.EFFECTIVE, Method.REQUEST, Method.USAGE, Method.PROJECT_QUOTA), Method.EFFECTIVE
    )
    name = _name(reader, kind, project)
    current_page = _integer(reader, "currentPage", default=1, high=MAX_PAGE)
    page_size = _integer(reader, "pageSize", default=20, high=MAX_PAGE_SIZE)
    try:
        periods = calendar_periods(window, step, tz=tz)
    except (OverflowError, ValueError):
        raise SpecError("end", f"the range runs into year 9999, out of range; accepted: {DATE_EXAMPLES}") from None
    query = UsageQuery(periods=periods, kind=kind, item=item, method=method, name=name, project=project)
    return UsageRequest(query=query, current_page=current_page, page_size=page_size, time_zone=tz)

"""CostWeights versions in the ledger, and the PriceBook they make.

`record_cost_weights` validates a CostWeights spec and appends it as a version when it changed:
the first version of a name prices every hour (there is no other price list); a later change
prices from its `effectiveFrom`, or else from the next full hour after it was observed, so hours
already priced keep their prices (history is never silently rewritten). `price_book` rebuilds the
engine's PriceBook from the stored versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kubetally.domain.prices import PriceBook
from kubetally.domain.resources import parse_cost_weights
from kubetally.ledger.store import Ledger

HOUR = 3600


def record_cost_weights(ledger: Ledger, name: str, spec: Mapping[str, object], *, observed_at: int) -> bool:
    """Validate `spec` (SpecError if invalid) and store it as a new version if it changed."""
    parsed = parse_cost_weights(spec)
    existing = ledger.price_versions(name)
    if existing and existing[-1].spec == dict(spec) and parsed.effective_from is None:
        return False
    if parsed.effective_from is not None:
        effective = int(parsed.effective_from.timestamp())
    elif existing:
        effective = -(-observed_at // HOUR) * HOUR
    else:
        effective = 0
    return ledger.record_price_version(name, dict(spec), effective_from=effective, recorded_at=observed_at)


def price_book(ledger: Ledger, name: str) -> PriceBook | None:
    """The PriceBook of CostWeights `name`, or None if it was never recorded."""
    records = ledger.price_versions(name)
    if not records:
        return None
    return PriceBook(
        versions=tuple(
            parse_cost_weights(record.spec).to_price_version(
                name=name, effective_from=datetime.fromtimestamp(record.effective_from, UTC)
            )
            for record in records
        )
    )

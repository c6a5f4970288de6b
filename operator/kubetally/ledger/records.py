"""What the ledger hands back about its hours and price versions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HourRecord:
    """One ingested hour: its coverage in [0, 1], when it was written, how many container facts."""

    hour_start: int
    coverage: float
    ingested_at: int
    container_facts: int


@dataclass(frozen=True, slots=True)
class PriceRecord:
    """One stored CostWeights version: the spec as applied, and the hour it prices from."""

    name: str
    effective_from: int
    recorded_at: int
    spec: Mapping[str, object]

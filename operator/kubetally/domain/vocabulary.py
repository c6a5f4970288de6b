"""Plain enums and constants shared by every layer (no logic, no dependencies)."""

from __future__ import annotations

from enum import StrEnum


class Method(StrEnum):
    """The basis a quantity is measured by (DESIGN.md §4).

    REQUEST: Σ request·r. USAGE: Σ usage·r. EFFECTIVE: Σ max(request, usage)·r, per sample.
    PROJECT_QUOTA: the namespace's ResourceQuota hard limit × time (Alauda only).
    """

    REQUEST = "Request"
    USAGE = "Usage"
    EFFECTIVE = "Effective"
    PROJECT_QUOTA = "ProjectQuota"


class ShareSplit(StrEnum):
    """How shared idle is spread over the workloads of its domain."""

    WEIGHTED = "weighted"
    EVEN = "even"


class Item(StrEnum):
    """Alauda billing items."""

    CPU = "Cpu"
    MEMORY = "Memory"
    STORAGE = "Storage"


class UsageKind(StrEnum):
    """Alauda statistical kinds: one object (`name` required) or all of them (`*_all`)."""

    PROJECT = "project"
    NAMESPACE = "namespace"
    CLUSTER = "cluster"
    PROJECT_ALL = "project_all"
    NAMESPACE_ALL = "namespace_all"
    CLUSTER_ALL = "cluster_all"


#: The 15 currencies of the Alauda API.
CURRENCIES: tuple[str, ...] = (
    "CNY", "USD", "THB", "RUB", "AUD", "CAD", "CHF", "DKK", "EUR", "GBP", "IDR", "INR", "JPY", "HKD", "SGD",
)

#: Row key of idle cost when it is not shared.
IDLE_KEY = "__idle__"
#: Prefix of per-node idle rows (`idle:<node>`) with idleByNode.
IDLE_NODE_PREFIX = "idle:"
#: Row key of workloads whose aggregation key is missing (no such label, no controller...).
UNALLOCATED_KEY = "__unallocated__"
#: Row key of idle that could not be shared because its domain had no workload to share it with.
UNALLOCATED_IDLE_KEY = "__unallocated_idle__"

GIB = 1024**3
SECONDS_PER_HOUR = 3600

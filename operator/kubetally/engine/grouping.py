"""How aggregate keys become SQL grouping expressions and row properties.

Each aggregate key has a *display* value (what the response shows) and an *identity* (what keeps
two different objects apart when they share a display value):

    key              display            identity
    pod              pod name           cluster, namespace, pod, pod_uid   (a reused name is a new pod)
    namespace        namespace          namespace
    controller       controller name    cluster, namespace, controller_kind, controller
    controllerKind   controller kind    controller_kind
    node             node               cluster, node
    cluster          cluster            cluster
    project          project            project
    label:<k>        labels[k']         labels[k']   (k' = the sanitized key)

A missing or empty display value is `__unallocated__`, and all such rows group together: their
identity columns are blanked.

Properties of a row are the dimensions every member shares (min = max and no NULLs).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.labels import sanitize_label_key
from kubetally.domain.vocabulary import UNALLOCATED_KEY
from kubetally.engine.sql import Params

_DISPLAY = {
    Dimension.POD: "pod",
    Dimension.NAMESPACE: "namespace",
    Dimension.CONTROLLER: "controller",
    Dimension.CONTROLLER_KIND: "controller_kind",
    Dimension.NODE: "node",
    Dimension.CLUSTER: "cluster",
    Dimension.PROJECT: "project",
}

_EXTRA_IDENTITY = {
    Dimension.POD: ("cluster", "namespace", "pod_uid"),
    Dimension.CONTROLLER: ("cluster", "namespace", "controller_kind"),
    Dimension.NODE: ("cluster",),
}

#: Row properties: response name → pod_segments column.
PROPERTY_COLUMNS: dict[str, str] = {
    "cluster": "cluster",
    "node": "node",
    "namespace": "namespace",
    "pod": "pod",
    "podUID": "pod_uid",
    "controllerKind": "controller_kind",
    "controller": "controller",
    "providerID": "provider_id",
    "project": "project",
}


@dataclass(frozen=True, slots=True)
class Grouping:
    """SQL for one aggregation: `select` names the display columns k0..kn and identity columns
    i0..im; `group_by` lists them; `labels` is the labels property expression."""

    select: str
    group_by: str
    display_count: int
    labels: str


def grouping(keys: tuple[AggregateKey, ...], params: Params) -> Grouping:
    """Build the grouping SQL of `keys` over `pod_shares` rows."""
    selects: list[str] = []
    names: list[str] = []
    extra = 0
    label_pairs: list[tuple[str, str]] = []
    for index, key in enumerate(keys):
        if key.dimension is Dimension.LABEL:
            if key.label_key is None:
                raise ValueError("a label aggregate key needs a label key")
            sanitized = sanitize_label_key(key.label_key)
            value = f"labels[{params.add(sanitized)}]"
            label_pairs.append((sanitized, f"k{index}"))
        else:
            value = _DISPLAY[key.dimension]
        missing = f"coalesce({value}, '') = ''"
        selects.append(f"CASE WHEN {missing} THEN {params.add(UNALLOCATED_KEY)} ELSE {value} END AS k{index}")
        names.append(f"k{index}")
        for column in _EXTRA_IDENTITY.get(key.dimension, ()):
            selects.append(f"CASE WHEN {missing} THEN NULL ELSE {column} END AS i{extra}")
            names.append(f"i{extra}")
            extra += 1
    if any(key.dimension is Dimension.POD for key in keys):
        labels = "any_value(labels)"
    elif label_pairs:
        # The row's own label values, under their sanitized keys, when present.
        keys_sql = ", ".join(params.add(key) for key, _ in label_pairs)
        values_sql = ", ".join(column for _, column in label_pairs)
        labels = f"map([{keys_sql}], [{values_sql}])"
    else:
        labels = "NULL"
    return Grouping(select=", ".join(selects), group_by=", ".join(names), display_count=len(keys), labels=labels)


def properties_sql() -> str:
    """Aggregate expressions p_<column> holding each property where all members share it."""
    return ", ".join(
        f"CASE WHEN min({column}) = max({column}) AND count({column}) = count(*) THEN min({column}) END AS p_{column}"
        for column in PROPERTY_COLUMNS.values()
    )

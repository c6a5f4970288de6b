"""Kubernetes label keys as kube-state-metrics exposes them.

kube-state-metrics turns a label key such as `app.kubernetes.io/name` into the series label
`label_app_kubernetes_io_name`: every character outside `[a-zA-Z0-9_]` becomes `_`. Facts keep the
sanitized key without the `label_` prefix (`app_kubernetes_io_name`), so every key a user gives
(filters, `label:<k>` aggregation, node price selectors, the project label) goes through
`sanitize_label_key` before it is matched. Responses show the user's own key.
"""

from __future__ import annotations

import re

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_key(key: str) -> str:
    """Return `key` as kube-state-metrics spells it after `label_`: `a.b/c-d` → `a_b_c_d`."""
    return _INVALID.sub("_", key)

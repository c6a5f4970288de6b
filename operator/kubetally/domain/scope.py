"""What a CostReport may see: one scope, carried to every query the report makes.

A report asks two questions: the cost of its workloads (`CostQuery.filter`) and the storage of its
persistent volumes (`UsageQuery.filter`). Both obey the same scope, or a tenant sees another
tenant's money (issue 12, bug 4)::

    scope = spec.filter AND fence
    fence = project:"<p>"      a report in a tenant namespace that belongs to project p
          = namespace:"<ns>"   a report in a tenant namespace that belongs to no project
          = (none)             a report in an admin namespace

A caller of the HTTP APIs obeys the same kind of fence (issue 13), built from what Kubernetes RBAC
lets them see (`kubetally.access`): `namespace:"<n1>","<n2>",...` over the namespaces they may `get`
`costs.query.kubetally.io` in, none when they may see the whole cluster (`Scope.of_viewer`).

Volumes (PersistentVolumeClaims) are metered per claim at namespace level: a volume fact knows its
cluster, namespace and project, and nothing of the pods that mount it. So a scope is *decidable on
volumes* exactly when every condition in it names `cluster`, `namespace` or `project`; volumes are
then selected by the very same filter (same grammar, same SQL compiler, so `__unallocated__` and
negations mean what they mean for workloads). A scope that names a pod-level field (`node`,
`controllerName`, `controllerKind`, `pod`, `label[...]`) cannot be decided on a claim:
`label[app]:"web"` says nothing about a PVC, and taking all of the namespace's claims would overstate
while taking none would understate. Storage is then not reported at all (no `storageCost` nor
`storageGiBHours` in status) and `storage_note` says why; it is never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetally.domain.filters import AllOf, Condition, Field, Filter, Op

#: The fields a volume fact carries, so the only ones a storage query can be filtered on.
VOLUME_FIELDS = frozenset({Field.CLUSTER, Field.NAMESPACE, Field.PROJECT})


def fence(namespace: str, project: str | None) -> Condition:
    """A tenant's fence: its project, or its namespace alone when the namespace has no project."""
    if project:
        return Condition(Field.PROJECT, Op.EQ, (project,))
    return Condition(Field.NAMESPACE, Op.EQ, (namespace,))


def fields_named(node: Filter | None) -> tuple[str, ...]:
    """The fields a filter names, as a user writes them (`label[app]`), sorted, each once."""
    if node is None:
        return ()
    if isinstance(node, Condition):
        return (f"label[{node.label_key}]" if node.field is Field.LABEL else node.field.value,)
    return tuple(sorted({name for child in node.children for name in fields_named(child)}))


def _conditions(node: Filter) -> tuple[Condition, ...]:
    if isinstance(node, Condition):
        return (node,)
    return tuple(condition for child in node.children for condition in _conditions(child))


@dataclass(frozen=True, slots=True)
class Scope:
    """The filter every query of one report obeys (the spec's filter AND the tenant's fence)."""

    filter: Filter | None

    @classmethod
    def of_report(cls, spec_filter: Filter | None, *, namespace: str, project: str | None, isolated: bool) -> Scope:
        """The scope of a report in `namespace` (of `project`); `isolated` when it is not an admin namespace."""
        if not isolated:
            return cls(spec_filter)
        wall = fence(namespace, project)
        return cls(wall if spec_filter is None else AllOf((spec_filter, wall)))

    @classmethod
    def of_viewer(cls, request_filter: Filter | None, namespaces: frozenset[str] | None) -> Scope:
        """The scope of an API caller: their own filter AND the namespaces they may see (`None`: all of
        them, no fence). An empty set selects nothing (callers who may see nothing are refused before)."""
        if namespaces is None:
            return cls(request_filter)
        wall = Condition(Field.NAMESPACE, Op.EQ, tuple(sorted(namespaces)))
        return cls(wall if request_filter is None else AllOf((request_filter, wall)))

    @property
    def pod_level_fields(self) -> tuple[str, ...]:
        """The fields of the scope a volume does not carry (empty when storage can be scoped)."""
        if self.filter is None:
            return ()
        outside = tuple(c for c in _conditions(self.filter) if c.field not in VOLUME_FIELDS)
        return fields_named(AllOf(outside)) if outside else ()

    @property
    def on_volumes(self) -> bool:
        """True when the scope can be decided on volume facts, so `filter` also selects the storage."""
        return not self.pod_level_fields

    @property
    def storage_note(self) -> str | None:
        """Why storage is not reported for this scope, or None when it is."""
        fields = self.pod_level_fields
        if not fields:
            return None
        return (
            f"storage is not reported: the filter names {', '.join(fields)}, which a persistent volume claim "
            "does not carry (claims are metered per namespace); filter on cluster, namespace or project to "
            "get storage totals"
        )

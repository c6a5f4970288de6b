"""The scope of a CostReport (domain.scope): the spec's filter AND the tenant fence, and whether it
can be decided on volume facts (which carry only cluster, namespace and project)."""

from __future__ import annotations

import pytest

from kubetally.domain.filters import AllOf, Condition, Field, Op, parse_filter
from kubetally.domain.scope import Scope

SHOP = Condition(Field.NAMESPACE, Op.EQ, ("shop",))
ALPHA = Condition(Field.PROJECT, Op.EQ, ("alpha",))


def test_an_admin_report_keeps_its_filter_as_written() -> None:
    assert Scope.of_report(None, namespace="ops", project="alpha", isolated=False).filter is None
    assert Scope.of_report(SHOP, namespace="ops", project=None, isolated=False).filter == SHOP


def test_a_tenant_is_fenced_to_its_project_or_its_namespace() -> None:
    assert Scope.of_report(None, namespace="shop", project="alpha", isolated=True).filter == ALPHA
    assert Scope.of_report(None, namespace="shop", project=None, isolated=True).filter == SHOP
    assert Scope.of_report(SHOP, namespace="web", project="alpha", isolated=True).filter == AllOf((SHOP, ALPHA))


@pytest.mark.parametrize(
    ("text", "pod_level"),
    [
        (None, ()),
        ('namespace:"a"+project!:"b"|cluster~:"c"', ()),
        ('label[app.kubernetes.io/name]:"x"', ("label[app.kubernetes.io/name]",)),
        ('namespace:"a"+(pod:"p"|node:"n")+controllerKind:"Job"+controllerName:"c"+pod!:"q"',
         ("controllerKind", "controllerName", "node", "pod")),
    ],
)
def test_the_fields_a_volume_does_not_carry(text: str | None, pod_level: tuple[str, ...]) -> None:
    scope = Scope.of_report(parse_filter(text), namespace="shop", project=None, isolated=True)
    assert scope.pod_level_fields == pod_level
    assert scope.on_volumes is (not pod_level)
    note = scope.storage_note
    assert (note is None) is (not pod_level)
    if note is not None:
        assert note.startswith(f"storage is not reported: the filter names {', '.join(pod_level)},")

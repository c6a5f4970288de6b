"""Turning pydantic validation errors of a CR spec into one SpecError a user can act on.

kopf handlers mark an invalid spec `Ready=False, reason=InvalidSpec` with this message, so it must
name the field as it is written in YAML (`spec.nodePrices[0].selector`), say what is wrong, and show
an accepted example. `SubfieldError` lets a model validator point at one of its own fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kubetally.domain.errors import SpecError


class SubfieldError(ValueError):
    """Raised by a model validator about one of its fields (`path`, camelCase, relative)."""

    def __init__(self, path: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


_SpecT = TypeVar("_SpecT", bound=BaseModel)


def _with_example(message: str, loc: tuple[int | str, ...], examples: Mapping[str, str]) -> str:
    names = [part for part in loc if isinstance(part, str)]
    if not names or names[-1] not in examples or "e.g." in message or "accepted" in message:
        return message
    return f"{message}; example: {names[-1]}: {examples[names[-1]]}"


def _path(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else "" if part == "[key]" else f".{part}"
    return out


def _explain(
    model: type[BaseModel], error: Any, examples: Mapping[str, str], children: Mapping[str, type[BaseModel]]
) -> tuple[str, str]:
    """(spec.<camelPath>, message) of one pydantic error."""
    loc: tuple[int | str, ...] = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SubfieldError):
        return _path((*loc, *cause.path)), _with_example(str(cause), (*loc, *cause.path), examples)
    if isinstance(cause, ValueError):
        return _path(loc), _with_example(str(cause), loc, examples)
    if error["type"] == "extra_forbidden":
        parents = [part for part in loc[:-1] if isinstance(part, str)]
        owner = children.get(parents[-1], model) if parents else model
        accepted = ", ".join(info.alias or name for name, info in owner.model_fields.items())
        return _path(loc[:-1]), f'unknown field "{loc[-1]}"; accepted fields: {accepted}'
    if error["type"] == "missing":
        return _path(loc), _with_example("is required", loc, examples)
    message = f"{error['msg'].replace('valid tuple', 'list')}, got {error['input']!r}"
    return _path(loc), _with_example(message, loc, examples)


def validate(
    model: type[_SpecT], obj: Mapping[str, Any], examples: Mapping[str, str], children: Mapping[str, type[BaseModel]]
) -> _SpecT:
    """`model.model_validate(obj)`, with every problem turned into one SpecError (first problem's
    field; the others appended as "; also spec.x: ...")."""
    try:
        return model.model_validate(dict(obj))
    except ValidationError as exc:
        problems = [_explain(model, error, examples, children) for error in exc.errors()]
    also = [f"{where}: {what}" for where, what in problems[1:]]
    raise SpecError(problems[0][0], "; also ".join([problems[0][1], *also]))



"""`kubetally validate`: the operator's own rules (`kubetally.validation`) over files, offline, in CI.

A pipeline that renders billing configs (plain YAML, a directory of them, or a kustomization) runs
this before merging: every CostWeights and CostReport is judged by `validation.check`, the rules of
the admission webhook and of the InvalidSpec condition, with the same messages. Other objects are
skipped (they are not ours to judge). Output: one line per billing object, `valid` or `invalid`
with the message, then a summary. Exit codes: 0 all valid (or none found), 1 any invalid, 2 the
input could not be read (one `kubetally: ...` line saying which and why).

Windows and steps are checked at the current time with `--resolution` (the operator's): a report
valid now is valid when the operator computes it, since its window keywords are relative.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetally.domain.errors import SpecError
from kubetally.validation import Subject, check, is_billing, subject

#: File names read from a directory.
SUFFIXES = (".yaml", ".yml", ".json")

#: Deadline of `kubectl kustomize` (seconds).
KUSTOMIZE_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One billing object of the input and what `check` said of it (`error` None: valid)."""

    source: str
    subject: Subject
    error: str | None


def documents(text: str, source: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The objects of a YAML or JSON stream (`List` kinds unpacked), each with where it came from;
    ValueError naming `source` when the text is not YAML of objects."""
    import yaml

    try:
        loaded = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: not YAML: {str(error).splitlines()[0]}") from None
    out: list[tuple[str, Mapping[str, Any]]] = []
    for number, doc in enumerate(loaded, start=1):
        if not isinstance(doc, Mapping):
            raise ValueError(f"{source}: document {number} is not an object")
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else None
        for item in items if isinstance(items, list) else [doc]:
            if isinstance(item, Mapping):
                out.append((source, item))
    return out


def kustomized(directory: str) -> str:
    """`kubectl kustomize DIRECTORY` (kubectl's built-in kustomize), within KUSTOMIZE_TIMEOUT."""
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ValueError(f"-k {directory}: kubectl is not on PATH (it builds the kustomization); or pipe "
                         "`kustomize build DIR | kubetally validate -`")
    try:
        done = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True,
                              timeout=KUSTOMIZE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise ValueError(f"-k {directory}: kubectl kustomize took over {KUSTOMIZE_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise ValueError(f"-k {directory}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")
    return done.stdout


def findings(objects: list[tuple[str, Mapping[str, Any]]], *, now: datetime,
             resolution_seconds: int) -> list[Finding]:
    """`check` of every billing object among `objects` (others are not ours to judge)."""
    out = []
    for source, obj in objects:
        if not is_billing(obj):
            continue
        try:
            check(obj, now=now, resolution_seconds=resolution_seconds)
            out.append(Finding(source, subject(obj), None))
        except SpecError as error:
            out.append(Finding(source, subject(obj), str(error)))
    return out


def _inputs(paths: Sequence[str]) -> list[tuple[str, str]]:
    """(source, text) of every path: a file, each matching file of a directory (sorted), or stdin."""
    out: list[tuple[str, str]] = []
    for given in paths:
        if given == "-":
            out.append(("<stdin>", sys.stdin.read()))
            continue
        path = Path(given)
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES) if path.is_dir() else [path]
        for file in files:
            try:
                out.append((str(file), file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(f"{file}: cannot be read ({error.__class__.__name__}: "
                                 f"{getattr(error, 'strerror', None) or error})") from None
    return out


def validate_command(paths: Sequence[str], kustomizations: Sequence[str], *, resolution_seconds: int,
                     now: datetime | None = None) -> int:
    """Run `kubetally validate`; returns the exit code (module doc)."""
    if not paths and not kustomizations:
        print("kubetally: give files, directories, - (stdin) or -k DIR to validate", file=sys.stderr)
        return 2
    try:
        objects = [obj for source, text in _inputs(paths) for obj in documents(text, source)]
        for directory in kustomizations:
            objects += documents(kustomized(directory), f"-k {directory}")
    except ValueError as error:
        print(f"kubetally: {error}", file=sys.stderr)
        return 2
    judged = findings(objects, now=now or datetime.now(UTC), resolution_seconds=resolution_seconds)
    bad = sum(finding.error is not None for finding in judged)
    lines = [f"{'valid  ' if f.error is None else 'invalid'} {f.subject} ({f.source})"
             + ("" if f.error is None else f": {f.error}") for f in judged]
    lines.append(f"{len(judged)} billing object(s): {len(judged) - bad} valid, {bad} invalid"
                 + ("" if judged else " (no CostWeights, CostReport or CostBudget found)"))
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # `kubetally validate ... | head`: the reader left; the exit code still tells
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (Python would complain at exit otherwise)
    return 1 if bad else 0

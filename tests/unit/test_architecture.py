"""The architecture holds: the layering contracts of pyproject.toml ([tool.importlinter]), run as a
test too; no import cycle anywhere in kubetally; every module imports on its own; small files; pure
layers that read no clock or environment."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    result = subprocess.run([str(lint_imports)], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_engine_and_domain_modules_stay_small() -> None:
    for path in (ROOT / "operator" / "kubetally").rglob("*.py"):
        lines = path.read_text().count("\n")
        assert lines <= 420, f"{path.relative_to(ROOT)} has {lines} lines; split it by concept"


def test_domain_and_engine_read_no_clock_and_no_environment() -> None:
    forbidden = ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(", "time.monotonic(",
                 "os.environ", "os.getenv(", "open(")
    for layer in ("domain", "facts", "engine"):
        for path in (ROOT / "operator" / "kubetally" / layer).rglob("*.py"):
            text = path.read_text()
            for needle in forbidden:
                assert needle not in text, f"{path.relative_to(ROOT)} uses {needle}"


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of a directed graph (iterative: no recursion limit).

    A component of two or more modules, or one module importing itself, is an import cycle.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(edges.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    return [c for c in strongly_connected(edges) if len(c) > 1 or c[0] in edges.get(c[0], set())]


def test_the_cycle_finder_finds_hand_made_cycles() -> None:
    """a → b → c → a is one cycle, d → d another; e → a and c → f hang off them and are in none."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "f"}, "d": {"d"}, "e": {"a"}, "f": set()}
    assert sorted(cycles(edges)) == [["a", "b", "c"], ["d"]]
    assert cycles({"x": {"y"}, "y": set()}) == []
    chain = {f"m{i}": {f"m{i + 1}"} for i in range(5000)} | {"m5000": {"m0"}}  # deeper than the recursion limit
    assert [len(c) for c in cycles(chain)] == [5001]


def test_an_import_inside_a_function_closes_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lazy import (in a function body) is still an edge of the graph: it hides a cycle, not breaks it."""
    package = tmp_path / "lazy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from lazy import b\n")
    (package / "b.py").write_text("def later() -> None:\n    from lazy import a  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("lazy", cache_dir=None)
    assert cycles({m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}) == [["lazy.a", "lazy.b"]]


@functools.cache
def kubetally_graph() -> grimp.ImportGraph:
    """kubetally's import graph as grimp reads it: every import statement, at module level or in a
    function; outside packages are single nodes that import nothing (so they close no cycle)."""
    return grimp.build_graph("kubetally", include_external_packages=True)


def test_kubetally_has_no_import_cycles() -> None:
    graph = kubetally_graph()
    edges = {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    found = cycles(edges)
    lines = []
    for component in found:
        members = set(component)
        for importer in component:
            for imported in sorted(edges[importer] & members):
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    lines.append(f"  {importer}:{detail['line_number']} imports {imported}")
    assert not found, "import cycles in kubetally:\n" + "\n".join(lines)


#: Run once in a fresh interpreter: preload the given outside packages, then fork one child per
#: module (four at a time) that imports that module and nothing else of the package under test;
#: a child that fails writes its traceback to <errors>/<module>.txt.
_IMPORT_EACH_ALONE = """
import importlib, os, sys, traceback
root, errors, outside, modules = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4:]
for name in filter(None, outside):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
loaded = [m for m in sys.modules if m == root or m.startswith(root + ".")]
assert not loaded, f"preloading outside packages loaded {loaded}"
running = {}
def reap():
    pid, _ = os.wait()
    running.pop(pid)
for module in modules:
    while len(running) >= 4:
        reap()
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            with open(os.path.join(errors, module + ".txt"), "w") as out:
                out.write(traceback.format_exc())
            os._exit(1)
        os._exit(0)
    running[pid] = module
while running:
    reap()
"""


def import_each_alone(root: str, modules: list[str], outside: list[str], path: Path, errors: Path) -> dict[str, str]:
    """Import each of `modules` (of package `root`, found on `path`) in a process where no module of
    `root` is loaded yet; returns module → traceback for those that fail.

    Why this is sound and fast: each child is forked from an interpreter that has imported only
    `outside` (third-party and standard-library packages, not under test), never a module of `root`,
    so a module that needs another of `root` imported first fails exactly as `python -c "import m"`
    would; forking skips re-importing numpy, DuckDB, pydantic, aiohttp and kopf ~90 times.
    """
    env = {**os.environ, "PYTHONPATH": str(path), "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-c", _IMPORT_EACH_ALONE, root, str(errors), ",".join(outside), *modules]
    result = subprocess.run(command, env=env, cwd=errors, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return {error.stem: error.read_text() for error in sorted(errors.glob("*.txt"))}


def test_the_import_check_catches_a_module_that_needs_another_imported_first(tmp_path: Path) -> None:
    """`late` reads `pkg.early` from sys.modules without importing it: it imports only after `early`."""
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "early.py").write_text("VALUE = 1\n")
    (package / "late.py").write_text("import sys\nVALUE = sys.modules['pkg.early'].VALUE\n")
    (package / "uses.py").write_text("from pkg.early import VALUE\n")
    errors = tmp_path / "errors"
    errors.mkdir()
    failed = import_each_alone("pkg", ["pkg", "pkg.early", "pkg.late", "pkg.uses"], ["json"], tmp_path / "src", errors)
    assert list(failed) == ["pkg.late"]
    assert "KeyError: 'pkg.early'" in failed["pkg.late"]


def test_every_module_imports_alone_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """`import kubetally.x` works for every module in an interpreter holding no other module of
    kubetally: none needs another imported first (see `import_each_alone`)."""
    graph = kubetally_graph()
    modules = sorted(m for m in graph.modules if m == "kubetally" or m.startswith("kubetally."))
    assert len(modules) > 50
    assert "kubetally.facts.schema" in modules
    outside = sorted({m.split(".")[0] for m in graph.modules} - {"kubetally"})
    failed = import_each_alone("kubetally", modules, outside, ROOT / "operator", tmp_path)
    assert not failed, "\n\n".join(f"import {module} failed:\n{error}" for module, error in failed.items())

"""Start a server process for a test, wait until it is ready, and always stop it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from kubetally.processes import background, wait_ready


@contextmanager
def managed_process(
    command: Sequence[str], log_path: Path, ready: Callable[[], bool], *, what: str, timeout: float,
    env: dict[str, str] | None = None,
) -> Iterator[None]:
    """Run `command` (output to `log_path`) until `ready()` is true; stop it on exit.

    `ready` may raise httpx errors while the server starts; they count as "not yet"."""
    with background(list(command), log_path, env=env) as process:
        wait_ready(process, ready, what=what, log_path=log_path, timeout=timeout)
        yield

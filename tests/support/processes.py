"""Start a server process for a test, wait until it is ready, and always stop it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


@contextmanager
def managed_process(
    command: Sequence[str], log_path: Path, ready: Callable[[], bool], *, what: str, timeout: float,
    env: dict[str, str] | None = None,
) -> Iterator[None]:
    """Run `command` (output to `log_path`) until `ready()` is true; terminate it on exit.

    `ready` may raise httpx errors while the server starts; they count as "not yet"."""
    with log_path.open("w") as log:
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{what} exited: {log_path.read_text()[-3000:]}")
                try:
                    if ready():
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{what} was not ready within {timeout:.0f} s: {log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

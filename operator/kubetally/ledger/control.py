"""The ledger's control socket: how a command asks the process that holds the ledger for a snapshot.

Why: DuckDB lets one process open a ledger file (an fcntl lock), so while `kubetally run`, `serve`,
`ingest`, `rollups` or `ledger repair` holds it, no other process can read it, not even to back it
up. The holder listens on a unix socket next to the file, `<ledger>.control`, and takes the
snapshot (or runs `verify`) through its own connection; `kubetally ledger backup|verify` ask it.

Protocol: one JSON object per line each way: `{"op": "backup", "to": "/abs/path"}` or
`{"op": "verify"}` → `{"ok": true, "line": "...", ...}` or `{"ok": false, "error": "...", "exit": n}`.

Decisions:
- Mode 0600 (created under umask 077): only the ledger's own user (a `kubectl exec` into the Pod)
  may ask. A socket file left by a holder that died is removed by the next holder (it holds the
  lock, so no other process can be listening).
- Deadlines: the holder reads a request within `READ_SECONDS` and answers within
  `REQUEST_SECONDS` (a backup of the L ledger takes seconds); the asker waits `timeout` seconds.
- Work runs in a worker thread on the holder's connection (own cursor), one request at a time.
- AF_UNIX paths are limited to 107 bytes; a longer socket path is reached through
  `/proc/self/fd/<directory fd>/<name>` (Linux resolves it as the directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from kubetally.ledger.errors import LedgerError

log = logging.getLogger(__name__)

READ_SECONDS = 5.0
REQUEST_SECONDS = 900.0
_MAX_PATH = 100

#: op → work(request) run in a thread; returns the answer's fields (a "line" for the asker to print).
Handlers = dict[str, Callable[[dict[str, Any]], dict[str, Any]]]


def socket_path(ledger: str | Path) -> Path:
    return Path(f"{ledger}.control")


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """A sun_path for `path` that fits AF_UNIX's limit (module docstring)."""
    if len(os.fsencode(str(path))) <= _MAX_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def serving(ledger: str | Path, handlers: Handlers) -> AsyncIterator[Path | None]:
    """Listen on `<ledger>.control` while the block runs (None, logged, when the directory refuses it)."""
    path = socket_path(ledger)
    lock = asyncio.Lock()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await asyncio.wait_for(reader.readline(), READ_SECONDS))
            op = request.get("op") if isinstance(request, dict) else None
            if op not in handlers:
                reply: dict[str, Any] = {"ok": False, "exit": 2, "error": f"unknown op {op!r}; ops: {sorted(handlers)}"}
            else:
                async with lock:
                    fields = await asyncio.wait_for(asyncio.to_thread(handlers[op], request), REQUEST_SECONDS)
                reply = {"ok": True, **fields}
        except LedgerError as error:
            reply = {"ok": False, "exit": error.exit_code, "error": str(error)}
        except TimeoutError:
            reply = {"ok": False, "exit": 2, "error": "the request timed out in the process holding the ledger"}
        except Exception as error:  # an answer, whatever happened: the asker must not hang
            log.exception("control request failed")
            reply = {"ok": False, "exit": 2, "error": f"{type(error).__name__}: {error}"}
        with contextlib.suppress(OSError):
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            writer.close()

    server = None
    try:
        path.unlink(missing_ok=True)
        old = os.umask(0o077)
        try:
            with _address(path) as address:
                server = await asyncio.start_unix_server(answer, address)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
    except OSError as error:
        log.warning("no control socket at %s (%s): `kubetally ledger backup` cannot reach this process", path, error)
        server = None
    try:
        yield path if server is not None else None
    finally:
        if server is not None:
            server.close()
            with contextlib.suppress(OSError):
                path.unlink()


def ask(ledger: str | Path, request: dict[str, Any], *, timeout: float) -> dict[str, Any] | None:
    """Send `request` to the holder of `ledger`; its answer, or None when nobody listens there."""
    path = socket_path(ledger)
    if not path.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            with _address(path) as address:
                client.connect(address)
        except (ConnectionRefusedError, FileNotFoundError):
            return None
        client.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = client.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data) if data.strip() else {"ok": False, "exit": 2, "error": "the holder closed the socket"}
    return answer if isinstance(answer, dict) else {"ok": False, "exit": 2, "error": "a malformed answer"}

"""Memory sizes as DuckDB reads them (`--memory-limit`)."""

from __future__ import annotations

import re

from kubetally.domain.errors import SpecError

_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)")
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30,
          "TiB": 2**40}


def memory_bytes(text: str) -> int:
    """A size as DuckDB reads it (`1GB` = 10^9 bytes, `1GiB` = 2^30), in bytes; SpecError if it is none."""
    found = _MEMORY.fullmatch(text.strip())
    if found is None:
        raise SpecError("--memory-limit", f"{text!r} is not a size; e.g. 1GB, 512MB, 2GiB")
    return int(float(found.group(1)) * _UNITS[found.group(2)])


#: The share of `--memory-limit` DuckDB's buffers and operators get (percent); the rest is the
#: process's own: the interpreter, and the answers being written (at most `max_queries` computed at
#: once, each up to ~50 MB of body text at scale L). Measured at L with 16 clients (bench/RESULTS.md).
DUCKDB_SHARE_PERCENT = 50


def duckdb_memory(limit: str | None) -> str | None:
    """DuckDB's cap for a process budget of `limit` (`DUCKDB_SHARE_PERCENT` of it), or None."""
    return None if limit is None else f"{memory_bytes(limit) * DUCKDB_SHARE_PERCENT // 100}B"

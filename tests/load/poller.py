"""Poll /healthz every `every` seconds for `seconds`, in a process of its own; print one line per poll.

Why a process: the latency a liveness probe sees must not include waits for the GIL of the test
process, whose 16 client threads read megabytes of answers. Each poll is a new connection with a
5-second deadline, as a kubelet's probe is. Output lines: `<status> <seconds>` (status 0: no answer).

Usage: python -m tests.load.poller URL SECONDS EVERY
"""

from __future__ import annotations

import http.client
import sys
import time
from urllib.parse import urlsplit


def main(url: str, seconds: float, every: float) -> None:
    parts = urlsplit(url)
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.monotonic()
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5.0)
        try:
            connection.request("GET", "/healthz")
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException):
            status = 0
        finally:
            connection.close()
        took = time.monotonic() - started
        print(f"{status} {took:.4f}", flush=True)
        time.sleep(max(0.0, every - took))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))

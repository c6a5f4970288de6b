"""Send fuzz cases to a real server over HTTP/1.1 and judge each answer against the error contract.

Why `http.client` and raw sockets rather than httpx: a fuzz must send the request-target byte for
byte (broken percent-encoding, raw reserved characters, any method), and httpx normalises URLs.
Every call has a deadline (`timeout`); a request that does not answer within it is a failure ("no
answer"), and one that answers after `max_seconds` is a failure too ("slow").

The contract (issue 12, DESIGN §API errors): never a 5xx; every 4xx that our application answers is
a Kubernetes Status (`kind: Status`, `apiVersion: v1`, `status: Failure`, `code` equal to the HTTP
code, a `reason`, a `message`); a 400's message starts with the name of a parameter the request sent
or requires (`SpecError` renders as `<field>: <what is wrong>; accepted ...`); a 405 names the method
and the allowed ones; no body ever holds a Python traceback.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.load.cases import Case

TRACEBACK_MARKERS = (b"Traceback (most recent call last)", b'.py", line ', b"File \"/")
REASONS = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed"}
KNOWN_PATHS = ("/v2/cost", "/platform/", "/apis/kubetally.io/", "/metrics", "/healthz", "/readyz")


@dataclass(frozen=True)
class Reply:
    status: int  # 0 when no answer came (connection error or deadline)
    content_type: str
    body: bytes
    seconds: float
    error: str = ""


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def send(url: str, case: Case, timeout: float) -> Reply:
    """Send `case` on a new connection; the whole exchange must end within `timeout` seconds."""
    host, port = _address(url)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.putrequest(case.method, case.target, skip_accept_encoding=True)
        if case.body is not None:
            connection.putheader("Content-Type", "application/x-www-form-urlencoded")
            connection.putheader("Content-Length", str(len(case.body)))
        connection.endheaders(case.body)
        response = connection.getresponse()
        body = response.read()
        return Reply(response.status, response.getheader("Content-Type", ""), body, time.monotonic() - started)
    except (OSError, http.client.HTTPException) as error:
        return Reply(0, "", b"", time.monotonic() - started, f"{type(error).__name__}: {error}")
    finally:
        connection.close()


def send_raw(url: str, data: bytes, timeout: float) -> Reply:
    """Write `data` on a socket and read the answer until the server closes (or 64 KiB)."""
    started = time.monotonic()
    try:
        with socket.create_connection(_address(url), timeout=timeout) as sock:
            sock.sendall(data)
            received = b""
            while len(received) < 65536:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
    except OSError as error:
        return Reply(0, "", b"", time.monotonic() - started, f"{type(error).__name__}: {error}")
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        return Reply(0, "", received, time.monotonic() - started, f"not an HTTP answer: {received[:200]!r}")
    content_type = next((line.split(":", 1)[1].strip() for line in lines[1:]
                         if line.lower().startswith("content-type:")), "")
    return Reply(status, content_type, body, time.monotonic() - started)


def _blamed(message: str, case: Case) -> bool:
    """Whether a 400's message starts with a parameter name the request sent or requires."""
    names = case.names | case.implicit
    shown = {name if len(name) <= 40 else name[:40] + "…" for name in names}
    return any(message.startswith(name + ": ") for name in shown)


def status_problems(case: Case, reply: Reply) -> list[str]:
    """What is wrong with a 4xx answer of our application (empty when it is a proper Status)."""
    if not reply.content_type.startswith("application/json"):
        return [f"{reply.status} is not a Status: Content-Type {reply.content_type!r}, body {reply.body[:200]!r}"]
    if case.method == "HEAD":
        return []
    try:
        body = json.loads(reply.body)
    except ValueError:
        return [f"{reply.status} body is not JSON: {reply.body[:200]!r}"]
    shape = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": reply.status}
    wrong = {key: body.get(key) for key, value in shape.items() if not isinstance(body, dict) or body.get(key) != value}
    if wrong:
        return [f"{reply.status} Status fields wrong: {wrong}"]
    message, reason = body.get("message"), body.get("reason")
    problems = []
    if reason != REASONS.get(reply.status, reason) or not isinstance(reason, str) or not reason:
        problems.append(f"reason {reason!r} for {reply.status}")
    if not isinstance(message, str) or len(message) < 10:
        return [*problems, f"message {message!r} says nothing"]
    if reply.status == 400 and not _blamed(message, case):
        problems.append(f"400 message names none of {sorted(case.names | case.implicit)[:8]}: {message[:200]!r}")
    if reply.status == 405 and case.method not in message:
        problems.append(f"405 message does not name the method {case.method}: {message[:200]!r}")
    return problems


def problems(case: Case, reply: Reply, max_seconds: float) -> list[str]:
    """Every way `reply` breaks the contract for `case`."""
    if reply.status == 0:
        return [f"no answer after {reply.seconds:.1f} s: {reply.error}"]
    found = []
    if reply.status >= 500:
        found.append(f"{reply.status}: {reply.body[:300]!r}")
    if reply.seconds > max_seconds:
        found.append(f"slow: {reply.seconds:.1f} s (limit {max_seconds:g} s)")
    if any(marker in reply.body for marker in TRACEBACK_MARKERS):
        found.append(f"traceback text in the body: {reply.body[:300]!r}")
    if case.route in ("metrics", "healthz", "readyz") and reply.status != 200:
        found.append(f"{case.route} answered {reply.status} (query parameters must not matter)")
    path = case.target.split("?", 1)[0]
    if (case.route == "method" and case.method != "HEAD" and path != "/nope" and path.startswith(KNOWN_PATHS)
            and reply.status != 405):
        found.append(f"{case.method} on a GET route answered {reply.status}, not 405 MethodNotAllowed")
    if case.framing and reply.status != 400:
        found.append(f"a request line over the cap answered {reply.status}, not 400")
    elif 400 <= reply.status < 500 and not case.framing:
        found.extend(status_problems(case, reply))
    elif reply.status == 200 and reply.content_type.startswith("application/json") and case.method != "HEAD":
        try:
            json.loads(reply.body)
        except ValueError:
            found.append(f"200 with a body that is not JSON: {reply.body[:200]!r}")
    return found

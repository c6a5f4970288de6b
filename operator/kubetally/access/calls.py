"""One call to the Kubernetes API with a deadline, failing closed.

Every access decision rests on an answer from the apiserver. When no usable answer comes (no
connection, no answer within the deadline, an error status, a body that is not the object asked
for) the only safe outcome is "cannot decide": `AccessUnavailable`, which the HTTP layer turns into
503. Never "allowed", and never "denied" either: a denial would be cached and shown as 403 to
someone who may well have access. Messages say what failed and never include a token.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class AccessUnavailable(Exception):
    """The apiserver could not be asked (or gave no usable answer): fail closed, answer 503."""


async def call_json(client: httpx.AsyncClient, method: str, path: str, *, what: str, timeout_seconds: float,
                    body: dict[str, Any] | None = None, missing_ok: bool = False) -> dict[str, Any] | None:
    """The JSON object answered to `method path`, or None for a 404 when `missing_ok`.

    `timeout_seconds` bounds the whole call (connect, TLS, send, wait, read), not each phase: httpx's
    own timeouts are per phase, so a server trickling bytes could otherwise hold a request forever.
    """
    try:
        async with asyncio.timeout(timeout_seconds):
            response = await client.request(method, path, json=body, timeout=timeout_seconds)
            content = await response.aread()
    except TimeoutError:
        raise AccessUnavailable(f"{what}: the Kubernetes API did not answer within {timeout_seconds:g}s") from None
    except httpx.HTTPError as error:
        raise AccessUnavailable(f"{what}: cannot reach the Kubernetes API ({type(error).__name__}: {error})") from None
    status = response.status_code
    if status == 404 and missing_ok:
        return None
    if status in (401, 403):
        raise AccessUnavailable(
            f"{what}: the Kubernetes API refused kubetally's own credentials (HTTP {status}); "
            f"its service account needs the {_GRANTS} bindings")
    if not 200 <= status < 300:
        raise AccessUnavailable(f"{what}: the Kubernetes API answered HTTP {status}: {_excerpt(content)}")
    try:
        value = response.json()
    except ValueError:
        raise AccessUnavailable(f"{what}: the Kubernetes API answered a body that is not JSON: "
                                f"{_excerpt(content)}") from None
    if not isinstance(value, dict):
        raise AccessUnavailable(f"{what}: the Kubernetes API answered {type(value).__name__}, not an object")
    return value


_GRANTS = ("system:auth-delegator (ClusterRoleBinding) and extension-apiserver-authentication-reader "
           "(RoleBinding in kube-system)")


def _excerpt(content: bytes, limit: int = 200) -> str:
    """The start of a body for an error message (the apiserver's Status message, usually)."""
    text = content.decode("utf-8", errors="replace").strip()
    return repr(text[:limit] + ("…" if len(text) > limit else ""))

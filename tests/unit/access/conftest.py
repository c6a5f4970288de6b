"""Shared fixtures of the access tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def hung_url() -> Iterator[str]:
    """An apiserver that hangs: a listening socket that never accepts. The kernel completes the TCP
    handshake into the backlog and no byte ever comes back."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"

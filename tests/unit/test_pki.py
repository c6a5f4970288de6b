"""`kubetally.pki` makes certificates real TLS stacks accept, with openssl and with `cryptography` alike.

Each backend makes a CA, a serving certificate for 127.0.0.1 and `localhost`, and a client
certificate with CN front-proxy-client; a Python TLS server requiring client certificates (verified
against the CA) and a client verifying the server strictly (VERIFY_X509_STRICT, hostname checked)
must complete a handshake, and the server must read the client's CN. Keys must be private (0600).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import stat
import threading
from pathlib import Path
from typing import cast

import pytest

from kubetally import pki

BACKENDS = ["openssl", "cryptography"]
Subject = tuple[tuple[tuple[str, str], ...], ...]  # what SSLSocket.getpeercert() holds under "subject"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    if name == "openssl" and shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    if name == "cryptography":
        monkeypatch.setattr(pki, "_openssl_present", lambda: False)
    return name


def _handshake(ca: pki.KeyPair, server: pki.KeyPair, client: pki.KeyPair, hostname: str) -> str | None:
    """Connect with `client` to a TLS server using `server`; the CN the server saw."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server.cert, server.key)
    server_context.load_verify_locations(ca.cert)
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.create_default_context(cafile=str(ca.cert))
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT
    client_context.load_cert_chain(client.cert, client.key)
    seen: list[str | None] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve() -> None:
            connection, _ = listener.accept()
            try:
                with server_context.wrap_socket(connection, server_side=True) as tls:
                    subject = cast(Subject, (tls.getpeercert() or {}).get("subject", ()))
                    seen.append(next((value for rdn in subject for key, value in rdn if key == "commonName"), None))
                    tls.recv(1)
            except (ssl.SSLError, OSError):  # the client refused us: its side raises
                connection.close()

        thread = threading.Thread(target=serve)
        thread.start()
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                client_context.wrap_socket(raw, server_hostname=hostname) as tls:
            tls.sendall(b"x")
        thread.join(timeout=10)
    return seen[0]


def test_certificates_pass_strict_verification_both_ways(backend: str, tmp_path: Path) -> None:
    ca = pki.certificate_authority(tmp_path, "ca", f"test-ca-{backend}")
    server = pki.issue(ca, tmp_path, "server", "server", names=["127.0.0.1", "localhost"])
    client = pki.issue(ca, tmp_path, "client", "front-proxy-client", client=True)
    assert _handshake(ca, server, client, "localhost") == "front-proxy-client"
    assert _handshake(ca, server, client, "127.0.0.1") == "front-proxy-client"
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(ca, server, client, "elsewhere.example")
    for key in (ca.key, server.key, client.key, pki.rsa_key(tmp_path / "sa.key")):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert b"PRIVATE KEY-----" in key.read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key", "sa.key"])


def test_a_certificate_for_nothing_is_refused(tmp_path: Path) -> None:
    ca = pki.certificate_authority(tmp_path, "ca", "test-ca")
    with pytest.raises(ValueError, match="server names, client use, or both"):
        pki.issue(ca, tmp_path, "leaf", "nobody")

"""The server TLS context over real sockets on 127.0.0.1: the self-made certificate, and which client
certificates name a front proxy (`peer_common_name`) and which fail the handshake.

Each case runs a real asyncio TLS server with `server_context(...)` and a real ssl client; the server
reports `peer_common_name` of the connection it accepted. Certificates come from tests/unit/access/certs.py.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from kubetally.access import tls
from kubetally.access.tls import peer_common_name, server_context
from tests.unit.access.certs import Pair, make_ca, make_leaf

FRONT_PROXY_CA = make_ca("front-proxy-ca")
OTHER_CA = make_ca("kubernetes")  # e.g. the cluster's client CA: its certificates are not the front proxy


@asynccontextmanager
async def serving(context: ssl.SSLContext) -> AsyncIterator[tuple[int, list[str | None]]]:
    """A TLS echo of the peer's CN: each accepted connection appends its `peer_common_name` and writes it."""
    names: list[str | None] = []

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = peer_common_name(writer.get_extra_info("ssl_object"))
        names.append(name)
        writer.write(f"{name}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(accepted, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1], names


def client_context(tmp_path: Path, *, cert: Pair | None = None, trust: Pair | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if trust is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=trust.cert_pem)
    if cert is not None:
        cert_file, key_file = cert.write(tmp_path, "client")
        context.load_cert_chain(cert_file, key_file)
    return context


async def ask(port: int, context: ssl.SSLContext, server_hostname: str | None = None) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=server_hostname)
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()
        with suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()


async def test_the_self_made_certificate_names_the_hosts_and_lasts_a_year(tmp_path: Path) -> None:
    context = server_context(None, None, hosts=["kubetally.kubetally-system.svc", "127.0.0.1", "::1"],
                             client_ca_pem=None)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    async with serving(context) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context(tmp_path),
                                                       server_hostname="kubetally.kubetally-system.svc")
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        await reader.readline()
        writer.close()
        await writer.wait_closed()
    certificate = x509.load_der_x509_certificate(der)
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["kubetally.kubetally-system.svc"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    now = datetime.datetime.now(datetime.UTC)
    assert certificate.not_valid_before_utc < now
    assert abs(certificate.not_valid_after_utc - (now + datetime.timedelta(days=365))) < datetime.timedelta(minutes=5)

    # a client that pins this certificate verifies it for the DNS name and the IP address it lists
    pinned = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pinned.load_verify_locations(cadata=certificate.public_bytes(Encoding.PEM).decode())
    async with serving(context) as (port, _):
        assert await ask(port, pinned, server_hostname="kubetally.kubetally-system.svc") == "None"
        assert await ask(port, pinned, server_hostname="127.0.0.1") == "None"
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            await ask(port, pinned, server_hostname="evil.example")


async def test_a_client_certificate_of_the_front_proxy_ca_gives_its_common_name(tmp_path: Path) -> None:
    context = server_context(None, None, hosts=["localhost"], client_ca_pem=FRONT_PROXY_CA.cert_pem)
    proxy = make_leaf(FRONT_PROXY_CA, "front-proxy-client", client=True)
    async with serving(context) as (port, names):
        assert await ask(port, client_context(tmp_path, cert=proxy)) == "front-proxy-client"
    assert names == ["front-proxy-client"]


async def test_no_client_certificate_is_no_name(tmp_path: Path) -> None:
    context = server_context(None, None, hosts=["localhost"], client_ca_pem=FRONT_PROXY_CA.cert_pem)
    async with serving(context) as (port, names):
        assert await ask(port, client_context(tmp_path)) == "None"
    assert names == [None]


async def test_a_certificate_of_another_ca_fails_the_handshake(tmp_path: Path) -> None:
    """With TLS 1.3 the client finishes its side before the server checks the certificate, so the
    failure shows as an alert (or a reset, or EOF) on the first read; the server never accepts."""
    context = server_context(None, None, hosts=["localhost"], client_ca_pem=FRONT_PROXY_CA.cert_pem)
    impostor = make_leaf(OTHER_CA, "front-proxy-client", client=True)
    async with serving(context) as (port, names):
        try:
            answer = await ask(port, client_context(tmp_path, cert=impostor))
        except (ssl.SSLError, ConnectionError):
            answer = ""
        assert answer == ""
    assert names == []


async def test_without_a_client_ca_certificates_are_not_asked_for_nor_trusted(tmp_path: Path) -> None:
    context = server_context(None, None, hosts=["localhost"], client_ca_pem=None)
    assert context.verify_mode == ssl.CERT_NONE
    proxy = make_leaf(FRONT_PROXY_CA, "front-proxy-client", client=True)
    async with serving(context) as (port, names):
        assert await ask(port, client_context(tmp_path, cert=proxy)) == "None"
    assert names == [None]


async def test_certificate_files_are_served_as_given(tmp_path: Path) -> None:
    server_ca = make_ca("cluster-issuer")
    cert_file, key_file = make_leaf(server_ca, "kubetally", client=False,
                                    sans=("kubetally.kubetally-system.svc",)).write(tmp_path, "tls")
    context = server_context(cert_file, key_file, hosts=["ignored"], client_ca_pem=FRONT_PROXY_CA.cert_pem)
    proxy = make_leaf(FRONT_PROXY_CA, "aggregator", client=True)
    async with serving(context) as (port, _):
        verified = client_context(tmp_path, cert=proxy, trust=server_ca)
        assert await ask(port, verified, server_hostname="kubetally.kubetally-system.svc") == "aggregator"
    with pytest.raises(ValueError, match="both the TLS certificate file and its private key file"):
        server_context(cert_file, None, hosts=[], client_ca_pem=None)


def test_the_self_made_key_touches_disk_only_briefly_and_privately(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    modes: dict[str, int] = {}

    class Recorder:
        def load_cert_chain(self, cert: str, key: str) -> None:
            for path in (cert, key, os.path.dirname(key)):
                modes[os.path.basename(path) if path != os.path.dirname(key) else "dir"] = os.stat(path).st_mode & 0o777

    tls._load_pem_chain(Recorder(), tls.self_signed(["localhost"]))  # type: ignore[arg-type]
    assert modes == {"tls.crt": 0o600, "tls.key": 0o600, "dir": 0o700}
    assert list(tmp_path.iterdir()) == []
    server_context(None, None, hosts=["localhost"], client_ca_pem=None)
    assert list(tmp_path.iterdir()) == []


def test_peer_common_name_of_nothing_or_an_unverified_peer_is_none() -> None:
    class Peer:
        def __init__(self, cert: object) -> None:
            self.cert = cert

        def getpeercert(self) -> object:
            return self.cert

    assert peer_common_name(None) is None
    assert peer_common_name(Peer(None)) is None  # type: ignore[arg-type]
    assert peer_common_name(Peer({})) is None  # type: ignore[arg-type]
    two = {"subject": ((("commonName", "a"),), (("commonName", "b"),))}
    assert peer_common_name(Peer(two)) is None  # type: ignore[arg-type]
    one = {"subject": ((("organizationName", "system:masters"),), (("commonName", "front-proxy-client"),))}
    assert peer_common_name(Peer(one)) == "front-proxy-client"  # type: ignore[arg-type]

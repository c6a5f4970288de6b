"""The server side of TLS: our certificate, and the front proxy's client certificate.

The API serves HTTPS with a certificate from files (a Secret, cert-manager compatible) or, when none
is given, one it makes at start for the names it is reached by (the aggregator is then told
`insecureSkipTLSVerify` or given that certificate as caBundle, as metrics-server does).

Client certificates are optional (CERT_OPTIONAL): users come with bearer tokens and no certificate;
the kube-apiserver's aggregator comes with its front-proxy certificate. A certificate that is
presented must verify against the requestheader CA, or the handshake fails. `peer_common_name` then
names the verified peer, and only such a connection may carry identity headers
(`kubetally.access.identity.FrontProxy`). Because the check is "verified by this context's CA", the
context must trust exactly the requestheader CA and nothing else (not the cluster's client CA:
any user's certificate would then pass as the front proxy).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: How long a self-made certificate is valid: a year, and an hour back for clocks running behind ours.
SELF_MADE_VALIDITY = datetime.timedelta(days=365)
_BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class SelfMade:
    """A self-signed server certificate and its private key, both PEM."""

    cert_pem: str
    key_pem: str


def server_context(cert_file: Path | None, key_file: Path | None, *, hosts: Sequence[str],
                   client_ca_pem: str | None, made: SelfMade | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context with the certificate in `cert_file`/`key_file` (both or neither),
    else `made` or a self-made one for `hosts` (DNS names and IP addresses); client certificates
    optional and verified against `client_ca_pem` when given, not asked for otherwise."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("give both the TLS certificate file and its private key file, or neither")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(cert_file, key_file)
    else:
        _load_pem_chain(context, made or self_signed(hosts))
    if client_ca_pem:
        context.load_verify_locations(cadata=client_ca_pem)
        context.verify_mode = ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def self_signed(hosts: Sequence[str], *, now: datetime.datetime | None = None) -> SelfMade:
    """A self-signed EC P-256 server certificate for `hosts` (each a DNS name or an IP address; the
    first is also the subject CN), valid from an hour before `now` (default: the current time) for
    SELF_MADE_VALIDITY."""
    names = [host for host in hosts if host] or ["localhost"]
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or datetime.datetime.now(datetime.UTC)) - _BACKDATE
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _BACKDATE + SELF_MADE_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return SelfMade(
        cert_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode(),
    )


def peer_common_name(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The subject CN of the peer's certificate if one was presented and verified, else None.

    `getpeercert()` is None when no certificate came and {} when one came but was not verified
    (CERT_NONE), so only a verified certificate yields a name. A subject with several CNs is
    ambiguous and yields None.
    """
    if ssl_object is None:
        return None
    certificate = ssl_object.getpeercert()
    if not certificate:
        return None
    subject: Any = certificate.get("subject", ())  # ((("commonName", "x"),), ...): one tuple per RDN
    names = {value for rdn in subject for key, value in rdn if key == "commonName"}
    return names.pop() if len(names) == 1 else None


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _load_pem_chain(context: ssl.SSLContext, made: SelfMade) -> None:
    """ssl loads keys only from files: write them into a fresh private directory (0700, files 0600)
    and delete it as soon as they are loaded, so the key lives in memory only."""
    directory = tempfile.mkdtemp(prefix="kubetally-tls-")
    try:
        cert_path, key_path = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
        for path, text in ((cert_path, made.cert_pem), (key_path, made.key_pem)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(text)
        context.load_cert_chain(cert_path, key_path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

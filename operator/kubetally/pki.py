"""Keys and certificates for the local control plane: a CA, certificates it signs, an RSA key.

Why a module: the local control plane (`kubetally.controlplane`) needs three things a kubeadm
cluster would make for it: a serving certificate whose names cover every address the API server is
reached at (127.0.0.1 and a network namespace's host address), a front-proxy CA with the client
certificate the aggregator presents to extension API servers (CN `front-proxy-client`), and an RSA
key that signs service-account tokens. Tests use the same helpers for the certificates of the
servers they run.

Everything is made with the `openssl` command when it is on PATH (Debian ships it), else with the
`cryptography` package (a dependency of kubetally). Keys are RSA 2048 (every TLS stack accepts
them). Certificates are valid for `DAYS` days from a moment shortly before now (the `cryptography`
path backdates by one hour for clock skew; `openssl x509 -req` starts at now). Key files are
written with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAYS = 365
_OPENSSL_TIMEOUT = 60.0


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM private key, as files."""

    cert: Path
    key: Path


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _openssl_present() -> bool:
    return shutil.which("openssl") is not None


def _openssl(*args: str) -> None:
    try:
        result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False,
                                timeout=_OPENSSL_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"openssl {args[0]} did not finish within {_OPENSSL_TIMEOUT:.0f} s") from error
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr[-2000:]}")


def _private(path: Path) -> Path:
    """`path`, created empty with mode 0600 if missing (so a key is never readable by others, even
    while it is being written; writers truncate and keep the mode), and set to 0600."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    return path


def rsa_key(path: Path) -> Path:
    """Write a new RSA 2048 private key (PEM) to `path`."""
    _private(path)
    if _openssl_present():
        _openssl("genrsa", "-out", str(path), "2048")
    else:
        path.write_bytes(_pem_key(_new_key()))
    path.chmod(0o600)
    return path


def _extensions(*, ca: bool, names: Sequence[str], client: bool) -> str:
    """An openssl extension section: a CA (signs certificates) or a leaf (server and/or client auth)."""
    lines = ["subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"]
    if ca:
        lines += ["basicConstraints = critical, CA:TRUE", "keyUsage = critical, keyCertSign, cRLSign, digitalSignature"]
    else:
        usages = (["serverAuth"] if names else []) + (["clientAuth"] if client else [])
        lines += ["basicConstraints = critical, CA:FALSE", "keyUsage = critical, digitalSignature, keyEncipherment",
                  "extendedKeyUsage = " + ", ".join(usages)]
        if names:
            lines.append("subjectAltName = " + ", ".join(f"{'IP' if _is_ip(n) else 'DNS'}:{n}" for n in names))
    return "\n".join(lines) + "\n"


def certificate_authority(directory: Path, name: str, common_name: str) -> KeyPair:
    """A self-signed CA: `directory/name.crt` and `directory/name.key`."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = KeyPair(directory / f"{name}.crt", _private(directory / f"{name}.key"))
    if _openssl_present():
        config = directory / f"{name}.cnf"
        config.write_text("[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = ext\n"
                          f"[dn]\nCN = {common_name}\n[ext]\n" + _extensions(ca=True, names=(), client=False))
        _openssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(DAYS),
                 "-config", str(config), "-keyout", str(pair.key), "-out", str(pair.cert))
        config.unlink()
    else:
        key = _new_key()
        pair.key.write_bytes(_pem_key(key))
        pair.cert.write_bytes(_sign(key.public_key(), common_name, key, None, ca=True, names=(), client=False))
    pair.key.chmod(0o600)
    return pair


def issue(ca: KeyPair, directory: Path, name: str, common_name: str, *,
          names: Sequence[str] = (), client: bool = False) -> KeyPair:
    """A certificate signed by `ca`: `directory/name.crt` and `.key`.

    `names` (IP addresses or DNS names) become subjectAltNames and make it a serving certificate;
    `client` makes it a client certificate (the subject's CN is the user name a verifier reads)."""
    if not names and not client:
        raise ValueError("a certificate needs server names, client use, or both")
    directory.mkdir(parents=True, exist_ok=True)
    pair = KeyPair(directory / f"{name}.crt", _private(directory / f"{name}.key"))
    if _openssl_present():
        request, extensions = directory / f"{name}.csr", directory / f"{name}.ext"
        extensions.write_text(_extensions(ca=False, names=names, client=client))
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={common_name}",
                 "-keyout", str(pair.key), "-out", str(request))
        _openssl("x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key),
                 "-set_serial", str(_serial()), "-sha256", "-days", str(DAYS), "-extfile", str(extensions),
                 "-out", str(pair.cert))
        request.unlink()
        extensions.unlink()
    else:
        ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
        if not isinstance(ca_key, rsa.RSAPrivateKey):
            raise RuntimeError(f"{ca.key} is not an RSA private key")
        ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
        key = _new_key()
        pair.key.write_bytes(_pem_key(key))
        pair.cert.write_bytes(_sign(key.public_key(), common_name, ca_key, ca_cert.subject, ca=False, names=names,
                                    client=client))
    pair.key.chmod(0o600)
    return pair


def _serial() -> int:
    """A random positive 127-bit serial number (RFC 5280: positive, at most 20 octets)."""
    return secrets.randbits(126) + 1


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _sign(public_key: rsa.RSAPublicKey, subject: str, signer: rsa.RSAPrivateKey, issuer: x509.Name | None, *,
          ca: bool, names: Sequence[str], client: bool) -> bytes:
    """A PEM certificate for `public_key` (CN `subject`) signed by `signer`, whose subject is
    `issuer` (None: self-signed)."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder()
               .subject_name(name).issuer_name(name if issuer is None else issuer)
               .public_key(public_key).serial_number(_serial())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=DAYS))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False, key_encipherment=not ca, data_encipherment=False,
                   key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False),
                   critical=True))
    if not ca:
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if names else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client
                                                                         else [])
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if names:
        alternatives: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names]
        builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

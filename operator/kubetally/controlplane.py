"""A real, local Kubernetes control plane: etcd plus kube-apiserver v1.20.2 on 127.0.0.1.

kubetally is an operator, so its end-to-end tests (and the future `kubetally demo`) need an API
server that behaves like a real one: discovery, RBAC, CRDs becoming Established, watches. A fake
would drift from the real thing; a full cluster (kind, minikube) needs Docker or VMs this project
cannot count on. So this module runs the two processes that make up the API side of Kubernetes:

- etcd (Debian's etcd 3.4, or `ETCD_BIN`, or an envtest assets folder) and
- kube-apiserver v1.20.2, built once from Debian's source package by
  `scripts/build-kube-apiserver.sh` and cached (see `scripts/README-controlplane.md`).

`local_control_plane(workdir)` picks free loopback ports, writes a token file (one random admin
token in `system:masters`), an RSA service-account key and a kubeconfig into `workdir`, starts both
processes with their output in `workdir/*.log`, waits for `/readyz` and yields a `ControlPlane`.
On exit it stops kube-apiserver, then etcd (SIGTERM, then SIGKILL). The children run in their own
process group (a terminal's Ctrl-C reaches only us, and we stop them in order) and, on Linux, get
SIGTERM if this process dies, so none outlives the context manager.

There is no controller-manager and no scheduler: no default ServiceAccount, Pods stay Pending, a
deleted namespace stays Terminating. The ServiceAccount admission plugin is disabled so that Pods can
be created anyway.
"""

from __future__ import annotations

import importlib
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from kubetally.processes import Log, apt_install, background, free_port, wait_ready

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-kube-apiserver.sh"
CONTEXT = "kubetally-local"
_LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane: the API server's URL, a kubeconfig for it and its admin token."""

    url: str  # https://127.0.0.1:PORT
    kubeconfig: Path  # context `kubetally-local`, user with the admin token
    token: str  # bearer token of a member of system:masters
    workdir: Path  # keys, certs, etcd data and the processes' logs


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _from_env(variable: str) -> Path | None:
    """The binary named by `variable`; a set variable must name an executable file."""
    value = os.environ.get(variable)
    if not value:
        return None
    path = Path(value)
    if not _executable(path):
        raise RuntimeError(f"{variable}={value} is not an executable file")
    return path


def _from_assets(name: str) -> Path | None:
    """`$KUBEBUILDER_ASSETS/name` (an envtest assets folder); a set folder must hold it."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if not assets:
        return None
    path = Path(assets) / name
    if not _executable(path):
        raise RuntimeError(f"KUBEBUILDER_ASSETS={assets} has no executable {name}")
    return path


def _kube_apiserver_cached() -> bool:
    """Whether the build script will hit its cache (so no 7-minute build is coming)."""
    if os.environ.get("KUBE_APISERVER_BIN") or os.environ.get("KUBEBUILDER_ASSETS"):
        return True
    cache = Path(os.environ.get("KUBETALLY_CACHE") or Path.home() / ".cache" / "kubetally")
    stamp = cache / "bin" / "kube-apiserver.version"
    return _executable(cache / "bin" / "kube-apiserver") and stamp.is_file() and stamp.stat().st_size > 0


def find_kube_apiserver(*, log: Log | None = None) -> Path:
    """`KUBE_APISERVER_BIN`, else `$KUBEBUILDER_ASSETS/kube-apiserver`, else the build script's cache.

    The script builds v1.20.2 on first use (root, Debian; about 7 minutes) and prints the binary's
    path as its last line. Its step lines (stderr) go to `log` (default: our stderr)."""
    explicit = _from_env("KUBE_APISERVER_BIN") or _from_assets("kube-apiserver")
    if explicit is not None:
        return explicit
    if not BUILD_SCRIPT.is_file():
        raise RuntimeError(f"cannot build kube-apiserver: {BUILD_SCRIPT} is missing; set KUBE_APISERVER_BIN")
    emit = log or (lambda line: print(line, file=sys.stderr))
    tail: deque[str] = deque(maxlen=_LOG_TAIL_LINES)
    with (tempfile.TemporaryFile("w+") as out,
          subprocess.Popen(["bash", str(BUILD_SCRIPT)], stdout=out, stderr=subprocess.PIPE, text=True) as process):
        assert process.stderr is not None
        for line in process.stderr:
            tail.append(line.rstrip("\n"))
            emit(line.rstrip("\n"))
        returncode = process.wait()
        out.seek(0)
        lines = [line.strip() for line in out.read().splitlines() if line.strip()]
    if returncode != 0 or not lines:
        raise RuntimeError(f"{BUILD_SCRIPT.name} failed (exit {returncode}):\n" + "\n".join(tail))
    path = Path(lines[-1])
    if not _executable(path):
        raise RuntimeError(f"{BUILD_SCRIPT.name} printed {path}, which is not an executable file")
    return path


def find_etcd(*, log: Log = print) -> Path:
    """`ETCD_BIN`, else `$KUBEBUILDER_ASSETS/etcd`, else `etcd` on PATH, else install etcd-server.

    Installing needs root on Debian (`apt-get install -y etcd-server`, after `apt-get update` if
    the first attempt fails)."""
    explicit = _from_env("ETCD_BIN") or _from_assets("etcd")
    if explicit is not None:
        return explicit
    apt_install("etcd-server", ("etcd",), log=log)
    return Path(str(shutil.which("etcd")))


def _service_account_key(path: Path) -> None:
    """An RSA key for signing service-account tokens: openssl, else the `cryptography` package."""
    if shutil.which("openssl"):
        result = subprocess.run(["openssl", "genrsa", "-out", str(path), "2048"], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise RuntimeError(f"openssl genrsa failed: {result.stderr[-2000:]}")
    else:
        try:
            rsa = importlib.import_module("cryptography.hazmat.primitives.asymmetric.rsa")
            serialization = importlib.import_module("cryptography.hazmat.primitives.serialization")
        except ImportError as error:
            raise RuntimeError("need openssl or the Python cryptography package to make a key") from error
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem: bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
        path.write_bytes(pem)
    path.chmod(0o600)


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def _verifies(url: str, ca_file: Path, token: str) -> bool:
    """Whether `ca_file` (the apiserver's self-signed serving cert) verifies TLS to `url`."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
        response = httpx.get(f"{url}/readyz", verify=context, timeout=5.0,
                             headers={"Authorization": f"Bearer {token}"})
    except (OSError, ssl.SSLError, httpx.HTTPError):
        return False
    return response.status_code == 200


def _kubeconfig(url: str, token: str, ca_file: Path | None) -> str:
    cluster: dict[str, object] = {"server": url}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    else:
        cluster["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": "kubetally-admin", "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "kubetally-admin"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


@contextmanager
def local_control_plane(workdir: Path, *, timeout: float = 90.0, log: Log = print) -> Iterator[ControlPlane]:
    """Run etcd and kube-apiserver on free loopback ports until the context exits.

    `workdir` is created if needed; its `etcd/` and `certs/` are recreated, so every start is a
    fresh, empty cluster. `timeout` bounds each process's wait for readiness (a first-run build of
    kube-apiserver comes on top). Raises RuntimeError, with the last lines of the relevant log, if
    a binary cannot be found or built or a process does not come up."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("etcd", "certs"):
        shutil.rmtree(workdir / stale, ignore_errors=True)
    etcd_bin = find_etcd(log=log)
    token = secrets.token_urlsafe(32)
    tokens = workdir / "tokens.csv"
    _write_private(tokens, f'{token},admin,admin,"system:masters"\n')  # token,user,uid,"groups"
    sa_key = workdir / "sa.key"
    _service_account_key(sa_key)

    with ExitStack() as stack:
        log("==> starting etcd")
        client, peer = free_port(), free_port()
        etcd_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        etcd_log = workdir / "etcd.log"
        etcd_env = {k: v for k, v in os.environ.items() if k != "ETCD_BIN"}  # etcd reads ETCD_* variables
        etcd = stack.enter_context(background([
            str(etcd_bin), "--name", "default", "--data-dir", str(workdir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"default={peer_url}",
        ], etcd_log, env=etcd_env))
        wait_ready(etcd, lambda: httpx.get(f"{etcd_url}/health", timeout=2.0).status_code == 200,
                    what="etcd", log_path=etcd_log, timeout=timeout)

        building = not _kube_apiserver_cached()
        log("==> starting kube-apiserver" + (" (first run builds it: about 7 minutes on 2 cores)" if building else ""))
        apiserver_bin = find_kube_apiserver(log=log)
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        certs = workdir / "certs"
        apiserver_log = workdir / "kube-apiserver.log"
        apiserver = stack.enter_context(background([
            str(apiserver_bin), "--etcd-servers", etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(port),
            "--cert-dir", str(certs),
            "--token-auth-file", str(tokens), "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(sa_key), "--service-account-signing-key-file", str(sa_key),
            "--service-cluster-ip-range", "10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
        ], apiserver_log))
        headers = {"Authorization": f"Bearer {token}"}

        def ready() -> bool:
            response = httpx.get(f"{url}/readyz", headers=headers, verify=False, timeout=5.0)
            return response.status_code == 200 and response.text.strip() == "ok"

        wait_ready(apiserver, ready, what="kube-apiserver", log_path=apiserver_log, timeout=timeout)
        ca_file = certs / "apiserver.crt"
        kubeconfig = workdir / "kubeconfig"
        _write_private(kubeconfig, _kubeconfig(url, token, ca_file if _verifies(url, ca_file, token) else None))
        log(f"==> control plane ready at {url} (kubeconfig: {kubeconfig})")
        yield ControlPlane(url=url, kubeconfig=kubeconfig, token=token, workdir=workdir)
        # ExitStack stops the apiserver first (entered last), then etcd.

"""A real, local Kubernetes control plane: etcd plus kube-apiserver v1.20.2, with the aggregation layer on.

kubetally is an operator, so its end-to-end tests (and `kubetally demo`) need an API server that
behaves like a real one: discovery, RBAC, CRDs becoming Established, watches, TokenReview and
SubjectAccessReview, and APIServices (the aggregated API). A fake would drift from the real thing; a
full cluster (kind, minikube) needs Docker or VMs this project cannot count on. So this module runs
the two processes that make up the API side of Kubernetes:

- etcd (Debian's etcd 3.4, or `ETCD_BIN`, or an envtest assets folder) and
- kube-apiserver v1.20.2, built once from Debian's source package by
  `scripts/build-kube-apiserver.sh` and cached (see `scripts/README-controlplane.md`).

`local_control_plane(workdir)` picks free ports, writes into `workdir` a token file (one random
admin token in `system:masters`, plus the `users` asked for), the keys and certificates below and a
kubeconfig per user, starts both processes with their output in `workdir/*.log`, waits for `/readyz`
and yields a `ControlPlane`. On exit it stops kube-apiserver, then etcd (SIGTERM, then SIGKILL). The
children run in their own process group (a terminal's Ctrl-C reaches only us, and we stop them in
order) and, on Linux, get SIGTERM if this process dies, so none outlives the context manager.

Certificates (`kubetally.pki`, in `workdir/certs`, new on every start):

- a serving CA and the API server's certificate (`--tls-cert-file`), naming 127.0.0.1, `bind_host`,
  10.0.0.1 and `kubernetes.default.svc`: every kubeconfig verifies the server with that CA;
- the front proxy: a CA (`--requestheader-client-ca-file`) and the client certificate with CN
  `front-proxy-client` (`--proxy-client-cert-file`/`--proxy-client-key-file`) that kube-apiserver
  presents when it proxies a request to an aggregated API (an APIService such as kubetally's
  `query.kubetally.io`). The user it has authenticated travels in `X-Remote-User`, `X-Remote-Group`
  and `X-Remote-Extra-*` (`--requestheader-*-headers`); an extension server believes those headers
  only from a connection whose client certificate that CA signed with a CN in
  `--requestheader-allowed-names=front-proxy-client`. kube-apiserver publishes all of it in the
  ConfigMap kube-system/extension-apiserver-authentication, where extension servers read it;
- an RSA key that signs and verifies service-account tokens (TokenRequest works: the audience of a
  requested token defaults to the issuer, `https://kubernetes.default.svc`).

Why `bind_host` and a network namespace: kube-apiserver refuses loopback addresses in Endpoints, so
an APIService cannot point at a process on 127.0.0.1. `kubetally.netns.pod_network()` makes a
network namespace with a veth pair, like a Pod's network; the operator runs inside it at pod_ip,
and kube-apiserver binds and advertises the host end (`bind_host=network.host_ip`), which the
operator reaches from inside. `--enable-aggregator-routing=true` makes kube-apiserver send
aggregated requests to the Service's Endpoints (the pod address) rather than to a ClusterIP, which
nothing here would route.

There is no controller-manager and no scheduler: no default ServiceAccount, Pods stay Pending, a
deleted namespace stays Terminating. The ServiceAccount admission plugin is disabled so that Pods can
be created anyway.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import httpx
import yaml

from kubetally import pki
from kubetally.processes import Log, apt_install, background, free_port, wait_ready

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-kube-apiserver.sh"
CONTEXT = "kubetally-local"
_LOG_TAIL_LINES = 40


ADMIN = "admin"
FRONT_PROXY_CLIENT = "front-proxy-client"  # the CN kube-apiserver's proxy client certificate carries
SERVICE_IP = "10.0.0.1"  # the `kubernetes` Service's ClusterIP: the first address of --service-cluster-ip-range


@dataclass(frozen=True)
class TokenUser:
    """A user of the static token file: `Authorization: Bearer <token>` authenticates as `name`."""

    token: str
    name: str
    uid: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane: the API server's URL, kubeconfigs for it and the files behind them."""

    url: str  # https://<host>:PORT
    kubeconfig: Path  # context `kubetally-local`, user with the admin token
    token: str  # bearer token of a member of system:masters
    workdir: Path  # keys, certs, etcd data and the processes' logs
    ca_file: Path  # the CA that verifies the API server's serving certificate
    front_proxy_ca: Path  # --requestheader-client-ca-file: verifies the aggregator's client certificate
    front_proxy_client: pki.KeyPair  # CN front-proxy-client: what kube-apiserver presents to extension servers
    host: str = "127.0.0.1"  # the address kube-apiserver binds and advertises
    users: Mapping[str, TokenUser] = field(default_factory=dict)  # the extra token-file users, by name

    def kubeconfig_for(self, user: str) -> Path:
        """The kubeconfig (same server and CA as `kubeconfig`) that authenticates as token user `user`
        (`admin`: `kubeconfig` itself)."""
        if user == ADMIN:
            return self.kubeconfig
        if user not in self.users:
            raise KeyError(f"{user!r} is not a token user of this control plane (users: {sorted(self.users)})")
        return self.workdir / f"kubeconfig-{_file_safe(user)}"


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


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _token_file(admin_token: str, users: Sequence[TokenUser]) -> str:
    """kube-apiserver's --token-auth-file: CSV lines `token,user,uid[,"group1,group2"]`.

    A field holding a comma can not be told apart from the separator in the groups column, and
    quotes or line breaks have no business in tokens or names: both are refused."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for user in (TokenUser(admin_token, ADMIN, ADMIN, ("system:masters",)), *users):
        fields = [user.token, user.name, user.uid, *user.groups]
        if not user.token or not user.name or not all(user.groups) or any(re.search(r'[,"\s]', f) for f in fields):
            raise ValueError(f"token user {user.name!r}: the token, the name and each group must be non-empty, and "
                             "none of them or the uid may hold a comma, a quote or whitespace")
        writer.writerow([user.token, user.name, user.uid, *([",".join(user.groups)] if user.groups else [])])
    return out.getvalue()


def _check_users(users: Sequence[TokenUser]) -> dict[str, TokenUser]:
    """The users by name; each must have its own name, kubeconfig file name and token."""
    by_name: dict[str, TokenUser] = {}
    files: set[str] = set()
    tokens: set[str] = set()
    for user in users:
        if user.name == ADMIN or user.name in by_name or _file_safe(user.name) in files or user.token in tokens:
            raise ValueError(f"token user {user.name!r}: names (other than {ADMIN!r}), their file names and tokens "
                             "must be unique")
        by_name[user.name] = user
        files.add(_file_safe(user.name))
        tokens.add(user.token)
    return by_name


def _bind_address(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"bind_host {host!r}: give an IPv4 address (such as 127.0.0.1 or a PodNetwork's "
                         "host_ip)") from None
    if address.version != 4 or address.is_unspecified:
        raise ValueError(f"bind_host {host!r}: give one IPv4 address of this host, not {host}")
    return host


def _verifies(url: str, ca_file: Path, token: str) -> bool:
    """Whether `ca_file` verifies the API server's certificate at `url` (hostname included)."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
        response = httpx.get(f"{url}/readyz", verify=context, timeout=5.0,
                             headers={"Authorization": f"Bearer {token}"})
    except (OSError, ssl.SSLError, httpx.HTTPError):
        return False
    return response.status_code == 200


def _kubeconfig(url: str, user: str, token: str, ca_file: Path) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url, "certificate-authority": str(ca_file)}}],
        "users": [{"name": f"kubetally-{user}", "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": f"kubetally-{user}"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


@dataclass(frozen=True)
class _Certificates:
    ca: pki.KeyPair  # serving CA
    serving: pki.KeyPair
    front_proxy_ca: pki.KeyPair
    front_proxy_client: pki.KeyPair


def _certificates(certs: Path, host: str) -> _Certificates:
    """The serving and front-proxy certificates (see the module docstring), new in `certs`."""
    ca = pki.certificate_authority(certs, "ca", "kubetally-local-ca")
    names = ["127.0.0.1", host, SERVICE_IP, "localhost", "kubernetes", "kubernetes.default",
             "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
    serving = pki.issue(ca, certs, "apiserver", "kube-apiserver", names=list(dict.fromkeys(names)))
    front_proxy_ca = pki.certificate_authority(certs, "front-proxy-ca", "kubetally-front-proxy-ca")
    client = pki.issue(front_proxy_ca, certs, "front-proxy-client", FRONT_PROXY_CLIENT, client=True)
    return _Certificates(ca, serving, front_proxy_ca, client)


def _apiserver_flags(host: str, port: int, etcd_url: str, tokens: Path, sa_key: Path,
                     certs: _Certificates) -> list[str]:
    return [
        "--etcd-servers", etcd_url,
        "--bind-address", host, "--advertise-address", host, "--secure-port", str(port),
        "--tls-cert-file", str(certs.serving.cert), "--tls-private-key-file", str(certs.serving.key),
        "--token-auth-file", str(tokens), "--authorization-mode", "RBAC",
        "--service-account-issuer", "https://kubernetes.default.svc",
        "--service-account-key-file", str(sa_key), "--service-account-signing-key-file", str(sa_key),
        "--service-cluster-ip-range", "10.0.0.0/24",
        "--disable-admission-plugins=ServiceAccount",
        # the front proxy: kube-apiserver authenticates users and proxies to aggregated APIs
        "--requestheader-client-ca-file", str(certs.front_proxy_ca.cert),
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--proxy-client-cert-file", str(certs.front_proxy_client.cert),
        "--proxy-client-key-file", str(certs.front_proxy_client.key),
        "--enable-aggregator-routing=true",
    ]


@contextmanager
def local_control_plane(workdir: Path, *, timeout: float = 90.0, log: Log = print, users: Sequence[TokenUser] = (),
                        bind_host: str = "127.0.0.1") -> Iterator[ControlPlane]:
    """Run etcd and kube-apiserver until the context exits.

    `workdir` is created if needed; its `etcd/` and `certs/` are recreated, so every start is a
    fresh, empty cluster. `users` are token-file users besides the admin (each gets
    `ControlPlane.kubeconfig_for(name)`; no RBAC grant: give them Roles yourself). kube-apiserver
    binds and advertises `bind_host` (an IPv4 address of this host: loopback, or a
    `kubetally.netns.PodNetwork`'s host_ip for an operator inside that network namespace; etcd stays
    on loopback). `timeout` bounds each process's wait for readiness (a first-run build of
    kube-apiserver comes on top). Raises ValueError for bad users or bind_host, RuntimeError, with
    the last lines of the relevant log, if a binary cannot be found or built or a process does not
    come up."""
    host = _bind_address(bind_host)
    by_name = _check_users(users)
    token = secrets.token_urlsafe(32)
    token_lines = _token_file(token, users)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("etcd", "certs"):
        shutil.rmtree(workdir / stale, ignore_errors=True)
    etcd_bin = find_etcd(log=log)
    tokens = workdir / "tokens.csv"
    _write_private(tokens, token_lines)
    sa_key = pki.rsa_key(workdir / "sa.key")
    certs = _certificates(workdir / "certs", host)

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
        url = f"https://{host}:{port}"
        apiserver_log = workdir / "kube-apiserver.log"
        apiserver = stack.enter_context(background(
            [str(apiserver_bin), *_apiserver_flags(host, port, etcd_url, tokens, sa_key, certs)], apiserver_log))
        headers = {"Authorization": f"Bearer {token}"}

        def ready() -> bool:
            response = httpx.get(f"{url}/readyz", headers=headers, verify=False, timeout=5.0)
            return response.status_code == 200 and response.text.strip() == "ok"

        wait_ready(apiserver, ready, what="kube-apiserver", log_path=apiserver_log, timeout=timeout)
        if not _verifies(url, certs.ca.cert, token):
            raise RuntimeError(f"kube-apiserver at {url} is up but {certs.ca.cert} does not verify its certificate")
        kubeconfig = workdir / "kubeconfig"
        _write_private(kubeconfig, _kubeconfig(url, ADMIN, token, certs.ca.cert))
        plane = ControlPlane(url=url, kubeconfig=kubeconfig, token=token, workdir=workdir, ca_file=certs.ca.cert,
                             front_proxy_ca=certs.front_proxy_ca.cert, front_proxy_client=certs.front_proxy_client,
                             host=host, users=MappingProxyType(by_name))
        for user in users:
            _write_private(plane.kubeconfig_for(user.name), _kubeconfig(url, user.name, user.token, certs.ca.cert))
        log(f"==> control plane ready at {url} (kubeconfig: {kubeconfig})")
        yield plane
        # ExitStack stops the apiserver first (entered last), then etcd.

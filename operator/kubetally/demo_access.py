"""The demo's access part: a tenant, their grant, the operator where a Pod would be, the aggregated API.

Why a module of its own: `kubetally demo` must show who may see what (issue 13) the way a cluster
does it, and that is a setup of its own beside the data's (`kubetally.demo`):

- a tenant, token user `tenant-ns-003` of the control plane's token file (random token, own
  kubeconfig), bound in `ns-003` to the ClusterRole `kubetally-cost-viewer` (manifests/access); the
  admin is the control plane's `system:masters` token user. Both tokens are written to files in
  the workdir (mode 0600) so the printed curls can read them with `$(cat <file>)`;
- when this process may make a network namespace (root and iproute2's `ip`: `kubetally.netns`), a
  Pod's network for the operator: `kubetally run` runs inside it on `<pod ip>:8443` with HTTPS (a
  demo CA and a serving certificate for the pod IP and `kubetally.kubetally-system.svc`, made here
  with `kubetally.pki`); kube-apiserver and Prometheus bind the host end of the veth pair. Then the
  aggregated API is registered as a cluster would: a placeholder Pod whose status (patched as admin:
  there is no kubelet) says it runs at the pod IP, the selector-less Service `kubetally` with
  Endpoints at that IP whose targetRef names the Pod (kube-apiserver 1.20's proxy routes only to
  such Endpoints), and the APIService `v1alpha1.query.kubetally.io` verifying the operator with
  the demo CA (`caBundle`). The demo waits until the APIService is Available and the apiserver
  answers `/apis/query.kubetally.io/v1alpha1` (it may route a moment after Available);
- otherwise (not root, no `ip`, or the namespace cannot be made) the operator serves plain HTTP on
  127.0.0.1 with the callers still checked; kube-apiserver refuses loopback Endpoints, so there is
  no aggregated API, and the demo says so in one line.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kubetally import pki
from kubetally.controlplane import ControlPlane, TokenUser
from kubetally.netns import PodNetwork, pod_network
from kubetally.processes import Log, background, wait_ready

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "kubetally-system"
TENANT_NAMESPACE = "ns-003"
TENANT = f"tenant-{TENANT_NAMESPACE}"
VIEWER_ROLE = "kubetally-cost-viewer"
POD_PORT = 8443  # the operator's port inside the network namespace (its own port space), as in the Deployment
SERVICE = "kubetally"
POD = "kubetally-demo"
GROUP_VERSION = "query.kubetally.io/v1alpha1"
APISERVICE = "v1alpha1.query.kubetally.io"
ROUTE_TIMEOUT = 30.0  # seconds: the apiserver may answer NotFound for a moment after Available
KUBECTL_TIMEOUT = 300.0


def kubectl(cp: ControlPlane, *args: str, input: str | None = None) -> str:
    """`kubectl ARGS` as the admin; a failure raises RuntimeError with kubectl's message."""
    command = ["kubectl", "--kubeconfig", str(cp.kubeconfig), *args]
    try:
        result = subprocess.run(command, input=input, capture_output=True, text=True, check=False,
                                timeout=KUBECTL_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"kubectl {' '.join(args)} did not finish within {KUBECTL_TIMEOUT:.0f} s") from error
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def tenant_user() -> TokenUser:
    """The tenant of `ns-003`, with a new random token (URL-safe: fits the token file's CSV)."""
    return TokenUser(token=secrets.token_urlsafe(32), name=TENANT, uid=TENANT)


def try_pod_network(stack: ExitStack) -> tuple[PodNetwork | None, str]:
    """A network namespace for the operator, deleted when `stack` closes, or None and why not."""
    try:
        return stack.enter_context(pod_network()), ""
    except RuntimeError as error:
        return None, str(error)


@dataclass(frozen=True)
class Operator:
    """Where this run's operator answers and what a client needs to call it."""

    url: str  # https://<pod ip>:8443, or http://127.0.0.1:<port> without a network namespace
    ca: Path | None  # verifies its serving certificate (None: plain HTTP)


def _serving_certificate(network: PodNetwork, certs: Path) -> tuple[pki.KeyPair, pki.KeyPair]:
    """The demo CA and the operator's certificate for the pod IP and the Service's DNS names (the
    apiserver verifies the Service's name `kubetally.kubetally-system.svc`, curl the IP)."""
    shutil.rmtree(certs, ignore_errors=True)
    ca = pki.certificate_authority(certs, "ca", "kubetally-demo-ca")
    names = [network.pod_ip, f"{SERVICE}.{OPERATOR_NAMESPACE}.svc", f"{SERVICE}.{OPERATOR_NAMESPACE}.svc.cluster.local"]
    return ca, pki.issue(ca, certs, "operator", SERVICE, names=names)


@contextmanager
def operator(cp: ControlPlane, run_args: Sequence[str], network: PodNetwork | None, port: int,
             workdir: Path) -> Iterator[Operator]:
    """`kubetally run RUN_ARGS` as a child process (in `network` when given), as the admin; yields
    once its `/readyz` answers 200."""
    base = [sys.executable, "-m", "kubetally", "run", *run_args]
    if network is not None:
        ca, serving = _serving_certificate(network, workdir / "certs")
        command = network.wrap([*base, "--host", network.pod_ip, "--port", str(POD_PORT),
                                "--tls-cert-file", str(serving.cert), "--tls-private-key-file", str(serving.key)])
        found = Operator(f"https://{network.pod_ip}:{POD_PORT}", ca.cert)
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca.cert))
    else:
        command = [*base, "--host", "127.0.0.1", "--port", str(port)]
        found, verify = Operator(f"http://127.0.0.1:{port}", None), True
    env = {**os.environ, "KUBECONFIG": str(cp.kubeconfig)}
    log_path = workdir / "operator.log"
    with background(command, log_path, env=env) as process:
        wait_ready(process, lambda: httpx.get(f"{found.url}/readyz", verify=verify, timeout=2.0).status_code == 200,
                   what="kubetally run", log_path=log_path, timeout=120)
        yield found


def _write_token(path: Path, token: str) -> Path:
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(token)
    return path


@dataclass(frozen=True)
class Tokens:
    admin: Path  # the control plane's admin (system:masters) token
    tenant: Path  # tenant-ns-003's token


def grant(cp: ControlPlane, workdir: Path) -> Tokens:
    """The ClusterRoles of manifests/access, the tenant's RoleBinding in ns-003, the token files."""
    kubectl(cp, "apply", "-k", str(ROOT / "manifests" / "access"))
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": f"{VIEWER_ROLE}-{TENANT}", "namespace": TENANT_NAMESPACE},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": VIEWER_ROLE},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TENANT}]}
    kubectl(cp, "apply", "-f", "-", input=json.dumps(binding))
    return Tokens(_write_token(workdir / "admin.token", cp.token),
                  _write_token(workdir / f"{TENANT}.token", cp.users[TENANT].token))


def _apply(cp: ControlPlane, *objects: dict[str, Any]) -> None:
    kubectl(cp, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def register(cp: ControlPlane, network: PodNetwork, ca: Path, *, log: Log) -> float:
    """Route `query.kubetally.io/v1alpha1` to the operator at the pod IP (module doc); returns the
    seconds from Available until the apiserver answered the group version."""
    meta = {"name": SERVICE, "namespace": OPERATOR_NAMESPACE}
    _apply(cp, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": OPERATOR_NAMESPACE,
                                                                "labels": {"app.kubernetes.io/name": "kubetally"}},
                "spec": {"nodeName": network.name, "containers": [{"name": "operator", "image": "kubetally:demo"}]}})
    status = {"status": {"phase": "Running", "podIP": network.pod_ip, "podIPs": [{"ip": network.pod_ip}],
                         "conditions": [{"type": "Ready", "status": "True"}]}}
    uid = kubectl(cp, "patch", "pod", POD, "-n", OPERATOR_NAMESPACE, "--subresource=status", "--type=merge",
                  "-p", json.dumps(status), "-o", "jsonpath={.metadata.uid}")
    _apply(cp,
           {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": POD_PORT, "protocol": "TCP"}]}},
           {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
            "subsets": [{"addresses": [{"ip": network.pod_ip, "targetRef": {
                "kind": "Pod", "namespace": OPERATOR_NAMESPACE, "name": POD, "uid": uid}}],
                         "ports": [{"name": "https", "port": POD_PORT, "protocol": "TCP"}]}]},
           {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE},
            "spec": {"group": "query.kubetally.io", "version": "v1alpha1", "groupPriorityMinimum": 100,
                     "versionPriority": 100, "caBundle": base64.b64encode(ca.read_bytes()).decode(),
                     "service": {"namespace": OPERATOR_NAMESPACE, "name": SERVICE, "port": 443}}})
    kubectl(cp, "wait", "--for=condition=Available", "--timeout=60s", f"apiservice/{APISERVICE}")
    started = time.monotonic()
    while True:
        try:
            kubectl(cp, "get", "--raw", f"/apis/{GROUP_VERSION}")
            break
        except RuntimeError as error:
            if "NotFound" not in str(error) or time.monotonic() - started > ROUTE_TIMEOUT:
                raise
            time.sleep(0.2)
    waited = time.monotonic() - started
    log(f"APIService {APISERVICE} Available; kube-apiserver routes it to {network.pod_ip}:{POD_PORT} "
        f"({waited:.1f} s after Available)")
    return waited


def _q(path: Path) -> str:
    return shlex.quote(str(path))


def try_lines(cp: ControlPlane, api: Operator, tokens: Tokens, *, aggregated: bool, reason: str,
              first: str, last: str) -> list[str]:
    """What to try, each command copy-paste correct in a POSIX shell (prose lines are not indented)."""
    tenant = _q(cp.kubeconfig_for(TENANT))
    cacert = f" --cacert {_q(api.ca)}" if api.ca is not None else ""

    def curl(token: Path, path: str, tail: str = " | python3 -m json.tool") -> str:
        return f"  curl -s{cacert} -H \"Authorization: Bearer $(cat {_q(token)})\" '{api.url}{path}'{tail}"

    alauda = "/platform/cost.alauda.io/v1beta1"
    raw = f"/apis/{GROUP_VERSION}"
    head = " | python3 -m json.tool | head -40"
    lines = ["As the cluster admin (system:masters):", "",
             f"  export KUBECONFIG={_q(cp.kubeconfig)}",
             "  kubectl get costreports -A",
             f"  kubectl get costreport namespaces-7d -n {OPERATOR_NAMESPACE} -o yaml",
             "  kubectl get costweights"]
    if aggregated:
        lines += ["  kubectl api-resources --api-group=query.kubetally.io",
                  f"  kubectl get --raw \"{raw}/costs/cost?window=7d&aggregate=namespace\"{head}",
                  "",
                  f"As {TENANT}, a cost viewer of {TENANT_NAMESPACE} only (a RoleBinding of {VIEWER_ROLE}), with "
                  "their own kubeconfig,", "through the aggregated API:", "",
                  f"  kubectl --kubeconfig {tenant} get --raw \"{raw}/namespaces/{TENANT_NAMESPACE}/costs/cost"
                  "?window=7d&aggregate=controller\"",
                  f"  kubectl --kubeconfig {tenant} get --raw \"{raw}/namespaces/{TENANT_NAMESPACE}/costreports/"
                  "my-controllers/result\"",
                  f"  kubectl --kubeconfig {tenant} get --raw \"{raw}/namespaces/ns-004/costs/cost?window=7d\"",
                  "The last one is Forbidden: ns-004 is not theirs."]
    else:
        lines += ["", f"No aggregated API ({raw}) in this run: it needs the operator in a network namespace "
                      f"(root and iproute2's ip), and {reason}."]
    where = "in a network namespace, like a Pod" if aggregated else "plain HTTP on loopback, callers still checked"
    lines += ["", f"The operator's own port, {api.url} ({where}), with a bearer token", f"(the admin's sees every "
              f"namespace, {TENANT}'s only {TENANT_NAMESPACE}):", "",
              curl(tokens.admin, "/v2/cost?window=7d&aggregate=namespace&step=1d", head),
              curl(tokens.tenant, "/v2/cost?window=7d&aggregate=namespace"),
              curl(tokens.admin, f"{alauda}/costs/usage?start={first}&end={last}&kind=namespace_all&step=day"),
              curl(tokens.tenant, f"{alauda}/projects/project-03/costs/usage?start={first}&end={last}&kind=namespace"
                                  f"&name={TENANT_NAMESPACE}"),
              f"  curl -s{cacert} '{api.url}/v2/cost?window=7d'",
              "The last one has no token: 401."]
    return lines

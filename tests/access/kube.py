"""Talking to the tier's control plane: kubectl as any user, raw API calls as the admin, TokenRequests,
and the objects that route the aggregated API to a process in a network namespace.

Why raw objects (not manifests/manager): the operator runs as a process, not a Pod, so the tier makes
what a kubelet and an endpoints controller would have made: a Pod whose `status.podIPs` holds the
network namespace's address (patched as admin: there is no kubelet), a Service without selector and
Endpoints naming that Pod, and an APIService whose `caBundle` is the CA of the serving certificate the
tier gave the operator (the repository's APIService skips TLS verification; this one proves the
verified variant works).
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from kubetally.controlplane import ControlPlane
from tests.access.world import OPERATOR_ACCOUNT, OPERATOR_NAMESPACE

KUBECTL = "/usr/bin/kubectl"
DEADLINE = 30.0
POD = "kubetally-0"
SERVICE = "kubetally"
APISERVICE = "v1alpha1.query.kubetally.io"


def kubectl(plane: ControlPlane, *args: str, kubeconfig: Path | None = None, input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """`kubectl ARGS` with `kubeconfig` (default: the admin's); `check` raises AssertionError on failure.

    The deadline is the subprocess's (120 s), not `--request-timeout`: kubectl sends that as a `timeout`
    query parameter, which `get --raw` passes to the aggregated API (and the operator refuses it)."""
    config = kubeconfig or plane.kubeconfig
    command = [KUBECTL, "--kubeconfig", str(config), "--cache-dir", str(config.parent / f"cache-{config.name}"), *args]
    result = subprocess.run(command, input=input, capture_output=True, text=True, check=False, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\n"
                             f"stderr: {result.stderr}")
    return result


def admin(plane: ControlPlane) -> httpx.Client:
    """An httpx client of the apiserver as the admin (system:masters), verifying its certificate."""
    return httpx.Client(base_url=plane.url, verify=ssl.create_default_context(cafile=str(plane.ca_file)),
                        timeout=DEADLINE,
                        headers={"Authorization": f"Bearer {plane.token}"})


def apply(plane: ControlPlane, *objects: dict[str, Any]) -> None:
    kubectl(plane, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def token_for(plane: ControlPlane, namespace: str, account: str, seconds: int = 7200) -> str:
    """A token of ServiceAccount namespace/account from the TokenRequest API (audience: the apiserver)."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}}
    with admin(plane) as client:
        response = client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["status"]["token"])


def kubeconfig(path: Path, plane: ControlPlane, user: str, token: str) -> Path:
    """A kubeconfig for `token` at the control plane's URL, verifying it with its CA."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "clusters": [{"name": "c", "cluster": {"server": plane.url, "certificate-authority": str(plane.ca_file)}}],
              "users": [{"name": user, "user": {"token": token}}],
              "contexts": [{"name": "c", "context": {"cluster": "c", "user": user}}]}
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def role_binding(name: str, namespace: str, role: str, user: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}


def cluster_role_binding(name: str, role: str, user: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}


def pod_at(plane: ControlPlane, pod_ip: str, name: str = POD) -> str:
    """A Pod `name` in the operator's namespace whose status says it runs at `pod_ip`; returns its uid."""
    apply(plane, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE,
                                                                  "labels": {"app.kubernetes.io/name": "kubetally"}},
                  "spec": {"serviceAccountName": OPERATOR_ACCOUNT, "nodeName": "netns",
                           "containers": [{"name": "operator", "image": "kubetally:latest"}]}})
    status = {"status": {"phase": "Running", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
                         "conditions": [{"type": "Ready", "status": "True"}]}}
    with admin(plane) as client:
        response = client.patch(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods/{name}/status", json=status,
                                headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text
    return str(response.json()["metadata"]["uid"])


def service_to(plane: ControlPlane, name: str, pod_ip: str, port: int, pod_uid: str, pod: str = POD) -> None:
    """Service `name` (port 443, no selector) and its Endpoints: `pod_ip:port`, targetRef the Pod."""
    meta = {"name": name, "namespace": OPERATOR_NAMESPACE}
    apply(plane,
          {"apiVersion": "v1", "kind": "Service", "metadata": meta,
           "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port, "protocol": "TCP"}]}},
          {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
           "subsets": [{"addresses": [{"ip": pod_ip, "targetRef": {"kind": "Pod", "namespace": OPERATOR_NAMESPACE,
                                                                   "name": pod, "uid": pod_uid}}],
                        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]})


def api_service(plane: ControlPlane, ca_pem: bytes) -> None:
    """The APIService of query.kubetally.io/v1alpha1 at Service kubetally:443, verified with `ca_pem`."""
    apply(plane, {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE},
                  "spec": {"group": "query.kubetally.io", "version": "v1alpha1", "groupPriorityMinimum": 100,
                           "versionPriority": 100, "caBundle": base64.b64encode(ca_pem).decode(),
                           "service": {"namespace": OPERATOR_NAMESPACE, "name": SERVICE, "port": 443}}})


def wait_available(plane: ControlPlane, timeout: float = 60.0) -> None:
    """Until the APIService's Available condition is True (the apiserver reached our discovery)."""
    deadline = time.monotonic() + timeout
    conditions: list[dict[str, Any]] = []
    with admin(plane) as client:
        while time.monotonic() < deadline:
            body = client.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE}").json()
            conditions = body.get("status", {}).get("conditions", [])
            if any(c["type"] == "Available" and c["status"] == "True" for c in conditions):
                return
            time.sleep(0.5)
    raise AssertionError(f"APIService {APISERVICE} not Available within {timeout:.0f} s: {conditions}")


def wait_routed(plane: ControlPlane, namespace: str, timeout: float = 60.0) -> float:
    """Until the apiserver proxies data requests of the aggregated API (3 answers in a row that are not
    its own 404: for ~0.4 s after Available it still answers `404 page not found`); returns the seconds
    waited."""
    started = time.monotonic()
    path = f"/apis/query.kubetally.io/v1alpha1/namespaces/{namespace}/costs/cost"
    streak = 0
    with admin(plane) as client:
        while streak < 3:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"the aggregated API was not routed within {timeout:.0f} s")
            streak = streak + 1 if client.get(path, params={"window": "1h"}).status_code == 200 else 0
            time.sleep(0.05)
    return time.monotonic() - started

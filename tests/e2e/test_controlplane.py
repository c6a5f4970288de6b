"""The local control plane is a working Kubernetes API: kubectl, RBAC, namespaces, CRDs, and the
authentication an aggregated API relies on: the front proxy published in
kube-system/extension-apiserver-authentication, token-file users, TokenRequest, a serving CA."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubetally.controlplane import ControlPlane, TokenUser, local_control_plane
from tests.support.controlplane import KUBECTL, kubectl

pytestmark = pytest.mark.e2e

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.kubetally.io}
spec:
  group: test.kubetally.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
"""

WIDGET = """
apiVersion: test.kubetally.io/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: 3}
"""


def test_server_version(control_plane: ControlPlane) -> None:
    version = json.loads(kubectl(control_plane, "version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.20.2"


def test_namespaces(control_plane: ControlPlane) -> None:
    names = kubectl(control_plane, "get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(names)
    kubectl(control_plane, "create", "namespace", "e2e-x")
    assert kubectl(control_plane, "get", "namespace", "e2e-x", "-o", "name").stdout.strip() == "namespace/e2e-x"


def test_admin_token_is_cluster_admin(control_plane: ControlPlane) -> None:
    assert kubectl(control_plane, "auth", "can-i", "create", "pods").stdout.strip() == "yes"


def test_custom_resources(control_plane: ControlPlane) -> None:
    kubectl(control_plane, "apply", "-f", "-", input=CRD)
    kubectl(control_plane, "wait", "--for", "condition=established", "--timeout=60s", "crd/widgets.test.kubetally.io")
    kubectl(control_plane, "apply", "-f", "-", input=WIDGET)
    widget = json.loads(kubectl(control_plane, "get", "widgets.test.kubetally.io", "w1", "-n", "default", "-o", "json").stdout)
    assert widget["spec"] == {"size": 3}


# --- front proxy, serving CA, token users, TokenRequest ------------------------------------------

ALICE = TokenUser(token="alice-token-3f9c", name="alice", uid="u-alice", groups=("tenants", "team-a"))
BOB = TokenUser(token="bob-token-77d1", name="bob", uid="u-bob")


@pytest.fixture(scope="module")
def with_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of its own with two token users (the session one has only the admin)."""
    with local_control_plane(tmp_path_factory.mktemp("cp-users"), users=(ALICE, BOB)) as cp:
        yield cp


def _create(cp: ControlPlane, obj: dict[str, Any]) -> dict[str, Any]:
    """`kubectl create -f -` of `obj` as admin; the object the server returns (reviews are not stored)."""
    result: dict[str, Any] = json.loads(kubectl(cp, "create", "-o", "json", "-f", "-", input=json.dumps(obj)).stdout)
    return result


def _token_review(cp: ControlPlane, token: str) -> dict[str, Any]:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    status: dict[str, Any] = _create(cp, review)["status"]
    return status


def _can_i(cp: ControlPlane, user: str, *args: str) -> str:
    command = [KUBECTL, "--kubeconfig", str(cp.kubeconfig_for(user)), "auth", "can-i", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60).stdout.strip()


def test_front_proxy_is_published_for_extension_servers(control_plane: ControlPlane) -> None:
    config = json.loads(kubectl(control_plane, "get", "configmap", "-n", "kube-system",
                                "extension-apiserver-authentication", "-o", "json").stdout)["data"]
    assert config["requestheader-client-ca-file"].strip() == control_plane.front_proxy_ca.read_text().strip()
    assert json.loads(config["requestheader-allowed-names"]) == ["front-proxy-client"]
    assert json.loads(config["requestheader-username-headers"]) == ["X-Remote-User"]
    assert json.loads(config["requestheader-group-headers"]) == ["X-Remote-Group"]
    assert json.loads(config["requestheader-extra-headers-prefix"]) == ["X-Remote-Extra-"]


def test_front_proxy_client_certificate_is_signed_by_the_requestheader_ca(control_plane: ControlPlane) -> None:
    client = control_plane.front_proxy_client
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(control_plane.front_proxy_ca), str(client.cert)],
                            capture_output=True, text=True, check=False, timeout=30)
    assert verify.returncode == 0, verify.stderr
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", str(client.cert)],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    assert subject.strip() == "subject=CN = front-proxy-client"


def test_kubeconfig_verifies_the_server_with_our_ca(control_plane: ControlPlane) -> None:
    cluster = yaml.safe_load(control_plane.kubeconfig.read_text())["clusters"][0]["cluster"]
    assert cluster == {"server": control_plane.url, "certificate-authority": str(control_plane.ca_file)}
    response = httpx.get(f"{control_plane.url}/readyz", verify=ssl.create_default_context(cafile=str(control_plane.ca_file)),
                         headers={"Authorization": f"Bearer {control_plane.token}"}, timeout=10)
    assert (response.status_code, response.text) == (200, "ok")


def test_token_users_authenticate_with_their_names_and_groups(with_users: ControlPlane) -> None:
    assert set(with_users.users) == {"alice", "bob"}
    alice = _token_review(with_users, ALICE.token)
    assert alice["authenticated"] is True
    assert alice["user"] == {"username": "alice", "uid": "u-alice", "groups": ["tenants", "team-a", "system:authenticated"]}
    bob = _token_review(with_users, BOB.token)
    assert bob["user"] == {"username": "bob", "uid": "u-bob", "groups": ["system:authenticated"]}
    assert _token_review(with_users, "not-a-token").get("authenticated") is not True


def test_token_users_get_only_what_rbac_grants(with_users: ControlPlane) -> None:
    kubectl(with_users, "create", "namespace", "users-a")
    assert _can_i(with_users, "alice", "list", "pods", "-n", "users-a") == "no"
    kubectl(with_users, "create", "role", "pod-reader", "-n", "users-a", "--verb=list", "--resource=pods")
    kubectl(with_users, "create", "rolebinding", "team-a-reads", "-n", "users-a", "--role=pod-reader", "--group=team-a")
    assert _can_i(with_users, "alice", "list", "pods", "-n", "users-a") == "yes"  # through the group
    assert _can_i(with_users, "alice", "list", "pods", "-n", "default") == "no"
    assert _can_i(with_users, "bob", "list", "pods", "-n", "users-a") == "no"


def test_service_account_token_request_works(control_plane: ControlPlane) -> None:
    kubectl(control_plane, "create", "namespace", "e2e-sa")
    kubectl(control_plane, "create", "serviceaccount", "bot", "-n", "e2e-sa")
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
    issued = json.loads(kubectl(control_plane, "create", "--raw", "/api/v1/namespaces/e2e-sa/serviceaccounts/bot/token",
                                "-f", "-", input=json.dumps(request)).stdout)
    review = _token_review(control_plane, issued["status"]["token"])
    assert review["authenticated"] is True
    assert review["user"]["username"] == "system:serviceaccount:e2e-sa:bot"
    assert review["audiences"] == ["https://kubernetes.default.svc"]


@pytest.mark.parametrize(("users", "bind_host", "message"), [
    ((TokenUser("t1", "admin", "u"),), "127.0.0.1", "unique"),
    ((ALICE, TokenUser("t2", "alice", "u")), "127.0.0.1", "unique"),
    ((ALICE, TokenUser(ALICE.token, "carol", "u")), "127.0.0.1", "unique"),
    ((TokenUser("t3", "carol", "u", ("a,b",)),), "127.0.0.1", "comma"),
    ((TokenUser("", "carol", "u"),), "127.0.0.1", "non-empty"),
    ((), "0.0.0.0", "one IPv4 address"),
    ((), "localhost", "give an IPv4 address"),
])
def test_bad_users_and_addresses_are_refused_before_anything_starts(
    tmp_path: Path, users: tuple[TokenUser, ...], bind_host: str, message: str,
) -> None:
    with pytest.raises(ValueError, match=message), local_control_plane(tmp_path, users=users, bind_host=bind_host):
        pass
    assert list(tmp_path.iterdir()) == []

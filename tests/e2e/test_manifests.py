"""The deployment manifests (manifests/) against a real kube-apiserver: they build, the apiserver
accepts them, and the operator's RBAC is exactly the least privilege of CORRECTNESS.md S4 plus the two
bindings every aggregated API server has (system:auth-delegator: create tokenreviews and
subjectaccessreviews; extension-apiserver-authentication-reader: read that one ConfigMap in kube-system)
and its Role's one rule: `get` of the one Secret holding the CostBudget webhook URLs (issue 17), by name,
in its own namespace; no other Secret anywhere.
What the user-facing ClusterRoles grant is checked in test_manifests_access.py.

The RBAC golden file is tests/e2e/golden/operator-can-i.txt. After a deliberate RBAC change,
rewrite it with `KUBETALLY_UPDATE_GOLDEN=1 pytest tests/e2e/test_manifests.py` and review the diff
by hand. Three scopes are listed: cluster-wide, the operator's namespace and kube-system (where the
only namespaced grant outside kubetally-system lives). The normalisation (`_can_i`) drops the rules
every authenticated user gets from the apiserver's bootstrap policy (system:basic-user's selfsubjectaccessreviews/selfsubjectrulesreviews,
system:discovery's and system:public-info-viewer's non-resource URLs): they are not granted by
manifests/ and vary between Kubernetes versions. Everything else `kubectl auth can-i --list` prints
for the operator's service account is in the golden file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetally.controlplane import ControlPlane
from kubetally.domain.budgets import WEBHOOK_SECRET
from tests.support.controlplane import kubectl

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
GOLDEN = Path(__file__).parent / "golden" / "operator-can-i.txt"
NAMESPACE = "kubetally-system"
# The one object outside the operator's namespace: the RoleBinding to the front-proxy CA's reader.
AUTH_READER = ("RoleBinding", "kubetally:extension-apiserver-authentication-reader")
AUTH_CONFIGMAP = "configmaps [extension-apiserver-authentication]"
# The one Secret the operator may read (its Role, kubetally-system): the CostBudget webhook URLs.
BUDGET_SECRET = f"secrets [{WEBHOOK_SECRET}]"
APISERVICE = "v1alpha1.query.kubetally.io"
OPERATOR = f"system:serviceaccount:{NAMESPACE}:kubetally"
RBAC_KINDS = {"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
# Granted to every authenticated user by the bootstrap policy, not by manifests/ (see the docstring).
BOOTSTRAP_RESOURCES = {
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}
# The only resources the operator may change: its own objects and the events it posts.
WEBHOOK_CONFIGURATION = "validatingwebhookconfigurations.admissionregistration.k8s.io [kubetally]"
WRITABLE = {
    WEBHOOK_CONFIGURATION,
    "costbudgets.kubetally.io",
    "costbudgets.kubetally.io/status",
    "costreports.kubetally.io",
    "costreports.kubetally.io/status",
    "costweights.kubetally.io",
    "costweights.kubetally.io/status",
    "events",
    "events.events.k8s.io",
    "tokenreviews.authentication.k8s.io",            # system:auth-delegator: create only
    "subjectaccessreviews.authorization.k8s.io",
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
# One line of `kubectl auth can-i --list`: resource, non-resource URLs, resource names, verbs.
CAN_I_LINE = re.compile(r"^(?P<resource>\S*)\s+(?P<urls>\[[^\]]*\])\s+(?P<names>\[[^\]]*\])\s+(?P<verbs>\[[^\]]*\])$")


def _build(cp: ControlPlane, directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIRECTORY`, parsed into its documents."""
    output = kubectl(cp, "kustomize", str(directory)).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _ensure_namespace(cp: ControlPlane) -> None:
    """Create kubetally-system for real (idempotently): a server-side dry run creates nothing, so the
    namespaced objects of the same dry run would otherwise find their namespace missing."""
    manifest = kubectl(cp, "create", "namespace", NAMESPACE, "--dry-run=client", "-o", "yaml").stdout
    kubectl(cp, "apply", "-f", "-", input=manifest)


def _apply_crds(cp: ControlPlane) -> None:
    kubectl(cp, "apply", "-k", str(ROOT / "crds"))
    kubectl(cp, "wait", "--for", "condition=established", "--timeout=60s",
            "crd/costbudgets.kubetally.io", "crd/costreports.kubetally.io", "crd/costweights.kubetally.io")


def _can_i(cp: ControlPlane, *scope: str) -> list[str]:
    """`kubectl auth can-i --list` as the operator, normalised to sorted `<resource> [<verbs>]` lines
    (`<resource> [<names>] [<verbs>]` for a rule limited to resourceNames) without the bootstrap rules
    every authenticated user has."""
    output = kubectl(cp, "auth", "can-i", "--list", f"--as={OPERATOR}", *scope).stdout
    lines = set()
    for raw in output.splitlines()[1:]:  # the first line is the table header
        match = CAN_I_LINE.match(raw.rstrip())
        assert match, f"unexpected line in kubectl auth can-i --list: {raw!r}"
        if match["urls"] != "[]" or match["resource"] in BOOTSTRAP_RESOURCES:
            continue
        names = "" if match["names"] == "[]" else f" {match['names']}"
        lines.add(f"{match['resource']}{names} {match['verbs']}")
    return sorted(lines)


def _rules(lines: list[str]) -> dict[str, set[str]]:
    """`<resource> [<names>] [<verbs>]` lines → {`<resource> [<names>]` (or `<resource>`): verbs}."""
    rules: dict[str, set[str]] = {}
    for line in lines:
        resource, verbs = line.rsplit(" [", 1)
        rules.setdefault(resource, set()).update(verbs.rstrip("]").split())
    return rules


def test_default_builds_with_crds_rbac_and_a_hardened_deployment(control_plane: ControlPlane) -> None:
    docs = _build(control_plane, MANIFESTS / "default")
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    assert {
        ("Namespace", NAMESPACE),
        ("CustomResourceDefinition", "costbudgets.kubetally.io"),
        ("CustomResourceDefinition", "costreports.kubetally.io"),
        ("CustomResourceDefinition", "costweights.kubetally.io"),
        ("ServiceAccount", "kubetally"),
        ("ClusterRole", "kubetally"),
        ("ClusterRoleBinding", "kubetally"),
        ("ClusterRoleBinding", "kubetally:auth-delegator"),
        AUTH_READER,
        ("ClusterRole", "kubetally-cost-viewer"),
        ("ClusterRole", "kubetally-cost-admin"),
        ("ClusterRole", "kubetally-metrics-reader"),
        ("Deployment", "kubetally"),
        ("Service", "kubetally"),
        ("APIService", APISERVICE),
        ("ValidatingWebhookConfiguration", "kubetally"),
        ("PersistentVolumeClaim", "kubetally-ledger"),
    } <= kinds
    assert not any(doc["kind"] == "ServiceMonitor" for doc in docs), "the ServiceMonitor is an optional component"
    assert not any(doc["kind"] in {"Certificate", "Issuer"} for doc in docs), "cert-manager is an optional component"
    # Nothing from manifests/examples: a binding there grants a made-up user access.
    assert not any(doc["kind"] == "RoleBinding" and doc["roleRef"]["name"].startswith("kubetally-cost") for doc in docs)
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "APIService",
                      "ValidatingWebhookConfiguration"}
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "kubetally"
        if (doc["kind"], doc["metadata"]["name"]) == AUTH_READER:
            assert doc["metadata"]["namespace"] == "kube-system"  # not moved by a kustomize `namespace:`
        elif doc["kind"] not in cluster_scoped:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]

    deployment = _one(docs, "Deployment", "kubetally")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "kubetally"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["command"] == ["kubetally", "run"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "768Mi"}}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["KUBETALLY_LEDGER"] == "/data/kubetally.duckdb"
    assert env["KUBETALLY_PORT"] == "8443"
    assert env["KUBETALLY_TLS_CERT_FILE"] == "/tls/tls.crt"
    assert env["KUBETALLY_TLS_PRIVATE_KEY_FILE"] == "/tls/tls.key"
    assert env["KUBETALLY_ADMIN_NAMESPACES"] == NAMESPACE
    assert env["KUBETALLY_MEMORY_LIMIT"] == "384MB"  # half the 768Mi limit: DuckDB spills rather than OOMs
    assert env["KUBETALLY_PROMETHEUS_URL"].startswith("http")
    assert "KUBETALLY_CLUSTER" in env
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes[mounts["/data"]["name"]]["persistentVolumeClaim"] == {"claimName": "kubetally-ledger"}
    assert volumes[mounts["/tmp"]["name"]]["emptyDir"] == {}
    # The serving certificate: cert-manager's Secret when present, else the operator makes one.
    assert mounts["/tls"]["readOnly"] is True
    assert volumes[mounts["/tls"]["name"]]["secret"] == {"secretName": "kubetally-serving-cert", "optional": True}

    pvc = _one(docs, "PersistentVolumeClaim", "kubetally-ledger")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    service = _one(docs, "Service", "kubetally")
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()

    apiservice = _one(docs, "APIService", APISERVICE)
    assert apiservice["apiVersion"] == "apiregistration.k8s.io/v1"
    assert apiservice["spec"] == {
        "group": "query.kubetally.io", "version": "v1alpha1",
        "service": {"name": "kubetally", "namespace": NAMESPACE, "port": 443},
        "groupPriorityMinimum": 100, "versionPriority": 100,
        "insecureSkipTLSVerify": True,  # the operator's self-made certificate (see manifests/cert-manager)
    }
    # The admission webhook: only our three kinds, only CREATE and UPDATE (never status), and a failure
    # policy that admits when the operator is down, within 5 s (README, "GitOps").
    webhooks = _one(docs, "ValidatingWebhookConfiguration", "kubetally")["webhooks"]
    assert [(hook["name"], hook["rules"]) for hook in webhooks] == [
        (f"{kind}.kubetally.io", [{"apiGroups": ["kubetally.io"], "apiVersions": ["*"],
                                   "operations": ["CREATE", "UPDATE"], "resources": [kind], "scope": "*"}])
        for kind in ("costweights", "costreports", "costbudgets")]
    for hook in webhooks:
        assert (hook["failurePolicy"], hook["timeoutSeconds"], hook["sideEffects"]) == ("Ignore", 5, "None")
        assert hook["clientConfig"] == {"service": {"name": "kubetally", "namespace": NAMESPACE,
                                                    "path": "/validate", "port": 443}}

    bindings = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] in {"ClusterRoleBinding", "RoleBinding"}}
    operator = [{"kind": "ServiceAccount", "name": "kubetally", "namespace": NAMESPACE}]
    assert bindings["kubetally:auth-delegator"]["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"}
    assert bindings["kubetally:auth-delegator"]["subjects"] == operator
    assert bindings[AUTH_READER[1]]["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"}
    assert bindings[AUTH_READER[1]]["subjects"] == operator


def _overlay(directory: Path, *components: str) -> Path:
    """An overlay, as a user would write one, with manifests/default and the optional COMPONENTS
    (kustomize wants relative paths; directories with a kustomization may be anywhere)."""
    (directory / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS / "default", directory)],
        "components": [os.path.relpath(MANIFESTS / name, directory) for name in components],
    }))
    return directory


def test_prometheus_component_scrapes_https_with_its_token(control_plane: ControlPlane, tmp_path: Path) -> None:
    docs = _build(control_plane, _overlay(tmp_path, "prometheus"))
    monitor = _one(docs, "ServiceMonitor", "kubetally")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["scheme"], endpoint["path"]) == ("https", "https", "/metrics")
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}  # the operator's self-made certificate
    service = _one(docs, "Service", "kubetally")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    binding = _one(docs, "ClusterRoleBinding", "kubetally-metrics-reader")
    assert binding["roleRef"]["name"] == "kubetally-metrics-reader"
    assert _one(docs, "ClusterRole", "kubetally-metrics-reader")["rules"] == [
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}]


def test_cert_manager_component_issues_the_mounted_secret(control_plane: ControlPlane, tmp_path: Path) -> None:
    """The Certificate writes the Secret the Deployment mounts, for the names the APIService and the
    ServiceMonitor reach; the APIService then verifies (cainjector fills caBundle from the Certificate
    named in the annotation); the ServiceMonitor, when the prometheus component comes first, too."""
    (tmp_path / "alone").mkdir()
    (tmp_path / "both").mkdir()
    alone = _build(control_plane, _overlay(tmp_path / "alone", "cert-manager"))
    both = _build(control_plane, _overlay(tmp_path / "both", "prometheus", "cert-manager"))
    assert not any(doc["kind"] == "ServiceMonitor" for doc in alone), "the patch must not create one"
    for docs in (alone, both):
        certificate = _one(docs, "Certificate", "kubetally-serving-cert")
        deployment = _one(docs, "Deployment", "kubetally")
        [tls] = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "serving-cert"]
        assert certificate["spec"]["secretName"] == tls["secret"]["secretName"] == "kubetally-serving-cert"
        apiservice = _one(docs, "APIService", APISERVICE)
        target = apiservice["spec"]["service"]
        assert f"{target['name']}.{target['namespace']}.svc" in certificate["spec"]["dnsNames"]
        assert "server auth" in certificate["spec"]["usages"]
        namespace = certificate["metadata"]["namespace"]
        assert apiservice["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": f"{namespace}/{certificate['metadata']['name']}"}
        assert apiservice["spec"]["insecureSkipTLSVerify"] is False
        assert "caBundle" not in apiservice["spec"]  # the cainjector's to fill
        webhooks = _one(docs, "ValidatingWebhookConfiguration", "kubetally")
        assert webhooks["metadata"]["annotations"] == apiservice["metadata"]["annotations"]
        for hook in webhooks["webhooks"]:  # the same Service, so the same certificate's names
            assert hook["clientConfig"]["service"] == {**target, "path": "/validate", "port": 443}
            assert "caBundle" not in hook["clientConfig"]
        # The issuer chain: serving cert ← CA Issuer ← CA certificate ← self-signed Issuer.
        ca_issuer = _one(docs, "Issuer", certificate["spec"]["issuerRef"]["name"])
        ca_certificate = [doc for doc in docs if doc["kind"] == "Certificate"
                          and doc["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"]]
        assert len(ca_certificate) == 1
        assert ca_certificate[0]["spec"]["isCA"] is True
        assert _one(docs, "Issuer", ca_certificate[0]["spec"]["issuerRef"]["name"])["spec"] == {"selfSigned": {}}
        for doc in docs:
            if doc["kind"] in {"Certificate", "Issuer"}:
                assert doc["metadata"]["namespace"] == NAMESPACE
    [endpoint] = _one(both, "ServiceMonitor", "kubetally")["spec"]["endpoints"]
    assert endpoint["tlsConfig"] == {"serverName": "kubetally.kubetally-system.svc",
                                     "ca": {"secret": {"name": "kubetally-serving-cert", "key": "ca.crt"}}}
    assert endpoint["tlsConfig"]["serverName"] in _one(both, "Certificate", "kubetally-serving-cert")["spec"]["dnsNames"]


def test_apiserver_accepts_default_and_samples(control_plane: ControlPlane) -> None:
    _apply_crds(control_plane)  # for real: the samples' kinds must exist even in a dry run
    _ensure_namespace(control_plane)
    applied = kubectl(control_plane, "apply", "--dry-run=server", "-k", str(MANIFESTS / "default")).stdout
    for expected in ("deployment.apps/kubetally", "service/kubetally", "persistentvolumeclaim/kubetally-ledger",
                     "serviceaccount/kubetally", "clusterrole.rbac.authorization.k8s.io/kubetally",
                     "clusterrolebinding.rbac.authorization.k8s.io/kubetally:auth-delegator",
                     "rolebinding.rbac.authorization.k8s.io/kubetally:extension-apiserver-authentication-reader",
                     "clusterrole.rbac.authorization.k8s.io/kubetally-cost-viewer",
                     "clusterrole.rbac.authorization.k8s.io/kubetally-cost-admin",
                     "clusterrole.rbac.authorization.k8s.io/kubetally-metrics-reader",
                     f"apiservice.apiregistration.k8s.io/{APISERVICE}",
                     "customresourcedefinition.apiextensions.k8s.io/costreports.kubetally.io",
                     "customresourcedefinition.apiextensions.k8s.io/costbudgets.kubetally.io"):
        assert f"{expected} " in applied, (expected, applied)
    # The prometheus component's grant (its ServiceMonitor needs the prometheus-operator's CRDs).
    granted = kubectl(control_plane, "apply", "--dry-run=server", "-f",
                      str(MANIFESTS / "prometheus" / "metrics_reader_binding.yaml")).stdout
    assert "clusterrolebinding.rbac.authorization.k8s.io/kubetally-metrics-reader " in granted
    samples = kubectl(control_plane, "apply", "--dry-run=server", "-k", str(MANIFESTS / "samples")).stdout
    assert "costreport.kubetally.io/namespaces-7d" in samples
    assert "costweights.kubetally.io/default" in samples
    report = _one(_build(control_plane, MANIFESTS / "samples"), "CostReport", "namespaces-7d")
    assert report["metadata"]["namespace"] == NAMESPACE
    assert report["spec"] == {"window": "7d", "aggregate": ["namespace"], "method": "Effective", "schedule": "@hourly"}


def test_operator_rbac_is_least_privilege(control_plane: ControlPlane) -> None:
    _ensure_namespace(control_plane)
    rbac = [doc for doc in _build(control_plane, MANIFESTS / "default") if doc["kind"] in RBAC_KINDS]
    assert {doc["kind"] for doc in rbac} == RBAC_KINDS
    kubectl(control_plane, "apply", "-f", "-", input=yaml.safe_dump_all(rbac))

    scopes = {"cluster": _can_i(control_plane), NAMESPACE: _can_i(control_plane, "-n", NAMESPACE),
              "kube-system": _can_i(control_plane, "-n", "kube-system")}
    rendered = "".join(f"[{scope}] {line}\n" for scope, lines in scopes.items() for line in lines)
    if os.environ.get("KUBETALLY_UPDATE_GOLDEN"):
        header = "".join(line + "\n" for line in GOLDEN.read_text().splitlines() if line.startswith("#"))
        GOLDEN.write_text(header + rendered)
    golden = "".join(line + "\n" for line in GOLDEN.read_text().splitlines() if line and not line.startswith("#"))
    assert rendered == golden, f"RBAC differs from {GOLDEN.name}; actual:\n{rendered}"

    # Everywhere the cluster-wide rules, and exactly one thing more in two namespaces, each by name: in
    # kubetally-system (its Role) get the budget webhooks' Secret, in kube-system read the front-proxy CA's
    # ConfigMap.
    assert sorted(set(scopes[NAMESPACE]) - set(scopes["cluster"])) == [f"{BUDGET_SECRET} [get]"]
    assert sorted(set(scopes["kube-system"]) - set(scopes["cluster"])) == [f"{AUTH_CONFIGMAP} [get list watch]"]
    assert set(scopes["cluster"]) <= set(scopes[NAMESPACE])
    assert set(scopes["cluster"]) <= set(scopes["kube-system"])
    for scope, lines in scopes.items():
        rules = _rules(lines)
        assert rules, scope
        for resource, verbs in rules.items():
            assert "*" not in resource, f"{scope}: wildcard resource {resource}"
            assert "*" not in verbs, f"{scope}: wildcard verb on {resource}"
            if resource not in {AUTH_CONFIGMAP, BUDGET_SECRET}:
                assert not resource.startswith(("secrets", "configmaps")), f"{scope}: {resource} {verbs}"
            assert not verbs & WRITE_VERBS or resource in WRITABLE, f"{scope}: writes {resource} {verbs}"
        # system:auth-delegator: asking who a token is and what a user may do, nothing else.
        assert rules["tokenreviews.authentication.k8s.io"] == {"create"}
        assert rules["subjectaccessreviews.authorization.k8s.io"] == {"create"}
        assert rules["costreports.kubetally.io"] == {"get", "list", "watch", "patch"}
        assert rules["costreports.kubetally.io/status"] == {"get", "patch"}
        assert rules["costweights.kubetally.io"] == {"get", "list", "watch", "patch"}
        assert rules["costweights.kubetally.io/status"] == {"get", "patch"}
        assert rules["costbudgets.kubetally.io"] == {"get", "list", "watch", "patch"}
        assert rules["costbudgets.kubetally.io/status"] == {"get", "patch"}
        assert rules["events"] == rules["events.events.k8s.io"] == {"create"}
        assert rules["namespaces"] == rules["customresourcedefinitions.apiextensions.k8s.io"] == {"list", "watch"}
        assert not any(resource.startswith(("leases", "kopfpeerings")) for resource in rules), "standalone: no peering"
        # The admission webhook's caBundle: that one object, read and patched, nothing else of its kind.
        assert rules[WEBHOOK_CONFIGURATION] == {"get", "patch"}
        assert not any(r.startswith("validatingwebhookconfigurations") and r != WEBHOOK_CONFIGURATION for r in rules)
        # Secrets: only the budget webhooks' one, only `get` (no list or watch), only in kubetally-system.
        assert {r: v for r, v in rules.items() if r.startswith("secrets")} == (
            {BUDGET_SECRET: {"get"}} if scope == NAMESPACE else {})

    denied: list[tuple[str, ...]] = [
        ("get", "secrets"), ("list", "secrets", "-A"), ("get", "configmaps", "-A"),
        ("list", "configmaps", "-n", "kube-system"), ("get", "configmaps/kube-proxy", "-n", "kube-system"),
        ("get", "configmaps/extension-apiserver-authentication", "-n", NAMESPACE),
        ("create", "localsubjectaccessreviews.authorization.k8s.io", "-n", "shop"),
        ("delete", "costreports.kubetally.io", "-A"), ("create", "pods", "-n", NAMESPACE),
        ("get", "/metrics"), ("get", "costs.query.kubetally.io", "-A"),
        # The budget webhooks' Secret: read by name, only there; no other Secret, not even the serving cert.
        ("get", "secrets", "-n", NAMESPACE), ("list", "secrets", "-n", NAMESPACE),
        ("list", f"secrets/{WEBHOOK_SECRET}", "-n", NAMESPACE), ("watch", f"secrets/{WEBHOOK_SECRET}", "-n", NAMESPACE),
        ("update", f"secrets/{WEBHOOK_SECRET}", "-n", NAMESPACE), ("patch", f"secrets/{WEBHOOK_SECRET}", "-n", NAMESPACE),
        ("delete", f"secrets/{WEBHOOK_SECRET}", "-n", NAMESPACE), ("create", "secrets", "-n", NAMESPACE),
        ("get", "secrets/kubetally-serving-cert", "-n", NAMESPACE),
        ("get", f"secrets/{WEBHOOK_SECRET}", "-n", "kube-system"), ("get", f"secrets/{WEBHOOK_SECRET}", "-n", "shop"),
    ]
    for args in denied:
        answer = kubectl(control_plane, "auth", "can-i", *args, f"--as={OPERATOR}", check=False)
        assert answer.stdout.strip() == "no", args
    allowed: list[tuple[str, ...]] = [
        ("patch", "costreports.kubetally.io", "--subresource=status", "-n", "shop"),
        ("get", "configmaps/extension-apiserver-authentication", "-n", "kube-system"),
        ("get", f"secrets/{WEBHOOK_SECRET}", "-n", NAMESPACE),
        ("create", "tokenreviews.authentication.k8s.io"),
        ("create", "subjectaccessreviews.authorization.k8s.io"),
    ]
    for args in allowed:
        answer = kubectl(control_plane, "auth", "can-i", *args, f"--as={OPERATOR}")
        assert answer.stdout.strip() == "yes", args

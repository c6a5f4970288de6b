"""Access tier: who sees what, with a real kube-apiserver, a real Prometheus and a real operator process.

One session (the tier's tests share it, ~1 min to build):
1. a network namespace with a veth pair (`kubetally.netns.pod_network`): the operator's "pod" address;
2. a real Prometheus on the host side of the veth, holding the world's generated cluster;
3. the control plane (etcd, kube-apiserver bound to the host side, the world's token users, front proxy);
4. as admin: the CRDs, manifests/rbac (the operator's own minimal RBAC) and manifests/access (the
   ClusterRoles users are given), the namespaces, the users' bindings, the ServiceAccounts
   monitoring/prometheus (bound by manifests/prometheus/metrics_reader_binding.yaml) and
   kubetally-system/kubetally (the operator), the campaign's CostWeights;
5. `kubetally run` inside the network namespace as kubetally-system/kubetally (kubeconfig with a
   TokenRequest token), HTTPS at the pod IP with a serving cert the tier made, `--auth-cache-ttl 3`,
   `--now <world.now>` (a running clock); ready once its ledger holds every hour before now;
6. the aggregated API routed to it: Pod (status patched to the pod IP), Service, Endpoints, APIService.
Everything is stopped and the namespace deleted when the session ends.
"""

from __future__ import annotations

import os
import re
import ssl
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kubetally import localprom
from kubetally.controlplane import ControlPlane, local_control_plane
from kubetally.netns import PodNetwork, pod_network
from kubetally.processes import background, wait_ready
from kubetally.synthetic import generate
from tests.access import kube
from tests.access import world as worlds
from tests.access.pki import Authority, Issued
from tests.access.summary import SUMMARY
from tests.access.world import World
from tests.campaign import cluster as campaign_cluster
from tests.campaign.oracle import Oracle
from tests.campaign.windows import ServerClock
from tests.support.clusters import Served

ROOT = Path(__file__).resolve().parents[2]
PORT = 8443
#: The service-proxy admin route (`--service-proxy-port`), behind Service `kubetally-admin`.
ADMIN_PORT = 8444
#: The operator's token and permission cache (`--auth-cache-ttl`, seconds): the revocation test measures it.
TTL = 3.0


@dataclass(frozen=True)
class Operator:
    """The running operator and how to reach it."""

    url: str  # https://<pod ip>:8443
    ca: Path  # verifies its serving certificate
    verify: ssl.SSLContext
    clock: ServerClock
    log: Path
    pid: int


@dataclass(frozen=True)
class Tier:
    world: World
    network: PodNetwork
    plane: ControlPlane
    served: Served
    operator: Operator
    tokens: dict[str, str]  # every caller's bearer token, the prometheus ServiceAccount's included
    certs: Authority  # the tier's own CA (signed the operator's serving certificate)
    rogue: Issued  # a client certificate CN=front-proxy-client from another CA
    workdir: Path

    def kubeconfig(self, user: str) -> Path:
        return kube.kubeconfig(self.workdir / f"kubeconfig-{user}", self.plane, user, self.tokens[user])


@pytest.fixture(scope="session")
def world() -> World:
    chosen = worlds.world(worlds.seed_from_environment(), worlds.queries_from_environment())
    print(f"\n{chosen.describe()}; grants {dict(sorted((k, sorted(v)) for k, v in chosen.grants.items()))}")
    SUMMARY.append(chosen.describe())
    return chosen


@pytest.fixture(scope="session")
def tier(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    workdir = tmp_path_factory.mktemp("access")
    if not localprom.binaries_present():
        pytest.fail("prometheus and promtool are missing: run scripts/test.sh, which installs them")
    started = time.monotonic()
    with ExitStack() as stack:
        network = stack.enter_context(pod_network())
        cluster = generate(world.spec)
        localprom.load_cluster(cluster, workdir / "prometheus" / "data")
        prometheus = stack.enter_context(localprom.running_prometheus(workdir / "prometheus" / "data",
                                                                      host=network.host_ip))
        users = list(world.users.values())
        plane = stack.enter_context(local_control_plane(workdir / "plane", users=users, bind_host=network.host_ip,
                                                        log=lambda line: None))
        tokens = {name: user.token for name, user in world.users.items()}
        tokens.update(_grant(plane, world))
        certs = Authority(workdir / "certs", "kubetally-access")
        serving = certs.issue("serving", "kubetally", ips=(network.pod_ip,),
                              dns=("kubetally.kubetally-system.svc", "kubetally.kubetally-system.svc.cluster.local"))
        rogue = Authority(workdir / "certs", "rogue").issue("rogue-client", "front-proxy-client", client=True)
        operator = stack.enter_context(_operator(world, network, plane, prometheus, serving, certs, workdir,
                                                 tokens[f"{worlds.OPERATOR_NAMESPACE}/{worlds.OPERATOR_ACCOUNT}"]))
        uid = kube.pod_at(plane, network.pod_ip)
        kube.service_to(plane, kube.SERVICE, network.pod_ip, PORT, uid)
        kube.api_service(plane, certs.pem)
        kube.wait_available(plane)
        routed = kube.wait_routed(plane, world.namespaces[0])
        SUMMARY.append(f"access: world built and operator ready in {time.monotonic() - started:.0f} s (the apiserver "
                       f"proxied the aggregated API {routed:.1f} s after Available, counting 3 answers)")
        print(SUMMARY[-1])
        yield Tier(world, network, plane, Served(cluster, prometheus), operator, tokens, certs, rogue, workdir)


@pytest.fixture(scope="session")
def oracle(world: World) -> Oracle:
    """The campaign oracle on its own copy of the world's cluster (`generate` is deterministic)."""
    return Oracle(generate(world.spec), campaign_cluster.BOOK, campaign_cluster.CUSTOM_BOOK)


def _grant(plane: ControlPlane, world: World) -> dict[str, str]:
    """Everything the admin sets up (module doc, step 4); returns the two ServiceAccounts' tokens."""
    kube.kubectl(plane, "apply", "-k", str(ROOT / "crds"))
    namespaces = [*world.namespaces, worlds.OPERATOR_NAMESPACE, worlds.PROMETHEUS_NAMESPACE]
    kube.apply(plane, *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                        for ns in namespaces if ns != "kube-system"))
    kube.kubectl(plane, "apply", "-k", str(ROOT / "manifests" / "rbac"))
    kube.kubectl(plane, "apply", "-k", str(ROOT / "manifests" / "access"))
    kube.kubectl(plane, "apply", "-f", str(ROOT / "manifests" / "prometheus" / "metrics_reader_binding.yaml"))
    bindings = [kube.role_binding(f"cost-viewer-{user}", ns, worlds.VIEWER_ROLE, user)
                for user, grants in world.grants.items() for ns in sorted(grants)]
    bindings.append(kube.cluster_role_binding("cost-admin", worlds.ADMIN_ROLE, "cost-admin"))
    accounts = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}
                for ns, name in ((worlds.PROMETHEUS_NAMESPACE, worlds.PROMETHEUS_ACCOUNT),
                                 (worlds.OPERATOR_NAMESPACE, worlds.OPERATOR_ACCOUNT))]
    kube.apply(plane, *bindings, *accounts)
    kube.kubectl(plane, "wait", "--for", "condition=established", "--timeout=60s", "crd/costreports.kubetally.io",
                 "crd/costweights.kubetally.io")
    kube.kubectl(plane, "apply", "-f", "-", input=campaign_cluster.WEIGHTS)
    return {"prometheus": kube.token_for(plane, worlds.PROMETHEUS_NAMESPACE, worlds.PROMETHEUS_ACCOUNT),
            f"{worlds.OPERATOR_NAMESPACE}/{worlds.OPERATOR_ACCOUNT}":
                kube.token_for(plane, worlds.OPERATOR_NAMESPACE, worlds.OPERATOR_ACCOUNT)}


@contextmanager
def _operator(world: World, network: PodNetwork, plane: ControlPlane, prometheus: str, serving: Issued,
              certs: Authority, workdir: Path, token: str) -> Iterator[Operator]:
    """`kubetally run` in the network namespace as its ServiceAccount, ready once its ledger holds every
    hour before the world's now and both CostWeights are Ready."""
    config = kube.kubeconfig(workdir / "kubeconfig-operator", plane, "operator", token)
    url = f"https://{network.pod_ip}:{PORT}"
    command = network.wrap([
        sys.executable, "-m", "kubetally", "run", "--prometheus-url", prometheus,
        "--ledger", str(workdir / "ledger.duckdb"), "--cluster", world.spec.name,
        "--host", network.pod_ip, "--port", str(PORT), "--now", str(world.now),
        "--tls-cert-file", str(serving.cert), "--tls-private-key-file", str(serving.key),
        "--auth-cache-ttl", str(TTL), "--service-proxy-port", str(ADMIN_PORT)])
    env = {**os.environ, "KUBECONFIG": str(config), "PYTHONPATH": str(ROOT / "operator"),
           "KUBETALLY_LIVE_BUDGET": "60"}
    verify = ssl.create_default_context(cafile=str(certs.files.cert))
    hours = (world.now - world.now % 3600 - world.spec.start) // 3600
    pattern = re.compile(rf'kubetally_ledger_hours\{{cluster="{world.spec.name}"\}} (\d+)')
    admin = {"Authorization": f"Bearer {plane.token}"}

    def ingested() -> bool:
        found = pattern.search(httpx.get(f"{url}/metrics", headers=admin, verify=verify, timeout=5).text)
        return found is not None and int(float(found.group(1))) >= hours

    log = workdir / "operator.log"
    launched = time.time()
    with background(command, log, env=env) as process:
        wait_ready(process, ingested, what="kubetally run", log_path=log, timeout=300)
        clock = ServerClock(lo=launched - world.now, hi=time.time() - world.now)
        kube.kubectl(plane, "wait", "--for", "condition=Ready", "--timeout=60s", "costweights/default",
                     f"costweights/{campaign_cluster.CUSTOM}")
        yield Operator(url, certs.files.cert, verify, clock, log, process.pid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("access tier")
        for line in SUMMARY:
            terminalreporter.write_line(line)

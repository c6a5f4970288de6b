"""The container image: built from the real Dockerfile, run as its non-root user, checked for what it needs.

scripts/build-image.sh builds the Dockerfile with one substitution, `--build-arg BASE=<a local
Debian bookworm with python3 and python3-venv>` (no registry is reachable here), with buildah as
root (chroot isolation, runc). Every container of this tier is run the way that works here:

    podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --network none

(podman's default nofile limit is above what this machine lets runc set: "error setting rlimit
type 7"; crun fails on its cgroup setup). Images and containers have names unique to the run and
are removed at the end. Cold (empty KUBETALLY_CACHE, as in `make test`): about 1.5 min, most of it
debootstrap (~55 s) and the build (~25 s); the checks themselves take a few seconds.

What is checked, each against the Deployment (manifests/manager) or the source tree, not against
what the image says of itself:
- the image's config: ENTRYPOINT kubetally, CMD run, USER 65532:65532 = the Deployment's
  runAsUser/runAsGroup/fsGroup, the Deployment's `command` on the image's PATH;
- `kubetally --help` through the ENTRYPOINT as the image's user: exit 0, the subcommands, and the
  same text as this tree's `kubetally --help`; `id -u`/`id -g` = 65532;
- the dependencies import (and DuckDB answers a query); the venv's entry point; a public CA bundle
  for OpenSSL (aiohttp, kopf, the kubernetes client) and certifi's (httpx); /data writable by 65532
  and by no other user (another uid is refused); no compiler, make or pip; no .pyc in the venv; the
  installed package is file for file the tree's operator/kubetally (so package data would be caught);
- `kubetally serve` as the Deployment runs it (read-only root filesystem, /tmp a tmpfs, /data a
  volume owned by 65532 as fsGroup makes it, all capabilities dropped): /healthz 200 "ok",
  /readyz 200 "degraded: ..." against an unreachable store, the ledger written, exit 0 on SIGTERM;
- `kubetally run` (the operator) the same way against a real kube-apiserver, as its ServiceAccount:
  CostWeights marked Ready / InvalidSpec; `kubetally validate` as a CI step.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
INSIDE = Path(__file__).with_name("inside.py")
UID = 65532
#: The build's deadline: debootstrap (cold ~55 s), the import, the build (~25 s; wheels from PyPI).
BUILD_DEADLINE_SECONDS = 1800
RUN_DEADLINE_SECONDS = 120
#: Measured 392 MiB uncompressed (Debian bookworm minbase with python3: ~150 MiB; the venv ~250 MiB,
#: of which kubernetes 76 MiB and DuckDB 67 MiB). The bound catches a compiler, a pip cache or
#: compiled .pyc files creeping in.
MAX_IMAGE_MIB = 450
SUBCOMMANDS = ("ingest", "rollups", "serve", "run")
#: How containers run here (see the module docstring).
RUN_FLAGS = ("--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--network", "none")


@dataclass
class Image:
    name: str
    base: str
    #: sha256 of every file of operator/kubetally when the build started, by path in the package.
    source: dict[str, str]
    containers: list[str] = field(default_factory=list)

    def run(self, *args: str, flags: tuple[str, ...] = (), stdin: str | None = None,
            entrypoint: str | None = None) -> subprocess.CompletedProcess[str]:
        """`podman run` of the image with `args`; the container is removed even if the run times out."""
        name = f"kubetally-test-{uuid.uuid4().hex[:12]}"
        self.containers.append(name)
        command = ["podman", "run", "--rm", "--name", name, *RUN_FLAGS, *flags]
        if stdin is not None:
            command.append("--interactive")
        if entrypoint is not None:
            command += ["--entrypoint", entrypoint]
        try:
            return subprocess.run([*command, self.name, *args], input=stdin, capture_output=True, text=True,
                                  timeout=RUN_DEADLINE_SECONDS, check=False)
        finally:
            _podman("rm", "--force", "--ignore", name)

    def python(self, mode: str, flags: tuple[str, ...] = ()) -> dict[str, Any]:
        """tests/image/inside.py run by the image's python3 as the image's user; its JSON output."""
        done = self.run("-", mode, flags=flags, stdin=INSIDE.read_text(), entrypoint="python3")
        assert done.returncode == 0, f"inside.py {mode} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        facts: dict[str, Any] = json.loads(done.stdout)
        return facts


def _podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=RUN_DEADLINE_SECONDS, check=False)


def _source_files() -> dict[str, str]:
    package = ROOT / "operator" / "kubetally"
    return {str(path.relative_to(package)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(package.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    if os.geteuid() != 0:
        pytest.skip("the image tier needs root: buildah builds with chroot isolation and podman runs as root here")
    run_id = uuid.uuid4().hex[:12]
    built = Image(f"localhost/kubetally-test:{run_id}", f"localhost/kubetally-test-base:{run_id}", _source_files())
    log = tmp_path_factory.mktemp("image") / "build-image.log"
    env = {**os.environ, "KUBETALLY_IMAGE": built.name, "KUBETALLY_BASE_IMAGE": built.base}
    started = time.monotonic()
    try:
        with log.open("w") as out:
            try:
                done = subprocess.run([str(ROOT / "scripts" / "build-image.sh")], stdout=subprocess.PIPE, stderr=out,
                                      text=True, env=env, timeout=BUILD_DEADLINE_SECONDS, check=False)
            except subprocess.TimeoutExpired:
                pytest.fail(f"scripts/build-image.sh did not finish within {BUILD_DEADLINE_SECONDS}s; log: {log}")
        lines = log.read_text(errors="replace").splitlines()
        summary = [line for line in lines if line.startswith(("==>", "error:"))]
        print(f"\nscripts/build-image.sh: {time.monotonic() - started:.0f} s in all", *summary, sep="\n")
        if done.returncode != 0:
            pytest.fail(f"scripts/build-image.sh failed (exit {done.returncode}): {summary[-1] if summary else ''}\n"
                        + "\n".join(lines[-40:]))
        assert done.stdout.splitlines()[-1:] == [built.name], done.stdout
        yield built
    finally:
        for name in built.containers:
            _podman("rm", "--force", "--ignore", name)
        _podman("rmi", "--force", "--ignore", built.name, built.base)


@pytest.fixture(scope="module")
def facts(image: Image) -> dict[str, Any]:
    return image.python("facts")


def _deployment() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "manifests" / "manager" / "deployment.yaml").read_text())
    return document


def test_image_config_matches_the_deployment(image: Image) -> None:
    inspected = json.loads(_podman("image", "inspect", image.name).stdout)[0]
    config = inspected["Config"]
    assert config["Entrypoint"] == ["kubetally"]
    assert config["Cmd"] == ["run"]
    pod = _deployment()["spec"]["template"]["spec"]
    container = pod["containers"][0]
    security = pod["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"], security["fsGroup"]) == (UID, UID, UID)
    assert container["securityContext"]["runAsUser"] == UID
    assert config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}"
    assert container["command"][0] == "kubetally"
    assert "PATH=/opt/kubetally/bin:" in " ".join(config["Env"])
    size_mib = inspected["Size"] / 2**20
    print(f"\nimage {image.name}: {size_mib:.0f} MiB uncompressed")
    assert size_mib < MAX_IMAGE_MIB


def test_help_runs_as_the_non_root_user(image: Image) -> None:
    done = image.run("--help", flags=("--env", "COLUMNS=100"))
    assert done.returncode == 0, done.stderr
    usage = done.stdout.splitlines()[0]
    for subcommand in SUBCOMMANDS:
        assert subcommand in usage, usage
    host = subprocess.run([sys.executable, "-m", "kubetally", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "100"}, timeout=60, check=True)
    assert done.stdout == host.stdout, "the image's kubetally is not this tree's"
    for flag, expected in (("-u", str(UID)), ("-g", str(UID))):
        ids = image.run(flag, entrypoint="id")
        assert (ids.returncode, ids.stdout.strip()) == (0, expected), ids.stderr


def test_dependencies_import(facts: dict[str, Any]) -> None:
    failed = {name: outcome for name, outcome in facts["imports"].items() if outcome.startswith("error")}
    assert failed == {}
    assert facts["duckdb_answer"] == 42
    assert facts["python"].startswith("3.11.")
    assert facts["executable"] == "/opt/kubetally/bin/python3"


def test_files_the_operator_needs(facts: dict[str, Any], image: Image) -> None:
    assert (facts["uid"], facts["gid"], facts["home"]) == (UID, UID, "/tmp")
    assert facts["entry_point"] == {"which": "/opt/kubetally/bin/kubetally", "executable": True,
                                    "shebang": "#!/opt/kubetally/bin/python3"}
    ca = facts["ca"]
    assert ca["system_file"] == "/etc/ssl/certs/ca-certificates.crt"
    assert ca["system_has_public_root"], ca
    assert ca["certifi_has_public_root"], ca
    assert ca["system_count"] > 100, ca
    assert facts["data"] == {"uid": UID, "gid": UID, "mode": 0o750, "we_can_write": True}
    assert {tool: path for tool, path in facts["build_tools"].items() if path} == {}
    assert not facts["venv_has_pip"]
    assert facts["venv_pyc_files"] == 0
    assert facts["package_files"] == image.source, "the installed package differs from operator/kubetally"


def test_data_is_not_writable_by_another_user(image: Image) -> None:
    done = image.run("-c", "touch /data/x", flags=("--user", "4242:4242"), entrypoint="/bin/sh")
    assert done.returncode != 0
    assert "Permission denied" in done.stderr


def test_serve_starts_like_the_deployment(image: Image, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, UID, UID)  # what fsGroup does to the ledger volume
    data.chmod(0o770)
    flags = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--volume", f"{data}:/data")
    served = image.python("serve", flags=flags)
    print(f"\nkubetally serve in the image: serving after {served['serving_after_seconds']} s")
    log = "\n".join(served["log_tail"])
    assert served["healthz"] == [200, "ok"], log
    status, body = served["readyz"]
    assert status == 200, log
    assert body.startswith("degraded: the metrics store has not answered for "), body
    assert served["exit_code"] == 0, log
    assert served["ledger_owner"] == [UID, UID], log
    assert (data / "kubetally.duckdb").stat().st_uid == UID


def test_validate_runs_in_the_image_like_a_ci_step(image: Image) -> None:
    """`kubetally validate` as a CI pipeline would run the image: the samples on stdin pass (exit 0), an
    invalid fixture fails (exit 1) with the same line the host's kubetally prints."""
    samples = "---\n".join(p.read_text() for p in sorted((ROOT / "manifests" / "samples").glob("*.yaml")))
    done = image.run("validate", "-", stdin=samples)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "2 billing object(s): 2 valid, 0 invalid"
    fixture = (ROOT / "tests" / "fixtures" / "invalid" / "weights-sum.yaml").read_text()
    refused = image.run("validate", "-", stdin=fixture)
    host = subprocess.run([sys.executable, "-m", "kubetally", "validate", "-"], input=fixture, capture_output=True,
                          text=True, timeout=60, check=False)
    assert (refused.returncode, host.returncode) == (1, 1)
    assert refused.stdout == host.stdout
    assert "spec.weights: cpu \"0.7\" + memory \"0.2\" = 0.9" in refused.stdout


def test_the_operator_runs_from_the_image_against_a_real_apiserver(image: Image, tmp_path: Path) -> None:
    """`kubetally run` from the image as the Deployment runs it (read-only root, capabilities dropped, the
    ledger on a /data volume, as the ServiceAccount kubetally-system/kubetally under manifests/rbac)
    against a real kube-apiserver on loopback (the container shares the host's network): the sample
    CostWeights becomes Ready (reason Recorded, observedGeneration 1, 1 price version) and the lopsided
    fixture Ready=False, reason InvalidSpec, with the very line `kubetally validate` prints for it."""
    from kubetally.controlplane import local_control_plane
    from kubetally.processes import free_port
    from tests.access import kube

    with local_control_plane(tmp_path / "plane", log=lambda line: None) as plane:
        kube.kubectl(plane, "apply", "-k", str(ROOT / "crds"))
        kube.apply(plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubetally-system"}})
        kube.kubectl(plane, "apply", "-k", str(ROOT / "manifests" / "rbac"))
        kube.kubectl(plane, "wait", "--for", "condition=established", "--timeout=60s", "crd/costweights.kubetally.io")
        token = kube.token_for(plane, "kubetally-system", "kubetally")
        config = tmp_path / "kubeconfig"
        config.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": plane.url, "certificate-authority-data":
                                                   base64.b64encode(plane.ca_file.read_bytes()).decode()}}],
            "users": [{"name": "operator", "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "operator"}}]}))
        config.chmod(0o644)
        data = tmp_path / "data"
        data.mkdir()
        os.chown(data, UID, UID)
        name = f"kubetally-test-{uuid.uuid4().hex[:12]}"
        image.containers.append(name)
        flags = [*RUN_FLAGS[:-2], "--network", "host", "--read-only", "--cap-drop", "ALL", "--security-opt",
                 "no-new-privileges", "--volume", f"{data}:/data", "--volume", f"{config}:/etc/kubetally/kubeconfig:ro",
                 "--env", "KUBECONFIG=/etc/kubetally/kubeconfig"]
        started = _podman("run", "--detach", "--name", name, *flags, image.name, "run", "--prometheus-url",
                          "http://127.0.0.1:9", "--ledger", "/data/kubetally.duckdb", "--host", "127.0.0.1",
                          "--port", str(free_port()), "--backfill-days", "0")
        assert started.returncode == 0, started.stderr
        try:
            weights = (ROOT / "manifests" / "samples" / "costweights-default.yaml").read_text()
            lopsided = (ROOT / "tests" / "fixtures" / "invalid" / "weights-sum.yaml").read_text()
            kube.kubectl(plane, "apply", "-f", "-", input=f"{weights}\n---\n{lopsided}")
            deadline, ready = time.monotonic() + 120, {}
            while time.monotonic() < deadline and len(ready) < 2:
                listed = json.loads(kube.kubectl(plane, "get", "costweights", "-o", "json").stdout)["items"]
                ready = {item["metadata"]["name"]: (item["status"], c) for item in listed
                         for c in (item.get("status") or {}).get("conditions", []) if c["type"] == "Ready"}
                time.sleep(0.5)
            logs = _podman("logs", name)
            assert len(ready) == 2, logs.stdout[-3000:] + logs.stderr[-3000:]
        finally:
            _podman("rm", "--force", "--ignore", name)
    status, condition = ready["default"]
    assert (condition["status"], condition["reason"], status["observedGeneration"], status["versions"]) == (
        "True", "Recorded", 1, 1)
    status, condition = ready["lopsided"]
    assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
    host = subprocess.run([sys.executable, "-m", "kubetally", "validate", "-"], input=lopsided, capture_output=True,
                          text=True, timeout=60, check=False)
    assert host.stdout.splitlines()[0].endswith(f": {condition['message']}")

"""Run kubectl against a `kubetally.controlplane.ControlPlane` in tests."""

from __future__ import annotations

import subprocess

from kubetally.controlplane import ControlPlane

KUBECTL = "/usr/bin/kubectl"


def kubectl(
    cp: ControlPlane, *args: str, input: str | None = None, check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`kubectl --kubeconfig <cp> ARGS` (discovery cache in the control plane's workdir).

    With `check`, a non-zero exit raises AssertionError showing the command, stdout and stderr."""
    command = [KUBECTL, "--kubeconfig", str(cp.kubeconfig), "--cache-dir", str(cp.workdir / "kubectl-cache"), *args]
    result = subprocess.run(command, input=input, capture_output=True, text=True, check=False, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result

"""Child processes for the local tools: start them detached from the terminal, wait, always stop them.

Why a module: the local control plane (`kubetally.controlplane`), the local Prometheus
(`kubetally.localprom`), `kubetally demo` and `kubetally bench` all run servers as children and must
leave none behind. Every child runs in its own process group, so a terminal's Ctrl-C reaches only
us and we stop the children in order (SIGTERM, a grace period, SIGKILL); on Linux a child also gets
SIGTERM if this process dies (PR_SET_PDEATHSIG). Debian packages the tools need are installed with
`apt_install` when running as root on Debian, else the error says what to install.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

Log = Callable[[str], None]
_LOG_TAIL_LINES = 40


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file, headed by its path (for error messages)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    if not text.strip():
        return f"({path} is empty)"
    return f"----- last {lines} lines of {path} -----\n" + "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that asks Linux to SIGTERM the child when we die (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return preexec


def stop(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def background(
    command: list[str], log_path: Path, *, env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` with its output in `log_path`; stop it (SIGTERM, wait, SIGKILL) on exit."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            process_group=0, preexec_fn=_die_with_parent(),
        )
        try:
            yield process
        finally:
            stop(process)


def wait_ready(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], *, what: str, log_path: Path, timeout: float,
) -> None:
    """Poll `ready()` (httpx errors mean "not yet") until true; raise if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}\n{tail(log_path)}")
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {timeout:.0f} s\n{tail(log_path)}")
        time.sleep(0.2)


def apt_install(package: str, binaries: tuple[str, ...], *, log: Log) -> None:
    """Make sure `binaries` are on PATH, installing Debian's `package` if we are root on Debian.

    Tries `apt-get install` first and `apt-get update` plus a retry if that fails (a fresh
    machine has no package lists)."""
    if all(shutil.which(binary) for binary in binaries):
        return
    wanted = ", ".join(binaries)
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists() or not shutil.which("apt-get"):
        raise RuntimeError(f"{wanted} not found: install them (Debian: apt-get install {package})")
    log(f"==> installing Debian's {package} (for {wanted})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not all(shutil.which(binary) for binary in binaries):
        raise RuntimeError(f"apt-get install {package} failed:\n{(result.stdout + result.stderr)[-3000:]}")

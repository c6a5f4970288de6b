"""Runs inside the kubetally image (fed to the image's `python3 -` on stdin) and prints JSON facts.

Why a separate file: the checks must run with the image's Python, its venv and its user, not the
test's; one container run gathers every fact (a container start costs about half a second) and
the test judges them. Only the standard library and the image's own dependencies are used.

`python3 - facts`: who we are, the dependencies, the files the operator needs.
`python3 - serve`:  `kubetally serve` started as the Deployment would (read-only root, /tmp and /data
                    mounted), probed on /healthz and /readyz, then stopped with SIGTERM.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

#: The third-party modules `kubetally run` imports (pyproject's dependencies, by import name).
DEPENDENCIES = ("kopf", "kubernetes", "pydantic", "httpx", "prometheus_client", "duckdb", "numpy", "orjson",
                "cryptography", "yaml", "aiohttp", "tzdata", "certifi")
#: Build tools that must not be in the final image (the build stage has pip; the bases have no compiler).
BUILD_TOOLS = ("gcc", "cc", "c++", "g++", "make", "ld", "pip", "pip3")
#: A root CA every public bundle carries (Let's Encrypt's), so its presence shows a real bundle.
PUBLIC_ROOT = "ISRG Root X1"
SERVE_PORT = 8080
SERVE_DEADLINE_SECONDS = 60.0


def _subjects(context: ssl.SSLContext) -> list[str]:
    """The common names of the CA certificates a TLS context has loaded."""
    names: list[str] = []
    for cert in context.get_ca_certs():
        subject: tuple[tuple[tuple[str, str], ...], ...] = cert.get("subject", ())  # type: ignore[assignment]
        for rdn in subject:
            names.extend(value for key, value in rdn if key == "commonName")
    return names


def _ca_bundles() -> dict[str, Any]:
    """The system bundle (OpenSSL's default: aiohttp, kopf, the kubernetes client) and certifi's (httpx)."""
    import certifi

    system = ssl.create_default_context()
    system_names = _subjects(system)
    bundled = ssl.create_default_context(cafile=certifi.where())
    return {
        "system_file": os.path.realpath(ssl.get_default_verify_paths().openssl_cafile),
        "system_count": len(system_names),
        "system_has_public_root": PUBLIC_ROOT in system_names,
        "certifi_file": certifi.where(),
        "certifi_has_public_root": PUBLIC_ROOT in _subjects(bundled),
    }


def _imports() -> dict[str, str]:
    """Each dependency's version, or the error importing it raised; then kubetally's own modules."""
    found = {}
    for name in (*DEPENDENCIES, "kubetally.run", "kubetally.serve", "kubetally.ingest"):
        try:
            module = importlib.import_module(name)
            found[name] = str(getattr(module, "__version__", "imported"))
        except Exception as error:  # reported, judged by the test
            found[name] = f"error: {type(error).__name__}: {error}"
    return found


def _data() -> dict[str, Any]:
    """Owner and mode of /data, and whether we (uid 65532) can create a file in it."""
    info = os.stat("/data")
    probe = Path("/data/.write-probe")
    try:
        probe.write_text("ok")
        probe.unlink()
        writable = True
    except OSError:
        writable = False
    return {"uid": info.st_uid, "gid": info.st_gid, "mode": info.st_mode & 0o7777, "we_can_write": writable}


def _package_files() -> dict[str, str]:
    """sha256 of every file of the installed kubetally package, by path relative to the package."""
    import kubetally

    package = Path(kubetally.__file__).parent
    return {str(path.relative_to(package)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(package.rglob("*")) if path.is_file()}


def facts() -> dict[str, Any]:
    entry = Path("/opt/kubetally/bin/kubetally")
    venv = Path("/opt/kubetally")
    # duckdb and numpy load native code on import; a query shows it also runs.
    import duckdb

    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "home": os.environ.get("HOME"),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "imports": _imports(),
        "duckdb_answer": duckdb.connect().execute("SELECT 6 * 7").fetchone()[0],  # type: ignore[index]
        "entry_point": {
            "which": shutil.which("kubetally"),
            "executable": os.access(entry, os.X_OK),
            "shebang": entry.read_text().splitlines()[0] if entry.exists() else None,
        },
        "ca": _ca_bundles(),
        "data": _data(),
        "build_tools": {tool: shutil.which(tool) for tool in BUILD_TOOLS},
        "venv_has_pip": any(venv.glob("lib/python3*/site-packages/pip")),
        "venv_pyc_files": sum(1 for _ in venv.rglob("*.pyc")),
        "package_files": _package_files(),
    }


def _get(path: str) -> tuple[int, str]:
    """Status and body of GET http://127.0.0.1:SERVE_PORT<path>; (0, error) if nothing answered."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{SERVE_PORT}{path}", timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def _wait_for(path: str, status: int, deadline: float) -> tuple[int, str]:
    """Poll `path` until it answers `status` or the deadline (time.monotonic()) passes."""
    while True:
        answer = _get(path)
        if answer[0] == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def serve() -> dict[str, Any]:
    # Nothing listens on port 9 in the container's own network namespace: the store is "down", so
    # /readyz turns degraded after the first probe, which also shows the HTTP client runs.
    command = ["kubetally", "serve", "--prometheus-url", "http://127.0.0.1:9", "--ledger", "/data/kubetally.duckdb",
               "--host", "127.0.0.1", "--port", str(SERVE_PORT), "--memory-limit", "256MB"]
    log = Path("/tmp/serve.log")
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = started + SERVE_DEADLINE_SECONDS
        healthz = _wait_for("/healthz", 200, deadline)
        serving_after = time.monotonic() - started
        readyz = _wait_for("/readyz", 200, deadline)
        process.send_signal(signal.SIGTERM)
        try:
            code: int | None = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    ledger = Path("/data/kubetally.duckdb")
    return {
        "healthz": list(healthz),
        "readyz": list(readyz),
        "serving_after_seconds": round(serving_after, 2),
        "exit_code": code,
        "ledger_owner": [ledger.stat().st_uid, ledger.stat().st_gid] if ledger.exists() else None,
        "log_tail": log.read_text(errors="replace").splitlines()[-20:],
    }


if __name__ == "__main__":
    print(json.dumps(serve() if sys.argv[1:] == ["serve"] else facts()))

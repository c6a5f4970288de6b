#!/usr/bin/env python3
"""Install the web console's charting library from the npm registry, as pinned, before any run.

Usage: scripts/console-assets.py [--check]

Reads operator/kubetally/console/vendor.json (package, version, tarball URL, npm `integrity`, files),
downloads the tarball within a deadline, refuses it unless its SHA-512 equals the pinned integrity
(the same check `npm ci` makes against a lockfile), and writes the listed files (the library and its
LICENSE/NOTICE) into operator/kubetally/console/static/vendor/, with an `installed.txt` stamp naming the
integrity. A second run with the stamp in place does nothing. `--check` only says whether they are
installed (exit 1 if not).

Why a script and not npm: the registry's tarball and its integrity are what npm itself trusts, and
a stdlib download needs no Node on the machine (there is none at run time either). Run by
scripts/setup.sh (tests, demo) and by the Dockerfile's build stage; kubetally never fetches at run
time (the console answers 503 naming this script when the files are missing).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "operator" / "kubetally" / "console"
DEADLINE_SECONDS = 120


def main() -> int:
    pin = json.loads((CONSOLE / "vendor.json").read_text())
    vendor = CONSOLE / "static" / "vendor"
    stamp = vendor / "installed.txt"
    installed = stamp.is_file() and stamp.read_text().strip() == pin["integrity"] and all(
        (vendor / name).is_file() for name in pin["files"].values())
    if "--check" in sys.argv[1:]:
        print(f"{pin['package']} {pin['version']}: {'installed' if installed else 'not installed'}")
        return 0 if installed else 1
    if installed:
        return 0
    print(f"==> installing {pin['package']} {pin['version']} ({pin['license']}) for the web console from the npm registry")
    try:
        with urllib.request.urlopen(pin["tarball"], timeout=DEADLINE_SECONDS) as response:  # noqa: S310 (pinned https)
            body = response.read()
    except OSError as error:
        print(f"console-assets: cannot download {pin['tarball']}: {error}", file=sys.stderr)
        return 1
    algorithm, _, expected = pin["integrity"].partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, body).digest()).decode()
    if actual != expected:
        print(f"console-assets: {pin['tarball']} does not match the pinned integrity {pin['integrity']} "
              f"(got {algorithm}-{actual}); refusing it", file=sys.stderr)
        return 1
    vendor.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        for member, name in pin["files"].items():
            source = archive.extractfile(member)
            if source is None:
                print(f"console-assets: {member} is not in {pin['tarball']}", file=sys.stderr)
                return 1
            (vendor / name).write_bytes(source.read())
    stamp.write_text(pin["integrity"] + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`kubetally` / `python -m kubetally`: the command line.

Only `--version` exists so far; the subcommands of DESIGN.md §1 (`run`, `serve`, `ingest`, `query`,
`demo`, `bench`) arrive with the issues that build them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from kubetally import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubetally", description="Meters and prices what Kubernetes workloads use.")
    parser.add_argument("--version", action="version", version=f"kubetally {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

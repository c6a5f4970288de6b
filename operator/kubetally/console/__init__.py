"""The web console's files: `static/` (our page, script and style) and `static/vendor/` (the charting
library, Apache ECharts, installed from the npm registry by `scripts/console-assets.py` as pinned in
`vendor.json`, with its licence and notice; not committed). `api.console` serves them; this package
holds no code, so that nothing here can fetch anything at run time."""

from __future__ import annotations

from pathlib import Path

#: Where the console's files are (the package's own folder, also inside a wheel or the image).
STATIC = Path(__file__).parent / "static"
VENDOR = STATIC / "vendor"
PIN = Path(__file__).parent / "vendor.json"

"""kubetally: meters and prices what Kubernetes workloads use.

Only the version lives here; importing the package must stay cheap.
"""

__version__ = "0.1.0"

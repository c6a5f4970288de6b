"""A deterministic synthetic Kubernetes cluster, its metrics, and the exact facts they imply.

Why: kubetally's ingest and every correctness scenario (CORRECTNESS.md) are tested against data
whose true facts are known independently of the code under test. `generate(spec)` builds the
cluster (objects with lifetimes), `write_openmetrics` writes the samples kube-state-metrics v2,
cAdvisor, the kubelet and an OpenCost-compatible exporter would expose (for `promtool tsdb
create-blocks-from openmetrics`), `expected_facts` computes the facts the ingest must derive from
them, and `fact_arrays` computes the same facts vectorised for scale L. Pure: no clock, no
environment, no network; everything follows from the spec's seed.
"""

from kubetally.synthetic.arrays import FactArrays, fact_arrays
from kubetally.synthetic.expected import ExpectedFacts, expected_coverage, expected_facts
from kubetally.synthetic.generate import generate
from kubetally.synthetic.model import (
    Cluster,
    ClusterSpec,
    Container,
    Namespace,
    Node,
    NodeType,
    PersistentVolumeClaim,
    Pod,
    ReplicaSet,
    ResourceQuota,
)
from kubetally.synthetic.openmetrics import write_openmetrics
from kubetally.synthetic.presets import demo, large, medium, small, tiny

__all__ = [
    "Cluster",
    "ClusterSpec",
    "Container",
    "ExpectedFacts",
    "FactArrays",
    "Namespace",
    "Node",
    "NodeType",
    "PersistentVolumeClaim",
    "Pod",
    "ReplicaSet",
    "ResourceQuota",
    "demo",
    "expected_coverage",
    "expected_facts",
    "fact_arrays",
    "generate",
    "large",
    "medium",
    "small",
    "tiny",
    "write_openmetrics",
]

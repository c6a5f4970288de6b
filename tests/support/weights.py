"""The CostWeights the API and operator tests install: CNY, weights 0.7/0.3, OpenCost's unit prices."""

from __future__ import annotations

WEIGHTS_YAML = """
apiVersion: kubetally.io/v1alpha1
kind: CostWeights
metadata: {name: default}
spec:
  currency: CNY
  weights: {cpu: "0.7", memory: "0.3"}
  unitPrices: {cpuCoreHour: "0.031611", memoryGiBHour: "0.004237", storageGiBHour: "0.0000548"}
"""

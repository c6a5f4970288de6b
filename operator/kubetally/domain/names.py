"""Kubernetes names: the one definition of what an object name, a project name or a label key may be.

Why one module: a CostWeights name is checked where the API reads `customWeights` and where a
CostReport's `spec.customWeights` is validated, a label key's prefix where node price selectors
are, a project name where the project endpoint's path is; two copies of one pattern drift apart.

    DNS-1123 subdomain  1..253 characters of a-z 0-9 '-' '.', every dot-separated part starting and
                        ending with a-z 0-9 (object names: CostWeights; label-key prefixes)
    DNS-1123 label      1..63 characters of a-z 0-9 '-', starting and ending with a-z 0-9
                        (namespace and project names)
    label name          1..63 characters of A-Z a-z 0-9 '-' '_' '.', starting and ending with an
                        alphanumeric (the part of a label key after its optional `prefix/`)

The length is tested before the pattern, so a 16 KiB value never reaches the regex engine. Pure.
"""

from __future__ import annotations

import re

__all__ = ["MAX_LABEL", "MAX_SUBDOMAIN", "is_dns_label", "is_dns_subdomain", "is_label_name"]

#: Longest DNS-1123 subdomain (a Kubernetes object name), in characters.
MAX_SUBDOMAIN = 253
#: Longest DNS-1123 label, and longest label name, in characters.
MAX_LABEL = 63

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def is_dns_subdomain(text: str) -> bool:
    """Whether `text` is a DNS-1123 subdomain, e.g. "mixed-policy" or "example.com"."""
    return len(text) <= MAX_SUBDOMAIN and _DNS_SUBDOMAIN.fullmatch(text) is not None


def is_dns_label(text: str) -> bool:
    """Whether `text` is a DNS-1123 label, e.g. "my-project" (no dots)."""
    return len(text) <= MAX_LABEL and _DNS_LABEL.fullmatch(text) is not None


def is_label_name(text: str) -> bool:
    """Whether `text` is the name part of a label key, e.g. "instance-type" or "App_v1.2"."""
    return len(text) <= MAX_LABEL and _LABEL_NAME.fullmatch(text) is not None

"""Who is asking: the identity of a caller, and the front proxy that may vouch for one.

A request reaches us in one of two ways. Directly, with a bearer token (checked by a TokenReview,
`kubetally.access.reviews`). Or through the kube-apiserver's aggregator, which has already
authenticated the user and forwards the request with the user's name, groups and extra attributes
in request headers, over TLS with its front-proxy client certificate. Those headers are only worth
anything when that certificate verified: anyone can send `X-Remote-User: admin`. So `FrontProxy`
is built from what the apiserver publishes (the ConfigMap kube-system/extension-apiserver-authentication),
and its `identity` may only be called for a connection whose peer certificate verified against
`ca_pem` and whose common name `accepts` (the caller's job: `kubetally.access.tls`).

Header reading mirrors the apiserver's own request-header authenticator (k8s.io/apiserver
headerrequest), so a user is the same user here as there:
- header names match case-insensitively (HTTP says so);
- the user is the first non-empty value of the first username header present, in the order the
  ConfigMap lists them;
- groups are every non-empty value of every group header, repeated headers included (the
  aggregator sends one `X-Remote-Group` line per group);
- extra: a header `<prefix><key>` adds its values (empty ones too) to `key`, lower-cased then
  percent-decoded (the apiserver percent-encodes keys such as `authentication.kubernetes.io/pod-uid`;
  a malformed escape keeps the key as sent, as the apiserver does; a header that is the bare prefix
  adds nothing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

#: The ConfigMap keys the kube-apiserver writes (`--requestheader-*` flags). All but the CA are JSON
#: arrays of strings ("" or "null" = none).
CA_KEY = "requestheader-client-ca-file"
ALLOWED_NAMES_KEY = "requestheader-allowed-names"
USERNAME_HEADERS_KEY = "requestheader-username-headers"
GROUP_HEADERS_KEY = "requestheader-group-headers"
EXTRA_PREFIXES_KEY = "requestheader-extra-headers-prefix"
#: Written by kube-apiserver 1.32 and later only; absent on older servers (then no uid is read).
UID_HEADERS_KEY = "requestheader-uid-headers"

_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

Extra = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Identity:
    """An authenticated caller, as the apiserver knows it.

    Frozen and hashable so it can key the SubjectAccessReview cache. `extra` is sorted by key (a
    canonical form: the same user with the same attributes is one cache entry); the values of a key
    keep their order.
    """

    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Extra = ()

    @staticmethod
    def make_extra(extra: Mapping[str, Iterable[str]]) -> Extra:
        """The canonical `extra` of a mapping key → values (sorted by key)."""
        return tuple((key, tuple(values)) for key, values in sorted(extra.items()))


class InvalidFrontProxy(ValueError):
    """The ConfigMap holds a requestheader CA but a value we cannot read: trust no headers."""


@dataclass(frozen=True)
class FrontProxy:
    """The aggregator's front-proxy settings: the CA its client certificate is signed by, the
    common names it may carry (empty = any CN signed by that CA) and the headers that carry the user.
    """

    ca_pem: str
    allowed_names: frozenset[str]
    username_headers: tuple[str, ...]
    group_headers: tuple[str, ...]
    extra_prefixes: tuple[str, ...]
    uid_headers: tuple[str, ...] = ()

    @classmethod
    def from_configmap(cls, data: Mapping[str, str]) -> FrontProxy | None:
        """Read the ConfigMap's data; None when it names no requestheader CA (no front proxy then).

        Raises InvalidFrontProxy (naming the key) when the CA is there but a value is not what the
        apiserver writes: the caller must then trust no identity headers at all (fail closed).
        """
        ca_pem = (data.get(CA_KEY) or "").strip()
        if not ca_pem:
            return None
        if _PEM_CERTIFICATE not in ca_pem:
            raise InvalidFrontProxy(f"{CA_KEY} holds no PEM certificate ('{_PEM_CERTIFICATE}')")
        return cls(
            ca_pem=ca_pem + "\n",
            allowed_names=frozenset(_strings(data, ALLOWED_NAMES_KEY, header_names=False)),
            username_headers=_strings(data, USERNAME_HEADERS_KEY),
            group_headers=_strings(data, GROUP_HEADERS_KEY),
            extra_prefixes=_strings(data, EXTRA_PREFIXES_KEY),
            uid_headers=_strings(data, UID_HEADERS_KEY),
        )

    def accepts(self, common_name: str) -> bool:
        """Whether a client certificate's CN (already verified against `ca_pem`) is the front proxy."""
        return not self.allowed_names or common_name in self.allowed_names

    def identity(self, headers: Iterable[tuple[str, str]]) -> Identity | None:
        """The user the front proxy names in `headers` (name, value pairs, repeats included), or
        None when no username header has a value (the request is then not authenticated)."""
        by_name: dict[str, list[str]] = {}
        for name, value in headers:
            by_name.setdefault(name.lower(), []).append(value)
        user = _first(by_name, self.username_headers)
        if not user:
            return None
        groups = tuple(v for header in self.group_headers for v in by_name.get(header.lower(), ()) if v)
        extra: dict[str, list[str]] = {}
        for prefix in (p.lower() for p in self.extra_prefixes):
            for name, values in by_name.items():
                if name.startswith(prefix) and len(name) > len(prefix):
                    extra.setdefault(_unescape(name[len(prefix):]), []).extend(values)
        return Identity(user=user, groups=groups, uid=_first(by_name, self.uid_headers),
                        extra=Identity.make_extra(extra))


def _first(by_name: Mapping[str, list[str]], headers: Iterable[str]) -> str:
    """The first value of the first header (in the configured order) whose first value is non-empty."""
    for header in headers:
        values = by_name.get(header.lower())
        if values and values[0]:
            return values[0]
    return ""


def _unescape(key: str) -> str:
    """Percent-decode an extra key like Go's url.PathUnescape ('+' stays '+'); a malformed escape
    keeps the key as it came, as the apiserver records it."""
    if _ESCAPE.search(key):
        return key
    try:
        return unquote(key, errors="strict")
    except UnicodeDecodeError:  # escapes of bytes that are not UTF-8
        return key


def _strings(data: Mapping[str, str], key: str, *, header_names: bool = True) -> tuple[str, ...]:
    """A JSON array of strings as the apiserver writes it; "" or "null" (a nil slice) = none.
    Header names are trimmed and may not be empty, as the apiserver requires."""
    raw = data.get(key) or ""
    if not raw.strip():
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidFrontProxy(f"{key} is not a JSON array of strings: {raw[:80]!r}") from None
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidFrontProxy(f"{key} is not a JSON array of strings: {raw[:80]!r}")
    if not header_names:
        return tuple(value)
    names = tuple(item.strip() for item in value)
    if not all(names):
        raise InvalidFrontProxy(f"{key} names an empty header: {raw[:80]!r}")
    return names

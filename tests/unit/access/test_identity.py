"""The front proxy's settings from the apiserver's ConfigMap, and the user it names in headers.

The ConfigMap data below is what kube-apiserver 1.20 writes with the flags of a kubeadm cluster
(`--requestheader-allowed-names=front-proxy-client --requestheader-username-headers=X-Remote-User
--requestheader-group-headers=X-Remote-Group --requestheader-extra-headers-prefix=X-Remote-Extra-`):
the CA as PEM text, every other value a JSON array of strings.
"""

from __future__ import annotations

import json

import pytest

from kubetally.access.identity import FrontProxy, Identity, InvalidFrontProxy
from tests.unit.access.certs import make_ca

CA = make_ca("front-proxy-ca")


def configmap_data(**overrides: str) -> dict[str, str]:
    data = {
        "client-ca-file": make_ca("kubernetes").cert_pem,  # the cluster's client CA: not ours to trust
        "requestheader-client-ca-file": CA.cert_pem,
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    }
    data.update(overrides)
    return data


def kubeadm() -> FrontProxy:
    proxy = FrontProxy.from_configmap(configmap_data())
    assert proxy is not None
    return proxy


def test_a_kubeadm_configmap_reads_as_written() -> None:
    proxy = kubeadm()
    assert proxy.ca_pem.strip() == CA.cert_pem.strip()  # the requestheader CA, not client-ca-file
    assert proxy.allowed_names == frozenset({"front-proxy-client"})
    assert proxy.username_headers == ("X-Remote-User",)
    assert proxy.group_headers == ("X-Remote-Group",)
    assert proxy.extra_prefixes == ("X-Remote-Extra-",)
    assert proxy.uid_headers == ()


def test_no_requestheader_ca_means_no_front_proxy() -> None:
    data = configmap_data()
    del data["requestheader-client-ca-file"]
    assert FrontProxy.from_configmap(data) is None
    assert FrontProxy.from_configmap({"requestheader-client-ca-file": "  \n"}) is None
    assert FrontProxy.from_configmap({}) is None


@pytest.mark.parametrize("empty", ["[]", "null", ""])
def test_no_allowed_names_accepts_any_name_the_ca_signed(empty: str) -> None:
    proxy = FrontProxy.from_configmap(configmap_data(**{"requestheader-allowed-names": empty}))
    assert proxy is not None
    assert proxy.allowed_names == frozenset()
    assert proxy.accepts("front-proxy-client")
    assert proxy.accepts("anything")


def test_allowed_names_are_exact() -> None:
    proxy = kubeadm()
    assert proxy.accepts("front-proxy-client")
    for name in ("Front-Proxy-Client", "front-proxy-client ", "admin", ""):
        assert not proxy.accepts(name), name


@pytest.mark.parametrize(("key", "value", "message"), [
    ("requestheader-username-headers", "X-Remote-User", "requestheader-username-headers is not a JSON array"),
    ("requestheader-group-headers", '{"a": 1}', "requestheader-group-headers is not a JSON array"),
    ("requestheader-extra-headers-prefix", "[1]", "requestheader-extra-headers-prefix is not a JSON array"),
    ("requestheader-username-headers", '["X-Remote-User", " "]', "requestheader-username-headers names an empty"),
    ("requestheader-client-ca-file", "not a certificate", "requestheader-client-ca-file holds no PEM"),
])
def test_a_value_the_apiserver_would_not_write_is_refused_by_name(key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidFrontProxy, match=message):
        FrontProxy.from_configmap(configmap_data(**{key: value}))


def test_header_names_are_trimmed_and_the_uid_header_of_newer_apiservers_is_read() -> None:
    proxy = FrontProxy.from_configmap(configmap_data(**{
        "requestheader-username-headers": '[" X-Remote-User ", "X-Other-User"]',
        "requestheader-uid-headers": '["X-Remote-Uid"]'}))
    assert proxy is not None
    assert proxy.username_headers == ("X-Remote-User", "X-Other-User")
    who = proxy.identity([("X-Remote-User", "alice"), ("x-remote-uid", "u-42")])
    assert who == Identity(user="alice", uid="u-42")


def test_the_aggregators_headers_give_the_user_all_groups_and_decoded_extra() -> None:
    """Group lines repeat (one per group, as the aggregator sends them); empty values are skipped.
    Extra keys are lower-cased then percent-decoded: `Authentication.kubernetes.io%2fPod-Name`
    → `authentication.kubernetes.io/pod-name`; repeated extra lines add values in order."""
    headers = [
        ("Host", "kubetally.kubetally-system.svc"),
        ("X-Remote-User", "system:serviceaccount:ns-003:builder"),
        ("X-Remote-Group", "system:serviceaccounts"),
        ("x-remote-group", "system:serviceaccounts:ns-003"),
        ("X-REMOTE-GROUP", ""),
        ("X-Remote-Group", "system:authenticated"),
        ("X-Remote-Extra-Authentication.kubernetes.io%2fPod-Name", "builder-7d9"),
        ("X-Remote-Extra-Scopes", "view"),
        ("x-remote-extra-scopes", "cost"),
        ("X-Remote-Extra-Empty", ""),
        ("X-Remote-Extra-Bad%zzKey", "kept"),
        ("X-Remote-Extra-", "bare prefix: no key"),
        ("Authorization", "Bearer ignored-here"),
    ]
    assert kubeadm().identity(headers) == Identity(
        user="system:serviceaccount:ns-003:builder",
        groups=("system:serviceaccounts", "system:serviceaccounts:ns-003", "system:authenticated"),
        extra=(("authentication.kubernetes.io/pod-name", ("builder-7d9",)), ("bad%zzkey", ("kept",)),
               ("empty", ("",)), ("scopes", ("view", "cost"))),
    )


def test_the_first_configured_username_header_with_a_value_wins() -> None:
    proxy = FrontProxy.from_configmap(configmap_data(
        **{"requestheader-username-headers": json.dumps(["X-Remote-User", "X-Other-User"])}))
    assert proxy is not None
    # configured order decides, not the order of the request's lines
    assert proxy.identity([("X-Other-User", "bob"), ("X-Remote-User", "alice")]) == Identity(user="alice")
    # an empty first header falls through to the next configured one
    assert proxy.identity([("X-Remote-User", ""), ("X-Other-User", "bob")]) == Identity(user="bob")
    # a repeated username header: its first value
    assert proxy.identity([("x-remote-user", "alice"), ("X-Remote-User", "mallory")]) == Identity(user="alice")


@pytest.mark.parametrize("headers", [
    [],
    [("X-Remote-Group", "system:masters")],
    [("X-Remote-User", ""), ("X-Remote-Group", "system:masters")],
    [("X-Forwarded-User", "admin")],
])
def test_no_user_header_is_no_identity(headers: list[tuple[str, str]]) -> None:
    assert kubeadm().identity(headers) is None


def test_identities_are_hashable_values() -> None:
    one = Identity("alice", ("a", "b"), "u", Identity.make_extra({"z": ["1"], "a": ["2", "3"]}))
    two = Identity("alice", ("a", "b"), "u", (("a", ("2", "3")), ("z", ("1",))))
    assert one == two
    assert hash(one) == hash(two)
    assert len({one, two, Identity("alice")}) == 2

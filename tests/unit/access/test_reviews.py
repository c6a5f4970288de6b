"""TokenReview and SubjectAccessReview: exact request bodies, answers, failing closed, the caches.

The apiserver is `FakeKube` (an httpx.MockTransport) except where the network itself is the point:
a real loopback port nobody listens on (connection refused) and a real listening socket that never
accepts (the kernel completes the handshake into the backlog; no byte ever comes back: a hung apiserver).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from kubetally.access.identity import Identity
from kubetally.access.reviews import COSTS, METRICS, AccessUnavailable, PathCheck, ResourceCheck, Reviews
from kubetally.processes import free_port
from tests.unit.access.fakes import ACCESS_PATH, FakeClock, FakeKube

ALICE = Identity(user="alice", groups=("team-a", "system:authenticated"), uid="u-1",
                 extra=(("scopes", ("view", "cost")),))


async def test_an_accepted_token_is_the_user_the_apiserver_names() -> None:
    kube = FakeKube()
    async with kube.client() as client:
        assert await Reviews(client).authenticate("tok-alice") == ALICE
        assert await Reviews(client).authenticate("tok-carol") == Identity(user="carol")
    assert kube.bodies[0] == {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                              "spec": {"token": "tok-alice"}}


async def test_a_rejected_token_is_none_and_no_token_asks_nothing() -> None:
    kube = FakeKube()
    async with kube.client() as client:
        reviews = Reviews(client)
        assert await reviews.authenticate("tok-mallory") is None
        assert await reviews.authenticate("") is None
        assert await reviews.authenticate("\udc80") is None  # not encodable: no token anyone issues
    assert kube.count("token") == 1


def answering(response: httpx.Response) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url="https://kube.test", transport=httpx.MockTransport(lambda _: response))


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(500, json={"kind": "Status", "message": "etcd timeout for tok-secret"}),
     r"TokenReview: the Kubernetes API answered HTTP 500: .*etcd timeout for <token>"),
    (httpx.Response(503, text="upstream down"), r"answered HTTP 503: 'upstream down'"),
    (httpx.Response(401, json={"kind": "Status"}), r"refused kubetally's own credentials \(HTTP 401\)"),
    (httpx.Response(403, json={"kind": "Status"}), r"HTTP 403\); its service account needs .*system:auth-delegator"),
    (httpx.Response(201, text='{"status": {"authenticated": tru'), r"a body that is not JSON"),
    (httpx.Response(201, json=["TokenReview"]), r"answered list, not an object"),
    (httpx.Response(201, json={"kind": "TokenReview"}), r"the answer has no status object"),
    (httpx.Response(201, json={"status": {"authenticated": "yes"}}), r"status.authenticated is not a boolean"),
    (httpx.Response(201, json={"status": {"authenticated": True}}), r"status.user.username is missing"),
    (httpx.Response(201, json={"status": {"authenticated": True, "user": {"username": "a", "groups": "g"}}}),
     r"status.user.groups is not a list of strings"),
    (httpx.Response(201, json={"status": {"authenticated": True, "user": {"username": "a", "extra": {"k": "v"}}}}),
     r"status.user.extra is not a map of string lists"),
])
async def test_anything_but_a_well_formed_answer_is_unavailable(response: httpx.Response, message: str) -> None:
    async with answering(response) as client:
        with pytest.raises(AccessUnavailable, match=message) as raised:
            await Reviews(client).authenticate("tok-secret")
    assert "tok-secret" not in str(raised.value)


async def test_connection_refused_is_unavailable() -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(AccessUnavailable, match=r"TokenReview: cannot reach the Kubernetes API \(ConnectError"):
            await Reviews(client).authenticate("tok-secret")


async def test_a_hung_apiserver_is_unavailable_at_the_deadline(hung_url: str) -> None:
    async with httpx.AsyncClient(base_url=hung_url) as client:
        reviews = Reviews(client, timeout_seconds=0.3)
        started = time.monotonic()
        with pytest.raises(AccessUnavailable, match=r"SubjectAccessReview: the Kubernetes API did not answer within 0.3s"):
            await reviews.allowed(ALICE, COSTS)
        elapsed = time.monotonic() - started
    assert 0.25 < elapsed < 2.0


async def test_the_deadline_bounds_the_whole_call_not_each_phase() -> None:
    """A server that answers headers at once and then trickles the body still ends at the deadline."""
    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(100):
            await asyncio.sleep(0.05)
            yield b" "

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=trickle())

    async with httpx.AsyncClient(base_url="https://kube.test", transport=httpx.MockTransport(handler)) as client:
        started = time.monotonic()
        with pytest.raises(AccessUnavailable, match=r"did not answer within 0.2s"):
            await Reviews(client, timeout_seconds=0.2).authenticate("tok-alice")
    assert time.monotonic() - started < 1.5


async def test_failures_are_not_cached() -> None:
    kube = FakeKube()
    kube.broken["ns-1"] = httpx.Response(500, text="boom")
    async with kube.client() as client:
        reviews = Reviews(client)
        check = ResourceCheck("get", "query.kubetally.io", "costs", namespace="ns-1")
        for _ in range(2):
            with pytest.raises(AccessUnavailable, match=r"SubjectAccessReview: the Kubernetes API answered HTTP 500"):
                await reviews.allowed(Identity("bob"), check)
        del kube.broken["ns-1"]
        assert await reviews.allowed(Identity("bob"), check) is False
    assert kube.count("access") == 3


async def test_answers_are_kept_for_the_ttl_from_when_they_were_asked() -> None:
    """TTL 10 s. Asked at 1000.37 (the fake apiserver takes 3 s: answered at 1003.37), the answer
    serves until just before 1010.37 (ask + ttl, not answer + ttl), then the token is asked again."""
    clock = FakeClock(1000.37)
    kube = FakeKube()
    original = kube.__call__

    async def slow(request: httpx.Request) -> httpx.Response:
        clock.now += 3.0
        return await original(request)

    async with httpx.AsyncClient(base_url="https://kube.test", transport=httpx.MockTransport(slow)) as client:
        reviews = Reviews(client, ttl_seconds=10.0, clock=clock)
        assert await reviews.authenticate("tok-alice") == ALICE
        assert clock.now == pytest.approx(1003.37)
        clock.now = 1010.36
        assert await reviews.authenticate("tok-alice") == ALICE
        assert kube.count("token") == 1
        clock.now = 1010.38
        assert await reviews.authenticate("tok-alice") == ALICE
        assert kube.count("token") == 2


async def test_denials_and_rejections_are_cached_too() -> None:
    clock = FakeClock(52.9)
    kube = FakeKube()
    async with kube.client() as client:
        reviews = Reviews(client, ttl_seconds=10.0, clock=clock)
        for now in (52.9, 55.1, 62.8):
            clock.now = now
            assert await reviews.authenticate("tok-mallory") is None
            assert await reviews.allowed(Identity("bob"), COSTS) is False
        assert (kube.count("token"), kube.count("access")) == (1, 1)
        clock.now = 62.95  # 52.9 + 10 passed
        assert await reviews.authenticate("tok-mallory") is None
        assert await reviews.allowed(Identity("bob"), COSTS) is False
        assert (kube.count("token"), kube.count("access")) == (2, 2)


async def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    kube = FakeKube()
    async with kube.client() as client:
        reviews = Reviews(client, max_entries=2, clock=FakeClock(7.5))
        for token in ("tok-alice", "tok-bob", "tok-alice", "tok-carol"):  # alice used last before carol: bob goes
            await reviews.authenticate(token)
        assert kube.count("token") == 3
        await reviews.authenticate("tok-alice")
        assert kube.count("token") == 3
        await reviews.authenticate("tok-bob")
        assert kube.count("token") == 4


async def test_tokens_are_kept_only_as_sha256_digests() -> None:
    kube = FakeKube()
    async with kube.client() as client:
        reviews = Reviews(client)
        await reviews.authenticate("tok-alice")
        await reviews.authenticate("tok-mallory")
    keys = list(reviews._tokens._entries)
    assert keys == [hashlib.sha256(b"tok-alice").digest(), hashlib.sha256(b"tok-mallory").digest()]
    assert "tok-" not in repr(reviews._tokens._entries)


async def test_concurrent_identical_lookups_share_one_call() -> None:
    kube = FakeKube(grants={"alice": {"ns-1"}}, delay=0.05)
    async with kube.client() as client:
        reviews = Reviews(client)
        identities = await asyncio.gather(*(reviews.authenticate("tok-alice") for _ in range(20)))
        check = ResourceCheck("get", "query.kubetally.io", "costs", namespace="ns-1")
        verdicts = await asyncio.gather(*(reviews.allowed(ALICE, check) for _ in range(20)))
    assert identities == [ALICE] * 20
    assert verdicts == [True] * 20
    assert (kube.count("token"), kube.count("access")) == (1, 1)


async def test_a_caller_giving_up_does_not_cancel_the_shared_call() -> None:
    kube = FakeKube(delay=0.1)
    async with kube.client() as client:
        reviews = Reviews(client)
        first = asyncio.create_task(reviews.authenticate("tok-alice"))
        await asyncio.sleep(0.02)
        second = asyncio.create_task(reviews.authenticate("tok-alice"))
        await asyncio.sleep(0.02)
        first.cancel()
        assert await second == ALICE
        with pytest.raises(asyncio.CancelledError):
            await first
    assert kube.count("token") == 1


async def test_resource_reviews_send_the_whole_identity_and_only_set_attributes() -> None:
    kube = FakeKube(grants={"alice": {"ns-003"}}, paths={"alice": {"/metrics"}})
    async with kube.client() as client:
        reviews = Reviews(client)
        assert await reviews.allowed(ALICE, ResourceCheck("get", "query.kubetally.io", "costs", "ns-003")) is True
        assert await reviews.allowed(ALICE, COSTS) is False
        assert await reviews.allowed(ALICE, ResourceCheck("get", "query.kubetally.io", "costreports", "ns-003",
                                                          name="weekly", subresource="result")) is True
        assert await reviews.allowed(ALICE, METRICS) is True
        assert await reviews.allowed(Identity("bob"), PathCheck("/metrics", verb="post")) is False
    subject = {"user": "alice", "groups": ["team-a", "system:authenticated"], "uid": "u-1",
               "extra": {"scopes": ["view", "cost"]}}
    head = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview"}
    assert kube.bodies == [
        {**head, "spec": {**subject, "resourceAttributes": {
            "namespace": "ns-003", "verb": "get", "group": "query.kubetally.io", "resource": "costs"}}},
        {**head, "spec": {**subject, "resourceAttributes": {  # cluster-wide: no namespace at all
            "verb": "get", "group": "query.kubetally.io", "resource": "costs"}}},
        {**head, "spec": {**subject, "resourceAttributes": {
            "namespace": "ns-003", "verb": "get", "group": "query.kubetally.io", "resource": "costreports",
            "subresource": "result", "name": "weekly"}}},
        {**head, "spec": {**subject, "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}},
        {**head, "spec": {"user": "bob", "nonResourceAttributes": {"path": "/metrics", "verb": "post"}}},
    ]


@pytest.mark.parametrize("status", [{}, {"allowed": "true"}, {"denied": True}])
async def test_an_access_review_without_a_boolean_verdict_is_unavailable(status: dict[str, object]) -> None:
    async with answering(httpx.Response(201, json={"status": status})) as client:
        with pytest.raises(AccessUnavailable, match=r"SubjectAccessReview: the answer has no boolean status.allowed"):
            await Reviews(client).allowed(ALICE, COSTS)


async def test_a_cluster_wide_grant_is_everything_in_one_review() -> None:
    kube = FakeKube(grants={"admin": {""}})
    async with kube.client() as client:
        seen = await Reviews(client).visible(Identity("admin"), ["ns-2", "ns-1", "ns-2"])
    assert seen.everything is True
    assert seen.namespaces == {"ns-1", "ns-2"}
    assert kube.count("access") == 1
    assert "namespace" not in kube.bodies[0]["spec"]["resourceAttributes"]


async def test_a_partial_viewer_sees_exactly_the_namespaces_granted() -> None:
    """Candidates ns-01..ns-12 (and a duplicate, and ""): 1 cluster-wide review + 12, granted {03, 07, 12}."""
    kube = FakeKube(grants={"alice": {"ns-03", "ns-07", "ns-12", "ns-99"}})
    candidates = [f"ns-{i:02d}" for i in range(1, 13)] + ["ns-07", ""]
    async with kube.client() as client:
        seen = await Reviews(client).visible(ALICE, candidates)
    assert seen.everything is False
    assert seen.namespaces == {"ns-03", "ns-07", "ns-12"}
    assert kube.count("access") == 13
    asked = sorted(body["spec"]["resourceAttributes"].get("namespace", "") for body in kube.bodies)
    assert asked == ["", *[f"ns-{i:02d}" for i in range(1, 13)]]


async def test_visible_keeps_at_most_concurrency_reviews_in_flight() -> None:
    kube = FakeKube(grants={"alice": {"ns-05"}}, delay=0.01)
    async with kube.client() as client:
        seen = await Reviews(client, concurrency=4).visible(ALICE, [f"ns-{i:02d}" for i in range(40)])
    assert seen.namespaces == {"ns-05"}
    assert kube.peak == 4
    assert kube.count("access") == 41


async def test_visible_fails_closed_when_one_namespace_cannot_be_asked() -> None:
    kube = FakeKube(grants={"alice": {"ns-1", "ns-2"}})
    kube.broken["ns-2"] = httpx.Response(504, text="timeout")
    async with kube.client() as client:
        with pytest.raises(AccessUnavailable, match="HTTP 504"):
            await Reviews(client, concurrency=2).visible(ALICE, ["ns-1", "ns-2", "ns-3"])
        await asyncio.sleep(0.01)  # let a shared call still running finish inside the client's life


async def test_visible_reuses_cached_verdicts() -> None:
    kube = FakeKube(grants={"alice": {"ns-1"}})
    async with kube.client() as client:
        reviews = Reviews(client, clock=FakeClock(3.3))
        first = await reviews.visible(ALICE, ["ns-1", "ns-2"])
        second = await reviews.visible(ALICE, ["ns-1", "ns-2", "ns-3"])
    assert first.namespaces == second.namespaces == {"ns-1"}
    assert kube.count("access") == 4  # "", ns-1, ns-2, then only ns-3


def test_settings_are_checked() -> None:
    client = httpx.AsyncClient()
    for options in ({"timeout_seconds": 0}, {"concurrency": 0}, {"ttl_seconds": -1}, {"max_entries": -1}):
        with pytest.raises(ValueError, match=">"):
            Reviews(client, **options)  # type: ignore[arg-type]


async def test_the_request_paths_are_the_v1_review_resources() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        if request.url.path.endswith(ACCESS_PATH):
            return httpx.Response(201, json={"status": {"allowed": True}})
        return httpx.Response(201, json={"status": {"authenticated": False}})

    # a server URL with a path prefix (Rancher-style proxies) keeps its prefix
    async with httpx.AsyncClient(base_url="https://rancher.test/k8s/clusters/c-1",
                                 transport=httpx.MockTransport(handler)) as client:
        reviews = Reviews(client)
        await reviews.authenticate("t")
        await reviews.allowed(ALICE, COSTS)
    assert seen == ["POST https://rancher.test/k8s/clusters/c-1/apis/authentication.k8s.io/v1/tokenreviews",
                    "POST https://rancher.test/k8s/clusters/c-1/apis/authorization.k8s.io/v1/subjectaccessreviews"]

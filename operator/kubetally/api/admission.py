"""The validating admission webhook: AdmissionReview v1 in, allowed or refused with InvalidSpec's message out.

The kube-apiserver POSTs an `admission.k8s.io/v1` AdmissionReview to `PATH` for every CREATE and
UPDATE of a CostWeights or CostReport (manifests/manager/webhook.yaml; status writes are a
subresource the webhook does not match). The verdict is `kubetally.validation.check`, the rules
behind the InvalidSpec condition, so `kubectl apply` (and `--dry-run=server`) fails with the very
message the condition would carry, e.g.

    admission webhook "costreports.kubetally.io" denied the request: spec.step: "7x" is not a step ...

Decisions:
- The route is open (`api.guard.OPEN`): the apiserver presents no credentials to webhooks unless an
  AdmissionConfiguration is written for it on every control plane, and the webhook only reads the
  object it is given and answers yes or no: it reveals nothing and changes nothing.
- A refusal is `allowed: false` with a Status of code 422 and reason Invalid (what the apiserver
  itself answers for a schema violation), and the message alone, not wrapped.
- DELETE and CONNECT are always allowed (the manifest does not send them; a request that does is
  answered, not broken), as is an object of another API group (we never refuse what is not ours).
- An UPDATE that leaves `spec` as it was is allowed: the spec is judged when it changes. An object
  admitted unchecked while the operator was down (failure policy Ignore) is InvalidSpec, and the
  operator's own metadata writes on it (kopf's progress annotations, the prices stamp), a label
  edit or a GitOps tool's annotations must still go through (tests/e2e/test_admission.py found
  the operator's writes refused before this rule).
- A body that is not an AdmissionReview is a 400 Status; the apiserver then applies the failure
  policy (Ignore, see the manifest), so a broken webhook never wedges a GitOps sync.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from kubetally.api import payloads
from kubetally.domain.errors import SpecError
from kubetally.validation import check, is_billing

PATH = "/validate"
#: The largest AdmissionReview read (bytes), aiohttp's default body cap: a review holds the object and
#: its old version, a few KiB for a billing object.
MAX_REVIEW_BYTES = 1024 * 1024
_API_VERSION = "admission.k8s.io/v1"


def _refusal(message: str) -> web.Response:
    return web.Response(body=orjson.dumps(payloads.status(400, "BadRequest", message)), status=400,
                        content_type="application/json")


def verdict(review: Mapping[str, Any], *, now: datetime, resolution_seconds: int) -> dict[str, Any]:
    """The AdmissionReview response to `review` (a decoded AdmissionReview v1); ValueError if it is not one."""
    request = review.get("request")
    if review.get("kind") != "AdmissionReview" or not isinstance(request, Mapping) or not request.get("uid"):
        raise ValueError("not an admission.k8s.io/v1 AdmissionReview with a request.uid")
    response: dict[str, Any] = {"uid": str(request["uid"]), "allowed": True}
    obj, old = request.get("object"), request.get("oldObject")
    unchanged = request.get("operation") == "UPDATE" and isinstance(old, Mapping) and isinstance(obj, Mapping) \
        and old.get("spec") == obj.get("spec")
    if request.get("operation") in ("CREATE", "UPDATE") and isinstance(obj, Mapping) and is_billing(obj) \
            and not unchanged:
        try:
            check(obj, now=now, resolution_seconds=resolution_seconds)
        except SpecError as error:
            response["allowed"] = False
            response["status"] = {"status": "Failure", "code": 422, "reason": "Invalid", "message": str(error)}
    return {"apiVersion": _API_VERSION, "kind": "AdmissionReview", "response": response}


def handler(clock: Callable[[], float], resolution: Callable[[], int]) -> Callable[[web.Request],
                                                                          Awaitable[web.StreamResponse]]:
    """The aiohttp handler of `PATH`, judging at `clock()` (the operator's clock, replayable in tests)
    with the operator's `resolution()` in seconds (both read per request)."""

    async def validate(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_REVIEW_BYTES:
            return _refusal(f"an AdmissionReview of at most {MAX_REVIEW_BYTES} bytes is accepted")
        try:
            review = orjson.loads(await request.read())  # the whole body (aiohttp caps it at MAX_REVIEW_BYTES)
            if not isinstance(review, dict):
                raise ValueError("not a JSON object")
            answer = verdict(review, now=datetime.fromtimestamp(clock(), UTC), resolution_seconds=resolution())
        except ValueError as error:  # orjson.JSONDecodeError is a ValueError
            return _refusal(f"POST {PATH} accepts an admission.k8s.io/v1 AdmissionReview as JSON: {error}")
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    return validate

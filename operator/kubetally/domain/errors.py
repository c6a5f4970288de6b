"""The error tree of kubetally, so that every layer can map a failure to one clear answer.

    KubetallyError
    ├── SpecError            bad input from a user (a query parameter, a CR spec): HTTP 400, InvalidSpec
    ├── SourceUnavailable    the metrics store cannot be reached or answered an error: HTTP 503
    └── NoData               the window holds no facts at all: NoData condition

`SpecError` always names the bad part and shows an accepted example, so that a user can fix the
input without reading our code.
"""

from __future__ import annotations


class KubetallyError(Exception):
    """Base of every error kubetally raises on purpose."""


class SpecError(KubetallyError, ValueError):
    """Input that kubetally does not accept.

    `field` names the parameter or spec field (`window`, `filter`, `spec.weights`...), `message`
    says what is wrong and what is accepted.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SourceUnavailable(KubetallyError):
    """The metrics store could not be reached, timed out, or answered with an error."""


class NoData(KubetallyError):
    """The requested window holds no facts at all."""

"""Secrets Manager's actions as botocore's service model lists them: which change a secret, and requests for them.

Generated, not typed in: when AWS adds an action that changes a secret, it appears here on the next botocore
upgrade, and the tests that run every write action against the secrets' policies fail until the policies cap it.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.session

from tests.support.iam_eval import Request

SERVICE = "secretsmanager"
# Operations that only read (and CreateSecret, which makes another secret: an existing secret's policy is never
# consulted for it). Everything else the service model lists changes a secret.
_READ_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Validate")
_NOT_ON_AN_EXISTING_SECRET = ("CreateSecret",)
TAG_ACTIONS = frozenset({f"{SERVICE}:TagResource", f"{SERVICE}:UntagResource"})


@functools.cache
def operations() -> tuple[str, ...]:
    return tuple(botocore.session.get_session().get_service_model(SERVICE).operation_names)


def write_actions() -> tuple[str, ...]:
    """`secretsmanager:<Operation>` for every operation that changes an existing secret."""
    return tuple(
        f"{SERVICE}:{name}"
        for name in operations()
        if not name.startswith(_READ_PREFIXES) and name not in _NOT_ON_AN_EXISTING_SECRET
    )


def request(action: str, secret: str, *, tag_keys: tuple[str, ...] = ("keyrot:environment",)) -> Request:
    """A request for `action` on `secret`; a tag action carries the tag keys it sets or removes (`aws:TagKeys`)."""
    context: dict[str, Any] = {"aws:TagKeys": list(tag_keys)} if action in TAG_ACTIONS else {}
    return Request(action, secret, context)

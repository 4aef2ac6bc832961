"""Who changed a rate limit: the audit log's `rate_limit.*` events for the rate limits that drifted, best-effort.

The audit log may be off for the organization, or unreadable with this admin key; drift is then reported without an
actor. OpenAI has no audit event type for the hard spend limit, spend alerts or model permissions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from keyrot.openai_admin.audit_log import AuditBatch, AuditEvent
from keyrot.openai_admin.errors import OpenAIError

logger = logging.getLogger(__name__)

RATE_LIMIT_EVENT_TYPES = ("rate_limit.updated", "rate_limit.deleted")
LOOKBACK_SECONDS = 30 * 86400


class AuditReader(Protocol):
    def read_audit_log(
        self,
        cursor: Any = None,
        *,
        since: int | None = None,
        event_types: Iterable[str] = (),
        resource_ids: Iterable[str] = (),
    ) -> AuditBatch: ...


@dataclass(frozen=True)
class AuditLookup:
    """The rate-limit events read, or why none could be (`unreadable`: the error's class, e.g. NotFoundError when
    audit logging is off, PermissionDeniedError when the admin key may not read it)."""

    events: tuple[AuditEvent, ...] = ()
    unreadable: str | None = None


def lookup_rate_limit_events(admin: AuditReader, resource_ids: Iterable[str], now: float) -> AuditLookup:
    """The last 30 days' rate-limit events of `resource_ids`, or why the audit log could not be read."""
    ids = sorted(set(resource_ids))
    if not ids:
        return AuditLookup()
    try:
        batch = admin.read_audit_log(
            since=max(0, int(now) - LOOKBACK_SECONDS), event_types=RATE_LIMIT_EVENT_TYPES, resource_ids=ids
        )
    except OpenAIError as exc:
        logger.info("audit log not read, drift reported without actors: %s", type(exc).__name__)
        return AuditLookup((), type(exc).__name__)
    return AuditLookup(tuple(batch.events))


def rate_limit_events(admin: AuditReader, resource_ids: Iterable[str], now: float) -> tuple[AuditEvent, ...]:
    """The last 30 days' rate-limit events of `resource_ids` (none when the audit log cannot be read)."""
    return lookup_rate_limit_events(admin, resource_ids, now).events

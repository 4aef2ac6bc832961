"""Read one stream of OpenAI's audit log from where the monitor stopped: every entry not delivered before, oldest
first, and where the next read starts.

The monitor keeps two streams (monitor/audit_watch.py): the project's keys and service accounts, and the
tenant-scoped admin-key events (OpenAI lists those only with `tenant_only=true`). A stream's position lives in the
monitor state (`AuditStream`), which has little room: instead of the entry ids `AuditCursor` keeps, it keeps short
digests of them, at most AUDIT_SEEN_MAX per stream. Each read starts LOOKBACK_SECONDS before the newest entry
delivered, so an entry OpenAI lists late is still delivered, and the digests keep the others from being delivered
twice. When more entries than that fall in the window, the window shrinks to the newest seconds that fit (an entry
listed later than that is then missed; it was a busy minute), and when one second alone holds more, the next read
starts after it. No well-formed entry is delivered twice (a malformed one without an id may be counted again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keyrot.monitor.state import AUDIT_SEEN_HARD_MAX, AUDIT_SEEN_MAX, AuditStream, audit_digest
from keyrot.openai_admin import AuditCursor, MalformedAuditEvent, OpenAIAdminClient
from keyrot.openai_admin.audit_log import AuditEntry

# How far back each read re-lists: OpenAI may list an event a little after its effective_at.
LOOKBACK_SECONDS = 300


@dataclass(frozen=True)
class StreamRead:
    """What one read delivered (entries not delivered before, oldest first) and the stream's next position."""

    entries: tuple[AuditEntry, ...]
    stream: AuditStream


def read_stream(
    admin: OpenAIAdminClient,
    stream: AuditStream | None,
    *,
    since: int,
    event_types: Iterable[str],
    tenant_only: bool = False,
) -> StreamRead:
    """The entries of `event_types` after `stream` (None: from `since` on, nothing before it). Raises the client's
    errors (AuditLogUnavailableError when the audit log cannot be read); changes nothing itself."""
    origin = stream or AuditStream(at=since)
    cursor = AuditCursor(origin.at, frozenset(), origin.window)
    batch = admin.read_audit_log(
        cursor, event_types=tuple(event_types), tenant_only=tenant_only, lookback_seconds=origin.window
    )
    return advance(origin, batch.entries)


def advance(origin: AuditStream, listed: Iterable[AuditEntry]) -> StreamRead:
    """The entries of a listing that starts `origin.window` before `origin.at` (oldest first) not delivered before,
    and the next position: the newest time seen, the window of LOOKBACK_SECONDS before it (never reaching further
    back than this listing did: only there is every delivered entry known), and the digests of its entries."""
    entries = list(listed)
    delivered = set(origin.seen)
    fresh = tuple(entry for entry in entries if entry.id is None or audit_digest(entry.id) not in delivered)
    timed = [entry for entry in entries if not isinstance(entry, MalformedAuditEvent)]
    newest = max([origin.at, *(entry.effective_at for entry in timed)])
    window = min(LOOKBACK_SECONDS, newest - origin.at + origin.window)
    in_window = sorted(
        (entry for entry in timed if entry.effective_at >= newest - window), key=lambda e: e.effective_at, reverse=True
    )
    if len(in_window) > AUDIT_SEEN_MAX:
        # Too many to remember: keep the newest (every entry of a second, or none of it), shrink the window to them
        cut = in_window[AUDIT_SEEN_MAX].effective_at  # the first second that no longer fits whole
        if cut == newest:
            # Even the newest second holds more: the next read starts after it (none of it is delivered twice;
            # one of its entries listed late would be missed)
            return StreamRead(fresh, AuditStream(newest + 1, 0, []))
        window = newest - cut - 1
        in_window = [entry for entry in in_window if entry.effective_at >= newest - window]
    seen = [audit_digest(entry.id) for entry in in_window]
    # A malformed entry has no time to trust: remember it too, so a re-read does not deliver it again.
    seen += [audit_digest(e.id) for e in entries if isinstance(e, MalformedAuditEvent) and e.id is not None]
    if newest == origin.at:
        seen += origin.seen  # nothing newer: what was delivered at the boundary stays delivered
    unique = list(dict.fromkeys(seen))[:AUDIT_SEEN_HARD_MAX]
    return StreamRead(fresh, AuditStream(newest, window, unique))

"""Drift: the declared guardrails against what OpenAI has, with who changed what when the audit log says so.

`check_drift` is pure (declared, actual, audit events in; a report out). `detect_drift` reads the project first;
`enforce_guardrails` also restores the declared values when the block says `enforce: restore`. The monitor calls
`enforce_guardrails` on its runs, publishes `GuardrailDrift` and notifies with `drift_notification`.

Only rate limits have audit events (`rate_limit.updated`, `rate_limit.deleted`); the spec has no event type for the
hard spend limit, spend alerts or model permissions (`project.updated` carries only the title), so their drift is
reported without an actor, and the notification says why for each setting (no such event, none found in 30 days, or
the audit log could not be read).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from keyrot.errors import KeyrotError
from keyrot.guardrails import constants as c
from keyrot.guardrails.actual import ActualGuardrails, read_actual
from keyrot.guardrails.apply import GuardrailsAdmin
from keyrot.guardrails.audit import LOOKBACK_SECONDS, RATE_LIMIT_EVENT_TYPES, lookup_rate_limit_events
from keyrot.guardrails.declared import DeclaredGuardrails
from keyrot.guardrails.diff import Difference, compare
from keyrot.guardrails.errors import GuardrailsApplyError, Problem
from keyrot.guardrails.executor import execute
from keyrot.guardrails.plan import Operation
from keyrot.openai_admin.audit_log import AuditEvent
from keyrot.openai_admin.errors import OpenAIError
from keyrot.redaction import scrub


class GuardrailsRestoreError(KeyrotError):
    """`enforce: restore` found drift and could not put every declared value back."""


@dataclass(frozen=True)
class Drift:
    """One setting that differs from its declared value, with the audit log's actor when it names one."""

    setting: str
    declared: str
    actual: str
    actor: str | None = None  # an e-mail, or a key / service-account id; None when the audit log cannot say
    changed_at: int | None = None

    def describe(self) -> str:
        who = f" (changed by {self.actor} at {_when(self.changed_at)})" if self.actor else ""
        return f"{self.setting}: declared {self.declared}, actual {self.actual}{who}"


@dataclass(frozen=True)
class DriftReport:
    """What the check found. `restore_plan` is what `enforce: restore` does (or did: `restored`)."""

    project_id: str
    enforce: str
    drift: tuple[Drift, ...]
    problems: tuple[Problem, ...]
    operations: tuple[Operation, ...]
    restored: tuple[str, ...] = ()
    restore_error: str | None = None
    audit_unreadable: str | None = None  # why the audit log could not be read (its error class), if it could not

    @property
    def drifted(self) -> bool:
        return bool(self.drift or self.problems)

    @property
    def occurrence(self) -> frozenset[str]:
        """What drifted, one item per setting and the value found (`setting=actual`), and each problem: an item
        that was not in the previous check's set is a new change (keyrot.guardrails.oncall)."""
        return frozenset([f"{d.setting}={d.actual}" for d in self.drift] + [str(p) for p in self.problems])

    @property
    def fully_restored(self) -> bool:
        """enforce: restore put every drifted setting back (the next console change is a new occurrence)."""
        return bool(self.restored) and self.restore_error is None and not self.problems

    @property
    def restore_plan(self) -> tuple[str, ...]:
        return tuple(operation.describe() for operation in self.operations)

    @property
    def dedup_key(self) -> str:
        """Equal for the same drift: a notifier repeats nothing until the drift itself changes."""
        text = "\n".join(sorted(f"{d.setting}={d.actual}" for d in self.drift) + [str(p) for p in self.problems])
        return f"guardrails:{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def raise_for_restore(self) -> None:
        if self.restore_error is not None:
            raise GuardrailsRestoreError(f"guardrails drift could not be restored: {self.restore_error}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "enforce": self.enforce,
            "drifted": self.drifted,
            "drift": [asdict(d) for d in self.drift],
            "problems": [{"setting": p.setting, "message": p.message} for p in self.problems],
            "restore_plan": list(self.restore_plan),
            "restored": list(self.restored),
            "restore_error": self.restore_error,
            "audit_log": "unreadable: " + self.audit_unreadable if self.audit_unreadable else "readable",
        }


def check_drift(
    declared: DeclaredGuardrails,
    actual: ActualGuardrails,
    project_id: str,
    audit_events: Iterable[Any] = (),
) -> DriftReport:
    """Compare; name the actor of each rate-limit difference from `audit_events` (AuditEvent; others ignored)."""
    comparison = compare(declared, actual)
    events = [event for event in audit_events if isinstance(event, AuditEvent) and event.type in RATE_LIMIT_EVENT_TYPES]
    drift = tuple(_attributed(difference, events) for difference in comparison.differences)
    return DriftReport(project_id, declared.enforce, drift, comparison.problems, comparison.operations)


def detect_drift(
    admin: GuardrailsAdmin,
    project_id: str,
    declared: DeclaredGuardrails,
    audit_events: Iterable[Any] | None = None,
    *,
    now: Callable[[], float] = time.time,
) -> DriftReport:
    """Read the project's guardrails (four reads, no change) and check them against the declared ones.

    `audit_events`: the events to name actors from (the monitor passes those it read). None: when a rate limit
    drifted, read its `rate_limit.*` events of the last 30 days (best-effort; no actor if the log is unreadable)."""
    actual = read_actual(admin, project_id)
    unreadable: str | None = None
    if audit_events is None:
        comparison = compare(declared, actual)
        drifted = [d.resource_id for d in comparison.differences if d.field is not None and d.resource_id]
        lookup = lookup_rate_limit_events(admin, drifted, now())  # type: ignore[arg-type]
        audit_events, unreadable = lookup.events, lookup.unreadable
    report = check_drift(declared, actual, project_id, audit_events)
    return replace(report, audit_unreadable=unreadable) if unreadable else report


def enforce_guardrails(
    admin: GuardrailsAdmin,
    project_id: str,
    declared: DeclaredGuardrails,
    audit_events: Iterable[Any] | None = None,
    *,
    now: Callable[[], float] = time.time,
    before_restore: Callable[[DriftReport], None] | None = None,
) -> DriftReport:
    """detect_drift, then with `enforce: restore` run the restore plan. A failed restore is in the report
    (`restore_error`, with what was restored before it); `report.raise_for_restore()` turns it into an error.
    `before_restore(report)` runs just before the first restoring call (on-call's write-ahead record)."""
    report = detect_drift(admin, project_id, declared, audit_events, now=now)
    if declared.enforce != c.ENFORCE_RESTORE or not report.operations:
        return report
    if report.problems:
        return _with(report, (), "; ".join(str(p) for p in report.problems))
    if before_restore is not None:
        before_restore(report)
    try:
        restored = execute(admin, project_id, report.operations)
    except GuardrailsApplyError as exc:
        return _with(report, exc.applied, str(exc))
    except OpenAIError as exc:
        return _with(report, (), f"{type(exc).__name__}: {exc}")
    return _with(report, restored, None)


def drift_notification(report: DriftReport, environment: str, runbook_url: str) -> tuple[str, str, str]:
    """(dedup key, subject, body) of the on-call notification for a report that drifted. Scrubbed."""
    count = len(report.drift) + len(report.problems)
    subject = f"[keyrot {environment}] OpenAI guardrails drift: {count} setting(s) differ"[:100]
    lines = [_line(d, report.audit_unreadable) for d in report.drift] + [str(p) for p in report.problems]
    if report.restored and report.restore_error is None:
        outcome = "enforce: restore. keyrot put the declared values back:\n    " + "\n    ".join(report.restored)
    elif report.restore_error is not None:
        before = "; ".join(report.restored) or "nothing"
        outcome = (
            f"enforce: restore, but restoring failed: {report.restore_error}. Restored before it: {before}. "
            "keyrot tries again on every check and says nothing more about this drift unless it changes."
        )
    else:
        outcome = "enforce: notify. keyrot changed nothing; the project runs with the actual values above."
    unattributed = any(d.actor is None for d in report.drift)
    steps = [
        f"See declared against actual: keyrot guardrails --env {environment}",
        "Ask whoever changed it why (named above where OpenAI's audit log says; otherwise ask the organization's "
        "owners: anyone with an admin key or dashboard rights to the project's limits could have)"
        if unattributed
        else "Ask whoever changed it why (named above).",
        "Keep the declared values: run `pulumi up` for the stack (it applies them again). Keep the new value: "
        "change the stack's keyrot:guardrails to it, then `pulumi up`.",
    ]
    numbered = "\n".join(f"  {i}. {step}" for i, step in enumerate(steps, start=1))
    body = (
        f"OpenAI guardrails drift in {environment}\n\n"
        f"What happened: project {report.project_id} no longer has the declared guardrails:\n    "
        + "\n    ".join(lines)
        + f"\n\n{outcome}\n\nDo first:\n{numbered}\n\nRunbook: {runbook_url}#{c.DRIFT_RUNBOOK_ANCHOR}\n"
    )
    return report.dedup_key, scrub(subject), scrub(body)


def _attributed(difference: Difference, events: list[AuditEvent]) -> Drift:
    """The actor of the latest event that touched this rate limit's field, preferring one that set the value the
    project has now (events of the same second are listed oldest first, so the later one wins a tie)."""
    drift = Drift(difference.setting, difference.declared, difference.actual)
    if difference.resource_id is None:
        return drift
    best: tuple[bool, int, int] | None = None
    chosen: AuditEvent | None = None
    for position, event in enumerate(events):
        if event.resource_id != difference.resource_id:
            continue
        changes = _changes(event)
        if event.type != "rate_limit.deleted" and difference.field not in changes:
            continue
        rank = (str(changes.get(difference.field or "")) == difference.actual, event.effective_at, position)
        if best is None or rank > best:
            best, chosen = rank, event
    if chosen is None:
        return drift
    actor = chosen.actor.label if chosen.actor is not None else None
    return Drift(drift.setting, drift.declared, drift.actual, actor, chosen.effective_at)


def _changes(event: AuditEvent) -> Mapping[str, int]:
    return dict(event.changes)


def _with(report: DriftReport, restored: tuple[str, ...], error: str | None) -> DriftReport:
    return replace(report, restored=restored, restore_error=error)


def _line(drift: Drift, audit_unreadable: str | None) -> str:
    return drift.describe() if drift.actor else f"{drift.describe()}\n      {_unknown_actor(drift, audit_unreadable)}"


def _unknown_actor(drift: Drift, audit_unreadable: str | None) -> str:
    """Why OpenAI's audit log cannot say who changed `drift`."""
    if not drift.setting.startswith(c.RATE_LIMITS):
        return "who: unknown, OpenAI's audit log has no event for spend limits, spend alerts or model permissions"
    if audit_unreadable is not None:
        return (
            f"who: unknown, OpenAI's audit log could not be read ({audit_unreadable}: audit logging off, or the "
            "admin key lacks api.audit_log.read)"
        )
    return f"who: unknown, OpenAI's audit log shows no change of it in the last {LOOKBACK_SECONDS // 86400} days"


def _when(moment: int | None) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"

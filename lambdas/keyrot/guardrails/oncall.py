"""Tell on-call what the scheduled guardrails check found, once per occurrence: drift (each setting declared against
found, whether keyrot restored it, who changed it when OpenAI's audit log can say) and the hard spend limit reached.

An occurrence of drift is a run of checks that find the same settings at the same values. The check remembers, in
its own SSM parameter (`/keyrot/<env>/guardrails-state`), digests of the `setting=value` items it told on-call about
(`dedup_digest`, as the monitor keeps its notification dedup: no setting or value in SSM). It notifies when a check
finds an item that is not remembered (a new change), and then remembers exactly what it found: a drift that persists
(`enforce: notify`, or a restore that keeps failing) is told once; a drift the check restored is forgotten, so the
next console change, even to the same value, is a new occurrence. The hard limit is told once per month and limit.

The notification goes out before the memory is written: a crash in between repeats it once, never loses it. A
restore would leave nothing for the next check to find, so before its first restoring call the check records the
settings it is about to put back (`pending`: setting paths only, never a value); the message clears them. A check
that finds settings still pending and no longer drifted (the one that restored them died, or SNS refused its message)
tells on-call they were put back without them hearing of it. Only the guardrails function (reserved concurrency 1)
writes the parameter. Whoever can write it can hold a notification back, not the `GuardrailDrift` metric or its
alarm, which do not depend on it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from keyrot.aws.errors import aws_errors
from keyrot.constants import GUARDRAILS_STATE_PLACEHOLDER
from keyrot.errors import AwsCallError
from keyrot.guardrails import constants as c
from keyrot.guardrails.drift import DriftReport, drift_notification
from keyrot.guardrails.spend import MonthToDate
from keyrot.monitor.notifications import Notification
from keyrot.monitor.state import dedup_digest
from keyrot.redaction import scrub

logger = logging.getLogger(__name__)

MEMORY_VERSION = 1
# Digests remembered at most (12 hex characters each), and settings pending at most (each at most PENDING_CHARS):
# the parameter stays a standard one, under 4 KB. A drift of more settings is still told; beyond these, a setting
# may be told again, or a restore told as "and N more".
MAX_REMEMBERED = 100
MAX_PENDING = 15
PENDING_CHARS = 120
_SUBJECT_LIMIT = 100  # SNS: at most 100 printable ASCII characters


@dataclass(frozen=True)
class OncallMemory:
    """What on-call was told and still stands: digests of the drift items, and the hard-limit occurrence."""

    drift: frozenset[str] = frozenset()
    spend: str | None = None
    pending: tuple[str, ...] = ()  # settings a check was about to restore, not yet told (see the module docstring)
    pending_more: int = 0  # how many more than MAX_PENDING

    def to_text(self) -> str:
        payload = {
            "version": MEMORY_VERSION,
            "drift": sorted(self.drift)[:MAX_REMEMBERED],
            "spend": self.spend,
            "pending": list(self.pending),
            "pending_more": self.pending_more,
        }
        return json.dumps(payload, separators=(",", ":"))

    def expecting(self, settings: list[str]) -> OncallMemory:
        """This memory with `settings` pending too (kept in order, each once, bounded)."""
        merged = list(dict.fromkeys([*self.pending, *(setting[:PENDING_CHARS] for setting in settings)]))
        more = self.pending_more + max(0, len(merged) - MAX_PENDING)
        return replace(self, pending=tuple(merged[:MAX_PENDING]), pending_more=more)

    @classmethod
    def from_text(cls, text: str) -> OncallMemory:
        """The memory the check wrote; an empty one for the deployment's placeholder. ValueError for anything else."""
        if text == GUARDRAILS_STATE_PLACEHOLDER:
            return cls()
        payload = json.loads(text)
        if not isinstance(payload, dict) or payload.get("version") != MEMORY_VERSION:
            raise ValueError("not guardrails on-call memory of this version")
        drift, spend = payload.get("drift"), payload.get("spend")
        if not isinstance(drift, list) or not all(isinstance(d, str) and len(d) <= 64 for d in drift):
            raise ValueError("drift is not a list of digests")
        if spend is not None and (not isinstance(spend, str) or len(spend) > 64):
            raise ValueError("spend is not an occurrence")
        pending, more = payload.get("pending", []), payload.get("pending_more", 0)
        if not isinstance(pending, list) or not all(isinstance(p, str) and len(p) <= PENDING_CHARS for p in pending):
            raise ValueError("pending is not a list of settings")
        if not isinstance(more, int) or isinstance(more, bool) or more < 0:
            raise ValueError("pending_more is not a count")
        return cls(frozenset(drift), spend, tuple(pending[:MAX_PENDING]), more)


@dataclass
class Told:
    """What the check told on-call (subjects sent) and held back (already told of this occurrence)."""

    sent: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"sent": list(self.sent), "held_back": list(self.held_back)}


def drift_digests(report: DriftReport) -> frozenset[str]:
    return frozenset(dedup_digest(item) for item in report.occurrence) if report.drifted else frozenset()


def hard_limit_notification(environment: str, project_id: str, spend: MonthToDate, runbook_url: str) -> Notification:
    spent, limit = c.usd(spend.spent_cents), c.usd(spend.limit_cents)
    title = f"OpenAI hard spend limit reached: {spent} of {limit}"
    steps = [
        f"Confirm it: keyrot status --env {environment} (the month's spend against the hard limit).",
        f"Find what spent it before raising anything: the monitor's log names each key's spend today (aws logs "
        f"tail /aws/lambda/keyrot-{environment}-monitor --filter-pattern '\"spend today\"'), and unmanaged "
        f"keys: keyrot audit --env {environment}. If a key leaked: keyrot rotate --env {environment} --key <key> "
        "--emergency first.",
        "If the spend is legitimate, raise the limit with the budget owner: pulumi config set --path "
        "'keyrot:guardrails.spendLimitUsd' <usd>, then pulumi up.",
    ]
    numbered = "\n".join(f"  {i}. {step}" for i, step in enumerate(steps, start=1))
    body = (
        f"{title}\n\nWhat happened: OpenAI project {project_id} spent {spent} this month ({spend.month}, OpenAI's "
        f"Costs API, which lags by hours), reaching its declared hard limit of {limit} "
        f"({c.qualified(c.SPEND_LIMIT_USD)}). OpenAI refuses the project's requests until next month or until the "
        "limit is raised; a new key is refused too.\n"
        f"Environment: {environment}\n\nDo first:\n{numbered}\n\n"
        f"Runbook: {runbook_url}#{c.SPEND_LIMIT_RUNBOOK_ANCHOR}\n"
    )
    return Notification(f"hard-limit:{spend.occurrence}", f"[keyrot {environment}] {title}", body)


def restored_untold_notification(
    environment: str, project_id: str, settings: tuple[str, ...], more: int, runbook_url: str
) -> Notification:
    listed = "\n    ".join(settings) + (f"\n    and {more} more" if more else "")
    count = len(settings) + more
    title = f"OpenAI guardrails drift restored before you were told: {count} setting(s)"
    steps = [
        f"Confirm the project is as declared now: keyrot guardrails --env {environment}",
        f"See what the values had been: the guardrails function's log (aws logs tail /aws/lambda/keyrot-{environment}"
        "-guardrails --since 6h: 'guardrail changed' lines); who changed them: OpenAI's audit log (rate limits).",
        "Ask whoever changed them why; if it happens again, the next check tells you as it happens.",
    ]
    numbered = "\n".join(f"  {i}. {step}" for i, step in enumerate(steps, start=1))
    body = (
        f"{title}\n\nWhat happened: a guardrails check found these settings of OpenAI project {project_id} changed "
        f"from their declared values and put them back (enforce: restore), but stopped before telling you (SNS "
        f"refused the message, or the function stopped):\n    {listed}\n"
        f"Environment: {environment}\n\nDo first:\n{numbered}\n\nRunbook: {runbook_url}#{c.DRIFT_RUNBOOK_ANCHOR}\n"
    )
    return Notification("guardrails-restored-untold", f"[keyrot {environment}] {title}", body)


@dataclass
class Oncall:
    """Where to tell on-call and where to remember it: the SNS client and topic, the SSM client and parameter."""

    sns: Any
    topic_arn: str
    ssm: Any
    parameter: str
    environment: str
    runbook_url: str

    def tell(self, report: DriftReport, spend: MonthToDate | None) -> Told:
        """Notify what is new in `report` and `spend`; remember what stands. AwsCallError when SNS or SSM fails
        (what was sent before is remembered). A memory that cannot be read is taken as empty and the error raised
        after the messages: a message may repeat, never be lost (a restored drift is not found again)."""
        told = Told()
        unread: AwsCallError | None = None
        try:
            before = self.recall()
        except AwsCallError as exc:
            before, unread = OncallMemory(), exc
        memory = before
        try:
            found = drift_digests(report)
            if report.drifted:
                _, subject, body = drift_notification(report, self.environment, self.runbook_url)
                self._send(told, Notification(report.dedup_key, subject, body), new=bool(found - before.drift))
            memory = replace(memory, drift=frozenset() if report.fully_restored else found)
            covered = {drift.setting for drift in report.drift}
            untold = tuple(setting for setting in before.pending if setting not in covered)
            if untold or before.pending_more:
                note = restored_untold_notification(
                    self.environment, report.project_id, untold, before.pending_more, self.runbook_url
                )
                self._send(told, note, new=True)
            memory = replace(memory, pending=(), pending_more=0)
            if spend is not None and spend.reached:
                note = hard_limit_notification(self.environment, report.project_id, spend, self.runbook_url)
                self._send(told, note, new=before.spend != spend.occurrence)
                memory = replace(memory, spend=spend.occurrence)
        finally:
            if memory != before:
                self.remember(memory)
        if unread is not None:
            raise unread
        return told

    def expect(self, report: DriftReport) -> None:
        """Record, before a restore, the settings it is about to put back (setting paths only). Best-effort: SSM
        failing here costs only the record (logged), never the restore."""
        try:
            memory = self.recall()
            self.remember(memory.expecting([drift.setting for drift in report.drift]))
        except AwsCallError as exc:
            logger.warning("guardrails restore not recorded before it ran: %s %s", exc.operation, exc.code)

    def recall(self) -> OncallMemory:
        """The memory; empty when the parameter is missing, the placeholder, or not readable as memory (logged: at
        worst a notification repeats)."""
        try:
            with aws_errors("GetParameter"):
                text = self.ssm.get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except AwsCallError as exc:
            if exc.code == "ParameterNotFound":
                return OncallMemory()
            raise
        try:
            return OncallMemory.from_text(str(text))
        except (ValueError, RecursionError) as exc:
            logger.warning("guardrails on-call memory unreadable, starting afresh: %s", scrub(str(exc))[:200])
            return OncallMemory()

    def remember(self, memory: OncallMemory) -> None:
        with aws_errors("PutParameter"):
            self.ssm.put_parameter(Name=self.parameter, Value=memory.to_text(), Type="String", Overwrite=True)

    def _send(self, told: Told, note: Notification, *, new: bool) -> None:
        subject = scrub(note.subject).encode("ascii", "replace").decode()[:_SUBJECT_LIMIT]
        if not new:
            told.held_back.append(subject)
            logger.info("on-call already told: %s", subject)
            return
        with aws_errors("Publish"):
            self.sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=scrub(note.body))
        told.sent.append(subject)
        logger.info("notified on-call: %s", subject)

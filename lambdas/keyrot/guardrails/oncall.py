"""Tell on-call what the scheduled guardrails check found, once per occurrence: drift (each setting declared against
found, whether keyrot restored it, who changed it when OpenAI's audit log can say) and the hard spend limit reached.

An occurrence of drift is a run of checks that find the same settings at the same values. The check remembers, in
its own SSM parameter (`/keyrot/<env>/guardrails-state`), digests of the `setting=value` items it told on-call about
(`dedup_digest`, as the monitor keeps its notification dedup: no setting or value in SSM). It notifies when a check
finds an item that is not remembered (a new change), and then remembers exactly what it found: a drift that persists
(`enforce: notify`, or a restore that keeps failing) is told once; a drift the check restored is forgotten, so the
next console change, even to the same value, is a new occurrence. The hard limit is told once per month and limit.

The notification goes out before the memory is written: a crash in between repeats it once, never loses it. Only
the guardrails function (reserved concurrency 1) writes the parameter. Whoever can write it can hold a notification
back, not the `GuardrailDrift` metric or its alarm, which do not depend on it.
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
# Digests remembered at most (12 hex characters each: the parameter stays a standard one, under 4 KB). A drift of
# more settings than this is still told; beyond it, a setting may be told again.
MAX_REMEMBERED = 200
_SUBJECT_LIMIT = 100  # SNS: at most 100 printable ASCII characters


@dataclass(frozen=True)
class OncallMemory:
    """What on-call was told and still stands: digests of the drift items, and the hard-limit occurrence."""

    drift: frozenset[str] = frozenset()
    spend: str | None = None

    def to_text(self) -> str:
        digests = sorted(self.drift)[:MAX_REMEMBERED]
        return json.dumps({"version": MEMORY_VERSION, "drift": digests, "spend": self.spend}, separators=(",", ":"))

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
        return cls(frozenset(drift), spend)


@dataclass
class Told:
    """What the check told on-call (subjects sent) and held back (already told of this occurrence)."""

    sent: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"sent": list(self.sent), "held_back": list(self.held_back)}


def drift_digests(report: DriftReport) -> frozenset[str]:
    return frozenset(dedup_digest(item) for item in report.occurrence) if report.drifted else frozenset()


def hard_limit_notification(
    environment: str, project_id: str, spend: MonthToDate, runbook_url: str
) -> Notification:
    spent, limit = c.usd(spend.spent_cents), c.usd(spend.limit_cents)
    title = f"OpenAI hard spend limit reached: {spent} of {limit}"
    steps = [
        f"Confirm it: keyrot status --env {environment} (the month's spend against the hard limit).",
        "Find what spent it before raising anything: the per-key CostTodayUSD on the dashboard, and unmanaged "
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

"""One invocation of the guardrails function: `apply` (at deploy, from the invocation's input) or `check` (drift,
restoring with `enforce: restore`). The handler parses, builds the dependencies and delegates here.

Events:
- `{"action": "apply", "guardrails": <document>}`: the deploy-time invocation (its input is the declared document,
  so `pulumi preview` shows a change of it). Without `guardrails`, the SSM parameter's document is applied.
- `{"action": "check"}`: compare with the parameter's document; restore when it says `enforce: restore`; read the
  month's spend when a hard limit is declared; tell on-call what is new (keyrot.guardrails.oncall).
- Pulumi's CRUD invocations add `{"tf": {"action": "delete", ...}}` on destroy: the guardrails are left as they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyrot.errors import AwsCallError, KeyrotError
from keyrot.guardrails.apply import GuardrailsAdmin, apply_guardrails
from keyrot.guardrails.declared import DeclaredGuardrails
from keyrot.guardrails.drift import DriftReport, enforce_guardrails
from keyrot.guardrails.oncall import Oncall, Told
from keyrot.guardrails.settings import GuardrailsSettings
from keyrot.guardrails.source import load_declared
from keyrot.guardrails.spend import MonthToDate, month_to_date
from keyrot.openai_admin.errors import OpenAIError

logger = logging.getLogger(__name__)

ACTIONS = ("apply", "check")


class GuardrailsEventError(KeyrotError):
    """The invocation's event is not one the guardrails function takes."""


@dataclass(frozen=True)
class GuardrailsRequest:
    action: str  # apply | check | none (a destroy: nothing to do)
    document: Mapping[str, Any] | None = field(default=None, hash=False)

    @classmethod
    def from_event(cls, event: Any) -> GuardrailsRequest:
        if not isinstance(event, Mapping):
            raise GuardrailsEventError("the event must be a JSON object with an action (apply or check)")
        lifecycle = event.get("tf")
        if isinstance(lifecycle, Mapping) and lifecycle.get("action") == "delete":
            return cls("none")
        action = event.get("action")
        if action not in ACTIONS:
            raise GuardrailsEventError(f"the event's action must be one of {', '.join(ACTIONS)}, got {_shown(action)}")
        document = event.get("guardrails")
        if document is not None and not isinstance(document, Mapping):
            raise GuardrailsEventError("the event's guardrails must be the declared document (a JSON object)")
        if document is not None and action != "apply":
            raise GuardrailsEventError("only apply takes a document; check reads the declared parameter")
        return cls(str(action), document)


@dataclass
class GuardrailsDependencies:
    """The function's settings, its SSM client, the admin client made on first use (it reads the admin key), the
    SNS client (needed only with an on-call topic) and the clock."""

    settings: GuardrailsSettings
    ssm: Any
    admin: Callable[[], GuardrailsAdmin]
    sns: Any = None
    now: Callable[[], float] = time.time

    def oncall(self) -> Oncall | None:
        """Where the check tells on-call, or None when the deployment gives it no topic."""
        s = self.settings
        if s.topic_arn is None or s.state_parameter is None:
            return None
        return Oncall(self.sns, s.topic_arn, self.ssm, s.state_parameter, s.environment, s.runbook_url)


@dataclass(frozen=True)
class GuardrailsOutcome:
    """What the invocation did. `as_dict()` is the function's result: ids, amounts and e-mails, nothing secret (the
    deploy-time invocation's result is kept in the Pulumi state)."""

    action: str
    environment: str
    project_id: str
    declared: bool
    declared_sha256: str | None = None
    changes: tuple[str, ...] = ()
    drift: DriftReport | None = None
    spend: MonthToDate | None = None  # the month's spend against the declared hard limit (check, limit declared)
    spend_error: str | None = None  # why it could not be read (the error's class)
    told: Told | None = None  # what on-call was told (check, with an on-call topic)
    oncall_error: AwsCallError | None = field(default=None, compare=False)  # SNS or SSM failed telling on-call

    def raise_for_failure(self) -> None:
        """Raise what failed after the outcome was known (so its metrics are published first): a restore that
        failed (GuardrailsRestoreError), else telling on-call (AwsCallError)."""
        if self.drift is not None:
            self.drift.raise_for_restore()
        if self.oncall_error is not None:
            raise self.oncall_error

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "action": self.action,
            "environment": self.environment,
            "project_id": self.project_id,
            "declared": self.declared,
            "declared_sha256": self.declared_sha256,
            "changes": list(self.changes),
        }
        if self.drift is not None:
            result["drift"] = self.drift.as_dict()
        if self.spend is not None or self.spend_error is not None:
            result["spend"] = self.spend.as_dict() if self.spend is not None else {"unread": self.spend_error}
        if self.told is not None:
            result["oncall"] = self.told.as_dict()
        if self.oncall_error is not None:
            result["oncall_error"] = f"{self.oncall_error.operation}: {self.oncall_error.code}"
        return result


def run_request(request: GuardrailsRequest, deps: GuardrailsDependencies) -> GuardrailsOutcome:
    """Apply or check. Errors propagate typed (DeclaredStateError, GuardrailsApplyError, OpenAIError, AwsCallError);
    a restore that failed is in the outcome's drift report (`raise_for_restore`)."""
    settings = deps.settings
    env, project = settings.environment, settings.project_id
    if request.action == "none":
        return GuardrailsOutcome("none", env, project, declared=settings.declared)
    declared = load_declared(settings, deps.ssm, request.document)
    if declared is None:
        return GuardrailsOutcome(request.action, env, project, declared=False)
    digest = settings.declared_digest
    if request.action == "apply":
        report = apply_guardrails(deps.admin(), project, declared)
        return GuardrailsOutcome("apply", env, project, True, digest, changes=report.changes)
    admin = deps.admin()
    oncall = deps.oncall()
    expect = oncall.expect if oncall is not None else None
    drift = enforce_guardrails(admin, project, declared, now=deps.now, before_restore=expect)
    spend, spend_error = _month_to_date(admin, project, declared, deps.now())
    told, failed = None, None
    try:
        told = oncall.tell(drift, spend) if oncall is not None else None
    except AwsCallError as exc:  # the drift gauge must still go out (its alarm pages), then the function fails
        failed = exc
    return GuardrailsOutcome(
        "check",
        env,
        project,
        True,
        digest,
        drift.restored,
        drift,
        spend=spend,
        spend_error=spend_error,
        told=told,
        oncall_error=failed,
    )


def _month_to_date(
    admin: Any, project_id: str, declared: DeclaredGuardrails, now: float
) -> tuple[MonthToDate | None, str | None]:
    """The month's spend against the declared hard limit (none declared: not read). Best-effort: the Costs API
    failing costs this figure (logged, in the result), never the drift check."""
    if declared.spend_limit_cents is None:
        return None, None
    try:
        return month_to_date(admin, project_id, declared.spend_limit_cents, datetime.fromtimestamp(now, UTC)), None
    except OpenAIError as exc:
        logger.warning("month-to-date spend not read: %s", type(exc).__name__)
        return None, type(exc).__name__


def _shown(value: Any) -> str:
    text = repr(value)
    return "a value that looks like a key (not shown)" if "sk-" in text else text[:40]

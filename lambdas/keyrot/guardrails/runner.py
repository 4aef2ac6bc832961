"""One invocation of the guardrails function: `apply` (at deploy, from the invocation's input) or `check` (drift,
restoring with `enforce: restore`). The handler parses, builds the dependencies and delegates here.

Events:
- `{"action": "apply", "guardrails": <document>}`: the deploy-time invocation (its input is the declared document,
  so `pulumi preview` shows a change of it). Without `guardrails`, the SSM parameter's document is applied.
- `{"action": "check"}`: compare with the parameter's document; restore when it says `enforce: restore`.
- Pulumi's CRUD invocations add `{"tf": {"action": "delete", ...}}` on destroy: the guardrails are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyrot.errors import KeyrotError
from keyrot.guardrails.apply import GuardrailsAdmin, apply_guardrails
from keyrot.guardrails.drift import DriftReport, enforce_guardrails
from keyrot.guardrails.settings import GuardrailsSettings
from keyrot.guardrails.source import load_declared

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
    """The function's settings, its SSM client, and the admin client made on first use (it reads the admin key)."""

    settings: GuardrailsSettings
    ssm: Any
    admin: Callable[[], GuardrailsAdmin]


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
    drift = enforce_guardrails(deps.admin(), project, declared)
    return GuardrailsOutcome("check", env, project, True, digest, changes=drift.restored, drift=drift)


def _shown(value: Any) -> str:
    text = repr(value)
    return "a value that looks like a key (not shown)" if "sk-" in text else text[:40]

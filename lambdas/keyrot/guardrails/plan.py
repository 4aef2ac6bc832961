"""The apply plan: one operation per OpenAI call that moves the project toward its declared guardrails.

Each operation knows the call it makes, the settings it serves and how to describe itself (ids and amounts, never a
key). Operations are plain data; `executor.execute` runs them in the order `diff.compare` chose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from keyrot.guardrails import constants as c
from keyrot.openai_admin.guardrails import ModelPermissionMode


class GuardrailsWriter(Protocol):
    """The admin-client calls changing a project's guardrails (OpenAIAdminClient has them)."""

    def update_rate_limit(self, project_id: str, rate_limit_id: str, **limits: int) -> Any: ...
    def set_spend_limit(self, project_id: str, threshold_cents: int) -> Any: ...
    def delete_spend_limit(self, project_id: str) -> None: ...
    def create_spend_alert(
        self, project_id: str, threshold_cents: int, recipients: Iterable[str], *, subject_prefix: str | None = None
    ) -> Any: ...
    def update_spend_alert(
        self,
        project_id: str,
        alert_id: str,
        threshold_cents: int,
        recipients: Iterable[str],
        *,
        subject_prefix: str | None = None,
    ) -> Any: ...
    def delete_spend_alert(self, project_id: str, alert_id: str) -> bool: ...
    def set_model_permissions(self, project_id: str, mode: ModelPermissionMode, model_ids: Iterable[str]) -> Any: ...
    def delete_model_permissions(self, project_id: str) -> None: ...


class Operation(Protocol):
    """One changing call. `setting` is the path it serves (`rateLimits.gpt-4o`, `spendLimitUsd`, ...)."""

    @property
    def setting(self) -> str: ...
    def run(self, admin: GuardrailsWriter, project_id: str) -> None: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class UpdateRateLimit:
    model: str
    rate_limit_id: str
    limits: dict[str, int] = field(hash=False)
    current: dict[str, int] = field(hash=False)  # the values before, for messages

    @property
    def setting(self) -> str:
        return c.rate_limit_setting(self.model)

    @property
    def raises(self) -> tuple[str, ...]:
        """The fields set above their current value (OpenAI allows that only up to the organization's limit)."""
        return tuple(name for name, value in self.limits.items() if value > self.current.get(name, value))

    def run(self, admin: GuardrailsWriter, project_id: str) -> None:
        admin.update_rate_limit(project_id, self.rate_limit_id, **self.limits)

    def describe(self) -> str:
        changes = ", ".join(f"{name} {self.current.get(name)} -> {value}" for name, value in self.limits.items())
        return f"rate limits of {self.model}: {changes}"


@dataclass(frozen=True)
class SetSpendLimit:
    cents: int
    setting: str = c.SPEND_LIMIT_USD

    def run(self, admin: GuardrailsWriter, project_id: str) -> None:
        admin.set_spend_limit(project_id, self.cents)

    def describe(self) -> str:
        return f"hard spend limit set to {c.usd(self.cents)} a month"


@dataclass(frozen=True)
class DeleteSpendLimit:
    setting: str = c.SPEND_LIMIT_USD

    def run(self, admin: GuardrailsWriter, project_id: str) -> None:
        admin.delete_spend_limit(project_id)

    def describe(self) -> str:
        return "hard spend limit removed (OpenAI's default: none)"


@dataclass(frozen=True)
class CreateSpendAlert:
    cents: int
    recipients: tuple[str, ...]

    @property
    def setting(self) -> str:
        return c.alert_setting(self.cents)

    def run(self, admin: GuardrailsWriter, project_id: str) -> None:
        admin.create_spend_alert(project_id, self.cents, self.recipients)

    def describe(self) -> str:
        return f"spend alert at {c.usd(self.cents)} created for {', '.join(self.recipients)}"


@dataclass(frozen=True)
class UpdateSpendAlert:
    alert_id: str
    cents: int
    recipients: tuple[str, ...]
    subject_prefix: str | None = None  # kept as it was

    @property
    def setting(self) -> str:
        return c.alert_setting(self.cents)

    def run(self, admin: GuardrailsWriter, project_id: str) -> None:
        admin.update_spend_alert(
            project_id, self.alert_id, self.cents, self.recipients, subject_prefix=self.subject_prefix
        )

    def describe(self) -> str:
        return f"spend alert {self.alert_id} at {c.usd(self.cents)} now for {', '.join(self.recipients)}"


@dataclass(frozen=True)
class DeleteSpendAlert:
    alert_id: str
    cents: int

    @property
    def setting(self) -> str:
        return c.alert_setting(self.cents)

    def run(self, admin: GuardrailsWriter, project_id: str) -> None:
        admin.delete_spend_alert(project_id, self.alert_id)

    def describe(self) -> str:
        return f"spend alert {self.alert_id} at {c.usd(self.cents)} deleted"


@dataclass(frozen=True)
class SetModelPermissions:
    mode: ModelPermissionMode
    model_ids: tuple[str, ...]
    setting: str = c.MODELS

    def run(self, admin: GuardrailsWriter, project_id: str) -> None:
        admin.set_model_permissions(project_id, self.mode, self.model_ids)

    def describe(self) -> str:
        return f"model permissions set to {describe_models(self.mode, self.model_ids)}"


@dataclass(frozen=True)
class DeleteModelPermissions:
    setting: str = c.MODELS

    def run(self, admin: GuardrailsWriter, project_id: str) -> None:
        admin.delete_model_permissions(project_id)

    def describe(self) -> str:
        return "model permissions removed (OpenAI's default: every model allowed)"


def describe_models(mode: str | None, model_ids: Iterable[str]) -> str:
    """`allow gpt-4o, o3`, `deny o3`, or `every model` when nothing is restricted."""
    ids = list(model_ids)
    if mode is None or (mode == "deny_list" and not ids):
        return "every model"
    verb = "allow only" if mode == "allow_list" else "deny"
    return f"{verb} {', '.join(ids) if ids else '(no model)'}"

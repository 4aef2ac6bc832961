"""The project's guardrails as OpenAI has them now: four reads with the admin key, nothing changed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from keyrot.openai_admin.guardrails import ModelPermissions, RateLimit, SpendAlert, SpendLimit


class GuardrailsReader(Protocol):
    """The admin-client calls reading a project's guardrails (OpenAIAdminClient has them)."""

    def iter_rate_limits(self, project_id: str) -> Iterator[RateLimit]: ...
    def get_spend_limit(self, project_id: str) -> SpendLimit | None: ...
    def iter_spend_alerts(self, project_id: str) -> Iterator[SpendAlert]: ...
    def get_model_permissions(self, project_id: str) -> ModelPermissions: ...


@dataclass(frozen=True)
class ActualGuardrails:
    """What OpenAI answered: every model's limits by model, the hard limit (None: none), the alerts as listed, the
    model permissions (None: every model allowed, which OpenAI reports as an empty deny list)."""

    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict, hash=False)
    spend_limit: SpendLimit | None = None
    spend_alerts: tuple[SpendAlert, ...] = ()
    model_permissions: ModelPermissions | None = None


def read_actual(admin: GuardrailsReader, project_id: str) -> ActualGuardrails:
    """Read the project's four guardrails (paging through the lists)."""
    limits = {limit.model: limit for limit in admin.iter_rate_limits(project_id)}
    spend_limit = admin.get_spend_limit(project_id)
    alerts = tuple(admin.iter_spend_alerts(project_id))
    permissions = admin.get_model_permissions(project_id)
    unrestricted = permissions.mode == "deny_list" and not permissions.model_ids
    return ActualGuardrails(limits, spend_limit, alerts, None if unrestricted else permissions)

"""An in-memory admin client for the guardrail calls, with OpenAI's rules: rate limits only up to the organization's
limit and only for the fields a model has; alerts by id; an empty deny list when no permissions are set.

Every call is recorded by name, so tests can say which calls changed something. Unit tests use it instead of the
stand-in (no network); tests/functional/guardrails drives the real client against the stand-in.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from keyrot.openai_admin.errors import BadRequestError, ServerError
from keyrot.openai_admin.guardrails import ModelPermissions, RateLimit, SpendAlert, SpendLimit

WRITES = frozenset(
    {
        "update_rate_limit",
        "set_spend_limit",
        "delete_spend_limit",
        "create_spend_alert",
        "update_spend_alert",
        "delete_spend_alert",
        "set_model_permissions",
        "delete_model_permissions",
    }
)
MAXIMA = {
    "gpt-4o-mini": {"max_requests_per_1_minute": 10_000, "max_tokens_per_1_minute": 10_000_000},
    "gpt-4.1": {
        "max_requests_per_1_minute": 10_000,
        "max_tokens_per_1_minute": 30_000_000,
        "batch_1_day_max_input_tokens": 5_000_000_000,
    },
    "whisper-1": {
        "max_requests_per_1_minute": 500,
        "max_tokens_per_1_minute": 200_000,
        "max_audio_megabytes_per_1_minute": 100,
        "max_requests_per_1_day": 10_000,
    },
}


@dataclass
class FakeAdmin:
    """One project's guardrails. `fail_on`: a call name whose next invocation raises ServerError (after its effect
    when `after_effect`)."""

    limits: dict[str, RateLimit] = field(default_factory=dict)
    spend_limit: SpendLimit | None = None
    alerts: dict[str, SpendAlert] = field(default_factory=dict)
    permissions: ModelPermissions | None = None
    calls: list[str] = field(default_factory=list)
    fail_on: str | None = None
    after_effect: bool = False
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def with_models(cls, maxima: dict[str, dict[str, int]] = MAXIMA) -> FakeAdmin:
        limits = {}
        for model, values in maxima.items():
            required = ("max_requests_per_1_minute", "max_tokens_per_1_minute")
            optional = {k: v for k, v in values.items() if k not in required}
            limits[model] = RateLimit(
                f"rl-{model}", model, values["max_requests_per_1_minute"], values["max_tokens_per_1_minute"], **optional
            )
        return cls(limits=limits)

    @property
    def writes(self) -> list[str]:
        return [call for call in self.calls if call in WRITES]

    def _enter(self, name: str) -> bool:
        """Record the call; raise before its effect, or say it must raise after it."""
        self.calls.append(name)
        if self.fail_on != name:
            return False
        self.fail_on = None
        if self.after_effect:
            return True
        raise ServerError(f"OpenAI {name}: HTTP 500", status=500)

    # --- reads ----------------------------------------------------------------------------------------------------

    def iter_rate_limits(self, project_id: str) -> Iterator[RateLimit]:
        self._enter("iter_rate_limits")
        yield from self.limits.values()

    def get_spend_limit(self, project_id: str) -> SpendLimit | None:
        self._enter("get_spend_limit")
        return self.spend_limit

    def iter_spend_alerts(self, project_id: str) -> Iterator[SpendAlert]:
        self._enter("iter_spend_alerts")
        yield from list(self.alerts.values())

    def get_model_permissions(self, project_id: str) -> ModelPermissions:
        self._enter("get_model_permissions")
        return self.permissions or ModelPermissions("deny_list", ())

    # --- writes ---------------------------------------------------------------------------------------------------

    def update_rate_limit(self, project_id: str, rate_limit_id: str, **limits: int) -> RateLimit:
        late = self._enter("update_rate_limit")
        model = rate_limit_id.removeprefix("rl-")
        current = self.limits[model]
        for name, value in limits.items():
            if getattr(current, name) is None:
                raise BadRequestError(f"'{name}' does not apply to {model}", status=400, param=name)
            if value > MAXIMA.get(model, {}).get(name, value):
                raise BadRequestError(f"{name} exceeds the organization's limit", status=400, param=name)
        self.limits[model] = replace(current, **limits)
        return self._done(late, self.limits[model])

    def set_spend_limit(self, project_id: str, threshold_cents: int) -> SpendLimit:
        late = self._enter("set_spend_limit")
        self.spend_limit = SpendLimit(threshold_cents, "USD", "month", "enforcing")
        return self._done(late, self.spend_limit)

    def delete_spend_limit(self, project_id: str) -> None:
        late = self._enter("delete_spend_limit")
        self.spend_limit = None
        self._done(late, None)

    def create_spend_alert(
        self, project_id: str, threshold_cents: int, recipients: Iterable[str], *, subject_prefix: str | None = None
    ) -> SpendAlert:
        late = self._enter("create_spend_alert")
        alert_id = f"alert_{next(self._ids)}"
        alert = SpendAlert(alert_id, threshold_cents, "USD", "month", tuple(recipients), subject_prefix)
        self.alerts[alert.id] = alert
        return self._done(late, alert)

    def update_spend_alert(
        self,
        project_id: str,
        alert_id: str,
        threshold_cents: int,
        recipients: Iterable[str],
        *,
        subject_prefix: str | None = None,
    ) -> SpendAlert:
        late = self._enter("update_spend_alert")
        alert = SpendAlert(alert_id, threshold_cents, "USD", "month", tuple(recipients), subject_prefix)
        self.alerts[alert_id] = alert
        return self._done(late, alert)

    def delete_spend_alert(self, project_id: str, alert_id: str) -> bool:
        late = self._enter("delete_spend_alert")
        found = self.alerts.pop(alert_id, None) is not None
        return self._done(late, found)

    def set_model_permissions(self, project_id: str, mode: Any, model_ids: Iterable[str]) -> ModelPermissions:
        late = self._enter("set_model_permissions")
        self.permissions = ModelPermissions(mode, tuple(model_ids))
        return self._done(late, self.permissions)

    def delete_model_permissions(self, project_id: str) -> None:
        late = self._enter("delete_model_permissions")
        self.permissions = None
        self._done(late, None)

    def _done(self, late: bool, result: Any) -> Any:
        if late:
            raise ServerError("OpenAI: HTTP 502 after the change landed", status=502)
        return result

    def add_alert(self, cents: int, *recipients: str) -> str:
        """An alert made by someone else (setup, not a recorded call)."""
        alert = SpendAlert(f"alert_{next(self._ids)}", cents, "USD", "month", recipients, None)
        self.alerts[alert.id] = alert
        return alert.id

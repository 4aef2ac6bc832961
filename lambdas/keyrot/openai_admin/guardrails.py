"""A project's guardrails through the admin API: rate limits per model, hard spend limit, spend alerts, model
permissions. Typed views and the calls (mixed into OpenAIAdminClient).

Paths and shapes follow the spec (`/organization/projects/{id}/rate_limits`, `/spend_limit`, `/spend_alerts`,
`/model_permissions`). Bad arguments raise ValueError naming the argument before any request is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from keyrot.openai_admin.errors import MalformedResponseError, NotFoundError
from keyrot.openai_admin.models import object_of, opt_int_field, required_int, required_str
from keyrot.openai_admin.transport import ApiResponse, path_segment

RATE_LIMIT_FIELDS = (
    "max_requests_per_1_minute",
    "max_tokens_per_1_minute",
    "max_images_per_1_minute",
    "max_audio_megabytes_per_1_minute",
    "max_requests_per_1_day",
    "batch_1_day_max_input_tokens",
)
MODEL_PERMISSION_MODES = ("allow_list", "deny_list")
ModelPermissionMode = Literal["allow_list", "deny_list"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class RateLimit:
    """One model's limits in a project. Fields a model does not have are None."""

    id: str
    model: str
    max_requests_per_1_minute: int
    max_tokens_per_1_minute: int
    max_images_per_1_minute: int | None = None
    max_audio_megabytes_per_1_minute: int | None = None
    max_requests_per_1_day: int | None = None
    batch_1_day_max_input_tokens: int | None = None

    @property
    def limits(self) -> dict[str, int]:
        """The limits this model has, by field name."""
        return {name: value for name in RATE_LIMIT_FIELDS if (value := getattr(self, name)) is not None}

    @classmethod
    def from_api(cls, body: Any) -> RateLimit:
        obj = object_of(body, "rate limit")
        optional = {name: opt_int_field(obj, name, "rate limit") for name in RATE_LIMIT_FIELDS[2:]}
        return cls(
            id=required_str(obj, "id", "rate limit"),
            model=required_str(obj, "model", "rate limit"),
            max_requests_per_1_minute=required_int(obj, "max_requests_per_1_minute", "rate limit"),
            max_tokens_per_1_minute=required_int(obj, "max_tokens_per_1_minute", "rate limit"),
            **optional,
        )


@dataclass(frozen=True)
class SpendLimit:
    """A project's hard monthly spend limit. OpenAI counts it in cents."""

    threshold_cents: int
    currency: str
    interval: str
    enforcement_status: str  # "enforcing" | "inactive" (the spec allows other strings)

    @classmethod
    def from_api(cls, body: Any) -> SpendLimit:
        obj = object_of(body, "spend limit")
        enforcement = obj.get("enforcement")
        status = enforcement.get("status") if isinstance(enforcement, Mapping) else None
        if not isinstance(status, str):
            raise MalformedResponseError("spend limit field enforcement.status is missing or not a string")
        return cls(
            threshold_cents=required_int(obj, "threshold_amount", "spend limit"),
            currency=required_str(obj, "currency", "spend limit"),
            interval=required_str(obj, "interval", "spend limit"),
            enforcement_status=status,
        )


@dataclass(frozen=True)
class SpendAlert:
    """An e-mail alert when the project's monthly spend reaches `threshold_cents`."""

    id: str
    threshold_cents: int
    currency: str
    interval: str
    recipients: tuple[str, ...]
    subject_prefix: str | None

    @classmethod
    def from_api(cls, body: Any) -> SpendAlert:
        obj = object_of(body, "spend alert")
        channel = obj.get("notification_channel")
        if not isinstance(channel, Mapping):
            raise MalformedResponseError("spend alert has no notification_channel object")
        recipients = channel.get("recipients")
        if not isinstance(recipients, list) or not all(isinstance(address, str) for address in recipients):
            raise MalformedResponseError("spend alert field notification_channel.recipients is not a list of strings")
        prefix = channel.get("subject_prefix")
        return cls(
            id=required_str(obj, "id", "spend alert"),
            threshold_cents=required_int(obj, "threshold_amount", "spend alert"),
            currency=required_str(obj, "currency", "spend alert"),
            interval=required_str(obj, "interval", "spend alert"),
            recipients=tuple(recipients),
            subject_prefix=prefix if isinstance(prefix, str) else None,
        )


@dataclass(frozen=True)
class ModelPermissions:
    """Which models the project may use: only `model_ids` (allow_list) or all but them (deny_list)."""

    mode: ModelPermissionMode
    model_ids: tuple[str, ...]

    @classmethod
    def from_api(cls, body: Any) -> ModelPermissions:
        obj = object_of(body, "model permissions")
        mode = obj.get("mode")
        models = obj.get("model_ids")
        if mode not in MODEL_PERMISSION_MODES:
            raise MalformedResponseError("model permissions field mode is not allow_list or deny_list")
        if not isinstance(models, list) or not all(isinstance(model, str) for model in models):
            raise MalformedResponseError("model permissions field model_ids is not a list of strings")
        return cls(mode=mode, model_ids=tuple(models))


class GuardrailCalls:
    """The guardrail calls of OpenAIAdminClient (which provides `_call` and `_iter_list`)."""

    def _call(self, method: str, path: str, operation: str, **kwargs: Any) -> ApiResponse:
        raise NotImplementedError

    def _iter_list(self, path: str, operation: str, params: Mapping[str, Any]) -> Iterator[Any]:
        raise NotImplementedError

    # --- rate limits ----------------------------------------------------------------------------------------------

    def iter_rate_limits(self, project_id: str) -> Iterator[RateLimit]:
        """Every model's limits in the project (one object per model; there is no create or delete)."""
        for item in self._iter_list(f"{_project(project_id)}/rate_limits", "list rate limits", {}):
            yield RateLimit.from_api(item)

    def update_rate_limit(self, project_id: str, rate_limit_id: str, **limits: int) -> RateLimit:
        """Set some of one model's limits, e.g. max_requests_per_1_minute=500. OpenAI refuses (BadRequestError,
        `param` naming the field) a value above the organization's limit: limits can only be lowered."""
        if not limits:
            raise ValueError("update_rate_limit needs at least one limit to set")
        for name, value in limits.items():
            if name not in RATE_LIMIT_FIELDS:
                raise ValueError(f"unknown rate limit {name!r}; expected one of {', '.join(RATE_LIMIT_FIELDS)}")
            _check_count(name, value, minimum=0)
        response = self._call(
            "POST",
            f"{_project(project_id)}/rate_limits/{path_segment(rate_limit_id)}",
            "update rate limit",
            json_body=dict(limits),
        )
        return RateLimit.from_api(response.body)

    # --- hard spend limit -----------------------------------------------------------------------------------------

    def get_spend_limit(self, project_id: str) -> SpendLimit | None:
        """The project's hard spend limit, or None when it has none (a 404; the spec documents only the 200)."""
        try:
            response = self._call("GET", f"{_project(project_id)}/spend_limit", "read spend limit")
        except NotFoundError:
            return None
        return SpendLimit.from_api(response.body)

    def set_spend_limit(self, project_id: str, threshold_cents: int) -> SpendLimit:
        """Create or replace the project's hard monthly limit, in US cents (at least 1)."""
        _check_count("threshold_cents", threshold_cents, minimum=1)
        body = {"threshold_amount": threshold_cents, "currency": "USD", "interval": "month"}
        response = self._call("POST", f"{_project(project_id)}/spend_limit", "set spend limit", json_body=body)
        return SpendLimit.from_api(response.body)

    def delete_spend_limit(self, project_id: str) -> None:
        self._call("DELETE", f"{_project(project_id)}/spend_limit", "delete spend limit")

    # --- spend alerts ---------------------------------------------------------------------------------------------

    def iter_spend_alerts(self, project_id: str) -> Iterator[SpendAlert]:
        for item in self._iter_list(f"{_project(project_id)}/spend_alerts", "list spend alerts", {}):
            yield SpendAlert.from_api(item)

    def create_spend_alert(
        self, project_id: str, threshold_cents: int, recipients: Iterable[str], *, subject_prefix: str | None = None
    ) -> SpendAlert:
        """A new alert. Not retried after an ambiguous failure (a retry could make a twin): list before retrying."""
        body = _alert_body(threshold_cents, recipients, subject_prefix)
        response = self._call(
            "POST", f"{_project(project_id)}/spend_alerts", "create spend alert", json_body=body, idempotent=False
        )
        return SpendAlert.from_api(response.body)

    def update_spend_alert(
        self,
        project_id: str,
        alert_id: str,
        threshold_cents: int,
        recipients: Iterable[str],
        *,
        subject_prefix: str | None = None,
    ) -> SpendAlert:
        """Replace an alert's threshold and recipients (the spec's update takes the whole alert)."""
        body = _alert_body(threshold_cents, recipients, subject_prefix)
        path = f"{_project(project_id)}/spend_alerts/{path_segment(alert_id)}"
        return SpendAlert.from_api(self._call("POST", path, "update spend alert", json_body=body).body)

    def delete_spend_alert(self, project_id: str, alert_id: str) -> bool:
        """Delete an alert. False when it was already gone."""
        try:
            self._call("DELETE", f"{_project(project_id)}/spend_alerts/{path_segment(alert_id)}", "delete spend alert")
        except NotFoundError:
            return False
        return True

    # --- model permissions ----------------------------------------------------------------------------------------

    def get_model_permissions(self, project_id: str) -> ModelPermissions:
        response = self._call("GET", f"{_project(project_id)}/model_permissions", "read model permissions")
        return ModelPermissions.from_api(response.body)

    def set_model_permissions(
        self, project_id: str, mode: ModelPermissionMode, model_ids: Iterable[str]
    ) -> ModelPermissions:
        if mode not in MODEL_PERMISSION_MODES:
            raise ValueError(f"model permission mode must be allow_list or deny_list, not {mode!r}")
        models = list(model_ids) if not isinstance(model_ids, str) else None
        if models is None or not all(isinstance(model, str) and model and model.strip() == model for model in models):
            raise ValueError("model_ids must be a list of non-empty model ids without surrounding spaces")
        body = {"mode": mode, "model_ids": models}
        path = f"{_project(project_id)}/model_permissions"
        return ModelPermissions.from_api(self._call("POST", path, "set model permissions", json_body=body).body)

    def delete_model_permissions(self, project_id: str) -> None:
        """Remove the allow or deny list: every model is allowed again."""
        self._call("DELETE", f"{_project(project_id)}/model_permissions", "delete model permissions")


def _alert_body(threshold_cents: int, recipients: Iterable[str], subject_prefix: str | None) -> dict[str, Any]:
    _check_count("threshold_cents", threshold_cents, minimum=0)
    addresses = list(recipients) if not isinstance(recipients, str) else None
    if not addresses or not all(isinstance(a, str) and _EMAIL.fullmatch(a) for a in addresses):
        raise ValueError("recipients must be a list of one or more e-mail addresses")
    if subject_prefix is not None and not isinstance(subject_prefix, str):
        raise ValueError("subject_prefix must be a string or None")
    channel: dict[str, Any] = {"type": "email", "recipients": addresses}
    if subject_prefix is not None:
        channel["subject_prefix"] = subject_prefix
    return {
        "threshold_amount": threshold_cents,
        "currency": "USD",
        "interval": "month",
        "notification_channel": channel,
    }


def _check_count(name: str, value: Any, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")


def _project(project_id: str) -> str:
    return f"/organization/projects/{path_segment(project_id)}"

"""A project's guardrails in the stand-in: rate limits per model, hard spend limit, spend alerts, model permissions.

Shapes follow the spec (`ProjectRateLimit`, `ProjectSpendLimitResource`, `ProjectSpendAlert`,
`ProjectModelPermissions`). The spec leaves these open, and the stand-in chooses as written:
- Rate limits can be set at or below the organization's maximum for the model, never above (OpenAI's rule per the
  fact sheet); above is a 400 naming the field and the maximum. Negative values are a 400; a field the model does
  not have (images per minute for a chat model) is a 400. There is no create or delete: every served model has one.
- A project without a hard spend limit answers GET with 404 (the spec documents only 200).
- With no model permissions set, GET answers an empty deny list (everything allowed); DELETE returns to that.
- Spend-alert recipients must be a non-empty list of e-mail addresses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.openai_standin.protocol import ApiError, json_object, strict_int, string_list

RATE_LIMIT_FIELDS = (
    "max_requests_per_1_minute",
    "max_tokens_per_1_minute",
    "max_images_per_1_minute",
    "max_audio_megabytes_per_1_minute",
    "max_requests_per_1_day",
    "batch_1_day_max_input_tokens",
)
# The organization's maxima per model: the ceiling a project's limits start at and may not exceed. Made-up figures
# of the right magnitudes; each model carries only the fields that apply to it, as OpenAI's list does.
ORGANIZATION_MAXIMA: dict[str, dict[str, int]] = {
    "gpt-4o-mini": {
        "max_requests_per_1_minute": 10_000,
        "max_tokens_per_1_minute": 10_000_000,
        "batch_1_day_max_input_tokens": 1_000_000_000,
    },
    "gpt-4.1": {
        "max_requests_per_1_minute": 10_000,
        "max_tokens_per_1_minute": 30_000_000,
        "batch_1_day_max_input_tokens": 5_000_000_000,
    },
    "text-embedding-3-small": {"max_requests_per_1_minute": 10_000, "max_tokens_per_1_minute": 10_000_000},
    "omni-moderation-latest": {"max_requests_per_1_minute": 5_000, "max_tokens_per_1_minute": 500_000},
    "gpt-image-1": {
        "max_requests_per_1_minute": 500,
        "max_tokens_per_1_minute": 100_000,
        "max_images_per_1_minute": 50,
    },
    "whisper-1": {
        "max_requests_per_1_minute": 500,
        "max_tokens_per_1_minute": 200_000,
        "max_audio_megabytes_per_1_minute": 100,
        "max_requests_per_1_day": 10_000,
    },
}
_FALLBACK_MAXIMA = {"max_requests_per_1_minute": 500, "max_tokens_per_1_minute": 200_000}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MODEL_PERMISSION_MODES = ("allow_list", "deny_list")


@dataclass
class RateLimit:
    id: str
    model: str
    maxima: dict[str, int]
    values: dict[str, int]

    def payload(self) -> dict[str, Any]:
        return {"object": "project.rate_limit", "id": self.id, "model": self.model, **self.values}


@dataclass
class ProjectGuardrails:
    rate_limits: dict[str, RateLimit]  # by id, in model order
    spend_limit_cents: int | None = None
    spend_alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id, in creation order
    model_permissions: tuple[str, tuple[str, ...]] | None = None

    @classmethod
    def for_models(cls, models: Iterable[str]) -> ProjectGuardrails:
        limits = {}
        for model in models:
            maxima = dict(ORGANIZATION_MAXIMA.get(model, _FALLBACK_MAXIMA))
            limit = RateLimit(f"rl-{model}", model, maxima, dict(maxima))
            limits[limit.id] = limit
        return cls(limits)

    def model_allowed(self, model: str) -> bool:
        if self.model_permissions is None:
            return True
        mode, models = self.model_permissions
        return (model in models) == (mode == "allow_list")

    def model_permissions_payload(self) -> dict[str, Any]:
        mode, models = self.model_permissions or ("deny_list", ())
        return {"object": "project.model_permissions", "mode": mode, "model_ids": list(models)}


def rate_limit_changes(limit: RateLimit, body: Any) -> dict[str, int]:
    """The fields a `ProjectRateLimitUpdateRequest` changes, checked against the model's maxima. Changes nothing."""
    body = json_object(body)
    unknown = sorted(set(body) - set(RATE_LIMIT_FIELDS))
    if unknown:
        raise ApiError(400, f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
    changes = {}
    for name in RATE_LIMIT_FIELDS:
        if name not in body:
            continue
        value = strict_int(body, name, minimum=0)
        if name not in limit.maxima:
            raise ApiError(400, f"'{name}' does not apply to model {limit.model}.", param=name)
        if value > limit.maxima[name]:
            raise ApiError(
                400,
                f"Invalid value for '{name}': {value} exceeds the organization's limit of {limit.maxima[name]} for "
                f"{limit.model}. A project's rate limits can only be set at or below the organization's.",
                param=name,
            )
        changes[name] = value
    return changes


def spend_limit_cents(body: Any) -> int:
    """`UpdateProjectSpendLimitBody`: threshold_amount (cents, at least 1), currency USD, interval month."""
    body = json_object(body)
    amount = strict_int(body, "threshold_amount", minimum=1)
    _currency_and_interval(body)
    return amount


def spend_alert_fields(body: Any) -> dict[str, Any]:
    """`CreateSpendAlertBody` (create and update alike), normalised to what the alert object returns."""
    body = json_object(body)
    amount = strict_int(body, "threshold_amount", minimum=0)
    _currency_and_interval(body)
    channel = body.get("notification_channel")
    if not isinstance(channel, dict) or channel.get("type") != "email":
        raise ApiError(
            400,
            "Invalid value for 'notification_channel': expected {type: email, recipients}.",
            param="notification_channel",
        )
    recipients = string_list(channel, "recipients")
    if not recipients or not all(_EMAIL.fullmatch(address) for address in recipients):
        raise ApiError(
            400,
            "Invalid value for 'notification_channel.recipients': expected one or more e-mail addresses.",
            param="notification_channel.recipients",
        )
    prefix = channel.get("subject_prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise ApiError(400, "Invalid type for 'subject_prefix': expected a string.", param="subject_prefix")
    return {
        "threshold_amount": amount,
        "currency": "USD",
        "interval": "month",
        "notification_channel": {"type": "email", "recipients": list(recipients), "subject_prefix": prefix},
    }


def model_permissions(body: Any) -> tuple[str, tuple[str, ...]]:
    body = json_object(body)
    mode = body.get("mode")
    if mode not in MODEL_PERMISSION_MODES:
        raise ApiError(400, "Invalid value for 'mode': expected allow_list or deny_list.", param="mode")
    models = string_list(body, "model_ids")
    if not all(model.strip() == model and model for model in models):
        raise ApiError(400, "Invalid value for 'model_ids': model ids must be non-empty strings.", param="model_ids")
    return mode, tuple(dict.fromkeys(models))


def _currency_and_interval(body: Mapping[str, Any]) -> None:
    if body.get("currency") != "USD":
        raise ApiError(400, "Invalid value for 'currency': only USD is supported.", param="currency")
    if body.get("interval") != "month":
        raise ApiError(400, "Invalid value for 'interval': only month is supported.", param="interval")

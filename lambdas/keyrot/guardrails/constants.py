"""Names and bounds of the declared guardrails: the config block's fields, the document format, the limits."""

from __future__ import annotations

import re
from typing import Final

# The stack setting that holds the block (`keyrot:guardrails`), and the block's own fields.
SETTING: Final = "guardrails"
NAMESPACE: Final = "keyrot"
RATE_LIMITS: Final = "rateLimits"
SPEND_LIMIT_USD: Final = "spendLimitUsd"
SPEND_ALERTS: Final = "spendAlerts"
MODELS: Final = "models"
ENFORCE: Final = "enforce"
BLOCK_FIELDS: Final = (RATE_LIMITS, SPEND_LIMIT_USD, SPEND_ALERTS, MODELS, ENFORCE)
ALERT_THRESHOLD_USD: Final = "thresholdUsd"
ALERT_RECIPIENTS: Final = "recipients"
ALERT_FIELDS: Final = (ALERT_THRESHOLD_USD, ALERT_RECIPIENTS)
MODELS_ALLOW: Final = "allow"
MODELS_DENY: Final = "deny"
# What the block's `models` list means, in OpenAI's words (ModelPermissions.mode).
MODEL_MODES: Final = {MODELS_ALLOW: "allow_list", MODELS_DENY: "deny_list"}

# enforce: what the continuous check does with drift. notify: report it; restore: also put the declared value back.
ENFORCE_NOTIFY: Final = "notify"
ENFORCE_RESTORE: Final = "restore"
ENFORCE_MODES: Final = (ENFORCE_NOTIFY, ENFORCE_RESTORE)

# The rate-limit fields of OpenAI's ProjectRateLimit, exactly as the spec spells them (the admin client's
# RATE_LIMIT_FIELDS; spelled here so the validator needs nothing beyond the standard library).
RATE_LIMIT_NAMES: Final = (
    "max_requests_per_1_minute",
    "max_tokens_per_1_minute",
    "max_images_per_1_minute",
    "max_audio_megabytes_per_1_minute",
    "max_requests_per_1_day",
    "batch_1_day_max_input_tokens",
)

# The declared document (what the deployment writes for the functions): this version, and its largest size.
DOCUMENT_VERSION: Final = 1
MAX_DOCUMENT_BYTES: Final = 4096 * 4  # an SSM Advanced parameter holds 8 KB; a Standard one 4 KB

# Bounds: beyond them a value is a typo, not a limit.
MAX_RATE_LIMIT: Final = 10**12
MAX_USD_CENTS: Final = 10_000_000 * 100
MAX_RECIPIENTS: Final = 10
MAX_MODELS: Final = 500
MAX_ALERTS: Final = 20

# A model id as OpenAI spells them: gpt-4o-mini, gpt-4.1, o3, ft:gpt-4o-mini-2024-07-18:org:suffix:abc123.
MODEL_ID_PATTERN: Final = re.compile(r"^(?!sk-)[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
EMAIL_PATTERN: Final = re.compile(r"^[^@\s\"',;<>]{1,64}@[^@\s\"',;<>]{1,190}\.[^@\s\"',;<>.]{1,63}$")
# A model id that may be written bare in a setting's path; others are quoted: rateLimits["gpt-4.1"].
_BARE_SEGMENT: Final = re.compile(r"^[A-Za-z0-9_-]+$")

# The runbook section a drift notification links to.
DRIFT_RUNBOOK_ANCHOR: Final = "guardrail-drift"
SPEND_LIMIT_RUNBOOK_ANCHOR: Final = "hard-spend-limit-reached"


def segment(name: str) -> str:
    """One path segment as Pulumi's `config set --path` takes it: `.name`, or `["gpt-4.1"]` when it has dots."""
    return f".{name}" if _BARE_SEGMENT.fullmatch(name) else f'["{name}"]'


def rate_limit_setting(model: str, field: str | None = None) -> str:
    """`rateLimits.gpt-4o.max_tokens_per_1_minute` (a model with a dot: `rateLimits["gpt-4.1"].…`)."""
    path = f"{RATE_LIMITS}{segment(model)}"
    return path if field is None else f"{path}.{field}"


def alert_setting(threshold_cents: int) -> str:
    """How a spend alert is named in reports: by its threshold, `spendAlerts[$50.00]`."""
    return f"{SPEND_ALERTS}[{usd(threshold_cents)}]"


def qualified(setting: str) -> str:
    """`keyrot:guardrails.<setting>`: how messages name a setting, so it can be pasted into `pulumi config set`."""
    return f"{NAMESPACE}:{SETTING}.{setting}" if setting else f"{NAMESPACE}:{SETTING}"


def usd(cents: int) -> str:
    """Cents as dollars: 12345 -> "$123.45"."""
    return f"${cents // 100:,}.{cents % 100:02d}"

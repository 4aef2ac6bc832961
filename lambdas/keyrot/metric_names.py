"""CloudWatch metric names and dimensions: the single source for the Lambdas that emit and the alarms that watch.

Kept free of third-party imports so the Pulumi program can import it cheaply.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "Keyrot"

# Dimension names. Per-key metrics use (Environment, KeyName): the key *name* is stable across rotations,
# the key id is not, so dashboards and alarms survive every rotation.
DIM_ENVIRONMENT: Final = "Environment"
DIM_KEY_NAME: Final = "KeyName"
DIM_STEP: Final = "Step"

# --- Rotation Lambda (emitted as EMF through Powertools) --------------------------------------------
# Dimensions: (Environment). Key name, step and error class ride along as EMF properties in the log line.
ROTATION_STARTED: Final = "RotationStarted"
ROTATION_SUCCEEDED: Final = "RotationSucceeded"
ROTATION_FAILED: Final = "RotationFailed"
# Dimensions: (Environment, Step). Seconds spent in one rotation step.
ROTATION_STEP_DURATION: Final = "RotationStepDuration"
# Dimensions: (Environment). A previous key's service account deleted and confirmed dead.
KEY_REVOKED: Final = "KeyRevoked"
REVOCATION_FAILED: Final = "RevocationFailed"

# --- Monitor Lambda (PutMetricData) -----------------------------------------------------------------
# Per key, dimensions (Environment, KeyName). Published only for buckets with non-zero values.
REQUESTS: Final = "Requests"
INPUT_TOKENS: Final = "InputTokens"
OUTPUT_TOKENS: Final = "OutputTokens"
IMAGES: Final = "Images"
AUDIO_CHARACTERS: Final = "AudioCharacters"
AUDIO_SECONDS: Final = "AudioSeconds"
# Per key, a gauge: spend so far in the current UTC day (use the Maximum statistic).
COST_TODAY_USD: Final = "CostTodayUSD"
# Per key, a gauge: hours since the current key was minted.
KEY_AGE_HOURS: Final = "KeyAgeHours"
# Environment-wide, a gauge: the oldest managed key's KeyAgeHours (the key-age alarm reads it; the monitor's log
# names the key). One metric for every key: the alarm fires when any key is too old, at one metric's price.
OLDEST_KEY_AGE_HOURS: Final = "OldestKeyAgeHours"

# Environment-wide, dimensions (Environment).
SPEND_TODAY_USD: Final = "SpendTodayUSD"  # gauge: the project's spend so far today, every key included
UNMANAGED_KEY_REQUESTS: Final = "UnmanagedKeyRequests"  # requests by key ids keyrot does not manage
UNMANAGED_KEYS: Final = "UnmanagedKeys"  # gauge: project keys keyrot did not mint
RETIRED_KEY_REQUESTS: Final = "RetiredKeyRequests"  # requests by a previous key past its grace, or a revoked key
MONITOR_HEARTBEAT: Final = "MonitorHeartbeat"  # one per run in which every part succeeded (see below)
MONITOR_RUN_FAILED: Final = "MonitorRunFailed"

# The run in parts (usage, findings, costs, janitor, gauges; ledger and inventory are their inputs). Each part runs
# whatever the others did. MonitorHeartbeat is published only when every part but the best-effort costs succeeded
# (value: the last committed publish marker). A partial run publishes no heartbeat: it emits MonitorPartFailed
# (EMF, dimensions (Environment, Part), one per failed part) and the function reports an error.
DIM_PART: Final = "Part"
MONITOR_PART_FAILED: Final = "MonitorPartFailed"
# Dimensions (Environment), EMF: the Costs API could not be read (or answered in another currency); SpendTodayUSD and
# CostTodayUSD are not published that run (never a made-up 0). Best-effort: the run itself does not fail for it.
COSTS_READ_FAILED: Final = "CostsReadFailed"
# Dimensions (Environment): the value of each usage batch's publish marker (see monitor/publisher.py); not an alarm.
MONITOR_PUBLISH_MARKER: Final = "MonitorPublishMarker"
# Dimensions (Environment), gauge: usage buckets set aside as poison (docs/runbook.md#usage-bucket-set-aside).
USAGE_BUCKETS_SET_ASIDE: Final = "UsageBucketsSetAside"

PER_KEY_USAGE_METRICS: Final = (REQUESTS, INPUT_TOKENS, OUTPUT_TOKENS, IMAGES, AUDIO_CHARACTERS, AUDIO_SECONDS)
# The usage signals a per-key anomaly alarm may watch, by their name in the stack's `anomalyAlarms` setting.
ANOMALY_SIGNALS: Final = {"requests": REQUESTS, "inputTokens": INPUT_TOKENS}
# Metrics no alarm reads, only the dashboard: the monitor publishes them only when the stack declares one
# (`dashboard: true`), since CloudWatch bills each metric (0.30 USD a month, per key for a per-key one) for every
# hour it gets data.
DASHBOARD_ONLY: Final = frozenset(
    {OUTPUT_TOKENS, IMAGES, AUDIO_CHARACTERS, AUDIO_SECONDS, COST_TODAY_USD, KEY_AGE_HOURS, USAGE_BUCKETS_SET_ASIDE}
)


def key_dimensions(environment: str, key_name: str) -> dict[str, str]:
    """Dimensions of a per-key metric, as a name-to-value mapping."""
    return {DIM_ENVIRONMENT: environment, DIM_KEY_NAME: key_name}


def environment_dimensions(environment: str) -> dict[str, str]:
    """Dimensions of an environment-wide metric."""
    return {DIM_ENVIRONMENT: environment}


# --- Admin rotation function (EMF through Powertools), dimensions (Environment) --------------------------------------
# Its steps, as the rotation function's: started (createSecret), succeeded (finishSecret), failed (any step; the step
# and error class ride along as EMF properties). AdminRotationStepDuration has dimensions (Environment, Step).
ADMIN_ROTATION_STARTED: Final = "AdminRotationStarted"
ADMIN_ROTATION_SUCCEEDED: Final = "AdminRotationSucceeded"
ADMIN_ROTATION_FAILED: Final = "AdminRotationFailed"
ADMIN_ROTATION_STEP_DURATION: Final = "AdminRotationStepDuration"
# Published by every admin-key cleanup (scheduled, and after each promotion). Gauges: use the Maximum statistic.
ADMIN_KEY_AGE_HOURS: Final = "AdminKeyAgeHours"  # hours since the current admin key was created
ADMIN_KEYS_LIVE: Final = "AdminKeysLive"  # live admin keys keyrot minted for the environment
ADMIN_KEY_DELETED: Final = "AdminKeyDeleted"  # admin keys deleted (previous after its grace, abandoned, bootstrap)
ADMIN_KEY_CLEANUP_FAILED: Final = "AdminKeyCleanupFailed"  # a key due for deletion not deleted, or the run failed

# --- OpenAI guardrails (keyrot.guardrails; docs/guardrails.md) -------------------------------------------------
# Dimensions (Environment), gauge: settings of the project that differ from the declared guardrails (0: in step).
# Published by every scheduled check of the guardrails function (`check`); alarm on Maximum > 0.
GUARDRAIL_DRIFT: Final = "GuardrailDrift"
# Dimensions (Environment), counts: settings changed by an apply, or put back by `enforce: restore`.
GUARDRAILS_CHANGED: Final = "GuardrailsChanged"
GUARDRAILS_RESTORED: Final = "GuardrailsRestored"
# Dimensions (Environment): an apply or a restore that stopped (OpenAI refused a value, a call failed).
GUARDRAILS_APPLY_FAILED: Final = "GuardrailsApplyFailed"
# Dimensions (Environment), gauge: the project's spend this UTC month (Costs API), published by the guardrails check
# when a hard limit is declared and the costs could be read; on-call is told once when it reaches the limit.
SPEND_MONTH_TO_DATE_USD: Final = "SpendMonthToDateUSD"
# Dimensions (Environment), count: notifications the guardrails check sent on-call (drift, hard limit reached).
GUARDRAILS_NOTIFIED: Final = "GuardrailsNotified"

# --- The audit-log tripwire (keyrot.monitor.audit_watch; docs/runbook.md#audit-log-unreadable) ----------------------
# Dimensions (Environment), count per run, only when not 0: audit-log entries the monitor could not judge (malformed,
# of a type it does not read). The run's log line names each reason.
AUDIT_EVENTS_SKIPPED: Final = "AuditEventsSkipped"

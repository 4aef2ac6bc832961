"""OpenAI guardrails as code: the declared block, the project's actual guardrails, the diff, the apply and drift.

Modules, one job each: `declared` (the block and its validator), `document` (what the deployment hands the
functions, with its digest), `actual` (reading the project), `diff` (declared against actual), `plan` and
`executor` (the changing calls), `apply`, `audit` (who changed a rate limit), `drift` (report, restore,
notification), `oncall` (telling on-call once per occurrence), `settings` and `source` (the function's configuration
and declared state), `runner` (one invocation), `spend` (month-to-date against the limit).

Names are imported on first use, so the Pulumi program can validate a block (`parse_guardrails`, `document_json`,
`document_digest`) with the standard library alone, without the functions' HTTP and AWS libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ActualGuardrails": "actual",
    "read_actual": "actual",
    "ApplyReport": "apply",
    "apply_guardrails": "apply",
    "DeclaredAlert": "declared",
    "DeclaredGuardrails": "declared",
    "DeclaredModels": "declared",
    "parse_guardrails": "declared",
    "Comparison": "diff",
    "Difference": "diff",
    "compare": "diff",
    "document_digest": "document",
    "document_json": "document",
    "load_document": "document",
    "parse_document": "document",
    "to_document": "document",
    "Drift": "drift",
    "DriftReport": "drift",
    "GuardrailsRestoreError": "drift",
    "check_drift": "drift",
    "detect_drift": "drift",
    "drift_notification": "drift",
    "enforce_guardrails": "drift",
    "DeclaredStateError": "errors",
    "GuardrailsApplyError": "errors",
    "GuardrailsConfigError": "errors",
    "Problem": "errors",
    "Oncall": "oncall",
    "OncallMemory": "oncall",
    "Told": "oncall",
    "hard_limit_notification": "oncall",
    "GuardrailsDependencies": "runner",
    "GuardrailsEventError": "runner",
    "GuardrailsOutcome": "runner",
    "GuardrailsRequest": "runner",
    "run_request": "runner",
    "GuardrailsSettings": "settings",
    "load_declared": "source",
    "MonthToDate": "spend",
    "SpendStanding": "spend",
    "month_to_date": "spend",
    "spend_standing": "spend",
}
__all__ = [
    "ActualGuardrails",
    "ApplyReport",
    "Comparison",
    "DeclaredAlert",
    "DeclaredGuardrails",
    "DeclaredModels",
    "DeclaredStateError",
    "Difference",
    "Drift",
    "DriftReport",
    "GuardrailsApplyError",
    "GuardrailsConfigError",
    "GuardrailsDependencies",
    "GuardrailsEventError",
    "GuardrailsOutcome",
    "GuardrailsRequest",
    "GuardrailsRestoreError",
    "GuardrailsSettings",
    "MonthToDate",
    "Oncall",
    "OncallMemory",
    "Problem",
    "SpendStanding",
    "Told",
    "apply_guardrails",
    "check_drift",
    "compare",
    "detect_drift",
    "document_digest",
    "document_json",
    "drift_notification",
    "enforce_guardrails",
    "hard_limit_notification",
    "load_declared",
    "load_document",
    "month_to_date",
    "parse_document",
    "parse_guardrails",
    "read_actual",
    "run_request",
    "spend_standing",
    "to_document",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


if TYPE_CHECKING:
    from keyrot.guardrails.actual import ActualGuardrails, read_actual
    from keyrot.guardrails.apply import ApplyReport, apply_guardrails
    from keyrot.guardrails.declared import DeclaredAlert, DeclaredGuardrails, DeclaredModels, parse_guardrails
    from keyrot.guardrails.diff import Comparison, Difference, compare
    from keyrot.guardrails.document import (
        document_digest,
        document_json,
        load_document,
        parse_document,
        to_document,
    )
    from keyrot.guardrails.drift import (
        Drift,
        DriftReport,
        GuardrailsRestoreError,
        check_drift,
        detect_drift,
        drift_notification,
        enforce_guardrails,
    )
    from keyrot.guardrails.errors import DeclaredStateError, GuardrailsApplyError, GuardrailsConfigError, Problem
    from keyrot.guardrails.oncall import Oncall, OncallMemory, Told, hard_limit_notification
    from keyrot.guardrails.runner import (
        GuardrailsDependencies,
        GuardrailsEventError,
        GuardrailsOutcome,
        GuardrailsRequest,
        run_request,
    )
    from keyrot.guardrails.settings import GuardrailsSettings
    from keyrot.guardrails.source import load_declared
    from keyrot.guardrails.spend import MonthToDate, SpendStanding, month_to_date, spend_standing

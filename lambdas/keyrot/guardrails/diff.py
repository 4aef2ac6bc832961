"""Declared against actual, purely: which settings differ, the operations that would make them equal, and what
cannot be applied at all.

`compare` is the one diff behind the apply (its operations), the drift check (its differences) and
`keyrot guardrails` (both). Applying its operations to `actual` gives a project whose compare is empty.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from keyrot.guardrails import constants as c
from keyrot.guardrails.actual import ActualGuardrails
from keyrot.guardrails.declared import DeclaredGuardrails
from keyrot.guardrails.errors import Problem
from keyrot.guardrails.plan import (
    CreateSpendAlert,
    DeleteModelPermissions,
    DeleteSpendAlert,
    DeleteSpendLimit,
    Operation,
    SetModelPermissions,
    SetSpendLimit,
    UpdateRateLimit,
    UpdateSpendAlert,
    describe_models,
)
from keyrot.openai_admin.guardrails import ModelPermissionMode, SpendAlert

NONE = "none"


@dataclass(frozen=True)
class Difference:
    """One setting whose actual value is not the declared one. Values are display text (`500`, `$100.00`, `none`).

    `resource_id` is OpenAI's id of what differs (`rl-…`, `alert_…`) and `field` the rate-limit field, so the audit
    log can name who changed it."""

    setting: str
    declared: str
    actual: str
    resource_id: str | None = None
    field: str | None = None


@dataclass(frozen=True)
class Comparison:
    differences: tuple[Difference, ...]
    operations: tuple[Operation, ...]
    problems: tuple[Problem, ...]  # declared settings the project cannot take (checked before any change)

    @property
    def in_step(self) -> bool:
        return not self.differences and not self.problems


def compare(declared: DeclaredGuardrails, actual: ActualGuardrails) -> Comparison:
    """The differences, the plan (raising rate limits first, alerts deleted last) and the problems."""
    differences: list[Difference] = []
    problems: list[Problem] = []
    raising: list[Operation] = []
    lowering: list[Operation] = []
    for model, limits in sorted(declared.rate_limits.items()):
        update = _rate_limit(model, limits, actual, differences, problems)
        if update is not None:
            (raising if update.raises else lowering).append(update)
    spend = _spend_limit(declared, actual, differences)
    alerts = _alerts(declared, actual, differences)
    models = _models(declared, actual, differences)
    operations = (*raising, *lowering, *spend, *alerts, *models)
    return Comparison(tuple(differences), operations, tuple(problems))


def _rate_limit(
    model: str,
    limits: Mapping[str, int],
    actual: ActualGuardrails,
    differences: list[Difference],
    problems: list[Problem],
) -> UpdateRateLimit | None:
    current = actual.rate_limits.get(model)
    if current is None:
        listed = ", ".join(sorted(actual.rate_limits)) or "none"
        problems.append(
            Problem(
                c.rate_limit_setting(model),
                f"the project has no rate limit for model {model} at OpenAI, which has no call to add one "
                f"(models with rate limits: {listed})",
            )
        )
        return None
    have = current.limits
    changes: dict[str, int] = {}
    for name, value in sorted(limits.items()):
        setting = c.rate_limit_setting(model, name)
        if name not in have:
            problems.append(Problem(setting, f"does not apply to model {model}: OpenAI lists no such limit for it"))
            continue
        if have[name] != value:
            changes[name] = value
            differences.append(Difference(setting, str(value), str(have[name]), current.id, name))
    if not changes:
        return None
    return UpdateRateLimit(model, current.id, changes, {name: have[name] for name in changes})


def _spend_limit(
    declared: DeclaredGuardrails, actual: ActualGuardrails, differences: list[Difference]
) -> list[Operation]:
    have = actual.spend_limit.threshold_cents if actual.spend_limit is not None else None
    want = declared.spend_limit_cents
    if have == want:
        return []
    differences.append(Difference(c.SPEND_LIMIT_USD, _usd(want), _usd(have)))
    return [DeleteSpendLimit() if want is None else SetSpendLimit(want)]


def _alerts(declared: DeclaredGuardrails, actual: ActualGuardrails, differences: list[Difference]) -> list[Operation]:
    """Alerts are matched by threshold: one actual alert per declared threshold is kept (updated if its recipients
    differ), a missing one is created, every other alert is deleted. Deletions come last."""
    by_threshold: dict[int, list[SpendAlert]] = defaultdict(list)
    for listed in actual.spend_alerts:
        by_threshold[listed.threshold_cents].append(listed)
    writes: list[Operation] = []
    deletes: list[Operation] = []
    wanted = {alert.threshold_cents: alert for alert in declared.spend_alerts}
    for cents, alert in wanted.items():
        setting = c.alert_setting(cents)
        found = by_threshold.get(cents, [])
        if not found:
            differences.append(Difference(setting, _recipients(alert.recipients), NONE))
            writes.append(CreateSpendAlert(cents, alert.recipients))
            continue
        kept, *twins = found
        if sorted(kept.recipients) != list(alert.recipients):
            differences.append(
                Difference(setting, _recipients(alert.recipients), _recipients(kept.recipients), kept.id)
            )
            writes.append(UpdateSpendAlert(kept.id, cents, alert.recipients, kept.subject_prefix))
        for twin in twins:
            differences.append(Difference(setting, "one alert", f"another alert {twin.id}", twin.id))
            deletes.append(DeleteSpendAlert(twin.id, cents))
    for cents, found in sorted(by_threshold.items()):
        if cents in wanted:
            continue
        for extra in found:
            differences.append(Difference(c.alert_setting(cents), NONE, _recipients(extra.recipients), extra.id))
            deletes.append(DeleteSpendAlert(extra.id, cents))
    return [*writes, *deletes]


def _models(declared: DeclaredGuardrails, actual: ActualGuardrails, differences: list[Difference]) -> list[Operation]:
    want = declared.models
    have = actual.model_permissions
    want_key = (want.mode, tuple(want.model_ids)) if want is not None else None
    have_key = (have.mode, tuple(sorted(set(have.model_ids)))) if have is not None else None
    if want_key == have_key:
        return []
    differences.append(
        Difference(
            c.MODELS,
            describe_models(*want_key) if want_key else describe_models(None, ()),
            describe_models(*have_key) if have_key else describe_models(None, ()),
        )
    )
    if want is None:
        return [DeleteModelPermissions()]
    mode: ModelPermissionMode = "allow_list" if want.mode == "allow_list" else "deny_list"
    return [SetModelPermissions(mode, want.model_ids)]


def _usd(cents: int | None) -> str:
    return NONE if cents is None else f"{c.usd(cents)} a month"


def _recipients(recipients: tuple[str, ...]) -> str:
    return f"e-mail {', '.join(sorted(recipients))}"
